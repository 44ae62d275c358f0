"""Fmax and resources of the BitMoD array with the decode pipeline register (`pipeline=1`) vs without, per
activation format: LUT/FF from Yosys on the registered harness (ECP5, xc7), Fmax from nextpnr-ecp5 (LFE5U-25F,
speed 6) on the pin-light serial wrapper, as in benchmarks/bitmod_hw.py.

    python benchmarks/bitmod_fmax.py [--pairs 1x1] [--acts int8,fp16] [--pipelines 0,1] [--out docs/results]
writes docs/results/bitmod_fmax.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bitmod_hw import measure  # noqa: E402
from hwgen.bitmod_pe import BitModArray  # noqa: E402
from sw_model.bitmod import latency  # noqa: E402
from sw_model.bitmod_config import BitModConfig  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="1x1")
    ap.add_argument("--acts", default="int8,fp16")
    ap.add_argument("--pipelines", default="0,1")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = ap.parse_args(argv)
    rows, t0 = [], time.time()
    for pair in args.pairs.split(","):
        r, c = (int(x) for x in pair.lower().split("x"))
        for act in args.acts.split(","):
            for pipe in (int(x) for x in args.pipelines.split(",")):
                cfg = BitModConfig(rows=r, cols=c, act=act, pipeline=pipe)
                name = f"bitmod_{act}_{r}x{c}_k{cfg.lanes}_p{pipe}"
                row = measure(name, lambda: BitModArray(cfg), dsp=False, fmax=True)
                row.update(act=act, pipeline=pipe, rows=r, cols=c, latency=latency(cfg))
                rows.append(row)
                print(f"{name}: {row['ecp5']['fmax_mhz']} MHz after {time.time() - t0:.0f} s", flush=True)
                write(args, rows)                      # after every design: a partial run still leaves results


def write(args, rows):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = f"python benchmarks/bitmod_fmax.py --pairs {args.pairs} --acts {args.acts} --pipelines {args.pipelines}"
    (out / "bitmod_fmax.json").write_text(json.dumps({"command": cmd, "results": rows}, indent=2) + "\n")
    lines = ["# BitMoD array: decode pipeline register vs none", "", f"Command: `{cmd}`", "",
             "| design | act | pipeline | latency | ECP5 LUT | FF | Fmax MHz | xc7 LUT | FF |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for x in rows:
        e, v = x["ecp5"], x["xc7"]
        lines.append(f"| {x['name']} | {x['act']} | {x['pipeline']} | {x['latency']} | {e['lut']} | {e['ff']} | "
                     f"{e['fmax_mhz']:.1f} | {v['lut']} | {v['ff']} |")
    lines += ["", "Cycles per beat are the same with and without the register; only the output latency grows by 1.", ""]
    (out / "bitmod_fmax.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
