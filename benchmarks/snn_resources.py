"""Resources and Fmax of spiking cores (Yosys stat + nextpnr) -> docs/results/snn_resources.{json,md}.

Run: `python benchmarks/snn_resources.py` (about 5-10 minutes on 2 cores with warm YoWASP caches).
Every unit port sits on a registered pin (hwgen.flow.report.registered_harness): the iCE40 UP5K SG48 has only 39 I/O,
so it gets a 1-lane core with 4-bit weights; the bigger cores are reported on ECP5-25F and xc7 (synthesis only).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from hwgen.flow.report import format_report, synthesize  # noqa: E402
from hwgen.snn.core import SNNCore  # noqa: E402
from hwgen.snn.sdsa import SDSA  # noqa: E402
from sw_model.registry import PRESETS  # noqa: E402
from sw_model.snn.config import SNNCoreConfig  # noqa: E402

DIGITS_L1 = SNNCoreConfig(neurons=32, lanes=8, axons=65, weight_bits=8, state_bits=16, threshold=523, addr_bits=7)
TINY = SNNCoreConfig(neurons=16, lanes=1, axons=16, weight_bits=4, state_bits=8, threshold=40, leak="shift",
                     leak_shift=3, refractory=1, addr_bits=4, time_bits=4)

JOBS = [
    ("snn-core-64x8", PRESETS["snn-core-64x8"], ("ecp5", "xc7")),
    ("snn-core-256", PRESETS["snn-core-256"], ("ecp5", "xc7")),
    ("snn-core-lif-16x4", PRESETS["snn-core-lif-16x4"], ("ecp5", "xc7")),
    ("digits-layer1-65x32x8", DIGITS_L1, ("ecp5", "xc7")),
    ("snn-tiny-16x1", TINY, ("ice40", "ecp5")),
    ("snn-core-cuba-32x4", PRESETS["snn-core-cuba-32x4"], ("ecp5", "xc7")),
    ("sdsa-8x16", PRESETS["sdsa-8x16"], ("ecp5", "xc7")),
    ("sdsa-16x32", PRESETS["sdsa-16x32"], ("ecp5", "xc7")),
]
MUL_CELLS = ("MUL", "DSP", "MAC")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--out", default=str(ROOT / "docs" / "results"))
    args = ap.parse_args(argv)
    results = []
    for name, cfg, targets in JOBS:
        for target in targets:
            unit = SDSA(cfg) if cfg.unit == "sdsa" else SNNCore(cfg)
            r = synthesize(unit, target, name=name, dsp=True)
            r = {k: v for k, v in r.items() if k not in ("utilization", "workdir")}
            r["config"] = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
            r["multiplier_cells"] = sum(n for c, n in r["cells"].items() if any(x in c.upper() for x in MUL_CELLS))
            results.append(r)
            print(name, target, r["lut"], r["ff"], r["bram"], r["dsp"], r.get("fmax_mhz"), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "snn_resources.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    md = ["# Spiking core resources", "",
          "Measured with `python benchmarks/snn_resources.py` (Yosys `synth_<family>` + `stat`, nextpnr for Fmax; "
          "every port registered by `hwgen.flow.report.registered_harness`). Weight and state memories map to block "
          "RAM (BRAM column) where Yosys infers it.", "",
          "| name | model | neurons | lanes | axons | w bits | v bits |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, cfg, _ in JOBS:
        if cfg.unit == "snn_core":
            md.append(f"| {name} | {cfg.model} | {cfg.neurons} | {cfg.lanes} | {cfg.axons} | {cfg.weight_bits} | "
                      f"{cfg.state_bits} |")
    md += ["", "SDSA heads: sdsa-8x16 = dim 8, up to 16 K/V tokens (5-bit counters); sdsa-16x32 = dim 16, 32 tokens "
           "(6-bit counters); spike iff S >= 8.", "", format_report(results), "",
           "Multiplier/DSP cells (any cell type containing MUL, DSP or MAC), synthesized with DSP inference on:", ""]
    md += [f"- {r['name']} on {r['target']}: {r['multiplier_cells']}" for r in results]
    md.append("")
    (out / "snn_resources.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
