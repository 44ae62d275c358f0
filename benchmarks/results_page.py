"""The results page: every preset x target in one table, plus plots, from one command.

    python benchmarks/results_page.py [--targets ecp5,ice40,xc7,asic-osu018] [--presets NAME,...] [-j 2]
                                      [--out docs/results] [--no-cache]

Every (preset, target) is one record of `hwgen.flow.records.make_record`, the same code path as
`hwgen report PRESET --target T` (ECP5 LFE5U-85F speed 6 and iCE40 UP5K placed and routed by nextpnr, xc7a35t
synthesis only, OSU 0.18 um cells timed by OpenSTA). Records are cached by config hash, the unit's Verilog, the
flow options and the tool versions, so a rerun only measures what changed. A design that does not fit is a record
saying so with its utilisation; a failed tool run is a record with its error (not cached, retried next time).
results.json and index.md are rewritten as each record finishes, so an interrupted run keeps what it measured.
Writes docs/results/index.md, results.json and PNG plots (LUTs and Fmax per unit, operations per second per LUT,
L-Mul error vs mantissa bits from lmul_error.json)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = "ecp5,ice40,xc7,asic-osu018"


def _plots(rows: list[dict], out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    ok = [r for r in rows if r["status"] == "ok" and not r["target"].startswith("asic-")]
    targets = sorted({r["target"] for r in ok})
    presets = sorted({r["preset"] for r in ok})
    for metric, label, fname in (("lut", "LUTs", "luts.png"), ("fmax_mhz", "Fmax (MHz)", "fmax.png")):
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / max(len(targets), 1)
        for t_i, target in enumerate(targets):
            vals = [next((r[metric] or 0 for r in ok if r["preset"] == p and r["target"] == target), 0)
                    for p in presets]
            ax.bar([i + t_i * width for i in range(len(presets))], vals, width, label=target)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(presets))], presets, rotation=60, ha="right",
                      fontsize=7)
        ax.set_ylabel(label)
        if metric == "lut":
            ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        made.append(fname)
    tput = [r for r in ok if r.get("ops_per_cycle") and r.get("lut") and r.get("fmax_mhz")]
    if tput:
        fig, ax = plt.subplots(figsize=(9, 4))
        for target in targets:
            pts = [(r["preset"], _ops_per_s_per_lut(r)) for r in tput if r["target"] == target]
            ax.plot([p for p, _ in pts], [v for _, v in pts], "o", label=target)
        ax.set_ylabel("operations per second per LUT (own Fmax)")
        ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput_per_lut.png", dpi=110)
        plt.close(fig)
        made.append("throughput_per_lut.png")
    err = out / "lmul_error.json"
    if err.exists():
        data = json.loads(err.read_text())
        pts = {}
        for r in data.get("random", []):          # rows "L-Mul adder, k=3" with vs_exact.mean
            name, _, k = r["label"].partition(", k=")
            if name.startswith("L-Mul") and k:
                pts.setdefault(name, []).append((int(k), r["vs_exact"]["mean"]))
        refs = {r["label"]: r["vs_exact"]["mean"] for r in data.get("random", []) if "(FMul)" in r["label"]}
        if pts:
            fig, ax = plt.subplots(figsize=(6, 4))
            for name, p in pts.items():
                p.sort()
                ax.plot([k for k, _ in p], [v for _, v in p], "o-", label=name)
            for label, value in refs.items():
                ax.axhline(value, linestyle="--", linewidth=0.8, color="0.4")
                ax.annotate(label, (2, value), fontsize=7, xytext=(0, 2), textcoords="offset points")
            ax.set_xlabel("mantissa bits")
            ax.set_ylabel("mean relative error vs exact product")
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / "accuracy_vs_bits.png", dpi=110)
            plt.close(fig)
            made.append("accuracy_vs_bits.png")
    return made


def _ops_per_s_per_lut(r: dict) -> float | None:
    """Operations per second per LUT at the design's own Fmax (the fair throughput per area)."""
    if not (r.get("ops_per_cycle") and r.get("lut") and r.get("fmax_mhz")):
        return None
    return r["ops_per_cycle"] * r["fmax_mhz"] * 1e6 / r["lut"]


def _order(points, previous: dict) -> list:
    """Cheap points first (by the tool time of the last page, unknown last), so a run cut short
    still covers most of the table."""
    def cost(point):
        name, _config, target = point
        seconds = previous.get((name, target))
        return (seconds is None, seconds or 0.0)
    return sorted(points, key=cost)


def _cell(value, spec=""):
    return "" if value is None else format(value, spec)


