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
    NOP

READ and COUNTERS do not wait for a run: the host puts WAIT (or the next RUN of that engine) before reading what
a run wrote. Beats are split into words little-endian (payload bit k is bit k % host_width of word k //
host_width). Addresses wrap modulo spad_depth. A command with an unknown opcode or engine index is dropped and
counted in INFO's error field (the driver checks every field before it sends, so this only catches link
corruption).

Timing: WRITE takes one word per cycle; READ sends one word per cycle after 2 cycles; a RUN of n beats on an II=1
engine of latency L keeps the engine busy for n + L + 1 cycles after its header (sw_model.system.golden.program_cycles
is the whole model; the benches check it).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.payload import payload_fields
from hwgen.units import build_unit
from sw_model.config import config_to_dict
from sw_model.system.config import HEADER_ENGINE_BITS, HEADER_OP_BITS, SystemConfig

COUNTER_NAMES = ("cycles", "busy", "in_beats", "out_beats", "in_stall")
COUNTER_BITS = 48
INFO_MAGIC = 0x48574731                     # "HWG1"
INFO_FIELDS = {"magic": (0, 32), "version": (32, 8), "engines": (40, 8), "errors": (48, 16)}
VERSION = 1


class Opcode(enum.Enum, shape=HEADER_OP_BITS):
    NOP = 0
    INFO = 1
    WRITE = 2
    RUN = 3
    READ = 4
    COUNTERS = 5
    CLEAR = 6
    WAIT = 7


def header_layout(config: SystemConfig) -> data.StructLayout:
    return data.StructLayout({"op": Opcode, "engine": HEADER_ENGINE_BITS, "addr": config.addr_bits,
                              "count": config.count_bits, "addr2": config.addr_bits, "count2": config.count_bits})


