"""The accelerator top: engines (any unit families) with on-chip scratchpads behind one host port.

Host port: the command stream `i` and the response stream `o`, one `host_width`-bit word per beat (named `i`/`o`
like every unit, so the bulk testbench and the UART bridge drive a whole system as they drive one unit).
Each engine e owns an input scratchpad IN[e] and an output scratchpad OUT[e] (`amaranth.lib.memory`, one write and
one synchronous read port each, `spad_depth` words as wide as the engine's stream payload) and a run controller
that streams IN[e] through the engine into OUT[e] on its own, so the decoder takes the next commands while an
engine runs (the host double-buffers: WRITE the next chunk while the current one runs). The header is the low bits
of a command word (layout and opcodes in the manifest):

    WRITE    engine, addr, count          then count beats x ceil(in_width / host_width) words -> IN[e][addr...]
    RUN      engine, addr, count,         start streaming IN[e][addr .. addr+count) into the engine; its first
             addr2, count2                count2 output beats go to OUT[e][addr2...]. Waits while engine e runs.
                                          An engine whose output count depends on the data (the manifest's
                                          `run_marker`, e.g. the spiking core) counts only its marker beats:
                                          the run takes outputs up to the count2-th marker, and the host learns
                                          how many from the out_beats counter.
    WAIT     engine                       wait until engine e has finished its run
    READ     engine, addr, count          reply: count beats x ceil(out_width / host_width) words of OUT[e]
    COUNTERS engine                       reply: one word per counter (COUNTER_NAMES), zero-extended
    CLEAR                                 zero every performance counter (cycles counts from here on)
    INFO                                  reply: one word (INFO_* fields)
    STATUS                                reply: one word (STATUS_FIELDS: errors since the last STATUS, the first
                                          one's cause, busy engines, headers taken); clears the errors
    NOP

READ and COUNTERS do not wait for a run: the host puts WAIT (or the next RUN of that engine) before reading what
a run wrote. A WRITE into the input range or a READ of the output range of an engine's active run waits for the
run to end, so no program sees a half-written scratchpad. Beats are split into words little-endian (payload bit
k is bit k % host_width of word k // host_width). A command with an unknown opcode, an engine index the system
lacks, or a range past the end of a scratchpad (addr + count > spad_depth; a run-marker engine's output beyond
count2 markers still wraps) is dropped and counted in the STATUS and INFO error fields; a dropped WRITE of a
valid engine takes and discards its data words.

Timing: WRITE takes one word per cycle; READ sends one word per cycle after 2 cycles; a RUN of n beats on an II=1
engine of latency L keeps the engine busy for n + L + 1 cycles after its header (sw_model.system.golden.program_cycles
is the whole model; the benches check it).

Blocks (each a `wiring.Component`, a module of its own in the Verilog): `decoder` (`CommandDecoder`), `replies`
(`ReplySerializer`), `counters` (`PerfCounters`), and per engine e `engine{e}`, `run{e}` (`RunController`),
`spad_in{e}` and `spad_out{e}`.
"""
from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.payload import payload_fields
from hwgen.system.commands import (
    ERROR_CODES,
    INFO_FIELDS,
    INFO_MAGIC,
    STATUS_FIELDS,
    VERSION,
    Opcode,
    header_layout,
    words,
)
from hwgen.system.counters import COUNTER_BITS, COUNTER_NAMES, PerfCounters
from hwgen.system.decoder import CommandDecoder
from hwgen.system.run_controller import RunController
from hwgen.system.serializer import ReplySerializer, word_layout
from hwgen.units import build_unit
from sw_model.config import config_to_dict
from sw_model.system.config import SystemConfig

__all__ = ["COUNTER_BITS", "COUNTER_NAMES", "ERROR_CODES", "INFO_FIELDS", "INFO_MAGIC", "STATUS_FIELDS", "VERSION",
           "Opcode", "System", "header_layout", "words"]


