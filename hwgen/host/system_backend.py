"""The driver's backends on the accelerator top: the same engine operations (`dot`, `gemm`) as command programs.

    golden  `sw_model.system.golden.GoldenSystem` executes the program (numpy scratchpads and engine models)
    rtl     the system's Verilog runs the whole program in one free-running simulation (`hwgen.sim.bulk`)
    board   the system behind the UART bridge; the host's bytes go over a simulated serial line
            (`hwgen.sim.uart_bulk`), paced as a real host must pace a link that buffers one beat
    link    the system behind the reliable bridge (protocol 2, `hwgen.system.link`) in Verilator, driven by the
            retrying host `sw_model.host.link.LinkHost` as the simulation runs (`hwgen.sim.link_sim`); `faults`
            injects bit errors, lost and doubled bytes and board resets on the simulated line

Every operation becomes: CLEAR, then per chunk that fits the scratchpads WRITE the engine's input beats, RUN,
READ the results, and finally COUNTERS and STATUS. All addresses, opcodes and widths come from the design's
manifest. A STATUS reply that reports dropped commands raises `CommandError`.
"""
from __future__ import annotations

import numpy as np

from hwgen.sim.bulk import run_bulk
from hwgen.sim.harness import check_simulator, design
from hwgen.sim.uart_bulk import run_uart
from hwgen.system.bridge import decode_replies as decode_messages
from hwgen.system.bridge import encode_beat, payload_bytes
from hwgen.system.top import System
from sw_model.attention.golden import stream_beats
from sw_model.config import config_hash
from sw_model.host.beats import pack_beats, unpack_beats
from sw_model.host.network import dot_beats
from sw_model.registry import PRESETS, load_config
from sw_model.snn import golden as snn
from sw_model.sparse.golden import pack_gemm, unpack_gemm
from sw_model.sparse.group import pack_nm_gemm, unpack_gemm_grouped
from sw_model.system.golden import (
    GoldenSystem,
    Program,
    ProgramError,
    _signed,
    decode_replies,
    program_cycles,
    status_error,
    vector_plan,
)

TARGETS = ("golden", "rtl", "board", "link")


class CommandError(RuntimeError):
    """The system's decoder dropped commands (its STATUS reply says how many and why)."""


