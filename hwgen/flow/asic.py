"""ASIC estimates: a design mapped with Yosys onto the OSU standard cells, timed with OpenSTA.

The flow is::

    component --registered_harness()--> top.v
              --Yosys: synth -flatten; dfflibmap; abc -D <period>; stat -liberty--> area (um^2), cells
              --OpenSTA: read_liberty, link_design, create_clock, report_checks--> critical-path delay

The Liberty files come from Debian's ``qflow-tech-osu018`` / ``-osu035`` / ``-osu050`` (the Oklahoma
State University cells at TSMC 0.18 um, AMI 0.35 um and AMI 0.5 um, one typical corner, area in
um^2, time in ns) and OpenSTA from Debian's ``opensta`` (``/usr/bin/sta``); both are optional: a
missing one raises a RuntimeError whose message is the ``apt-get`` line that fixes it.

Like the FPGA reports, the unit sits in the registered harness (every port bit has a flop on each
side), so the area includes one DFFPOSX1 per port bit plus the reset logic of those flops, and the
delay is register to register; pins are not timed (no input/output delays are set). No placement
and no wires: the delay is the cells' own (Liberty's wire-load model only), an optimistic lower bound.

Public API: :data:`ASIC_TARGETS`, :func:`synthesize_asic`, :func:`parse_sta_report`.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from hwgen.cache import build_root
from hwgen.flow import report

__all__ = ["ASIC_TARGETS", "synthesize_asic", "parse_sta_report", "liberty_file", "sta_command"]

_QFLOW = Path("/usr/share/qflow/tech")

#: target -> Liberty file and the Debian package that ships it
ASIC_TARGETS: dict[str, dict] = {
    "asic-osu018": {"liberty": _QFLOW / "osu018" / "osu018_stdcells.lib", "deb": "qflow-tech-osu018",
                    "process": "TSMC 0.18 um (OSU cells, typical corner)"},
    "asic-osu035": {"liberty": _QFLOW / "osu035" / "osu035_stdcells.lib", "deb": "qflow-tech-osu035",
                    "process": "AMI 0.35 um (OSU cells, typical corner)"},
    "asic-osu050": {"liberty": _QFLOW / "osu050" / "osu05_stdcells.lib", "deb": "qflow-tech-osu050",
                    "process": "AMI 0.5 um (OSU cells, typical corner)"},
}

_STA = "/usr/bin/sta"


def _fix_it(target: str) -> str:
    return f"fix with: apt-get install -y {ASIC_TARGETS[target]['deb']} opensta"


def liberty_file(target: str) -> Path:
    """The Liberty file of ``target``; RuntimeError with the apt-get line when it is not installed."""
    if target not in ASIC_TARGETS:
        raise ValueError(f"unknown ASIC target {target!r}; allowed: {', '.join(ASIC_TARGETS)}")
    path = ASIC_TARGETS[target]["liberty"]
    if not path.is_file():
        raise RuntimeError(f"{target}: Liberty file {path} not found (Debian package "
                           f"{ASIC_TARGETS[target]['deb']} missing); {_fix_it(target)}")
    return path


def sta_command(target: str = "asic-osu018") -> str:
    """Path of OpenSTA's ``sta``; RuntimeError with the apt-get line when it is not installed."""
    path = shutil.which("sta") or (_STA if Path(_STA).is_file() else None)
    if path is None:
        raise RuntimeError(f"{target}: OpenSTA (sta) not found (Debian package opensta missing); "
                           f"{_fix_it(target)}")
    return path


_ARRIVAL_RE = re.compile(r"^\s*(-?[\d.]+)\s+data arrival time", re.M)
_REQUIRED_RE = re.compile(r"^\s*(-?[\d.]+)\s+data required time", re.M)
_SETUP_RE = re.compile(r"^\s*(-?[\d.]+)\s+(-?[\d.]+)\s+library setup time", re.M)
_SLACK_RE = re.compile(r"^\s*(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", re.M)


