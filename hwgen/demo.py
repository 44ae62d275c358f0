"""`hwgen demo`: the README's main job on the embedded default configuration.

Generates the default accelerator system (`system-default`: an L-Mul dot-product engine and a sparse DSP chain
behind one host port), lints it, runs the digits MLP with every layer on the system's simulated RTL for the first
`rtl_samples` test images and on the golden model for the rest (then the int8 MLP on the sparse-chain engine of
the same system), checks every RTL result bit for bit against the golden model, and reports the error of L-Mul
against exact multiplication over all E4M3 pairs."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from hwgen.flow.generate import write_design
from hwgen.flow.lint import lint
from hwgen.host.run_network import run_network
from hwgen.host.runs import print_summary
from sw_model.lmul import golden
from sw_model.numerics.formats import decode
from sw_model.registry import PRESETS

SYSTEM = "system-default"


def _step(text):
    print(f"[demo] {text}", flush=True)


def run_demo(out_dir: Path, sim: str = "verilator", rtl_samples: int = 96) -> int:
    t0 = time.time()
    summary = {"simulator": sim, "system": SYSTEM, "steps": []}
    v_path, j_path = write_design(SYSTEM, out_dir)
    problems = lint(v_path)
    manifest = json.loads(j_path.read_text())["system"]
    _step(f"generated {v_path} + {j_path.name} ({time.time() - t0:.1f} s); lint: {'clean' if not problems else problems}")
    for e in manifest["engines"]:
        _step(f"  engine {e['index']}: {e['preset']} ({e['in_words']} host words per input beat, scratchpads "
              f"{manifest['spad_depth']} x {e['in_width']} / {e['out_width']} bits)")
    if problems:
        return 1
    for network in ("digits-mlp", "digits-mlp-int8"):
        _step(f"running {network}: the first {rtl_samples} test images on the {SYSTEM} RTL ({sim}), the rest on "
              "the golden model ...")
        net = run_network(network, backend="rtl", sim=sim, out=out_dir, system=SYSTEM, rtl_samples=rtl_samples)
        print_summary(net)
        summary["steps"].append({k: net[k] for k in ("network", "config", "samples", "samples_on_device",
                                                     "accuracy", "float_accuracy", "mismatches", "cycles_per_inference",
                                                     "engine_utilization", "simulated_cycles_per_s", "wall_s")})

    cfg = PRESETS["lmul-e4m3"]
    a, b = (x.ravel() for x in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    want = golden.lmul(a, b, cfg.format, cfg.mode, cfg.overflow)
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
    summary["wall_s"] = round(time.time() - t0, 1)
    ok = all(s["mismatches"] == 0 for s in summary["steps"])
    (out_dir / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    _step(f"{'PASS' if ok else 'FAIL'}: RTL bit-exact with the golden model; {summary['wall_s']} s; summary in "
          f"{out_dir / 'demo.json'}")
    return 0 if ok else 1
