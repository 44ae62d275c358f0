"""`hwgen demo`: the README's main job on the embedded default configuration.

Generates the default L-Mul designs, runs them in the simulator against the golden model (all E4M3 pairs, 16-lane
dot products), reports the error of L-Mul against exact multiplication, and runs the digits MLP with every layer
on the LMulDot RTL, bit-exact with the golden backend."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from sw_model import lmul as golden
from sw_model.configs import PRESETS
from sw_model.formats import decode, encode

from .generate import write_design
from .lint import lint

ROOT = Path(__file__).resolve().parent.parent


def _step(text):
    print(f"[demo] {text}", flush=True)


def run_demo(out_dir: Path, sim: str = "verilator") -> int:
    sys.path.insert(0, str(ROOT / "rtl_tests"))
    from harness import run_vectors

    summary = {"simulator": sim, "steps": []}
    for preset in ("lmul-e4m3", "lmuldot-e4m3x16"):
        v_path, j_path = write_design(preset, out_dir)
        problems = lint(v_path)
        _step(f"generated {v_path} + {j_path.name}; lint: {'clean' if not problems else problems}")
        if problems:
            return 1

    cfg = PRESETS["lmul-e4m3"]
    a, b = (x.ravel() for x in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    want = golden.lmul(a, b, cfg.format, cfg.mode, cfg.overflow)
    _step(f"simulating all 65,536 E4M3 operand pairs on the L-Mul RTL ({sim}, random gaps and backpressure) ...")
    t0 = time.time()
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, sim=sim, gap=0.2, backpressure=0.2, seed=1)
    wall = time.time() - t0
    cycles = res["out_cycles"][-1] + 1
    _step(f"  {res['n_out']} results, mismatches vs golden: {len(res['mismatches'])}, {cycles} cycles, "
          f"{wall:.1f} s wall (incl. build)")
    summary["steps"].append({"unit": "lmul-e4m3", "beats": res["n_out"], "mismatches": len(res["mismatches"]),
                             "cycles": cycles, "wall_s": round(wall, 2)})

    dot = PRESETS["lmuldot-e4m3x16"]
    rng = np.random.default_rng(0)
    n_vec, beats = 400, 4
    x = encode(rng.normal(0, 1, (n_vec, beats, dot.lanes)), dot.format, overflow="saturate").astype(np.int64)
    w = encode(rng.normal(0, 0.5, (n_vec, beats, dot.lanes)), dot.format, overflow="saturate").astype(np.int64)
    want_dot = golden.lmul_dot(x, w, dot.format, dot.acc_format)
    last = np.tile([0] * (beats - 1) + [1], n_vec)
    _step(f"simulating {n_vec} dot products of length {beats * dot.lanes} on the 16-lane LMulDot RTL ...")
    t0 = time.time()
    res = run_vectors(dot, {"a": x.reshape(-1, dot.lanes), "b": w.reshape(-1, dot.lanes), "last": last},
                      {"sum": want_dot}, sim=sim, gap=0.2, backpressure=0.2, seed=2)
    wall = time.time() - t0
    exact = (decode(x, dot.format) * decode(w, dot.format)).sum(axis=(1, 2))
    got = decode(want_dot, dot.acc_format)
    rel = np.abs(got - exact) / np.maximum(np.abs(exact).mean(), 1e-30)
    _step(f"  {res['n_out']} results, mismatches vs golden: {len(res['mismatches'])}, {wall:.1f} s wall; "
          f"L-Mul dot error vs exact dot of the same operands: mean {rel.mean():.4f} (relative to mean |dot|)")
    summary["steps"].append({"unit": "lmuldot-e4m3x16", "dots": res["n_out"], "mismatches": len(res["mismatches"]),
                             "wall_s": round(wall, 2), "mean_rel_error_vs_exact": float(rel.mean())})

    fmt = cfg.format
    normal = (a & 0x7F) >= 8
    normal &= (b & 0x7F) >= 8
    normal &= ~np.isin(a & 0x7F, [0x7F]) & ~np.isin(b & 0x7F, [0x7F])
    exact_p = decode(a[normal], fmt) * decode(b[normal], fmt)
    table = {}
    for label, codes in (("L-Mul E4M3 (adder)", want[normal]),
                         ("L-Mul E4M3 (formula)", golden.lmul(a[normal], b[normal], fmt, "formula")),
                         ("exact E4M3 multiply (RNE)", golden.fmul(a[normal], b[normal], fmt))):
        v = decode(codes, fmt)
        keep = (exact_p != 0) & (np.abs(exact_p) <= fmt.max_finite) & (np.abs(exact_p) >= fmt.min_normal)
        table[label] = float(np.mean(np.abs(v[keep] - exact_p[keep]) / np.abs(exact_p[keep])))
    _step("mean relative error against the exact product, all normal E4M3 pairs whose product is in range:")
    for label, mre in table.items():
        _step(f"  {label:28s} {mre:.4f}")
    summary["error_table"] = table
    from .run_network import print_summary, run_network
    _step("running the digits MLP (64-32-10, all 360 test images) with every layer on the LMulDot RTL ...")
    net = run_network("digits-mlp", backend="rtl", sim=sim, out=out_dir)
    print_summary(net)
    summary["steps"].append({"unit": "digits-mlp on lmuldot-e4m3x16", "mismatches": net["mismatches"],
                             "accuracy": net["accuracy"], "float_accuracy": net["float_accuracy"],
                             "cycles_per_inference": net["cycles_per_inference"], "wall_s": net["wall_s"]})
    ok = all(s["mismatches"] == 0 for s in summary["steps"])
    (out_dir / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    _step(f"{'PASS' if ok else 'FAIL'}: RTL bit-exact with the golden model; summary in {out_dir / 'demo.json'}")
    return 0 if ok else 1
