"""The `rtl` backend: engine operations run on the generated Verilog in the simulator, in bulk.

Each call turns the whole batch into stream beats and runs them through the unit in one simulator process
(`hwgen/sim/bulk.py`: no Python on any clock edge), then returns the unit's outputs and the simulated cycles.
Same interface as `sw_model.host.network.GoldenBackend`."""
from __future__ import annotations

import numpy as np

from hwgen.sim.bulk import run_bulk
from hwgen.sim.harness import check_simulator
from sw_model.attention.golden import stream_beats
from sw_model.attention.timing import cycle_model
from sw_model.host.network import dot_beats
from sw_model.snn import golden as snn
from sw_model.sparse.golden import pack_gemm, unpack_gemm


class RtlBackend:
    name = "rtl"

    def __init__(self, sim: str = "verilator", gap: float = 0.0, backpressure: float = 0.0):
        check_simulator(sim)
        self.sim, self.gap, self.backpressure = sim, gap, backpressure

    def dot(self, config, x_codes: np.ndarray, w_codes: np.ndarray) -> tuple[np.ndarray, dict]:
        """(N, K) x (J, K) -> (N, J) accumulator codes from the LMulDot RTL; one vector per (n, j)."""

        n, j = len(x_codes), len(w_codes)
        beats = dot_beats(config, x_codes, w_codes)
        res = run_bulk(config, beats, n * j, gap=self.gap, backpressure=self.backpressure, sim=self.sim)
        acc = res["outputs"]["sum"].astype(np.int64).reshape(n, j)
        return acc, {"cycles": res["cycles"], "beats": len(beats["last"]), "sim_seconds": res["sim_seconds"]}

    def gemm(self, config, w_q: np.ndarray, x_q: np.ndarray) -> tuple[np.ndarray, dict]:
        """(R, K) x (K, B) int8 -> (R, B) accumulators from the sparse-chain RTL in dense mode."""

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
        beats (sw_model.attention.golden.stream_beats) go back to back; stats add per-head cycles (from the handshake
        cycle of each head's last output row), beats per head and the beats' handshake cycles."""

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


class SpikingRtlBackend:
    """The SNNCore RTL (generated for each layer's derived config) in one bulk Verilator run per call: weight
    WRITE beats, then per sample a CLEAR and its spike/TICK beats (`snn.batch_beats`), as hwgen/host/run_snn.py;
    the number of output beats to wait for comes from the beat-level model `snn.stream_model`, whose input
    costs are also the cycle model (`model_cycles`)."""
    name = "rtl"

    def __init__(self, sim: str = "verilator", gap: float = 0.0, backpressure: float = 0.0, seed: int = 1):
        check_simulator(sim)
        self.sim, self.gap, self.backpressure, self.seed = sim, gap, backpressure, seed

    def spiking(self, cfg, weights, spikes):
        spikes = np.asarray(spikes, np.uint8)
        inp = snn.concat(snn.weight_beats(cfg, weights), snn.batch_beats(cfg, spikes))
        expected, cost, _ = snn.stream_model(cfg, inp)
        res = run_bulk(cfg, inp, len(expected["kind"]), gap=self.gap, backpressure=self.backpressure,
                       seed=self.seed, sim=self.sim)
        got = {k: np.asarray(v) for k, v in res["outputs"].items()}
        if len(got["kind"]) != len(expected["kind"]):
            raise RuntimeError(f"spiking core RTL: {len(got['kind'])} output beats, the model expects "
                               f"{len(expected['kind'])}")
        out = snn.batch_spikes(cfg, got, len(spikes), spikes.shape[1])
        return out, {"cycles": res["cycles"], "sim_seconds": res["sim_seconds"], "beats": len(inp["op"]),
                     "model_cycles": int(cost.sum())}
