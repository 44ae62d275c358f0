"""The results page: every preset x target in one table, plus plots, from one command.

    python benchmarks/results_page.py [--targets ecp5,ice40,xc7] [--presets NAME,...] [-j 2] [--out docs/results]

Each (preset, target) is synthesized with `hwgen.flow.report.synthesize` (DSPs allowed; the scan harness where the
ports exceed the package's pins). Results are cached in build/results_cache by a hash of the design's Verilog,
target and tool versions, so a rerun only synthesizes what changed. A point that does not fit or fails is a row
saying so, never a silent gap. Writes docs/results/index.md, results.json and PNG plots (LUTs and Fmax per unit,
operations per cycle per LUT, L-Mul error vs mantissa bits from lmul_error.json)."""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

from hwgen.cache import build_root
from hwgen.progress import progress

ROOT = Path(__file__).resolve().parent.parent
CACHE = build_root() / "results_cache"


def _point(preset: str, target: str, timeout: float) -> dict:
    from amaranth.back import verilog

    from hwgen.flow.generate import build_component
    from hwgen.flow.report import synthesize
    from sw_model.registry import PRESETS
    config = PRESETS[preset]
    component = build_component(config)
    text = verilog.convert(build_component(config), name="top", emit_src=False)
    key = hashlib.sha256(f"{text}|{target}".encode()).hexdigest()[:16]
    cached = CACHE / f"{preset}-{target}-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    row = {"preset": preset, "unit": config.unit, "target": target,
           "ops_per_cycle": component.timing().get("ops_per_cycle")}
    t0 = time.time()
    try:
        r = synthesize(component, target, workdir=build_root() / "results_work" / f"{preset}-{target}",
                       timeout=timeout)
        row.update({k: r.get(k) for k in ("lut", "ff", "carry", "dsp", "bram", "fmax_mhz", "part", "notes")})
    except subprocess.TimeoutExpired:
        row["error"] = f"timeout: a tool run took more than {timeout:g} s"
    except Exception as e:                      # does not fit, tool failure: a row that says so
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    row["seconds"] = round(time.time() - t0, 1)
    if not row.get("error", "").startswith("timeout"):          # a timeout is retried by the next run
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(row, indent=2))
    return row


def _plots(rows: list[dict], out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    ok = [r for r in rows if "error" not in r]
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
    tput = [r for r in ok if r.get("ops_per_cycle") and r.get("lut")]
    if tput:
        fig, ax = plt.subplots(figsize=(9, 4))
        for target in targets:
            pts = [(r["preset"], r["ops_per_cycle"] / r["lut"]) for r in tput if r["target"] == target]
            ax.plot([p for p, _ in pts], [v for _, v in pts], "o", label=target)
        ax.set_ylabel("operations per cycle per LUT")
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


def main(argv=None) -> int:
    from sw_model.registry import PRESETS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="ecp5,ice40,xc7")
    p.add_argument("--presets", help="comma-separated presets (default: all)")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600, help="seconds per tool run before the row says timeout")
    p.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = p.parse_args(argv)
    presets = args.presets.split(",") if args.presets else list(PRESETS)
    unknown = [x for x in presets if x not in PRESETS]
    if unknown:
        p.error(f"--presets: unknown {unknown}, allowed: {', '.join(PRESETS)}")
    targets = args.targets.split(",")
    jobs = [(pr, t) for pr in presets for t in targets]
    rows, t0 = [], time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_point, pr, t, args.timeout): (pr, t) for pr, t in jobs}
        bar = progress(total=len(jobs), desc="results page", unit="point")
        for fut in as_completed(futures):
            row = fut.result()
            rows.append(row)
            state = row.get("error") or f"{row['lut']} LUT, Fmax {row['fmax_mhz'] or '-'}"
            bar.write(f"{row['preset']} {row['target']}: {state}")
            bar.update()
        bar.close()
    rows.sort(key=lambda r: (presets.index(r["preset"]), targets.index(r["target"])))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (out / "results.json").write_text(json.dumps({"date": stamp, "rows": rows}, indent=2) + "\n")
    plots = _plots(rows, out)
    lines = ["# Results: every preset on every target", "",
             f"Generated {stamp} by `python benchmarks/results_page.py --targets {args.targets}"
             f"{' --presets ' + args.presets if args.presets else ''} --timeout {args.timeout:g}` "
             f"({time.time() - t0:.0f} s). DSPs allowed; "
             "ECP5 LFE5U-25F and iCE40 UP5K placed and routed by nextpnr (Fmax), xc7a35t synthesis only.", "",
             "| preset | unit | target | LUT | FF | carry | DSP | BRAM | Fmax MHz | ops/cycle/kLUT | notes |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['unit']} | {r['target']} | | | | | | | | {r['error']} |")
            continue
        opl = f"{1000 * r['ops_per_cycle'] / r['lut']:.1f}" if r.get("ops_per_cycle") and r["lut"] else ""
        fmax = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else ""
        notes = "; ".join(n for n in r.get("notes") or [] if "scan" in n)
        lines.append(f"| {r['preset']} | {r['unit']} | {r['target']} | {r['lut']} | {r['ff']} | {r['carry']} | "
                     f"{r['dsp']} | {r['bram']} | {fmax} | {opl} | {notes} |")
    lines += [""] + [f"![{name}]({name})" for name in plots]
    lines += ["", "Other results: [L-Mul error](lmul_error.md), [L-Mul resources](lmul_resources.md), "
              "[simulation speed](sim_speed.md)."]
    (out / "index.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'index.md'}, results.json and {len(plots)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