def words(width: int, host_width: int) -> int:
    return -(-width // host_width)


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
        word = data.StructLayout({"word": unsigned(config.host_width)})
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
                           "engines": engines}}

    def _run_controller(self, m, eng, mem_in, mem_out, start, cmd):
        """Streams IN[e] into the engine and its outputs into OUT[e], independently of the command decoder, from
        the RUN header `cmd` accepted when `start` is high. Returns `active` (the run is not finished)."""
        cfg = self.config
        raddr, rleft, rvalid = Signal(cfg.addr_bits), Signal(cfg.count_bits), Signal()
        waddr, wleft = Signal(cfg.addr_bits), Signal(cfg.count_bits)
        rp, wp = mem_in.read_port(), mem_out.write_port()
        advance = ~rvalid | eng.i.ready               # the read data register is empty or being taken
        marker = getattr(eng, "RUN_MARKER", None)
        counted = wp.en if marker is None else \
            wp.en & (getattr(eng.o.payload, marker["out_field"]) == marker["out_value"])
        m.d.comb += [rp.addr.eq(raddr), rp.en.eq(advance),
                     eng.i.valid.eq(rvalid), eng.i.payload.eq(rp.data), eng.o.ready.eq(wleft != 0),
                     wp.addr.eq(waddr), wp.data.eq(eng.o.payload), wp.en.eq(eng.o.valid & eng.o.ready)]
        with m.If(start):
            m.d.sync += [raddr.eq(cmd.addr), rleft.eq(cmd.count), rvalid.eq(0),
                         waddr.eq(cmd.addr2), wleft.eq(cmd.count2)]
        with m.Else():
            with m.If(advance):
                m.d.sync += rvalid.eq(rleft != 0)
                with m.If(rleft != 0):
                    m.d.sync += [raddr.eq(raddr + 1), rleft.eq(rleft - 1)]
            with m.If(wp.en):
                m.d.sync += waddr.eq(waddr + 1)
            with m.If(counted):
                m.d.sync += wleft.eq(wleft - 1)
        return (rleft != 0) | rvalid | (wleft != 0)

    def elaborate(self, platform):
        m = Module()
        cfg, w, n_eng = self.config, self.config.host_width, len(self.engines)
        widths = [self._widths(eng) for eng in self.engines]
        k_in = [words(iw, w) for iw, _ in widths]
        k_reply = max([words(ow, w) for _, ow in widths] + [len(COUNTER_NAMES)])

        hdr = Signal(header_layout(cfg))
        word = self.i.payload.word
        cmd = data.View(header_layout(cfg), word[:header_layout(cfg).size])
        engine_ok = cmd.engine < n_eng

        # --- host-side scratchpad access (WRITE into IN[e], READ from OUT[e]; one command at a time) ---
        raddr, rleft, rvalid = Signal(cfg.addr_bits), Signal(cfg.count_bits), Signal()
        waddr, wleft = Signal(cfg.addr_bits), Signal(cfg.count_bits)
        read_ready = Signal()                         # the serializer takes the current beat
        advance = ~rvalid | read_ready
        with m.If(advance):
            m.d.sync += rvalid.eq(rleft != 0)
            with m.If(rleft != 0):
                m.d.sync += [raddr.eq(raddr + 1), rleft.eq(rleft - 1)]
        reader_done = (rleft == 0) & ~rvalid

        # --- reply serializer: a beat of up to k_reply words, sent low word first ---
        hold, sv, sj, sk = Signal(k_reply * w), Signal(), Signal(range(k_reply + 1)), Signal(range(k_reply + 1))
        s_take = ~sv | (self.o.ready & (sj == sk - 1))
        s_beat, s_beat_valid, s_beat_words = Signal(k_reply * w), Signal(), Signal(range(k_reply + 1))
        m.d.comb += [self.o.valid.eq(sv), self.o.payload.word.eq(hold[:w])]
        with m.If(s_take):
            m.d.sync += [sv.eq(s_beat_valid), hold.eq(s_beat), sj.eq(0), sk.eq(s_beat_words)]
        with m.Elif(self.o.ready):
            m.d.sync += [hold.eq(hold >> w), sj.eq(sj + 1)]

        # --- write staging: the words of one input beat ---
        stage, sk_in = Signal(max(k_in) * w), Signal(range(max(k_in) + 1))

        # --- performance counters ---
        cycles = Signal(COUNTER_BITS)
        clear = Signal()
        m.d.sync += cycles.eq(Mux(clear, 0, cycles + 1))
        errors = Signal(16)

        class St(enum.Enum):
            IDLE = 0
            WRITE = 1
            READ = 2
            REPLY = 3
            WAIT = 4

        state = Signal(St)
        reply = Signal(k_reply * w)
        beat_last = Signal()                          # this WRITE word completes a beat of the selected engine
        write_hs = (state == St.WRITE) & (wleft != 0) & self.i.valid
        start_run = Signal()                          # a RUN header is accepted this cycle
        actives = []                                  # engine e is running

        def engine_busy(index):
            return Cat(*(a & (index == e) for e, a in enumerate(actives))).any()

        for e, (eng, (iw, ow)) in enumerate(zip(self.engines, widths)):
            m.submodules[f"engine{e}"] = eng
            m.submodules[f"spad_in{e}"] = mem_in = Memory(shape=unsigned(iw), depth=cfg.spad_depth, init=[])
            m.submodules[f"spad_out{e}"] = mem_out = Memory(shape=unsigned(ow), depth=cfg.spad_depth, init=[])
            active = self._run_controller(m, eng, mem_in, mem_out, start_run & (cmd.engine == e), cmd)
            actives.append(active)
            wp_in, rp_out = mem_in.write_port(), mem_out.read_port()
            selected = hdr.engine == e
            # WRITE: the beat's last word goes straight to the memory with the staged ones
            m.d.comb += [wp_in.addr.eq(waddr), wp_in.data.eq(Cat(stage[:(k_in[e] - 1) * w], word)[:iw]),
                         wp_in.en.eq(write_hs & selected & beat_last),
                         rp_out.addr.eq(raddr), rp_out.en.eq(advance & (state == St.READ) & selected)]
            with m.If((state == St.READ) & selected):
                m.d.comb += [read_ready.eq(s_take), s_beat.eq(rp_out.data), s_beat_valid.eq(rvalid),
                             s_beat_words.eq(words(ow, w))]
            # counters
            counters = {name: Signal(COUNTER_BITS, name=f"e{e}_{name}") for name in COUNTER_NAMES[1:]}
            incs = {"busy": active, "in_beats": eng.i.valid & eng.i.ready, "out_beats": eng.o.valid & eng.o.ready,
                    "in_stall": eng.i.valid & ~eng.i.ready}
            for name, sig in counters.items():
                with m.If(clear):
                    m.d.sync += sig.eq(0)
                with m.Elif(incs[name]):
                    m.d.sync += sig.eq(sig + 1)
            with m.If(selected):
                m.d.comb += beat_last.eq(sk_in == k_in[e] - 1)
                m.d.comb += reply.eq(Cat(*(Cat(c, Const(0, w - COUNTER_BITS))
                                           for c in [cycles, *counters.values()])))

        m.d.comb += self.i.ready.eq(0)
        with m.If(state == St.IDLE):
            # a RUN for an engine that still runs waits here (the host's word stays offered)
            run_blocked = (cmd.op == Opcode.RUN) & engine_busy(cmd.engine)
            m.d.comb += self.i.ready.eq(~run_blocked)
            with m.If(self.i.valid & ~run_blocked):
                m.d.sync += [hdr.eq(cmd), raddr.eq(cmd.addr), waddr.eq(cmd.addr), sk_in.eq(0)]
                global_op = (cmd.op == Opcode.INFO) | (cmd.op == Opcode.CLEAR) | (cmd.op == Opcode.NOP)
                with m.If((cmd.op.as_value() >= len(Opcode)) | ~(engine_ok | global_op)):
                    m.d.sync += errors.eq(errors + (errors != 0xFFFF))
                with m.Elif(cmd.op == Opcode.WRITE):
                    m.d.sync += [state.eq(St.WRITE), wleft.eq(cmd.count)]
                with m.Elif(cmd.op == Opcode.RUN):
                    m.d.comb += start_run.eq(1)
                with m.Elif(cmd.op == Opcode.WAIT):
                    m.d.sync += state.eq(St.WAIT)
                with m.Elif(cmd.op == Opcode.READ):
                    m.d.sync += [state.eq(St.READ), rleft.eq(cmd.count)]
                with m.Elif((cmd.op == Opcode.COUNTERS) | (cmd.op == Opcode.INFO)):
                    m.d.sync += state.eq(St.REPLY)
                with m.Elif(cmd.op == Opcode.CLEAR):
                    m.d.comb += clear.eq(1)
        with m.Elif(state == St.WRITE):
            with m.If(wleft == 0):
                m.d.sync += state.eq(St.IDLE)
            with m.Else():
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    for j in range(max(k_in) - 1):          # the last word of a beat is not staged
                        with m.If(sk_in == j):
                            m.d.sync += stage[j * w:(j + 1) * w].eq(word)
                    with m.If(beat_last):
                        m.d.sync += [sk_in.eq(0), waddr.eq(waddr + 1), wleft.eq(wleft - 1)]
                    with m.Else():
                        m.d.sync += sk_in.eq(sk_in + 1)
        with m.Elif(state == St.WAIT):
            with m.If(~engine_busy(hdr.engine)):
                m.d.sync += state.eq(St.IDLE)
        with m.Elif(state == St.READ):
            with m.If(reader_done):
                m.d.sync += state.eq(St.IDLE)
        with m.Elif(state == St.REPLY):
            with m.If(s_take):
                info = Cat(Const(INFO_MAGIC, 32), Const(VERSION, 8), Const(n_eng, 8), errors)
                m.d.comb += [s_beat_valid.eq(1), s_beat.eq(reply), s_beat_words.eq(len(COUNTER_NAMES))]
                with m.If(hdr.op == Opcode.INFO):
                    m.d.comb += [s_beat.eq(info), s_beat_words.eq(1)]
                m.d.sync += state.eq(St.IDLE)
        with m.Else():                     # unreachable codes of the 3-bit state: back to IDLE
            m.d.sync += state.eq(St.IDLE)
        return m
