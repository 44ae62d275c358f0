"""Simulation speed: the same stream job through the cocotb bench (Python on every clock edge) and through the
bulk testbench (everything inside the simulator), Verilator and Icarus, measured in one run.

    python benchmarks/sim_speed.py [--beats N] [--out docs/results]

Builds are warmed first, so the numbers are simulation time only. Writes sim_speed.json and sim_speed.md."""
import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from hwgen.sim.bulk import run_bulk  # noqa: E402
from hwgen.sim.harness import build, design, run_vectors  # noqa: E402
from sw_model.lmul import golden  # noqa: E402
from sw_model.lmul.config import LMulConfig, LMulDotConfig  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--beats", type=int, default=65536, help="input beats per job (default: all E4M3 pairs)")
    p.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    jobs = []
    cfg = LMulConfig(fmt="e4m3", pipeline=1)
    a, b = rng.integers(0, 256, (2, args.beats))
    jobs.append(("LMul E4M3", cfg, {"a": a, "b": b}, {"p": golden.lmul(a, b, cfg.format)}, args.beats))
    dot = LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=16, pipeline=2)
    n = max(1, args.beats // 16)
    da, db = rng.integers(0, 256, (2, n, 1, 16))
    jobs.append(("LMulDot E4M3 x16", dot, {"a": da.reshape(n, 16), "b": db.reshape(n, 16), "last": np.ones(n)},
                 {"sum": golden.lmul_dot(da, db, dot.format, dot.acc_format)}, n))
    rows = []
    for label, config, inputs, expected, n_out in jobs:
        verilog, manifest = design(config)
        build(verilog, manifest["top"])                                   # warm the cocotb build
        for sim in ("verilator", "icarus"):                               # warm the bulk builds (same depth)
            run_bulk(config, inputs, n_out, sim=sim)
        for flow in ("cocotb + Verilator", "bulk Verilator", "bulk Icarus"):
            t0 = time.time()
            if flow.startswith("cocotb"):
                res = run_vectors(config, inputs, expected, gap=0.2, backpressure=0.2, seed=1)
                cycles, ok = res["out_cycles"][-1] + 1, not res["mismatches"]
            else:
                res = run_bulk(config, inputs, n_out, gap=0.2, backpressure=0.2, seed=1,
                               sim="verilator" if "Verilator" in flow else "icarus")
                field = next(iter(expected))
                cycles, ok = res["cycles"], bool(np.array_equal(res["outputs"][field], expected[field]))
            wall = time.time() - t0
            rows.append({"unit": label, "flow": flow, "beats": len(next(iter(inputs.values()))), "cycles": cycles,
                         "wall_s": round(wall, 3), "cycles_per_s": round(cycles / wall), "bit_exact": ok})
            print(f"{label:18s} {flow:20s} {cycles:8d} cycles {wall:7.2f} s {cycles / wall:10.0f} cycles/s "
                  f"{'ok' if ok else 'MISMATCH'}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (out / "sim_speed.json").write_text(json.dumps({"date": stamp, "rows": rows}, indent=2) + "\n")
    lines = ["# Simulation speed: cocotb bench vs bulk testbench", "",
             f"Generated {stamp} by `python benchmarks/sim_speed.py --beats {args.beats}` (2-core machine, shared; "
             "20 % random gaps and backpressure; wall time includes process start and file I/O, not builds).", "",
             "| unit | flow | beats | cycles | wall s | cycles/s | speed-up vs cocotb | bit-exact |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        base = next(x for x in rows if x["unit"] == r["unit"] and x["flow"].startswith("cocotb"))
        lines.append(f"| {r['unit']} | {r['flow']} | {r['beats']} | {r['cycles']} | {r['wall_s']} | "
                     f"{r['cycles_per_s']} | {r['cycles_per_s'] / base['cycles_per_s']:.1f}x | {r['bit_exact']} |")
    (out / "sim_speed.md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