def parse_sta_report(text: str) -> dict | None:
    """The worst setup path of an OpenSTA ``report_checks -path_delay max`` report.

    Returns ``{"start", "end", "arrival_ns", "setup_ns", "delay_ns", "cells", "slack_ns", "met"}``:
    ``arrival_ns`` is the data arrival time (clock-to-q plus logic, from an ideal clock at 0),
    ``delay_ns`` adds the capturing flop's setup time (the shortest clock period that works),
    ``cells`` counts the logic cells between the two flops (the path's logic depth).
    None when the report has no path (a design without registers).
    """
    start = re.search(r"^Startpoint: (\S+)", text, re.M)
    end = re.search(r"^Endpoint: (\S+)", text, re.M)
    arrival = _ARRIVAL_RE.search(text)
    if not (start and end and arrival):
        return None
    setup = _SETUP_RE.search(text)
    slack = _SLACK_RE.search(text)
    # The data path is the block before the first "data arrival time": rows "delay time ^/v inst/pin
    # (CELL)"; the launching flop shows twice (CLK, Q) and the capturing flop once (D).
    data_path = text[:arrival.start()]
    instances = []
    for row in re.finditer(r"^\s*-?[\d.]+\s+-?[\d.]+\s+[\^v]\s+(\S+)/\S+\s+\(\w+\)", data_path, re.M):
        if not instances or instances[-1] != row.group(1):
            instances.append(row.group(1))
    setup_ns = abs(float(setup.group(1))) if setup else 0.0
    arrival_ns = float(arrival.group(1))
    return {
        "start": start.group(1),
        "end": end.group(1),
        "arrival_ns": arrival_ns,
        "setup_ns": setup_ns,
        "delay_ns": round(arrival_ns + setup_ns, 3),
        "cells": max(len(instances) - 2, 0),      # minus the launching and the capturing flop
        "slack_ns": float(slack.group(1)) if slack else None,
        "met": slack.group(2) == "MET" if slack else None,
    }


def _stat_area(stat_json: Path) -> tuple[float | None, dict[str, int]]:
    text = stat_json.read_text()
    stat = json.loads(text[text.find("{"):])
    design = stat.get("design") or {}
    cells = {k.lstrip("\\$"): int(v) for k, v in (design.get("num_cells_by_type") or {}).items()
             if k != "$scopeinfo"}
    area = design.get("area")
    if area is None:                          # older layouts: per module
        for module in stat.get("modules", {}).values():
            if "area" in module:
                area = (area or 0.0) + float(module["area"])
            for k, v in (module.get("num_cells_by_type") or {}).items():
                if not design and k != "$scopeinfo":
                    cells[k.lstrip("\\$")] = cells.get(k.lstrip("\\$"), 0) + int(v)
    return (float(area) if area is not None else None), dict(sorted(cells.items()))


