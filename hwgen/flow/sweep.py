"""Design-space sweeps: a grid of unit configs, each generated, synthesized and run on a workload.

A sweep spec is a TOML file:

    name = "lmul-formats"            # optional; default: the file stem
    unit = "lmul"                    # the config class, as in `hwgen generate`
    [base]                           # fields shared by every point (optional)
    pipeline = 1
    [grid]                           # every combination of these values is one point
    fmt = ["e4m3", "e5m2", "e3m4"]
    mode = ["adder", "formula"]
    [run]
    targets = ["ecp5"]               # synthesis targets per point (ecp5, ice40, xc7); [] = none
    dsp = false
    workload = "lmul-error"          # see WORKLOADS
    samples = 20000                  # workload size
    rtl_samples = 2000               # beats simulated on the RTL per point (0 = golden model only)

Each point writes one JSON record `<out>/points/<point id>.json` (id = hash of its config); a rerun skips points
whose record exists, so an interrupted sweep resumes where it stopped. Points run in local processes by default,
or on a Dask distributed cluster when a scheduler address is given.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from hwgen.flow.generate import build_component
from hwgen.flow.report import synthesize
from hwgen.progress import progress
from hwgen.sim.harness import run_vectors
from sw_model.config import ConfigError, config_to_dict, read_toml
from sw_model.lmul import golden
from sw_model.numerics.formats import decode, encode
from sw_model.registry import config_from_dict

RUN_DEFAULTS = {"targets": ["ecp5"], "dsp": False, "workload": "lmul-error", "samples": 20000, "rtl_samples": 2000}


def load_spec(path) -> dict:
    """Parse and validate a sweep spec; returns {name, points: [config], run: {...}}."""
    path = Path(path)
    spec = read_toml(path, "sweep spec")
    unknown = set(spec) - {"name", "unit", "base", "grid", "run"}
    if unknown:
        raise ConfigError(f"sweep spec: unknown key(s) {sorted(unknown)}, allowed: name, unit, base, grid, run")
    grid = spec.get("grid", {})
    if not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError("grid: got an empty grid or a non-list value, allowed: field = [value, ...] lines")
    run = dict(RUN_DEFAULTS)
    for key, value in spec.get("run", {}).items():
        if key not in RUN_DEFAULTS:
            raise ConfigError(f"run.{key}: unknown, allowed: {', '.join(RUN_DEFAULTS)}")
        run[key] = value
    if run["workload"] not in WORKLOADS:
        raise ConfigError(f"run.workload: got {run['workload']!r}, allowed: {', '.join(WORKLOADS)}")
    for t in run["targets"]:
        if t not in ("ecp5", "ice40", "xc7"):
            raise ConfigError(f"run.targets: got {t!r}, allowed: ecp5, ice40, xc7")
    keys = list(grid)
    points = [config_from_dict({"unit": spec.get("unit"), **spec.get("base", {}), **dict(zip(keys, combo))})
              for combo in itertools.product(*(grid[k] for k in keys))]
    return {"name": spec.get("name", path.stem), "points": points, "run": run}


def point_id(config, run: dict) -> str:
    """Stable id of a point: a hash of its config and the run options (changing either reruns it)."""
    key = json.dumps([config_to_dict(config), run], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


# --- workloads: config, run options -> metrics ---------------------------------------------------------------

def _lmul_error(config, run: dict) -> dict:
    """Mean relative error of the unit's products on N(0,1) operands against the exact product of the
    rounded operands (golden model), plus a bit-exact RTL check of `rtl_samples` beats."""
    fmt = config.format
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, run["samples"]))
    a, b = encode(x, fmt, overflow="saturate"), encode(y, fmt, overflow="saturate")
    exact = decode(a, fmt) * decode(b, fmt)
    if config.unit == "fmul":
        codes = golden.fmul(a, b, fmt, config.overflow)
    else:
        codes = golden.lmul(a, b, fmt, config.mode, config.overflow)
    keep = (np.abs(exact) >= fmt.min_normal) & (np.abs(exact) <= fmt.max_finite)
    mre = float(np.mean(np.abs(decode(codes, fmt)[keep] - exact[keep]) / np.abs(exact[keep])))
    metrics = {"mean_rel_error": mre, "samples": int(keep.sum())}
    n = min(run["rtl_samples"], len(a))
    if n:
        res = run_vectors(config, {"a": a[:n], "b": b[:n]}, {"p": codes[:n]}, gap=0.0, backpressure=0.0)
        metrics.update(rtl_beats=res["n_out"], rtl_mismatches=len(res["mismatches"]),
                       rtl_cycles=res["out_cycles"][-1] - res["in_cycles"][0] + 1)
    return metrics


WORKLOADS = {"lmul-error": _lmul_error}


def run_point(config, run: dict, out_dir: str) -> dict:
    """Generate, synthesize and evaluate one point; writes and returns its record."""
    t0 = time.time()
    record = {"id": point_id(config, run), "config": config_to_dict(config), "synthesis": {}, "metrics": {}}
    for target in run["targets"]:
        r = synthesize(build_component(config), target, dsp=run["dsp"],
                       workdir=Path(out_dir) / "work" / f"{record['id']}-{target}")
        record["synthesis"][target] = {k: r.get(k) for k in ("lut", "ff", "carry", "dsp", "bram", "fmax_mhz")}
    record["metrics"] = WORKLOADS[run["workload"]](config, run)
    record["seconds"] = round(time.time() - t0, 2)
    path = Path(out_dir) / "points" / f"{record['id']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)                       # a record exists only when the point finished
    return record


def run_sweep(spec_path, out_dir, jobs: int = 2, scheduler: str | None = None) -> list[dict]:
    """Run every point not yet recorded; returns all records (old and new)."""
    spec = load_spec(spec_path)
    out = Path(out_dir)
    (out / "points").mkdir(parents=True, exist_ok=True)
    run = spec["run"]
    todo = [c for c in spec["points"] if not (out / "points" / f"{point_id(c, run)}.json").exists()]
    total, done = len(spec["points"]), len(spec["points"]) - len(todo)
    print(f"sweep {spec['name']}: {total} points, {done} already done, {len(todo)} to run "
          f"({'dask ' + scheduler if scheduler else f'{jobs} local processes'})")
    bar = progress(total=total, initial=done, desc=f"sweep {spec['name']}", unit="point")
    if todo and scheduler:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError:
            raise RuntimeError("a Dask scheduler was given but `distributed` is not installed: "
                               "pip install 'dask[distributed]'") from None
        with Client(scheduler) as client:
            futures = [client.submit(run_point, c, run, str(out), pure=False) for c in todo]
            for fut in dask_completed(futures):
                bar.set_postfix_str(fut.result()["id"])
                bar.update()
    elif todo:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_point, c, run, str(out)) for c in todo]
            for fut in as_completed(futures):
                bar.set_postfix_str(fut.result()["id"])
                bar.update()
    bar.close()
    records = [json.loads((out / "points" / f"{point_id(c, run)}.json").read_text()) for c in spec["points"]]
    (out / "sweep.json").write_text(json.dumps({"name": spec["name"], "run": spec["run"], "points": records},
                                               indent=2) + "\n")
    return records


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when minimizing both coordinates."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def plot_pareto(records: list[dict], target: str, path) -> list[dict]:
    """Scatter LUTs vs mean relative error with the Pareto front; returns the front's records."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pts = [(r["synthesis"][target]["lut"], r["metrics"]["mean_rel_error"]) for r in records]
    front = pareto_front(pts)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(*zip(*pts), color="0.6", label="points")
    ax.plot(*zip(*(pts[i] for i in front)), "o-", color="C0", label="Pareto front")
    for r, (x, y) in zip(records, pts):
        c = r["config"]
        ax.annotate(f"{c['unit']} {c.get('fmt', '')} {c.get('mode', '')}".strip(), (x, y), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"LUTs ({target})")
    ax.set_ylabel("mean relative error vs exact product")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [records[i] for i in front]


def summary_markdown(name: str, records: list[dict], front_ids: set, target: str | None) -> str:
    lines = [f"# Sweep {name}", "", "| point | config | LUT | FF | Fmax MHz | mean rel. error | RTL mismatches | Pareto |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in records:
        syn = r["synthesis"].get(target, {}) if target else {}
        cfg = " ".join(f"{k}={v}" for k, v in r["config"].items())
        m = r["metrics"]
        lines.append(f"| {r['id']} | {cfg} | {syn.get('lut', '')} | {syn.get('ff', '')} | {format(syn['fmax_mhz'], '.1f') if syn.get('fmax_mhz') else ''} "
                     f"| {m.get('mean_rel_error', float('nan')):.4f} | {m.get('rtl_mismatches', '')} "
                     f"| {'yes' if r['id'] in front_ids else ''} |")
    return "\n".join(lines) + "\n"
