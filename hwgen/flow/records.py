"""One report record per (preset or config, target), cached, and many of them in parallel.

This is the single code path behind ``hwgen report`` and the results page
(``benchmarks/results_page.py``): both call :func:`make_record`, so a row of
``docs/results/results.json`` is what ``hwgen report PRESET --target T`` prints.

A record (``RECORD_VERSION`` 1) is a flat dict:

- identity: ``preset``, ``unit``, ``target``, ``part``, ``package``, ``speed``, ``config_hash``,
  ``verilog_sha`` (the unit's Verilog), ``key`` (the cache key), ``options`` (flow options);
- ``status``: ``"ok"``, ``"does_not_fit"`` (Yosys counts plus nextpnr's ``utilization`` and the
  exhausted ``resource`` in ``error``) or ``"error"`` (a tool failed: ``error`` is its message);
- FPGA: ``lut``, ``ff``, ``carry``, ``dsp``, ``bram``, ``lutram``, ``fmax_mhz``,
  ``freq_target_mhz``, ``critical_path`` (start, end, delay, logic levels, segments: see
  :func:`hwgen.flow.report.parse_critical_path`), ``utilization`` (used BELs only);
- ASIC (``asic-*`` targets): ``area_um2``, ``cell_count``, ``ff``, ``delay_ns``, ``fmax_mhz``,
  ``critical_path`` (:func:`hwgen.flow.asic.parse_sta_report`);
- ``ops_per_cycle`` (from the unit's ``timing()``), ``tools`` (the Yosys build, nextpnr/OpenSTA),
  ``seconds`` (per tool step), ``notes``.

The cache key hashes the config, the unit's Verilog, the target, the flow options (part, package,
speed, clock, seed, DSPs) and the tool versions, so changing one preset re-runs only that preset,
and a gateware change re-runs exactly the presets whose Verilog changed. Records live in
``<cache>/records/``. To skip converting every design to Verilog on a fully cached run, the Verilog
hash is remembered per (config hash, digest of the gateware sources); any source edit re-converts
(seconds), but only a changed Verilog re-synthesizes (minutes).

Public API: :data:`RECORD_TARGETS`, :func:`make_record`, :func:`run_records`, :func:`format_records`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from hwgen.cache import build_root

__all__ = ["RECORD_VERSION", "RECORD_TARGETS", "make_record", "run_records", "record_key", "format_records",
           "flow_options"]

#: bump when the flow changes what a record holds or how it is measured (invalidates every record)
RECORD_VERSION = 1

#: every target a record can have: the FPGA targets of hwgen.flow.report and the OSU ASIC targets
RECORD_TARGETS = ("ecp5", "ice40", "xc7", "asic-osu018", "asic-osu035", "asic-osu050")

#: the packages whose sources make the gateware (tool flow, simulation and host code excluded)
_GATEWARE_SKIP = ("flow", "sim", "host")


def _records_dir() -> Path:
    return build_root() / "records"


@functools.lru_cache(maxsize=None)
def gateware_digest() -> str:
    """A hash of every source file that can change a unit's Verilog (``hwgen`` minus its tool-flow,
    simulation and host code, plus ``sw_model``, whose configs and formats the gateware reads)."""
    import hwgen
    import sw_model
    h = hashlib.sha256()
    for package in (hwgen, sw_model):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            if package is hwgen and rel.parts[0] in _GATEWARE_SKIP:
                continue
            h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def flow_options(target: str, *, dsp: bool = True, clock_ns: float = 10.0, seed: int = 1) -> dict:
    """The options that, with the design and the tool versions, decide a record."""
    if target.startswith("asic-"):
        from hwgen.flow.asic import ASIC_TARGETS
        if target not in ASIC_TARGETS:
            raise ValueError(f"--target: unknown target {target!r}; allowed: {', '.join(RECORD_TARGETS)}")
        return {"target": target, "clock_ns": clock_ns, "harness": "registered"}
    from hwgen.flow.report import TARGETS
    if target not in TARGETS:
        raise ValueError(f"--target: unknown target {target!r}; allowed: {', '.join(RECORD_TARGETS)}")
    spec = TARGETS[target]
    return {"target": target, "part": spec["part"], "package": spec["package"], "speed": spec["speed"],
            "freq_mhz": spec["freq_mhz"], "seed": seed, "dsp": dsp, "harness": "registered (scan if wider than pins)"}


def tool_versions(target: str) -> dict:
    """The tools a record of ``target`` depends on, with versions (part of the cache key)."""
    from hwgen.flow import report
    tools = {"yosys": report._tool_version("yosys")}
    if target.startswith("asic-"):
        from hwgen.flow.asic import _sta_version, sta_command
        tools["sta"] = _sta_version(sta_command(target))
    elif report.TARGETS[target]["pnr"]:
        tools["nextpnr"] = report._tool_version(report.TARGETS[target]["pnr"])
    return tools


def _verilog_sha(config) -> str:
    """The sha of the unit's Verilog (memoized per config hash and gateware digest)."""
    from sw_model.config import config_hash
    memo = _records_dir() / "verilog-sha" / f"{config_hash(config)}-{gateware_digest()}"
    if memo.exists():
        return memo.read_text().strip()
    from amaranth.back import verilog

    from hwgen.flow.generate import build_component
    component = build_component(config)
    sha = hashlib.sha256(verilog.convert(component, name="top", emit_src=False).encode()).hexdigest()[:16]
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(sha + "\n")
    return sha


