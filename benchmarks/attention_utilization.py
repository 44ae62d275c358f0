"""2D-array utilization of the one-pass attention array, measured on RTL, next to an unfused three-pass schedule.

For each sequence length N (64 ... 1024, plus 4096 to show the same design runs at any length), one query tile
of P0 rows streams against N random K/V rows through the Verilator model of the preset (default
attention-8x8-d32), with no gaps and no backpressure. The bench checks the outputs bit for bit against the golden
model and the handshake cycles against the cycle model, then reports

    utilization = useful MACs / (M0 * P0 * cycles),  useful MACs = 2 * P0 * N * E (Q.K and prob.V),
    cycles = first input handshake .. last output handshake (inclusive),

next to the same ratio for `sw_model.attention.timing.unfused_cycles` (a model, not RTL) and the N x P0 score
buffer that schedule needs. The Verilog file (its SHA-256) is the same for every N: no buffer depends on N.

    python benchmarks/attention_utilization.py [--preset attention-8x8-d32] [--lengths 64,128,256,512,1024,4096]
        [--out docs/results]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from hwgen.sim.harness import design, run_vectors  # noqa: E402
from sw_model.attention import golden as A  # noqa: E402
from sw_model.attention.timing import cycle_model, unfused_cycles, useful_macs  # noqa: E402
from sw_model.registry import PRESETS  # noqa: E402


def measure(cfg, n_keys: int, seed: int, sim: str = "verilator") -> dict:
    rng = np.random.default_rng(seed)
    hi = 1 << (cfg.data_bits - 1)
    q, k, v = (rng.integers(-hi, hi, (n, cfg.head_dim)) for n in (cfg.p0, n_keys, n_keys))
    want = A.attention(cfg, q, k, v)
    tiles = [(cfg.p0, n_keys)]
    model = cycle_model(cfg, tiles)
    t0 = time.perf_counter()
    res = run_vectors(cfg, A.stream_beats(cfg, q, k, v), {"out": want & ((1 << cfg.out_width) - 1)},
                   timeout_cycles=model["out_cycles"][-1] + 200,
                      gap=0.0, backpressure=0.0, sim=sim)
    wall = time.perf_counter() - t0
    cycles = res["out_cycles"][-1] - res["in_cycles"][0] + 1
    macs = useful_macs(cfg, tiles)
    pes = cfg.m0 * cfg.p0
    unfused = unfused_cycles(cfg, cfg.p0, n_keys)
    return {"n_keys": n_keys, "cycles": cycles, "model_cycles": model["out_cycles"][-1] + 1,
            "matches_model": res["in_cycles"] == model["in_cycles"] and res["out_cycles"] == model["out_cycles"],
            "bit_exact": not res["mismatches"], "useful_macs": macs,
            "utilization": macs / (pes * cycles), "unfused_cycles": unfused["cycles"],
            "unfused_utilization": macs / (pes * unfused["cycles"]),
            "unfused_buffer_words": unfused["buffer_words"], "sim_seconds": round(wall, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="attention-8x8-d32")
    ap.add_argument("--lengths", default="64,128,256,512,1024,4096")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    args = ap.parse_args(argv)
    cfg = PRESETS[args.preset]
    verilog, manifest = design(cfg)
    digest = hashlib.sha256(verilog.read_bytes()).hexdigest()
    rows = []
    for n in (int(x) for x in args.lengths.split(",")):
        row = measure(cfg, n, seed=n, sim=args.sim)
        row["verilog_sha256"] = hashlib.sha256(design(cfg)[0].read_bytes()).hexdigest()
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"preset": args.preset, "config": manifest["config"], "verilog_sha256": digest,
              "same_design_for_all_lengths": all(r["verilog_sha256"] == digest for r in rows),
              "command": "python benchmarks/attention_utilization.py " + " ".join(argv or sys.argv[1:]),
              "rows": rows}
    (out / "attention_utilization.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Attention array: 2D-array utilization ({args.preset}, measured on RTL)", "",
             f"{cfg.m0} x {cfg.p0} PEs, head_dim {cfg.head_dim}, one query tile of {cfg.p0} rows, no gaps, no "
             "backpressure; " + {"verilator": "Verilator", "icarus": "Icarus"}[args.sim] +
             " + cocotb; outputs bit-exact with the golden model; cycles equal to the cycle model "
             "(`sw_model/attention/timing.py`). Unfused = the three-pass model of the same arrays "
             "(not RTL), which also needs an N x P0 score buffer.", "",
             "| N keys | cycles (RTL) | = model | bit-exact | utilization | unfused cycles (model) | unfused "
             "utilization | unfused buffer (words) |", "|---:|---:|:-:|:-:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n_keys']} | {r['cycles']} | {'yes' if r['matches_model'] else 'NO'} | "
                     f"{'yes' if r['bit_exact'] else 'NO'} | {100 * r['utilization']:.1f} % | {r['unfused_cycles']} | "
                     f"{100 * r['unfused_utilization']:.1f} % | {r['unfused_buffer_words']} |")
    lines += ["", f"Verilog SHA-256 `{digest[:16]}…` for every N (same design: "
              f"{'yes' if result['same_design_for_all_lengths'] else 'NO'}).", "",
              f"Command: `{result['command']}`", ""]
    (out / "attention_utilization.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
