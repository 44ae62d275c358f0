"""FPGA resources (and ECP5 Fmax where the ports fit the package) of attention-array configs.

Each design sits in `hwgen.flow.report.registered_harness` (every port registered and on a pin). The ECP5 LFE5U-25F
CABGA256 has ~197 user pins: the small config (2x2, head_dim 4, 4-bit data, ~80 pins) is placed and routed for
Fmax (also with every multiplication an L-Mul, `mult = "lmul"`); the 4x4-d8 preset needs ~280 pins, so it is
synthesized only (no Fmax) on ECP5; xc7 is synthesis only in this toolchain. DSP inference on (MULT18X18D / DSP48E1). The FF count is the whole state of the design; it
is the same for every runtime sequence length (the length is not a parameter of the design).

Writes `<out>/attention_resources.json` and `<out>/attention_resources.md`.

    python benchmarks/attention_resources.py [--out docs/results] [--targets ecp5,xc7]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from hwgen.attention.array import AttentionArray  # noqa: E402
from hwgen.flow.report import format_report, synthesize  # noqa: E402
from sw_model.attention.config import AttentionConfig  # noqa: E402
from sw_model.config import config_to_dict
from sw_model.registry import PRESETS

DESIGNS = [
    ("attention-2x2-d4-b4", AttentionConfig(head_dim=4, m0=2, p0=2, data_bits=4, logit_frac=3, exp_bits=10,
                                            out_frac=4, max_keys_log2=10), True),
    ("attention-2x2-d4-b4-lmul", AttentionConfig(head_dim=4, m0=2, p0=2, data_bits=4, logit_frac=3, exp_bits=10,
                                                 out_frac=4, max_keys_log2=10, mult="lmul", lmul_man=7), True),
    ("attention-4x4-d8", PRESETS["attention-4x4-d8"], False),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--targets", default="ecp5,xc7")
    args = ap.parse_args(argv)
    results = []
    for name, cfg, fits_ecp5 in DESIGNS:
        for target in args.targets.split(","):
            r = synthesize(AttentionArray(cfg), target, name=name, pnr=(target == "ecp5" and fits_ecp5))
            r["config"] = config_to_dict(cfg)
            results.append(r)
            print(name, target, {k: r.get(k) for k in ("lut", "ff", "carry", "dsp", "bram", "fmax_mhz")},
                  flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keep = ("name", "target", "part", "lut", "ff", "carry", "dsp", "bram", "lutram", "fmax_mhz", "config",
            "yosys_version", "nextpnr_version", "notes", "seconds")
    (out / "attention_resources.json").write_text(
        json.dumps([{k: r.get(k) for k in keep} for r in results], indent=2, default=str) + "\n")
    text = ["# Attention array: FPGA resources", "",
            "Registered harness around each design (`hwgen.flow.report.synthesize`, DSP inference on). Fmax: nextpnr "
            "ECP5 LFE5U-25F speed 6 for the small config only (the preset's ~280 ports exceed the package's pins); "
            "xc7 (xc7a35t) is synthesis only.", "",
            format_report(results),
            "Configs: " + "; ".join(f"`{n}` = {config_to_dict(c)}" for n, c, _ in DESIGNS), "",
            "Command: `python benchmarks/attention_resources.py`", ""]
    (out / "attention_resources.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
