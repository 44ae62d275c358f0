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
        n, k = x_codes.shape
        j = w_codes.shape[0]
        beats = k // config.lanes
        a = np.broadcast_to(x_codes[:, None, :], (n, j, k)).reshape(-1, config.lanes)
        b = np.broadcast_to(w_codes[None, :, :], (n, j, k)).reshape(-1, config.lanes)
        last = np.tile(np.arange(beats) == beats - 1, n * j).astype(np.int64)
        res = run_bulk(config, {"a": a, "b": b, "last": last}, n * j, gap=self.gap,
                       backpressure=self.backpressure, sim=self.sim)
        acc = res["outputs"]["sum"].astype(np.int64).reshape(n, j)
        return acc, {"cycles": res["cycles"], "beats": len(a), "sim_seconds": res["sim_seconds"]}

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
