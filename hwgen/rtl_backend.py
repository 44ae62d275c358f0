"""The `rtl` backend: engine operations run on the generated Verilog in the simulator, in bulk.

Each call turns the whole batch into stream beats and runs them through the unit in one simulator process
(`rtl_tests/bulk.py`: no Python on any clock edge), then returns the unit's outputs and the simulated cycles.
Same interface as `sw_model.network.GoldenBackend`."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


class RtlBackend:
    name = "rtl"

    def __init__(self, sim: str = "verilator", gap: float = 0.0, backpressure: float = 0.0):
        if str(ROOT / "rtl_tests") not in sys.path:
            sys.path.insert(0, str(ROOT / "rtl_tests"))
        from harness import check_simulator
        check_simulator(sim)
        self.sim, self.gap, self.backpressure = sim, gap, backpressure

    def dot(self, config, x_codes: np.ndarray, w_codes: np.ndarray) -> tuple[np.ndarray, dict]:
        """(N, K) x (J, K) -> (N, J) accumulator codes from the LMulDot RTL; one vector per (n, j)."""
        from bulk import run_bulk

        from sw_model.network import dot_beats
        n, j = len(x_codes), len(w_codes)
        beats = dot_beats(config, x_codes, w_codes)
        res = run_bulk(config, beats, n * j, gap=self.gap, backpressure=self.backpressure, sim=self.sim)
        acc = res["outputs"]["sum"].astype(np.int64).reshape(n, j)
        return acc, {"cycles": res["cycles"], "beats": len(beats["last"]), "sim_seconds": res["sim_seconds"]}

    def gemm(self, config, w_q: np.ndarray, x_q: np.ndarray) -> tuple[np.ndarray, dict]:
        """(R, K) x (K, B) int8 -> (R, B) accumulators from the sparse-chain RTL in dense mode."""
        from bulk import run_bulk

        from sw_model.sparse import pack_gemm, unpack_gemm
        beats = pack_gemm(w_q, x_q, "dense", config.stages, config.x_width, weight_bits=config.weight_bits)
        n_out = w_q.shape[0] * x_q.shape[1]
        res = run_bulk(config, beats, n_out, gap=self.gap, backpressure=self.backpressure, sim=self.sim)
        acc = unpack_gemm(res["outputs"], w_q.shape[0], x_q.shape[1])
        # the chain's accumulator is an unsigned code of acc_bits: read it as two's complement
        acc = np.asarray(acc, np.int64)
        acc = np.where(acc >= 1 << (config.acc_bits - 1), acc - (1 << config.acc_bits), acc)
        return acc, {"cycles": res["cycles"], "beats": len(beats["mode"]), "sim_seconds": res["sim_seconds"]}

    def attention(self, config, q, k, v) -> tuple[np.ndarray, dict]:
        """Attention heads on the attention-array RTL in ONE simulator run: q (H, P, E), k/v (H, N, E) integers
        (or a single head, 2-D) -> (H, P, E) signed outputs (`out_frac` fractional bits). The heads' stream
        beats (sw_model.attention.stream_beats) go back to back; stats add per-head cycles (from the handshake
        cycle of each head's last output row), beats per head and the beats' handshake cycles."""
        from bulk import run_bulk

        from sw_model.attention import stream_beats
        from sw_model.attention_timing import cycle_model
        single = np.ndim(q) == 2
        q, k, v = (np.asarray(a)[None] if single else np.asarray(a) for a in (q, k, v))
        if not len(q) == len(k) == len(v) or len(q) == 0:
            raise ValueError(f"attention: got {len(q)}, {len(k)}, {len(v)} heads of q, k, v; allowed: the same "
                             "number (>= 1) of each")
        parts = [stream_beats(config, *head) for head in zip(q, k, v)]
        beats = {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}
        rows, n_in = q.shape[1], len(beats["kind"])
        tiles = [(min(config.p0, rows - q0), k.shape[1]) for q0 in range(0, rows, config.p0)] * len(q)
        budget = 2 * cycle_model(config, tiles)["out_cycles"][-1] + 1000     # a slow array on long heads
        budget = int(budget / max(1e-3, 1 - max(self.gap, self.backpressure)))
        res = run_bulk(config, beats, len(q) * rows, gap=self.gap, backpressure=self.backpressure, sim=self.sim,
                       timeout_cycles=budget)
        out = np.asarray(res["outputs"]["out"]).astype(np.int64)
        out = np.where(out >= 1 << (config.out_width - 1), out - (1 << config.out_width), out)
        ends = [int(res["out_cycles"][(h + 1) * rows - 1]) + 1 for h in range(len(q))]
        stats = {"cycles": res["cycles"], "beats": n_in, "sim_seconds": res["sim_seconds"],
                 "head_cycles": list(np.diff([0] + ends).tolist()), "head_beats": [len(p["kind"]) for p in parts],
                 "in_cycles": res["in_cycles"][:n_in], "out_cycles": res["out_cycles"]}
        out = out.reshape(len(q), rows, config.head_dim)
        return (out[0] if single else out), stats