class System(wiring.Component):
    """Engines + scratchpads + command decoder + performance counters behind one host word stream.

    `i.payload.word`: command and data words; `o.payload.word`: reply words. See the module docstring for the
    command set and timing; the manifest (`manifest_extra`) carries the header layout, opcodes, the scratchpad
    memory map and the counter names, so the driver never hard-codes them."""

    def __init__(self, config: SystemConfig):
        self.config = config
        self.engines = [build_unit(c) for c in config.engine_configs]
        for name, eng in zip(config.engine_names, self.engines):
            members = eng.signature.members
            if set(members) != {"i", "o"}:
                raise ValueError(f"engines: {name!r} has ports {sorted(members)}, allowed: units with exactly "
                                 "one input stream i and one output stream o")
        word = word_layout(config.host_width)
        super().__init__({"i": In(stream.Signature(word)), "o": Out(stream.Signature(word))})

    def timing(self) -> dict:
        return {"latency": None, "ii": 1}

    def _widths(self, eng) -> tuple[int, int]:
        return (data.Layout.cast(eng.i.payload.shape()).size, data.Layout.cast(eng.o.payload.shape()).size)

    def manifest_extra(self) -> dict:
        cfg, w = self.config, self.config.host_width
        engines = []
        for e, (name, eng) in enumerate(zip(cfg.engine_names, self.engines)):
            iw, ow = self._widths(eng)
            engines.append({"index": e, "preset": name, "unit": eng.config.unit, "config": config_to_dict(eng.config),
                            "run_marker": getattr(eng, "RUN_MARKER", None), "in_width": iw, "out_width": ow,
                            "in_words": words(iw, w), "out_words": words(ow, w), **eng.timing(),
                            "in_fields": payload_fields(data.Layout.cast(eng.i.payload.shape())),
                            "out_fields": payload_fields(data.Layout.cast(eng.o.payload.shape())),
                            "scratchpads": {"in": {"depth": cfg.spad_depth, "width": iw},
                                            "out": {"depth": cfg.spad_depth, "width": ow}}})
        return {"system": {"host_width": w, "spad_depth": cfg.spad_depth, "version": VERSION,
                           "header": payload_fields(header_layout(cfg)), "opcodes": {op.name: op.value for op in Opcode},
                           "counters": list(COUNTER_NAMES), "counter_bits": COUNTER_BITS,
                           "info": {"magic_value": INFO_MAGIC, **{k: {"offset": o, "width": n}
                                                            for k, (o, n) in INFO_FIELDS.items()}},
                           "status": {k: {"offset": o, "width": n} for k, (o, n) in STATUS_FIELDS.items()},
                           "errors": dict(ERROR_CODES),
                           "engines": engines}}

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        widths = [self._widths(eng) for eng in self.engines]
        m.submodules.decoder = dec = CommandDecoder(cfg, [iw for iw, _ in widths], [ow for _, ow in widths],
                                                    [getattr(eng, "RUN_MARKER", None) is not None
                                                     for eng in self.engines])
        m.submodules.replies = replies = ReplySerializer(host_width=cfg.host_width, max_words=dec.beat_words)
        m.submodules.counters = counters = PerfCounters(len(self.engines))
        wiring.connect(m, wiring.flipped(self.i), dec.i)
        wiring.connect(m, dec.reply, replies.i)
        wiring.connect(m, replies.o, wiring.flipped(self.o))
        m.d.comb += [counters.clear.eq(dec.clear), counters.engine.eq(dec.counter_engine),
                     dec.counter_values.eq(counters.values)]

        for e, (eng, (iw, ow)) in enumerate(zip(self.engines, widths)):
            m.submodules[f"engine{e}"] = eng
            m.submodules[f"spad_in{e}"] = mem_in = Memory(shape=unsigned(iw), depth=cfg.spad_depth, init=[])
            m.submodules[f"spad_out{e}"] = mem_out = Memory(shape=unsigned(ow), depth=cfg.spad_depth, init=[])
            m.submodules[f"run{e}"] = run = RunController(cfg, eng.i.payload.shape(), eng.o.payload.shape(),
                                                          getattr(eng, "RUN_MARKER", None))
            wiring.connect(m, run.spad_in, mem_in.read_port())
            wiring.connect(m, run.spad_out, mem_out.write_port())
            wiring.connect(m, run.to_engine, eng.i)
            wiring.connect(m, eng.o, run.from_engine)
            wiring.connect(m, getattr(dec, f"spad_in{e}"), mem_in.write_port())
            wiring.connect(m, getattr(dec, f"spad_out{e}"), mem_out.read_port())
            m.d.comb += [run.start.eq(dec.run[e]), run.cmd.eq(dec.cmd), dec.busy[e].eq(run.events.busy),
                         counters.events[e].eq(run.events)]
        return m