def write_page(records: list[dict], out: Path, command: str, missing: list[str], elapsed: float,
               plots: list[str]) -> None:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (out / "results.json").write_text(json.dumps({"date": stamp, "command": command, "records": records,
                                                  "missing": missing}, indent=1) + "\n")
    yosys = sorted({(r.get("tools") or {}).get("yosys") or "" for r in records} - {""})
    fpga = [r for r in records if not r["target"].startswith("asic-")]
    asic = [r for r in records if r["target"].startswith("asic-")]
    ok = [r for r in fpga if r["target"] == "ecp5" and r["status"] == "ok" and r.get("fmax_mhz")]
    lines = ["# Results: every preset on every target", "",
             f"Generated {stamp} by `{command}` ({elapsed:.0f} s this run, "
             f"{sum(r.get('wall_seconds') or 0 for r in records if not r.get('cached')):.0f} s of it new tool runs; "
             f"{sum(1 for r in records if r.get('cached'))} of {len(records)} records from the cache). "
             "DSPs allowed. ECP5 LFE5U-85F speed 6 (CABGA381) and iCE40 UP5K (SG48) placed and routed by nextpnr "
             "(seed 1), xc7a35t synthesis only, asic-osu018 = OSU 0.18 um cells timed by OpenSTA. Every unit sits in "
             "the registered harness (scan harness where its ports exceed the package's pins). "
             f"Yosys: {', '.join(yosys) or 'none run'}.", "",
             f"ECP5 at >= 100 MHz: {sum(1 for r in ok if r['fmax_mhz'] >= 100)} of {len(ok)} placed designs.", "",
             "Critical path: the launching signal -> the capturing cell pin from nextpnr's report; levels = logic "
             "cells on it (each carry step counts). MOPS/LUT = operations per cycle x own Fmax / LUTs.", "",
             "| preset | unit | target | LUT | FF | carry | DSP | BRAM | Fmax MHz | critical path | levels | "
             "MOPS/LUT | status |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for r in fpga:
        cp = r.get("critical_path") or {}
        path = f"`{cp.get('start_net') or cp.get('start')}` -> `{cp.get('end')}` ({cp.get('delay_ns')} ns)" if cp else ""
        mops = _ops_per_s_per_lut(r)
        status = "ok" if r["status"] == "ok" else f"{r['status']}: {r.get('error', '')}"
        lines.append(f"| {r['preset']} | {r.get('unit') or ''} | {r['target']} | {_cell(r.get('lut'))} | "
                     f"{_cell(r.get('ff'))} | {_cell(r.get('carry'))} | {_cell(r.get('dsp'))} | {_cell(r.get('bram'))} | "
                     f"{_cell(r.get('fmax_mhz'), '.1f')} | {path} | {_cell(cp.get('logic_levels'))} | "
                     f"{_cell(mops / 1e6 if mops else None, '.3f')} | {status} |")
    if asic:
        lines += ["", "## ASIC estimates (OSU standard cells, OpenSTA)", "",
                  "Area includes the registered harness (one flop per port bit); delay = register-to-register "
                  "arrival + setup, no wires.", "",
                  "| preset | target | area um^2 | cells | FF | delay ns | logic depth | status |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for r in asic:
            cp = r.get("critical_path") or {}
            status = "ok" if r["status"] == "ok" else f"{r['status']}: {r.get('error', '')}"
            lines.append(f"| {r['preset']} | {r['target']} | {_cell(r.get('area_um2'), ',.0f')} | "
                         f"{_cell(r.get('cell_count'))} | {_cell(r.get('ff'))} | {_cell(r.get('delay_ns'), '.2f')} | "
                         f"{_cell(cp.get('cells'))} | {status} |")
    if missing:
        lines += ["", f"Not measured in this run ({len(missing)}): " + ", ".join(missing) + "."]
    lines += [""] + [f"![{name}]({name})" for name in plots]
    lines += ["", "Other results: [L-Mul error](lmul_error.md), [L-Mul resources](lmul_resources.md), "
              "[L-Mul ASIC](lmul_asic.md), [simulation speed](sim_speed.md). How records are made and cached: "
              "[reports](../reports.md)."]
    (out / "index.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    from hwgen.flow.records import RECORD_TARGETS, run_records
    from sw_model.registry import PRESETS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=DEFAULT_TARGETS, help=f"comma-separated (default {DEFAULT_TARGETS})")
    p.add_argument("--presets", help="comma-separated presets (default: all)")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per tool run before the record is an error")
    p.add_argument("--no-cache", action="store_true", help="re-run every record")
    p.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = p.parse_args(argv)
    presets = args.presets.split(",") if args.presets else list(PRESETS)
    unknown = [x for x in presets if x not in PRESETS]
    if unknown:
        p.error(f"--presets: unknown {unknown}, allowed: {', '.join(PRESETS)}")
    targets = args.targets.split(",")
    bad = [t for t in targets if t not in RECORD_TARGETS]
    if bad:
        p.error(f"--targets: unknown {bad}, allowed: {', '.join(RECORD_TARGETS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = {}
    if (out / "results.json").exists():
        old = json.loads((out / "results.json").read_text())
        for r in old.get("records") or old.get("rows") or []:
            previous[(r["preset"], r["target"])] = r.get("wall_seconds", r.get("seconds"))
    command = "python benchmarks/results_page.py" + (f" --targets {args.targets}" if args.targets != DEFAULT_TARGETS
                                                     else "") + (f" --presets {args.presets}" if args.presets else "")
    points = _order([(name, PRESETS[name], t) for name in presets for t in targets], previous)
    order = {(name, t): i for i, (name, t) in enumerate((n, t) for n in presets for t in targets)}
    done: list[dict] = []
    t0 = time.time()

    def missing_now():
        have = {(r["preset"], r["target"]) for r in done}
        return [f"{n} {t}" for n, _c, t in points if (n, t) not in have]

    def on_record(record):
        done.append(record)
        done.sort(key=lambda r: order[(r["preset"], r["target"])])
        state = (record.get("error") or f"{record.get('lut', record.get('area_um2'))} "
                 f"{'LUT' if 'lut' in record else 'um^2'}, Fmax {_cell(record.get('fmax_mhz'), '.1f') or '-'}")
        print(f"{record['preset']} {record['target']}: {record['status']} {state}"
              f"{' (cached)' if record.get('cached') else ''}", flush=True)
        write_page(done, out, command, missing_now(), time.time() - t0, [])

    run_records(points, jobs=args.jobs, use_cache=not args.no_cache, timeout=args.timeout, on_record=on_record)
    plots = _plots(done, out)
    write_page(done, out, command, missing_now(), time.time() - t0, plots)
    print(f"wrote {out / 'index.md'}, results.json and {len(plots)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