def synthesize_asic(component: wiring.Component, target: str, *, workdir: str | Path | None = None,
                    clock_ns: float = 10.0, name: str | None = None, timeout: float | None = 1800,
                    harness: bool = True) -> dict:
    """Map ``component`` (inside the registered harness) onto the OSU cells of ``target`` and time it.

    ``clock_ns`` is the clock OpenSTA checks against and the delay target ABC maps for. Returns
    ``{"name", "target", "process", "area_um2", "cell_count", "ff", "cells" (type -> count),
    "delay_ns", "fmax_mhz" (1000 / delay_ns), "critical_path" (:func:`parse_sta_report`),
    "clock_ns", "yosys_version", "sta_version", "seconds", "workdir", "notes"}``.
    Raises ValueError for an unknown target, RuntimeError (with the apt-get line) for a missing
    Liberty file or OpenSTA, and RuntimeError with the log tail when a tool fails.
    """
    liberty = liberty_file(target)
    sta = sta_command(target)
    name = name or type(component).__name__
    t_start = time.perf_counter()
    seconds = {}
    workdir = Path(workdir) if workdir is not None else (
        build_root() / "report" / re.sub(r"[^\w.\-]+", "_", f"{name}-{target}"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("stat.json", "netlist.v", "sta.log"):
        (workdir / stale).unlink(missing_ok=True)
    # The WebAssembly Yosys sees only its working folder: give it a copy of the Liberty file.
    shutil.copyfile(liberty, workdir / "cells.lib")

    t0 = time.perf_counter()
    top = report.registered_harness(component) if harness else component
    (workdir / "top.v").write_text(verilog.convert(top, name="top", emit_src=False))
    seconds["convert"] = time.perf_counter() - t0

    script = [
        "read_verilog top.v",
        "synth -top top -flatten",
        "dfflibmap -liberty cells.lib",
        f"abc -liberty cells.lib -D {clock_ns * 1000:g}",      # -D in ps: map for delay
        "opt_clean -purge",
        "setundef -zero",                   # the OSU cells have no tie cells: constants stay 1'b0/1'b1
        "rename -wire -suffix _reg t:DFF*",  # flops named after their Q signal: readable path ends
        "tee -q -o stat.json stat -json -liberty cells.lib",
        "write_verilog -noattr -noexpr netlist.v",
    ]
    (workdir / "asic.ys").write_text("\n".join(script) + "\n")
    t0 = time.perf_counter()
    proc = report._run_yosys("asic.ys", cwd=workdir, log="yosys.log", timeout=timeout)
    seconds["yosys"] = time.perf_counter() - t0
    if proc.returncode != 0 or not (workdir / "netlist.v").exists():
        log = (workdir / "yosys.log").read_text() if (workdir / "yosys.log").exists() else ""
        raise RuntimeError(f"yosys failed for {name} on {target} (exit {proc.returncode}, log "
                           f"{workdir / 'yosys.log'}):\n{report._tail(log + proc.stdout + proc.stderr)}")
    area, cells = _stat_area(workdir / "stat.json")

    sta_script = [
        "read_liberty cells.lib",
        "read_verilog netlist.v",
        "link_design top",
        f"create_clock -name clk -period {clock_ns:g} [get_ports clk]",
        "report_checks -path_delay max -digits 3",
        "exit",
    ]
    (workdir / "sta.tcl").write_text("\n".join(sta_script) + "\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sta, "-no_init", "-no_splash", "-exit", "sta.tcl"], cwd=workdir,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    seconds["sta"] = time.perf_counter() - t0
    (workdir / "sta.log").write_text(proc.stdout + proc.stderr)
    path = parse_sta_report(proc.stdout)
    if proc.returncode != 0 or "Error" in proc.stdout + proc.stderr:
        raise RuntimeError(f"OpenSTA failed for {name} on {target} (exit {proc.returncode}, log "
                           f"{workdir / 'sta.log'}):\n{report._tail(proc.stdout + proc.stderr)}")
    notes = [f"{ASIC_TARGETS[target]['process']}; registered harness included; no wires "
             "(Liberty wire-load model only)"]
    if path is None:
        notes.append("OpenSTA found no register-to-register path")
    ff = sum(n for c, n in cells.items() if c.startswith("DFF"))
    seconds["total"] = time.perf_counter() - t_start
    return {
        "name": name,
        "target": target,
        "process": ASIC_TARGETS[target]["process"],
        "liberty": str(liberty),
        "area_um2": area,
        "cell_count": sum(cells.values()),
        "ff": ff,
        "cells": cells,
        "delay_ns": path["delay_ns"] if path else None,
        "fmax_mhz": round(1000.0 / path["delay_ns"], 2) if path and path["delay_ns"] > 0 else None,
        "critical_path": path,
        "clock_ns": clock_ns,
        "yosys_version": report._tool_version("yosys"),
        "sta_version": _sta_version(sta),
        "seconds": seconds,
        "workdir": str(workdir),
        "notes": notes,
    }


def _sta_version(sta: str) -> str:
    proc = subprocess.run([sta, "-version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return "OpenSTA " + (proc.stdout.strip() or proc.stderr.strip() or "unknown")
