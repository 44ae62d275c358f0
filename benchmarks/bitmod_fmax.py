"""Fmax and resources of the BitMoD array with the decode pipeline register (`pipeline=1`) vs without, per
activation format: LUT/FF from Yosys on the registered harness (ECP5, xc7), Fmax from nextpnr-ecp5 (LFE5U-25F,
speed 6) on the pin-light serial wrapper, as in benchmarks/bitmod_hw.py.

    python benchmarks/bitmod_fmax.py [--pairs 1x1] [--acts int8,fp16] [--pipelines 0,1]
                                     [--set lanes=8,dequant=column] [--stem bitmod_fmax] [--out docs/results]
writes docs/results/<stem>.json and .md. `--set` applies further BitModConfig fields to every design (FP16
designs also take `align=row` / `shift_step=n`; INT8 designs ignore those two).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bitmod_hw import measure  # noqa: E402  (a sibling script: python puts benchmarks/ on sys.path)
from hwgen.bitmod.array import BitModArray  # noqa: E402
from sw_model.bitmod.config import BitModConfig  # noqa: E402
from sw_model.bitmod.golden import latency  # noqa: E402
from sw_model.config import ConfigError  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="1x1")
    ap.add_argument("--acts", default="int8,fp16")
    ap.add_argument("--pipelines", default="0,1")
    ap.add_argument("--set", default="", help="further BitModConfig fields, e.g. lanes=8,dequant=column")
    ap.add_argument("--stem", default="bitmod_fmax", help="output file name without extension")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = ap.parse_args(argv)
    try:
        extra = {k: (v if v.isalpha() else int(v)) for k, v in (x.split("=") for x in args.set.split(",") if x)}
    except ValueError:
        ap.error(f"--set: got {args.set!r}, allowed: comma-separated field=value pairs, e.g. lanes=8,dequant=column")
    plan = []                                          # every config first: a bad one fails before any synthesis
    for pair in args.pairs.split(","):
        r, c = (int(x) for x in pair.lower().split("x"))
        for act in args.acts.split(","):
            for pipe in (int(x) for x in args.pipelines.split(",")):
                fields = {k: v for k, v in extra.items() if act == "fp16" or k not in ("align", "shift_step")}
                try:
                    plan.append((BitModConfig(**{"rows": r, "cols": c, "act": act, "pipeline": pipe, **fields}),
                                 fields))
                except (ConfigError, TypeError) as e:
                    ap.error(f"{pair} {act} pipeline={pipe}: {e}")
    rows, t0 = [], time.time()
    for cfg, fields in plan:
        tag = "".join(f"_{k}{v}" for k, v in fields.items() if k != "lanes")
        name = f"bitmod_{cfg.act}_{cfg.rows}x{cfg.cols}_k{cfg.lanes}_p{cfg.pipeline}{tag}"
        row = measure(name, lambda: BitModArray(cfg), dsp=False, fmax=True)
        row.update(act=cfg.act, pipeline=cfg.pipeline, rows=cfg.rows, cols=cfg.cols, latency=latency(cfg),
                   config=fields)
        rows.append(row)
        print(f"{name}: {row['ecp5']['fmax_mhz']} MHz after {time.time() - t0:.0f} s", flush=True)
        write(args, rows)                              # after every design: a partial run still leaves results


def write(args, rows):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = f"python benchmarks/bitmod_fmax.py --pairs {args.pairs} --acts {args.acts} --pipelines {args.pipelines}"
    cmd += (f" --set {args.set}" if args.set else "") + (f" --stem {args.stem}" if args.stem != "bitmod_fmax" else "")
    (out / f"{args.stem}.json").write_text(json.dumps({"command": cmd, "results": rows}, indent=2) + "\n")
    lines = ["# BitMoD array: Fmax and resources", "", f"Command: `{cmd}`", "",
             "| design | act | pipeline | latency | ECP5 LUT | FF | Fmax MHz | xc7 LUT | FF |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for x in rows:
        e, v = x["ecp5"], x["xc7"]
        lines.append(f"| {x['name']} | {x['act']} | {x['pipeline']} | {x['latency']} | {e['lut']} | {e['ff']} | "
                     f"{e['fmax_mhz']:.1f} | {v['lut']} | {v['ff']} |")
    lines += ["", "The decode pipeline register (pipeline 1) adds one cycle of output latency and no cycles per beat; "
              "latency = sw_model.bitmod.golden.latency(cfg).", ""]
    (out / f"{args.stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