class SystemBackend:
    """Runs engine operations on a system (`system`: preset, TOML or SystemConfig) through `target`
    golden|rtl|board.
    Same interface as `sw_model.host.network.GoldenBackend` / `hwgen.host.rtl_backend.RtlBackend`; the stats of each
    call: program cycles, engine busy cycles and input beats (from the hardware counters), simulation seconds."""

    def __init__(self, system="system-default", target: str = "rtl", sim: str = "verilator",
                 gap: float = 0.0, backpressure: float = 0.0, divisor: int = 4, faults: dict | None = None):
        if target not in TARGETS:
            raise ValueError(f"backend: got {target!r}, allowed: {', '.join(TARGETS)}")
        if isinstance(system, str):
            self.system_name, self.config = load_config(system)
        else:
            self.system_name, self.config = f"system-{config_hash(system)[:8]}", system
        if self.config.unit != "system":
            raise ValueError(f"--system: got {system!r} (unit {self.config.unit!r}), allowed: a system config "
                             f"({', '.join(n for n, c in PRESETS.items() if c.unit == 'system')})")
        self.name, self.sim, self.gap, self.backpressure, self.divisor = target, sim, gap, backpressure, divisor
        allowed = {"ber", "drop", "dup", "reset_at", "seed"}
        if faults is not None and (target != "link" or set(faults) - allowed):
            raise ValueError(f"faults: got {faults!r}, allowed: with the link backend only, a dict of "
                             f"{', '.join(sorted(allowed))}")
        self.faults = dict(faults or {})
        if target != "golden":
            check_simulator(sim)
        self._manifest = None

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            if self.name == "golden":            # no Verilog needed: the host side reads only the system map
                system = System(self.config)
                for part in (system, *system.engines):     # built for the memory map only, never elaborated
                    part._MustUse__silence = True
                self._manifest = {"name": self.system_name, "unit": "system", **system.manifest_extra()}
            else:
                self._manifest = design(self.config, self.system_name.replace("-", "_"))[1]
        return self._manifest

    def engine_index(self, config) -> int:
        for e, cfg in enumerate(self.config.engine_configs):
            if cfg == config:
                return e
        raise ValueError(f"engine: the system {self.system_name} has no engine with this {config.unit} config; "
                         f"it has {', '.join(self.config.engine_names)}")

    def execute(self, program: Program) -> tuple[list, dict]:
        """Run a whole program; returns the decoded replies and {cycles, sim_seconds}. Raises CommandError if a
        STATUS reply reports dropped commands."""
        if self.name == "golden":
            replies, stats = decode_replies(program, GoldenSystem(self.manifest).execute(program.words)), \
                {"cycles": None, "sim_seconds": 0.0}
        elif self.name == "rtl":
            res = run_bulk(self.config, program.words, program.reply_words(), gap=self.gap,
                           backpressure=self.backpressure, sim=self.sim, name=self.system_name.replace("-", "_"))
            replies, stats = decode_replies(program, res["outputs"]), {"cycles": res["cycles"],
                                                                       "sim_seconds": res["sim_seconds"]}
        elif self.name == "board":
            replies, stats = self._execute_board(program)
        else:
            replies, stats = self._execute_link(program)
        for reply, (kind, _, _) in zip(replies, program.replies):
            if kind == "status" and status_error(program.sys, reply):
                raise CommandError(f"{status_error(program.sys, reply)} ({self.name} backend)")
        return replies, stats

    def _execute_board(self, program: Program) -> tuple[list, dict]:

        n_bytes = payload_bytes(program.width)
        data, wait = bytearray(), []
        for word, before in zip(program.words, program.replies_before()):
            frame = encode_beat(word, n_bytes)
            data += frame
            wait += [before * (1 + n_bytes)] * len(frame)
        res = run_uart(self.config, bytes(data), wait, program.reply_words() * (1 + n_bytes),
                       divisor=self.divisor, sim=self.sim)
        messages = decode_messages(res["replies"], n_bytes)
        errors = [m for m in messages if m[0] != "O"]
        if errors:
            raise RuntimeError(f"board: the bridge answered {errors[0]} (see docs/boards.md for the codes)")
        return decode_replies(program, [v for _, v in messages]), {"cycles": res["cycles"],
                                                                   "sim_seconds": res["sim_seconds"]}

    def _execute_link(self, program: Program) -> tuple[list, dict]:
        import random
        import time

        from hwgen.sim.link_sim import VerilatorPort
        from sw_model.host import link

        f = self.faults
        rng = random.Random(f.get("seed", 1))
        lines = [link.LineFaults(f.get("ber", 0.0), f.get("drop", 0.0), f.get("dup", 0.0), random.Random(rng.random()))
                 for _ in range(2)]
        n_bytes = payload_bytes(program.width)
        t0, hosts = time.time(), []
        with VerilatorPort(self.config, *lines, divisor=self.divisor, reset_at=f.get("reset_at", ())) as port:
            def make_host():
                hosts.append(link.LinkHost(port, n_bytes, n_bytes, rng=rng))
                return hosts[-1]
            words, restarts = link.run_program(make_host, program.words, program.reply_words())
            cycles = port.cycles
        return decode_replies(program, words), {
            "cycles": cycles, "sim_seconds": time.time() - t0, "link_restarts": restarts,
            "link_retries": sum(h.stats["retries"] for h in hosts),
            "link_requests": sum(h.stats["requests"] for h in hosts)}

    def program(self, config, beats: dict, plan=None, payload: bool = True) -> tuple[Program, int]:
        """The command program that runs input beats (field arrays; vectors end at `last`) through the engine of
        `config`, double-buffered: chunks of up to half a scratchpad alternate between the two halves, so the
        WRITE of chunk k+1 and the READ of chunk k-1 overlap the RUN of chunk k (a RUN waits for the previous
        one, which makes the READ after it safe). CLEAR first; WAIT, the last READ and COUNTERS at the end.
        `plan`: (vector ends, outputs per vector) when the caller knows them (default: `vector_plan`).
        payload=False: zero payload words (the program's shape only, for the cycle model; `beats` needs `last`)."""
        e = self.engine_index(config)
        program = Program(self.manifest)
        half = program.depth // 2
        words = pack_beats(program.engine(e)["in_fields"], beats) if payload else [0] * len(beats["last"])
        ends, outs = plan or vector_plan(config, beats)
        chunks, chunk_start, start, n_out = [], 0, 0, 0        # (first beat, end beat, output beats)
        for end, out in zip(ends + [None], outs + [0]):
            if start > chunk_start and (end is None or end - chunk_start > half or n_out + out > half):
                chunks.append((chunk_start, start, n_out))
                chunk_start, n_out = start, 0
            if end is None:
                break
            if end - chunk_start > half or out > half:
                raise ProgramError(f"beats: a vector of {end - chunk_start} beats and {out} outputs, allowed: at "
                                   f"most half the scratchpad ({half}; use a system with a deeper spad_depth)")
            start, n_out = end, n_out + out
        marker = program.engine(e).get("run_marker")
        if marker:                  # such a RUN counts marker beats: one per input beat that makes one
            makes = np.asarray(beats[marker["in_field"]]) == marker["in_value"]
        program.clear()
        previous = None
        for k, (first, last, n_out) in enumerate(chunks):
            base = (k % 2) * half
            count2 = int(makes[first:last].sum()) if marker else n_out
            program.write(e, base, words[first:last]).run(e, base, last - first, base, count2)
            if previous:
                program.read(e, *previous)
            previous = (base, n_out)
        program.wait(e).read(e, *previous).counters(e).status()
        return program, e

    def run_engine(self, config, beats: dict, plan=None) -> tuple[dict, dict]:
        """Input beats through the system's engine for `config`; returns the output field arrays (unsigned
        codes; one beat per vector, or one per query for the attention array) and the stats."""
        program, e = self.program(config, beats, plan)
        replies, stats = self.execute(program)
        out_beats = [b for r in replies[:-2] for b in r]
        counters = replies[-2]
        stats.update(model_cycles=program_cycles(program),
                     beats=counters["in_beats"] if counters["in_beats"] is not None else len(next(iter(beats.values()))),
                     engine_busy=counters["busy"], in_stall=counters["in_stall"])
        return unpack_beats(program.engine(e)["out_fields"], out_beats), stats

    def spiking(self, config, weights, spikes) -> tuple[np.ndarray, dict]:
        """(batch, timesteps, axons) 0/1 spikes through the spiking-core engine of `config`: its weights are
        loaded, then each run (a CLEAR and its spike events) streams through -> (batch, timesteps, neurons)."""
        spikes = np.asarray(spikes, dtype=np.uint8)
        beats = snn.concat(snn.weight_beats(config, weights), snn.batch_beats(config, spikes))
        # each TICK's outputs: its spikes and the TICK marker; the batched model counts them much faster than
        # the beat-level one (exact for these beats: events in ascending axon order)
        fired = snn.run_batch(config, weights, spikes)[0].sum(axis=2).reshape(-1)
        plan = ((np.flatnonzero(beats["op"] == snn.Op.TICK) + 1).tolist(), (fired + 1).tolist())
        out, stats = self.run_engine(config, beats, plan)
        return snn.batch_spikes(config, out, len(spikes), spikes.shape[1]), stats

    def dot(self, config, x_codes: np.ndarray, w_codes: np.ndarray) -> tuple[np.ndarray, dict]:
        """(N, K) x (J, K) -> (N, J) accumulator codes on the system's LMulDot engine."""
        n, j = len(x_codes), len(w_codes)
        out, stats = self.run_engine(config, dot_beats(config, x_codes, w_codes))
        return out["sum"].astype(np.int64).reshape(n, j), stats

    def gemm(self, config, w_q: np.ndarray, x_q: np.ndarray) -> tuple[np.ndarray, dict]:
        """(R, K) x (K, B) int8 -> (R, B) int32 accumulators on the system's sparse-chain engine (dense mode)."""
        if config.groups > 1:                       # a grouped chain's output beat is G lanes: its own driver
            return self.sparse_gemm(config, w_q, x_q, "dense")
        beats = pack_gemm(w_q, x_q, "dense", config.stages, config.x_width, weight_bits=config.weight_bits)
        out, stats = self.run_engine(config, beats)
        acc = np.asarray(unpack_gemm(out, w_q.shape[0], x_q.shape[1]), np.int64)
        acc = np.where(acc >= 1 << (config.acc_bits - 1), acc - (1 << config.acc_bits), acc)
        return acc, stats

    def sparse_gemm(self, config, w_q, x_q, mode) -> tuple[np.ndarray, dict]:
        """(R, K) N:M-sparse int8 weights (dense layout) x (K, B) int8 -> (R, B) int32 accumulators on the
        system's sparse-chain engine in `mode` ("2:4", ...; grouped chains too): the beats written to the
        scratchpad carry the compressed weights (N values + N indices per group of M), so a vector needs M/N x
        fewer beats (ungrouped chain: a wider activation window) or covers M/N rows (grouped chain)."""
        beats = pack_nm_gemm(w_q, x_q, mode, config)
        out, stats = self.run_engine(config, beats)
        y = out["y"].reshape(len(out["y"]), -1) if config.groups > 1 else out["y"]
        acc = np.asarray(unpack_gemm_grouped({"y": y}, w_q.shape[0], np.shape(x_q)[1], mode, config), np.int64)
        acc = np.where(acc >= 1 << (config.acc_bits - 1), acc - (1 << config.acc_bits), acc)
        return acc, stats

    def attention(self, config, q, k, v) -> tuple[np.ndarray, dict]:
        """Heads q (H, P, E), k/v (H, N, E) integers (or one head, 2-D) -> (H, P, E) signed outputs on the
        system's attention engine, one program per head (so each head's cycles are measured: `head_cycles`);
        the stats add up over the heads."""
        single = np.ndim(q) == 2
        q, k, v = (np.asarray(a)[None] if single else np.asarray(a) for a in (q, k, v))
        rows, total = [], {}
        for head in zip(q, k, v):
            beats = stream_beats(config, *head)
            out, st = self.run_engine(config, beats)
            rows.append(_signed(out["out"], config.out_width).reshape(q.shape[1], config.head_dim))
            st.update(head_cycles=[st["cycles"]], head_beats=[len(beats["kind"])])
            for key, value in st.items():
                total[key] = value if key not in total or value is None else total[key] + value
        rows = np.stack(rows)
        return (rows[0] if single else rows), total