def record_key(config_hash: str, verilog_sha: str, options: dict, tools: dict) -> str:
    blob = json.dumps({"v": RECORD_VERSION, "config": config_hash, "verilog": verilog_sha,
                       "options": options, "tools": tools}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _slim_utilization(util: dict | None) -> dict | None:
    if not util:
        return util
    return {bel: u for bel, u in sorted(util.items()) if u.get("used")}


def _run_flow(config, target: str, options: dict, timeout: float | None, workdir: Path) -> dict:
    """The tool runs of one record (the slow part)."""
    from hwgen.flow.generate import build_component
    from hwgen.flow.report import DoesNotFitError, synthesize
    component = build_component(config)
    fields = {"ops_per_cycle": (component.timing() or {}).get("ops_per_cycle")
              if hasattr(component, "timing") else None}
    if target.startswith("asic-"):
        from hwgen.flow.asic import synthesize_asic
        r = synthesize_asic(component, target, workdir=workdir, clock_ns=options["clock_ns"], timeout=timeout)
        fields.update({k: r[k] for k in ("area_um2", "cell_count", "ff", "delay_ns", "fmax_mhz", "critical_path",
                                         "clock_ns", "process", "cells", "seconds", "notes")})
        fields["tools"] = {"yosys": r["yosys_version"], "sta": r["sta_version"]}
        fields["status"] = "ok"
        return fields
    try:
        r = synthesize(component, target, dsp=options["dsp"], workdir=workdir, seed=options["seed"],
                       timeout=timeout)
        fields["status"] = "ok"
    except DoesNotFitError as e:
        r = dict(e.result or {})
        r["utilization"] = e.utilization
        fields["status"] = "does_not_fit"
        fields["error"] = str(e).splitlines()[0]
        fields["resource"] = e.resource
    for k in ("part", "package", "speed", "dsp_enabled", "lut", "ff", "carry", "dsp", "bram", "lutram", "spram",
              "fmax_mhz", "freq_target_mhz", "critical_path", "cells", "seconds", "notes"):
        if k in r:
            fields[k] = r[k]
    fields["utilization"] = _slim_utilization(r.get("utilization"))
    fields["tools"] = {"yosys": r.get("yosys_version"), "nextpnr": r.get("nextpnr_version")}
    return fields


def make_record(name: str, config, target: str, *, dsp: bool = True, use_cache: bool = True,
                timeout: float | None = 3600, clock_ns: float = 10.0) -> dict:
    """The record of ``config`` (named ``name``) on ``target``: from the cache when its key is
    there, else measured (and cached unless a tool failed). See the module docstring for the fields.

    ``timeout`` bounds each tool run; a run that exceeds it is a record with ``status == "error"``
    that is not cached, so the next run tries again.
    """
    from sw_model.config import config_hash
    options = flow_options(target, dsp=dsp, clock_ns=clock_ns)
    tools = tool_versions(target)
    chash = config_hash(config)
    vsha = _verilog_sha(config)
    key = record_key(chash, vsha, options, tools)
    path = _records_dir() / f"{name}-{target}-{key}.json"
    if use_cache and path.exists():
        record = json.loads(path.read_text())
        record["cached"] = True
        return record
    record = {"record_version": RECORD_VERSION, "preset": name, "unit": getattr(config, "unit", None),
              "target": target, "config_hash": chash, "verilog_sha": vsha, "key": key, "options": options}
    workdir = build_root() / "records-work" / f"{name}-{target}"
    t0 = time.perf_counter()
    try:
        record.update(_run_flow(config, target, options, timeout, workdir))
    except subprocess.TimeoutExpired as e:
        record.update(status="error", error=f"timeout: {Path(str(e.cmd[0])).name if e.cmd else 'a tool'} "
                      f"ran longer than {timeout:g} s")
    except RuntimeError as e:                      # a tool failed: the record says so
        record.update(status="error", error=str(e).strip().splitlines()[0][:300])
    record["wall_seconds"] = round(time.perf_counter() - t0, 1)
    record.setdefault("tools", tools)
    if record["status"] != "error":               # failures are retried by the next run
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
    record["cached"] = False
    return record


def _point(name: str, config, target: str, dsp: bool, use_cache: bool, timeout):
    return make_record(name, config, target, dsp=dsp, use_cache=use_cache, timeout=timeout)


def run_records(points: list[tuple[str, object, str]], *, jobs: int = 2, dsp: bool = True, use_cache: bool = True,
                timeout: float | None = 3600, on_record=None) -> list[dict]:
    """:func:`make_record` for every ``(name, config, target)`` in ``jobs`` worker processes, with a
    progress bar; ``on_record(record)`` is called as each one finishes. Returns the records in the
    order of ``points``."""
    from hwgen.progress import progress
    results: dict[int, dict] = {}
    bar = progress(total=len(points), desc="reports", unit="record")
    def done(i, record):
        results[i] = record
        bar.update()
        if on_record is not None:
            on_record(record)
    try:
        if jobs <= 1:
            for i, (name, config, target) in enumerate(points):
                done(i, make_record(name, config, target, dsp=dsp, use_cache=use_cache, timeout=timeout))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(_point, name, config, target, dsp, use_cache, timeout): i
                           for i, (name, config, target) in enumerate(points)}
                for future in as_completed(futures):
                    done(futures[future], future.result())
    finally:
        bar.close()
    return [results[i] for i in sorted(results)]


