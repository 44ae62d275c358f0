"""BitMoD array vs a bit-parallel INT8 x INT8 MAC array of equal peak throughput at 4-bit weights, in one run.

For each pair: LUT/FF/carry/DSP from Yosys on the registered harness (ECP5 and xc7; the BitMoD array needs no
multiplier, the baseline is measured without and with DSPs), Fmax from nextpnr-ecp5 on a pin-light serial
wrapper (hwgen/bitmod_baseline.py SerialHarness), and peak MACs/cycle per LUT (fabric only, no DSP).
BitMoD peak MACs/cycle = rows * cols * lanes / terms: lanes/2 per PE at FP4/FP3, lanes/3 at INT6, lanes/4 at INT8.

With `--act fp16` the BitMoD array takes FP16 activations (`BitModConfig(act="fp16")`) and the baseline is a
bit-parallel INT8 x FP16 MAC array (`Int8Fp16MacArray`, k/2 multipliers per PE, the same alignment with 3 guard
bits and the same block-floating-point accumulator).

    python benchmarks/bitmod_hw.py [--act int8|fp16] [--pairs 1x1,2x2] [--fmax-pairs 1x1] [--out docs/results]
writes docs/results/bitmod_hw.json and .md (int8) or bitmod_hw_fp16.json and .md (fp16).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwgen.bitmod_baseline import Int8Fp16MacArray, Int8MacArray, SerialHarness  # noqa: E402
from hwgen.bitmod_pe import BitModArray  # noqa: E402
from hwgen.report import synthesize  # noqa: E402
from sw_model.bitmod_config import BitModConfig  # noqa: E402


def designs(rows: int, cols: int, lanes: int = 4, act: str = "int8"):
    cfg = BitModConfig(rows=rows, cols=cols, lanes=lanes, act=act)
    n_max = cfg.max_groups * cfg.group_size
    if act == "fp16":     # |w| * mantissa < 2^18, 3 guard bits, <= n_max / macs cycles of macs lanes
        base = dict(rows=rows, cols=cols, macs=lanes // 2, acc_bits=19 + 3 + (n_max - 1).bit_length(), guard=3)
        bname, iname, icls = f"bitmod_fp16_{rows}x{cols}_k{lanes}", f"int8fp16mac_{rows}x{cols}_m{lanes // 2}", \
            Int8Fp16MacArray
    else:
        base = dict(rows=rows, cols=cols, macs=lanes // 2, acc_bits=16 + (n_max - 1).bit_length())
        bname, iname, icls = f"bitmod_{rows}x{cols}_k{lanes}", f"int8mac_{rows}x{cols}_m{lanes // 2}", Int8MacArray
    return [
        (bname, lambda: BitModArray(cfg), rows * cols * lanes / 2, cfg),
        (iname, lambda: icls(**base), rows * cols * lanes // 2, base),
    ]


def measure(name, make, dsp: bool, fmax: bool) -> dict:
    row = {"name": name, "dsp_enabled": dsp}
    for target in ("ecp5", "xc7"):
        r = synthesize(make(), target, dsp=dsp, pnr=False, name=f"{name}{'' if dsp else '-nodsp'}")
        row[target] = {k: r[k] for k in ("lut", "ff", "carry", "dsp", "bram")}
        row[target]["yosys_seconds"] = round(r["seconds"]["yosys"], 1)
    row["yosys_version"] = r["yosys_version"]
    row["ecp5"]["fmax_mhz"] = None
    if fmax:
        r = synthesize(SerialHarness(make()), "ecp5", dsp=dsp, harness=False,
                       name=f"{name}-serial{'' if dsp else '-nodsp'}")
        row["ecp5"]["fmax_mhz"] = r["fmax_mhz"]
        row["ecp5"]["fmax_note"] = "nextpnr-ecp5 LFE5U-25F speed 6, serial pin wrapper"
        row["nextpnr_version"] = r["nextpnr_version"]
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="1x1,2x2", help="array sizes rows x cols, comma separated")
    ap.add_argument("--fmax-pairs", default="1x1", help="pairs that also get place and route for Fmax")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--act", default="int8", choices=("int8", "fp16"), help="BitMoD activation format")
    args = ap.parse_args(argv)
    rows_out, t0 = [], time.time()
    for pair in args.pairs.split(","):
        r, c = (int(x) for x in pair.lower().split("x"))
        (bname, bmake, bmacs, bcfg), (iname, imake, imacs, icfg) = designs(r, c, act=args.act)
        fmax = pair in args.fmax_pairs.split(",")
        b = measure(bname, bmake, dsp=False, fmax=fmax)
        b.update(kind="bitmod", peak_macs_per_cycle={"fp4/fp3": bmacs, "int6": bmacs * 2 / 3, "int8": bmacs / 2},
                 config=dict(rows=r, cols=c, lanes=bcfg.lanes, group_size=bcfg.group_size,
                             max_groups=bcfg.max_groups, act=bcfg.act))
        i_nodsp = measure(iname, imake, dsp=False, fmax=fmax)
        i_dsp = measure(iname, imake, dsp=True, fmax=False)
        for x in (i_nodsp, i_dsp):
            x.update(kind="int8_mac" if args.act == "int8" else "int8xfp16_mac", peak_macs_per_cycle={"int8": imacs},
                     config=icfg)
        for target in ("ecp5", "xc7"):
            b_eff = bmacs / b[target]["lut"]
            i_eff = imacs / i_nodsp[target]["lut"]
            b[target]["macs_per_cycle_per_lut_4bit"] = b_eff
            i_nodsp[target]["macs_per_cycle_per_lut"] = i_eff
            b[target]["ratio_vs_int8_nodsp"] = b_eff / i_eff
        rows_out += [b, i_nodsp, i_dsp]
        print(f"{pair}: done after {time.time() - t0:.0f} s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    act_arg = "" if args.act == "int8" else " --act fp16"
    cmd = f"python benchmarks/bitmod_hw.py{act_arg} --pairs {args.pairs} --fmax-pairs {args.fmax_pairs}"
    stem = "bitmod_hw" if args.act == "int8" else "bitmod_hw_fp16"
    (out / f"{stem}.json").write_text(json.dumps({"command": cmd, "results": rows_out}, indent=2) + "\n")
    what = ("FP16-activation BitMoD array vs bit-parallel INT8 x FP16 MAC array" if args.act == "fp16" else
            "BitMoD array vs bit-parallel INT8 MAC array")
    lines = [f"# {what} (equal peak MACs/cycle at 4-bit weights)", "",
             f"Command: `{cmd}` (Yosys synth_ecp5 / synth_xilinx on the registered harness; Fmax: nextpnr-ecp5 "
             "LFE5U-25F-6 on a serial pin wrapper).", "",
             "| design | DSP | peak MACs/cyc | ECP5 LUT | FF | DSP | Fmax MHz | xc7 LUT | FF | DSP | "
             "MACs/cyc/kLUT ECP5 | xc7 | BitMoD / INT8 ECP5 | xc7 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in rows_out:
        macs = x["peak_macs_per_cycle"].get("fp4/fp3", x["peak_macs_per_cycle"].get("int8"))
        e, v = x["ecp5"], x["xc7"]
        ratio = (f"{e['ratio_vs_int8_nodsp']:.2f}× | {v['ratio_vs_int8_nodsp']:.2f}×" if x["kind"] == "bitmod"
                 else "— | —")
        eff = ("" if x["dsp_enabled"] else f"{1000 * macs / e['lut']:.1f} | {1000 * macs / v['lut']:.1f}")
        lines.append(f"| {x['name']} | {'yes' if x['dsp_enabled'] else 'no'} | {macs:g} | {e['lut']} | {e['ff']} | "
                     f"{e['dsp']} | {'—' if e['fmax_mhz'] is None else format(e['fmax_mhz'], '.1f')} | {v['lut']} | {v['ff']} | {v['dsp']} | "
                     f"{eff or '— | —'} | {ratio} |")
    lines += ["", "BitMoD peak MACs/cycle is at FP4/FP3 weights (2 terms per weight); INT6 gives 2/3 and INT8 1/2 "
              "of it. The BitMoD array also contains the per-group bit-serial dequantizers the INT8 baseline lacks.",
              ""]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
