"""BitMoD arrays vs bit-parallel arrays of the same weight width, in MACs per cycle per LUT *and* MACs per second
per LUT at each design's own Fmax (DSPs off on both sides).

    python benchmarks/bitmod_fair.py [--sizes 2x2,4x4] [--cases w4,w8,fp16] [--out docs/results]

Cases (BitMoD arrays are the lean ones: one dequantizer per column, `BitModConfig(dequant="column")`, k = 4 lanes):
- `w4`: BitMoD, INT8 activations, at 4-bit weights (peak k/2 MACs/cycle per PE) vs a bit-parallel INT8 x INT4 array
  with k/2 multipliers per PE (`Int8MacArray(weight_bits=4)`): equal peak MACs/cycle.
- `w8`: the same BitMoD array at 8-bit weights (peak k/4 per PE) vs an INT8 x INT8 array with k/4 multipliers per
  PE (`Int8MacArray`).
- `fp16`: BitMoD with FP16 activations (row alignment, `shift_step=1`, the `bitmod-array-4x4-fp16-lean` rule) at
  4-bit weights vs the pre-aligned INT4 x FP16 array with k/2 multipliers per PE
  (`Int8Fp16MacArray(prealign=True, weight_bits=4)`).
LUTs: Yosys synth_ecp5 -nodsp on the registered harness (the same numbers `hwgen report` gives); Fmax: nextpnr-ecp5
(LFE5U-85F speed 6) on the pin-light serial wrapper (`SerialHarness`). The goal is >= 1.5x MACs/s/LUT at 4-bit
weights; every row is published, met or not. Writes docs/results/bitmod_fair.json and .md after every design.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANES = 4


def _bits(n: int) -> int:
    return (n - 1).bit_length()


def cases(rows: int, cols: int, which: list[str]):
    """[(case, [(name, kind, factory, peak MACs/cycle, description)])]: the BitMoD array first, then its baseline."""
    from hwgen.bitmod.array import BitModArray
    from hwgen.bitmod.baseline import Int8Fp16MacArray, Int8MacArray
    from sw_model.registry import PRESETS
    lean = dataclasses.replace(PRESETS["bitmod-array-4x4-lean"], rows=rows, cols=cols, lanes=LANES)
    lean16 = dataclasses.replace(PRESETS["bitmod-array-4x4-fp16-lean"], rows=rows, cols=cols, lanes=LANES)
    n_max = lean.max_groups * lean.group_size
    pes = rows * cols
    out = []
    if "w4" in which:
        out.append(("w4", [
            (f"bitmod_{rows}x{cols}_lean", "bitmod", lambda: BitModArray(lean), pes * LANES / 2,
             "BitMoD INT8 act, 4-bit weights"),
            (f"int8x4mac_{rows}x{cols}", "baseline", lambda: Int8MacArray(rows, cols, LANES // 2,
                                                                           12 + _bits(n_max), weight_bits=4),
             pes * LANES // 2, "INT8 x INT4 bit-parallel")]))
    if "w8" in which:
        out.append(("w8", [
            (f"bitmod_{rows}x{cols}_lean", "bitmod", lambda: BitModArray(lean), pes * LANES / 4,
             "BitMoD INT8 act, 8-bit weights"),
            (f"int8x8mac_{rows}x{cols}", "baseline", lambda: Int8MacArray(rows, cols, LANES // 4, 16 + _bits(n_max)),
             pes * LANES // 4, "INT8 x INT8 bit-parallel")]))
    if "fp16" in which:
        out.append(("fp16", [
            (f"bitmod_fp16_{rows}x{cols}_lean", "bitmod", lambda: BitModArray(lean16), pes * LANES / 2,
             "BitMoD FP16 act (row-aligned), 4-bit weights"),
            (f"int4fp16mac_pre_{rows}x{cols}", "baseline",
             lambda: Int8Fp16MacArray(rows, cols, LANES // 2, 15 + 3 + _bits(n_max), guard=3, prealign=True,
                                      weight_bits=4),
             pes * LANES // 2, "INT4 x FP16 bit-parallel, pre-aligned")]))
    return out


def measure(name: str, make, timeout: float, memo: dict) -> dict:
    """LUT/FF/carry (registered harness, synthesis only) and Fmax (serial wrapper, place and route), DSPs off."""
    if name in memo:
        return memo[name]
    from hwgen.bitmod.baseline import SerialHarness
    from hwgen.flow.report import synthesize
    row = {"name": name}
    try:
        r = synthesize(make(), "ecp5", dsp=False, pnr=False, scan=False, name=f"fair-{name}", timeout=timeout)
        row.update({k: r[k] for k in ("lut", "ff", "carry", "dsp", "bram")}, yosys=r["yosys_version"])
        r = synthesize(SerialHarness(make()), "ecp5", dsp=False, harness=False, name=f"fair-{name}-serial",
                       timeout=timeout)
        row.update(fmax_mhz=r["fmax_mhz"], part=r["part"], critical_path=r.get("critical_path"),
                   nextpnr=r["nextpnr_version"])
    except subprocess.TimeoutExpired:
        row["error"] = f"timeout after {timeout:g} s"
    except RuntimeError as e:
        row["error"] = str(e).splitlines()[0][:200]
    memo[name] = row
    return row


def write(out: Path, command: str, results: list[dict], missing: list[str], elapsed: float) -> None:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (out / "bitmod_fair.json").write_text(json.dumps({"date": stamp, "command": command, "results": results,
                                                      "missing": missing}, indent=1) + "\n")
    lines = ["# BitMoD vs bit-parallel arrays: MACs per second per LUT at each design's own Fmax", "",
             f"Generated {stamp} by `{command}` ({elapsed:.0f} s). DSPs off on both sides. LUT/FF: Yosys "
             "`synth_ecp5 -nodsp` on the registered harness; Fmax: nextpnr-ecp5 LFE5U-85F speed 6 on the serial pin "
             "wrapper. Peak MACs/cycle: BitMoD k/2 per PE at 4-bit weights (2 terms per weight), k/4 at 8-bit "
             "weights; the baselines have as many bit-parallel multipliers (equal peak). "
             "MACs/s/LUT = peak MACs/cycle x Fmax / LUT. Goal: BitMoD >= 1.5x the baseline's MACs/s/LUT at "
             "4-bit weights.", "",
             "| case | size | design | peak MACs/cyc | LUT | FF | Fmax MHz | MACs/cyc/kLUT | MMACs/s/LUT | "
             "BitMoD ÷ baseline (per cycle) | BitMoD ÷ baseline (per second) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for d in res["designs"]:
            per_cycle = d.get("macs_per_cycle_per_lut")
            per_s = d.get("macs_per_s_per_lut")
            ratio_c = res.get("ratio_per_cycle") if d["kind"] == "bitmod" else None
            ratio_s = res.get("ratio_per_second") if d["kind"] == "bitmod" else None
            lines.append(
                f"| {res['case']} | {res['size']} | {d['name']} ({d['description']}) | {d['peak_macs_per_cycle']:g} | "
                f"{d.get('lut', d.get('error', ''))} | {d.get('ff', '')} | "
                f"{'' if d.get('fmax_mhz') is None else format(d['fmax_mhz'], '.1f')} | "
                f"{'' if per_cycle is None else format(1000 * per_cycle, '.2f')} | "
                f"{'' if per_s is None else format(per_s / 1e6, '.3f')} | "
                f"{'' if ratio_c is None else format(ratio_c, '.2f') + '×'} | "
                f"{'' if ratio_s is None else format(ratio_s, '.2f') + '×'} |")
    if missing:
        lines += ["", f"Not measured (run out of time or not requested): {', '.join(missing)}."]
    (out / "bitmod_fair.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2x2,4x4")
    p.add_argument("--cases", default="w4,w8,fp16")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = p.parse_args(argv)
    which = args.cases.split(",")
    bad = [c for c in which if c not in ("w4", "w8", "fp16")]
    if bad:
        p.error(f"--cases: unknown {bad}, allowed: w4, w8, fp16")
    command = f"python benchmarks/bitmod_fair.py --sizes {args.sizes} --cases {args.cases}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, memo, results = time.time(), {}, []
    plan = [(size, case, designs) for size in args.sizes.split(",")
            for case, designs in cases(*(int(x) for x in size.lower().split("x")), which)]
    for i, (size, case, designs) in enumerate(plan):
        res = {"case": case, "size": size, "designs": []}
        for name, kind, make, peak, description in designs:
            row = dict(measure(name, make, args.timeout, memo), kind=kind, peak_macs_per_cycle=peak,
                       description=description)
            if row.get("lut"):
                row["macs_per_cycle_per_lut"] = peak / row["lut"]
                if row.get("fmax_mhz"):
                    row["macs_per_s_per_lut"] = peak * row["fmax_mhz"] * 1e6 / row["lut"]
            res["designs"].append(row)
            print(f"{size} {case} {name}: {row.get('lut')} LUT, Fmax {row.get('fmax_mhz')} {row.get('error', '')}",
                  flush=True)
        b, x = res["designs"]
        if b.get("macs_per_cycle_per_lut") and x.get("macs_per_cycle_per_lut"):
            res["ratio_per_cycle"] = b["macs_per_cycle_per_lut"] / x["macs_per_cycle_per_lut"]
        if b.get("macs_per_s_per_lut") and x.get("macs_per_s_per_lut"):
            res["ratio_per_second"] = b["macs_per_s_per_lut"] / x["macs_per_s_per_lut"]
        results.append(res)
        missing = [f"{s} {c}" for s, c, _ in plan[i + 1:]]
        write(out, command, results, missing, time.time() - t0)
    print(f"wrote {out / 'bitmod_fair.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
