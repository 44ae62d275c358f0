"""Fmax and resources of the spiking-core presets versus the `pipeline` setting, ECP5 LFE5U-85F speed 6
-> docs/results/snn_fmax.{json,md}.

Run: `python benchmarks/snn_fmax.py` (Yosys synth_ecp5 + nextpnr-ecp5 per design, every unit port registered by
`hwgen.flow.report.registered_harness`; about 1 minute per design on this machine). `--pipelines 0 1 2` picks the
settings (default: 0 = no registers, i.e. the core before pipelining, and each preset's default); `--presets`
picks the presets. Cycle costs next to each row come from the config's cycle model (`SNNCoreConfig.cycles`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from hwgen.flow.report import synthesize
from hwgen.snn.core import SNNCore
from sw_model.registry import PRESETS

ROOT = Path(__file__).resolve().parent.parent
PRESET_NAMES = ["snn-core-cuba-32x4", "snn-core-lif-16x4", "snn-core-64x8", "snn-core-256"]
PART = "LFE5U-85F"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", nargs="+", default=PRESET_NAMES)
    ap.add_argument("--pipelines", nargs="+", type=int, default=None,
                    help="pipeline settings (default: 0 and the preset's default)")
    ap.add_argument("-o", "--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of an existing snn_fmax.json for the (preset, pipeline) pairs not re-run")
    args = ap.parse_args(argv)
    out = Path(args.out)
    old = json.loads((out / "snn_fmax.json").read_text()) if args.merge and (out / "snn_fmax.json").exists() else []
    rows = []
    for name in args.presets:
        base = PRESETS[name]
        for p in args.pipelines if args.pipelines is not None else sorted({0, base.pipeline}):
            cfg = dataclasses.replace(base, pipeline=p)
            r = synthesize(SNNCore(cfg), "ecp5", part=PART, name=f"{name}-p{p}", dsp=True)
            row = {"preset": name, "pipeline": p, "default": p == base.pipeline, "lut": r["lut"], "ff": r["ff"],
                   "dsp": r["dsp"], "bram": r["bram"], "fmax_mhz": r["fmax_mhz"],
                   "spike_cycles": cfg.cycles("spike"), "tick_cycles": f"{cfg.cycles('tick') - 1} + S + 1",
                   "yosys": r.get("yosys_version"), "nextpnr": r.get("nextpnr_version")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    done = {(r["preset"], r["pipeline"]) for r in rows}
    order = {name: k for k, name in enumerate(PRESET_NAMES)}
    rows = sorted([r for r in old if (r["preset"], r["pipeline"]) not in done] + rows,
                  key=lambda r: (order.get(r["preset"], 99), r["pipeline"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "snn_fmax.json").write_text(json.dumps(rows, indent=2) + "\n")
    md = ["# Spiking core: Fmax versus pipeline", "",
          f"Measured with `python benchmarks/snn_fmax.py` on ECP5 {PART} speed 6 (Yosys synth_ecp5 + nextpnr-ecp5, "
          "every unit port registered). `pipeline` 0 is the core without register slices (the core before issue 17); "
          "the marked row is the preset's default. Cycles: an input spike event (`spike`) and a timestep boundary "
          "(`tick`, S = output spikes) from the cycle model `SNNCoreConfig.cycles`.", "",
          "| preset | pipeline | LUT | FF | DSP | BRAM | Fmax MHz | spike cycles | tick cycles |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        mark = " (default)" if r["default"] else ""
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "—"
        md.append(f"| {r['preset']} | {r['pipeline']}{mark} | {r['lut']} | {r['ff']} | {r['dsp']} | {r['bram']} | "
                  f"{fmax} | {r['spike_cycles']} | {r['tick_cycles']} |")
    (out / "snn_fmax.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