def _fmt(value, spec="") -> str:
    return "" if value is None else format(value, spec)


def format_records(records: list[dict]) -> str:
    """Markdown tables of records: one for FPGA targets, one for ASIC targets (when present)."""
    fpga = [r for r in records if not r["target"].startswith("asic-")]
    asic = [r for r in records if r["target"].startswith("asic-")]
    lines = []
    if fpga:
        lines += ["| preset | target | part | LUT | FF | carry | DSP | BRAM | Fmax MHz | critical path (start -> end) | "
                  "levels | status |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
        for r in fpga:
            cp = r.get("critical_path") or {}
            path = f"`{cp.get('start_net') or cp.get('start')}` -> `{cp.get('end')}`" if cp else ""
            status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error', '')}"
            lines.append(f"| {r['preset']} | {r['target']} | {r.get('part') or ''} | {_fmt(r.get('lut'))} | {_fmt(r.get('ff'))} | "
                         f"{_fmt(r.get('carry'))} | {_fmt(r.get('dsp'))} | {_fmt(r.get('bram'))} | "
                         f"{_fmt(r.get('fmax_mhz'), '.1f')} | {path} | {_fmt(cp.get('logic_levels'))} | {status} |")
    if asic:
        if lines:
            lines.append("")
        lines += ["| preset | target | area um^2 | cells | FF | delay ns | logic depth | status |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for r in asic:
            cp = r.get("critical_path") or {}
            status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error', '')}"
            lines.append(f"| {r['preset']} | {r['target']} | {_fmt(r.get('area_um2'), ',.0f')} | "
                         f"{_fmt(r.get('cell_count'))} | {_fmt(r.get('ff'))} | {_fmt(r.get('delay_ns'), '.2f')} | "
                         f"{_fmt(cp.get('cells'))} | {status} |")
    return "\n".join(lines) + "\n"
