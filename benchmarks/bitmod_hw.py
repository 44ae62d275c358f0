"""BitMoD array vs a bit-parallel INT8 x INT8 MAC array of equal peak throughput at 4-bit weights, in one run.

For each pair: LUT/FF/carry/DSP from Yosys on the registered harness (ECP5 and xc7; the BitMoD array needs no
multiplier, the baseline is measured without and with DSPs), Fmax from nextpnr-ecp5 on a pin-light serial
wrapper (hwgen/bitmod/baseline.py SerialHarness), and peak MACs/cycle per LUT (fabric only, no DSP).
BitMoD peak MACs/cycle = rows * cols * lanes / terms: lanes/2 per PE at FP4/FP3, lanes/3 at INT6, lanes/4 at INT8.

With `--act fp16` the BitMoD array takes FP16 activations (`BitModConfig(act="fp16")`) and the baseline is a
bit-parallel INT8 x FP16 MAC array (`Int8Fp16MacArray`, k/2 multipliers per PE, the same alignment with 3 guard
bits and the same block-floating-point accumulator).

With `--align row` the FP16 BitMoD array aligns activations once per row (`BitModConfig(align="row")`) and a
third design is added: the INT8 x FP16 baseline with the same row pre-alignment (`prealign=True`).
`--lanes k` sets k (BitMoD lanes per PE; the baselines get k/2 multipliers per PE).

`--dequant column` shares one bit-serial dequantizer per column (`BitModConfig(dequant="column")`);
`--shift-step n` shifts the row-aligned FP16 accumulators by at most n bits per cycle (`BitModConfig.shift_step`).

    python benchmarks/bitmod_hw.py [--act int8|fp16] [--align product|row] [--lanes 4] [--dequant pe|column]
                                   [--pairs 1x1,2x2] [--fmax-pairs 1x1] [--dsp-baseline 1] [--out docs/results]
writes docs/results/bitmod_hw.json and .md (int8), bitmod_hw_fp16 (fp16, product), bitmod_hw_fp16_row (row);
a `_k<lanes>` suffix for lanes != 4, `_col` for --dequant column, `_s<n>` for --shift-step n.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from hwgen.bitmod.array import BitModArray  # noqa: E402
from hwgen.bitmod.baseline import Int8Fp16MacArray, Int8MacArray, SerialHarness  # noqa: E402
from hwgen.flow.report import synthesize  # noqa: E402
from sw_model.bitmod.config import BitModConfig  # noqa: E402


def designs(rows: int, cols: int, lanes: int = 4, act: str = "int8", align: str = "product", dequant: str = "pe",
            shift_step: int = 0):
    """[(name, factory, peak MACs/cycle, config, kind)]: the BitMoD array, then its baselines of equal peak
    MACs/cycle at 4-bit weights (lanes / 2 bit-parallel multipliers per PE)."""
    cfg = BitModConfig(rows=rows, cols=cols, lanes=lanes, act=act, align=align if act == "fp16" else "product",
                       dequant=dequant, shift_step=shift_step)
    dq = ("_col" if dequant == "column" else "") + (f"_s{shift_step}" if shift_step else "")
    n_max = cfg.max_groups * cfg.group_size
    macs, bmacs = lanes // 2, rows * cols * lanes / 2
    if act == "fp16":     # |w| * mantissa < 2^18, 3 guard bits, <= n_max / macs cycles of macs lanes
        base = dict(rows=rows, cols=cols, macs=macs, acc_bits=19 + 3 + (n_max - 1).bit_length(), guard=3)
        tag = "" if align == "product" else "_row"
        return [
            (f"bitmod_fp16{tag}_{rows}x{cols}_k{lanes}{dq}", lambda: BitModArray(cfg), bmacs, cfg, "bitmod"),
            (f"int8fp16mac_{rows}x{cols}_m{macs}", lambda: Int8Fp16MacArray(**base), rows * cols * macs, base,
             "int8xfp16_mac"),
            (f"int8fp16mac_pre_{rows}x{cols}_m{macs}", lambda: Int8Fp16MacArray(**base, prealign=True),
             rows * cols * macs, dict(base, prealign=True), "int8xfp16_mac_prealigned"),
        ]
    base = dict(rows=rows, cols=cols, macs=macs, acc_bits=16 + (n_max - 1).bit_length())
    return [
        (f"bitmod_{rows}x{cols}_k{lanes}{dq}", lambda: BitModArray(cfg), bmacs, cfg, "bitmod"),
        (f"int8mac_{rows}x{cols}_m{macs}", lambda: Int8MacArray(**base), rows * cols * macs, base, "int8_mac"),
    ]


def measure(name, make, dsp: bool, fmax: bool, timeout: float = 1800) -> dict:
    row = {"name": name, "dsp_enabled": dsp}
    for target in ("ecp5", "xc7"):
        try:
            r = synthesize(make(), target, dsp=dsp, pnr=False, name=f"{name}{'' if dsp else '-nodsp'}",
                           timeout=timeout)
        except subprocess.TimeoutExpired:             # recorded as such; the other designs still run
            print(f"{name} {target}: Yosys timed out after {timeout:.0f} s", flush=True)
            row[target] = dict.fromkeys(("lut", "ff", "carry", "dsp", "bram")) | {"timed_out_seconds": timeout}
            continue
        row[target] = {k: r[k] for k in ("lut", "ff", "carry", "dsp", "bram")}
        row[target]["yosys_seconds"] = round(r["seconds"]["yosys"], 1)
        row["yosys_version"] = r["yosys_version"]
    row["ecp5"]["fmax_mhz"] = None
    if fmax:
        r = synthesize(SerialHarness(make()), "ecp5", dsp=dsp, harness=False,
                       name=f"{name}-serial{'' if dsp else '-nodsp'}", timeout=timeout)
        row["ecp5"]["fmax_mhz"] = r["fmax_mhz"]
        row["ecp5"]["fmax_note"] = "nextpnr-ecp5 LFE5U-25F speed 6, serial pin wrapper"
        row["nextpnr_version"] = r["nextpnr_version"]
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="1x1,2x2", help="array sizes rows x cols, comma separated")
    ap.add_argument("--fmax-pairs", default="1x1", help="pairs that also get place and route for Fmax ('none')")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--act", default="int8", choices=("int8", "fp16"), help="BitMoD activation format")
    ap.add_argument("--align", default="product", choices=("product", "row"), help="FP16 alignment rule")
    ap.add_argument("--dequant", default="pe", choices=("pe", "column"),
                    help="BitMoD dequantizers: one per PE or one per column (BitModConfig.dequant)")
    ap.add_argument("--shift-step", type=int, default=0,
                    help="row-aligned FP16: accumulator shift per cycle (BitModConfig.shift_step)")
    ap.add_argument("--lanes", type=int, default=4, help="k: lanes per BitMoD PE (baselines: k/2 multipliers)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per Yosys / nextpnr run")
    ap.add_argument("--dsp-baseline", type=int, default=1, help="1: also synthesize the first baseline with DSPs")
    args = ap.parse_args(argv)
    rows_out, t0 = [], time.time()
    extra = "" if args.act == "int8" else f" --act fp16 --align {args.align}"
    extra += "" if args.lanes == 4 else f" --lanes {args.lanes}"
    extra += "" if args.dequant == "pe" else f" --dequant {args.dequant}"
    extra += f" --shift-step {args.shift_step}" if args.shift_step else ""
    extra += "" if args.dsp_baseline else " --dsp-baseline 0"
    cmd = f"python benchmarks/bitmod_hw.py{extra} --pairs {args.pairs} --fmax-pairs {args.fmax_pairs}"
    stem = "bitmod_hw" if args.act == "int8" else ("bitmod_hw_fp16" if args.align == "product" else
                                                   "bitmod_hw_fp16_row")
    stem += "" if args.lanes == 4 else f"_k{args.lanes}"
    stem += ("" if args.dequant == "pe" else "_col") + (f"_s{args.shift_step}" if args.shift_step else "")
    for pair in args.pairs.split(","):
        r, c = (int(x) for x in pair.lower().split("x"))
        (bname, bmake, bmacs, bcfg, _), *bases = designs(r, c, args.lanes, args.act, args.align, args.dequant,
                                                        args.shift_step)
        fmax = pair in args.fmax_pairs.split(",")
        b = measure(bname, bmake, dsp=False, fmax=fmax, timeout=args.timeout)
        b.update(kind="bitmod", peak_macs_per_cycle={"fp4/fp3": bmacs, "int6": bmacs * 2 / 3, "int8": bmacs / 2},
                 config=dict(rows=r, cols=c, lanes=bcfg.lanes, group_size=bcfg.group_size,
                             max_groups=bcfg.max_groups, act=bcfg.act, align=bcfg.align, dequant=bcfg.dequant,
                             shift_step=bcfg.shift_step))
        rows_out.append(b)
        for t, (iname, imake, imacs, icfg, kind) in enumerate(bases):
            variants = [False] + ([True] if t == 0 and args.dsp_baseline else [])
            for dsp in variants:
                x = measure(iname, imake, dsp=dsp, fmax=fmax and not dsp, timeout=args.timeout)
                x.update(kind=kind, peak_macs_per_cycle={"int8": imacs}, config=icfg)
                if not dsp:
                    for target in ("ecp5", "xc7"):
                        if x[target]["lut"] is None or b[target]["lut"] is None:
                            continue                       # a timed-out synthesis has no ratio
                        i_eff = imacs / x[target]["lut"]
                        x[target]["macs_per_cycle_per_lut"] = i_eff
                        b[target]["macs_per_cycle_per_lut_4bit"] = bmacs / b[target]["lut"]
                        b[target][f"ratio_vs_{kind}"] = bmacs / b[target]["lut"] / i_eff
                rows_out.append(x)
        print(f"{pair}: done after {time.time() - t0:.0f} s", flush=True)
        write(Path(args.out), stem, cmd, args.act, rows_out)       # after every pair: partial runs leave results


def write(out: Path, stem: str, cmd: str, act: str, rows_out: list):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"command": cmd, "results": rows_out}, indent=2) + "\n")
    what = ("FP16-activation BitMoD array vs bit-parallel INT8 x FP16 MAC arrays" if act == "fp16" else
            "BitMoD array vs bit-parallel INT8 MAC array")
    kinds = [k for k in ("int8_mac", "int8xfp16_mac", "int8xfp16_mac_prealigned")
             if any(x["kind"] == k for x in rows_out)]
    head = " | ".join(f"÷ {k} ECP5 | xc7" for k in kinds)
    lines = [f"# {what} (equal peak MACs/cycle at 4-bit weights)", "",
             f"Command: `{cmd}` (Yosys synth_ecp5 / synth_xilinx on the registered harness; Fmax: nextpnr-ecp5 "
             "LFE5U-25F-6 on a serial pin wrapper).", "",
             f"| design | DSP | peak MACs/cyc | ECP5 LUT | FF | DSP | Fmax MHz | xc7 LUT | FF | DSP | "
             f"MACs/cyc/kLUT ECP5 | xc7 | {head} |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(kinds)]
    for x in rows_out:
        macs = x["peak_macs_per_cycle"].get("fp4/fp3", x["peak_macs_per_cycle"].get("int8"))
        e, v = x["ecp5"], x["xc7"]
        ratio = " | ".join(" | ".join(f"{t[f'ratio_vs_{k}']:.2f}×" if f"ratio_vs_{k}" in t else "—" for t in (e, v))
                           for k in kinds)
        eff = ("" if x["dsp_enabled"] else " | ".join("—" if t["lut"] is None else f"{1000 * macs / t['lut']:.2f}"
                                                     for t in (e, v)))
        fm = "—" if e.get("fmax_mhz") is None else format(e["fmax_mhz"], ".1f")
        e, v = ({k: ("timeout" if t["lut"] is None else t[k]) for k in ("lut", "ff", "dsp")} for t in (e, v))
        lines.append(f"| {x['name']} | {'yes' if x['dsp_enabled'] else 'no'} | {macs:g} | {e['lut']} | {e['ff']} | "
                     f"{e['dsp']} | {fm} | {v['lut']} | {v['ff']} | {v['dsp']} | {eff or '— | —'} | {ratio} |")
    lines += ["", "BitMoD peak MACs/cycle is at FP4/FP3 weights (2 terms per weight); INT6 gives 2/3 and INT8 1/2 "
              "of it. The BitMoD array also contains the per-group bit-serial dequantizers the baselines lack. "
              "int8xfp16_mac aligns each PE's products to their largest exponent; int8xfp16_mac_prealigned aligns "
              "the activations once per row (the BitMoD align='row' rule).", ""]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
