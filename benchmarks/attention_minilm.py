"""One real attention head through the RTL: all-MiniLM-L6-v2, layer 0, head 0, a 14-token sentence.

Q, K, V come from the model's real weights (sw_model.networks.minilm_qkv, float64); `quantize_head` turns them into
int8 (softmax scale 1/sqrt(32) and log2(e) folded into Q's scale); the preset attention-8x8-d32 (score_shift 8)
runs them on Verilator with random gaps and backpressure (two query tiles: 8 + 6 rows; key tiles 8 + 6). The
RTL output must equal the golden model bit for bit; the script reports the error of the (identical) result
against (a) float64 attention on the same integers and (b) float64 attention on the real, unquantized Q, K, V.
The golden model alone is also run on all 12 heads of layer 0 for the error spread. The same head runs on the
L-Mul preset attention-8x8-d32-lmul (RTL, bit-exact check), and the errors of exact, `lmul` and `lmul-products`
multiplications are compared on all 12 heads.

    python benchmarks/attention_minilm.py [--out docs/results] [--sim verilator|icarus]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from sw_model.attention import golden as A  # noqa: E402
from sw_model.attention.config import AttentionConfig  # noqa: E402
from sw_model.networks.minilm_qkv import SENTENCE, head_qkv  # noqa: E402
from sw_model.registry import PRESETS  # noqa: E402

PRESET = "attention-8x8-d32"


def float_attention(q, k, v):
    s = q @ k.T / math.sqrt(q.shape[1])
    w = np.exp(s - s.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ v


def errors(cfg, head: int) -> dict:
    q, k, v, ids = head_qkv(head=head)
    z = A.quantize_head(cfg, q, k, v)
    out = A.attention(cfg, z["q"], z["k"], z["v"])
    ref_real = float_attention(q, k, v)
    ref_int = A.attention_reference(cfg, z["q"], z["k"], z["v"])
    return {"head": head, "tokens": len(ids), "q_clipped": z["q_clipped"],
            "max_abs_err_vs_float64_real": float(np.abs(out / z["out_scale"] - ref_real).max()),
            "max_abs_output_real": float(np.abs(ref_real).max()),
            "max_err_lsb_vs_float64_same_ints": float(np.abs(out - ref_int).max()),
            "_z": z, "_out": out}


PRESET_LMUL = "attention-8x8-d32-lmul"
PRODUCTS = "lmul-products"        # same preset with mult = "lmul-products" (golden model only)


def rtl_head0(cfg, sim: str) -> dict:
    """Head 0 through the RTL with gaps and backpressure; bit-exact with the golden model?"""
    from hwgen.sim.harness import run_vectors
    h0 = errors(cfg, 0)
    z, want = h0["_z"], h0["_out"]
    res = run_vectors(cfg, A.stream_beats(cfg, z["q"], z["k"], z["v"]), {"out": want & ((1 << cfg.out_width) - 1)},
                      timeout_cycles=20000, gap=0.3, backpressure=0.3, seed=11, sim=sim)
    return {"bit_exact": not res["mismatches"] and len(res["out_cycles"]) == len(want),
            "output_rows": len(res["out_cycles"]), "sim": sim}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    args = ap.parse_args(argv)
    cfg = PRESETS[PRESET]
    cfg_lmul = PRESETS[PRESET_LMUL]
    cfg_prod = AttentionConfig(**{**cfg_lmul.__dict__, "mult": PRODUCTS})
    heads = [errors(cfg, h) for h in range(12)]
    heads_lmul = [errors(cfg_lmul, h) for h in range(12)]
    heads_prod = [errors(cfg_prod, h) for h in range(12)]
    rtl = rtl_head0(cfg, args.sim)
    rtl_lmul = rtl_head0(cfg_lmul, args.sim)
    rtl_exact = rtl["bit_exact"]
    rows = [{k: v for k, v in h.items() if not k.startswith("_")} for h in heads]
    lmul_rows = [{"head": a["head"], "max_abs_err_exact": a["max_abs_err_vs_float64_real"],
                  "max_abs_err_lmul": b["max_abs_err_vs_float64_real"],
                  "max_abs_err_lmul_products": c["max_abs_err_vs_float64_real"],
                  "max_abs_output_real": a["max_abs_output_real"],
                  "max_lsb_lmul_vs_exact_golden": float(np.abs(b["_out"] - a["_out"]).max())}
                 for a, b, c in zip(heads, heads_lmul, heads_prod)]
    result = {"preset": PRESET, "config": cfg.__dict__, "sentence": SENTENCE, "layer": 0, "rtl_head": 0,
              "rtl_bit_exact": rtl_exact, "rtl_output_rows": rtl["output_rows"], "rtl_sim": args.sim, "heads": rows,
              "lmul": {"preset": PRESET_LMUL, "config": cfg_lmul.__dict__, "rtl_head0": rtl_lmul, "heads": lmul_rows},
              "command": "python benchmarks/attention_minilm.py" + (f" --sim {args.sim}" if args.sim != "verilator"
                                                                     else "")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "attention_minilm.json").write_text(json.dumps(result, indent=2) + "\n")
    yes = {True: "yes", False: "NO"}
    lines = ["# Attention array: one real MiniLM head on RTL", "",
             f"all-MiniLM-L6-v2, layer 0, sentence \"{SENTENCE}\" ({rows[0]['tokens']} tokens), preset `{PRESET}`, "
             "Q/K/V quantized to int8 per tensor (`quantize_head`).", "",
             f"- Head 0 on RTL ({args.sim}, gaps 0.3, backpressure 0.3): {rtl['output_rows']} output rows, "
             f"bit-exact with the golden model: **{yes[rtl_exact]}**.",
             f"- Head 0 on the L-Mul RTL (`{PRESET_LMUL}`: every multiplication of the cascade an L-Mul with 7 "
             f"mantissa bits), same stream: {rtl_lmul['output_rows']} output rows, bit-exact with the L-Mul golden "
             f"model: **{yes[rtl_lmul['bit_exact']]}**.",
             "- Errors of the golden model (= RTL for head 0), all 12 heads of layer 0:", "",
             "| head | max abs error vs float64 attention on real Q/K/V | max abs output | max error vs float64 on "
             "the same integers (output LSB, 2^-8 of a V unit) | Q clipped |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['head']} | {r['max_abs_err_vs_float64_real']:.4f} | {r['max_abs_output_real']:.3f} | "
                     f"{r['max_err_lsb_vs_float64_same_ints']:.1f} | {r['q_clipped']} |")
    lines += ["", "The first error column includes int8 quantization of Q/K/V and the logit floor "
              "(score_shift 8, 4 fractional bits); the second isolates the array's arithmetic plus the logit floor.",
              "", "## Exact multipliers vs L-Mul", "",
              f"Same heads, same quantization; `lmul` = `{PRESET_LMUL}` (Q.K, prob x V and the corrections RD x PRM, "
              "RNV x PRM as fixed-point L-Muls, lmul_man 7), `lmul-products` = the same with exact corrections. "
              "Max abs error against float64 attention on the real Q/K/V (units of the real output):", "",
              "| head | exact | lmul | lmul-products | max abs output | lmul vs exact golden (output LSB) |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in lmul_rows:
        lines.append(f"| {r['head']} | {r['max_abs_err_exact']:.4f} | {r['max_abs_err_lmul']:.4f} | "
                     f"{r['max_abs_err_lmul_products']:.4f} | {r['max_abs_output_real']:.3f} | "
                     f"{r['max_lsb_lmul_vs_exact_golden']:.0f} |")
    worst = {k: max(r[k] for r in lmul_rows) for k in ("max_abs_err_exact", "max_abs_err_lmul",
                                                       "max_abs_err_lmul_products")}
    lines += ["", f"Worst head: exact {worst['max_abs_err_exact']:.4f}, lmul {worst['max_abs_err_lmul']:.4f}, "
              f"lmul-products {worst['max_abs_err_lmul_products']:.4f}.", "",
              f"Command: `{result['command']}`", ""]
    (out / "attention_minilm.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if rtl_exact and rtl_lmul["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
