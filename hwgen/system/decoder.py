"""The system's command decoder: takes host command and data words, writes and reads the scratchpads, starts
runs, and builds the reply beats (command set: `hwgen.system.top`)."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from hwgen.system.commands import INFO_MAGIC, VERSION, Opcode, header_layout, words
from hwgen.system.counters import COUNTER_BITS, COUNTER_NAMES, COUNTER_VALUES
from hwgen.system.serializer import reply_layout, word_layout
from sw_model.system.config import HEADER_ENGINE_BITS, SystemConfig


class DecoderState(enum.Enum):
    IDLE = 0        # waiting for a header
    WRITE = 1       # taking the data words of a WRITE
    READ = 2        # reading OUT[e] into reply beats
    REPLY = 3       # offering the COUNTERS or INFO reply beat
    WAIT = 4        # waiting for an engine's run to end


class CommandDecoder(wiring.Component):
    """Executes the host commands one at a time.

    Interface: `i` host words (a header, then a WRITE's data words); `reply` beats for the `ReplySerializer`
    (`beat_words` words at most: a READ beat of OUT[e], the COUNTERS values or the INFO word). Per engine e:
    `spad_in{e}` drives a write port of IN[e], `spad_out{e}` a synchronous read port of OUT[e]; `run[e]` is a
    one-cycle strobe that starts engine e's run controller with the header `cmd` (the header of the word on `i`
    in that cycle); `busy[e]` says engine e still runs. `clear` is the CLEAR strobe for the counters;
    `counter_engine` selects whose `counter_values` a COUNTERS reply carries. A header with an unknown opcode, or an
    engine index >= the engine count on an engine command, is taken and dropped, and counts in INFO's `errors`
    (saturating at 0xFFFF).

    Timing (the cycle model of `sw_model.system.golden.program_cycles`): a header is taken in IDLE; a RUN whose
    engine is busy is not taken (`i.ready` low) until it is free. WRITE takes one word per cycle, then spends a
    cycle back to IDLE; READ offers OUT[e]'s beats from the second cycle after the header, one per cycle while
    `reply` takes them; WAIT goes back to IDLE at the end of the first cycle in which `busy[e]` is low;
    COUNTERS / INFO offer their beat in the cycle after the header. `reply.valid` never waits for `reply.ready`."""

    def __init__(self, config: SystemConfig, in_widths: list[int], out_widths: list[int]):
        if len(in_widths) != len(out_widths) or not 1 <= len(in_widths) <= 1 << HEADER_ENGINE_BITS:
            raise ValueError(f"in_widths, out_widths: got {len(in_widths)} and {len(out_widths)} engines, allowed: "
                             f"equal counts from 1 to {1 << HEADER_ENGINE_BITS}")
        self.config, self.in_widths, self.out_widths = config, list(in_widths), list(out_widths)
        w, n = config.host_width, len(in_widths)
        self.beat_words = max([words(ow, w) for ow in out_widths] + [len(COUNTER_NAMES)])
        members = {"i": In(stream.Signature(word_layout(w))),
                   "reply": Out(stream.Signature(reply_layout(self.beat_words, w))),
                   "cmd": Out(header_layout(config)), "run": Out(data.ArrayLayout(1, n)),
                   "busy": In(data.ArrayLayout(1, n)), "clear": Out(1),
                   "counter_engine": Out(HEADER_ENGINE_BITS), "counter_values": In(COUNTER_VALUES)}
        for e, (iw, ow) in enumerate(zip(in_widths, out_widths)):
            # the memory ports' signatures are from the memory's side: In() gives the decoder's side
            members[f"spad_in{e}"] = In(WritePort.Signature(addr_width=config.addr_bits, shape=unsigned(iw)))
            members[f"spad_out{e}"] = In(ReadPort.Signature(addr_width=config.addr_bits, shape=unsigned(ow)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg, w, n_eng = self.config, self.config.host_width, len(self.in_widths)
        St = DecoderState
        k_in = [words(iw, w) for iw in self.in_widths]

        hdr = Signal(header_layout(cfg))              # the header of the command being executed
        word = self.i.payload.word
        cmd = data.View(header_layout(cfg), word[:header_layout(cfg).size])
        engine_ok = cmd.engine < n_eng
        m.d.comb += [self.cmd.eq(cmd), self.counter_engine.eq(hdr.engine)]

        # --- host-side scratchpad access (WRITE into IN[e], READ from OUT[e]) ---
        raddr, rleft, rvalid = Signal(cfg.addr_bits), Signal(cfg.count_bits), Signal()
        waddr, wleft = Signal(cfg.addr_bits), Signal(cfg.count_bits)
        read_ready = Signal()                         # the reply side takes the current READ beat
        advance = ~rvalid | read_ready
        with m.If(advance):
            m.d.sync += rvalid.eq(rleft != 0)
            with m.If(rleft != 0):
                m.d.sync += [raddr.eq(raddr + 1), rleft.eq(rleft - 1)]
        reader_done = (rleft == 0) & ~rvalid

        # --- write staging: the words of one input beat but its last ---
        stage, sk_in = Signal(max(k_in) * w), Signal(range(max(k_in) + 1))
        errors = Signal(16)

        state = Signal(St)
        beat_last = Signal()                          # this WRITE word completes a beat of the selected engine
        write_hs = (state == St.WRITE) & (wleft != 0) & self.i.valid
        start_run = Signal()                          # a RUN header is taken this cycle

        def engine_busy(index):
            return Cat(*(self.busy[e] & (index == e) for e in range(n_eng))).any()

        for e, (iw, ow) in enumerate(zip(self.in_widths, self.out_widths)):
            wp_in, rp_out = getattr(self, f"spad_in{e}"), getattr(self, f"spad_out{e}")
            selected = hdr.engine == e
            # WRITE: the beat's last word goes straight to the memory with the staged ones
            m.d.comb += [wp_in.addr.eq(waddr), wp_in.data.eq(Cat(stage[:(k_in[e] - 1) * w], word)[:iw]),
                         wp_in.en.eq(write_hs & selected & beat_last),
                         rp_out.addr.eq(raddr), rp_out.en.eq(advance & (state == St.READ) & selected),
                         self.run[e].eq(start_run & (cmd.engine == e))]
            with m.If((state == St.READ) & selected):
                m.d.comb += [read_ready.eq(self.reply.ready), self.reply.payload.beat.eq(rp_out.data),
                             self.reply.valid.eq(rvalid), self.reply.payload.words.eq(words(ow, w))]
            with m.If(selected):
                m.d.comb += beat_last.eq(sk_in == k_in[e] - 1)

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
                    m.d.comb += self.clear.eq(1)
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
            counters = Cat(*(Cat(getattr(self.counter_values, name), Const(0, w - COUNTER_BITS))
                             for name in COUNTER_NAMES))
            info = Cat(Const(INFO_MAGIC, 32), Const(VERSION, 8), Const(n_eng, 8), errors)
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.beat.eq(counters),
                         self.reply.payload.words.eq(len(COUNTER_NAMES))]
            with m.If(hdr.op == Opcode.INFO):
                m.d.comb += [self.reply.payload.beat.eq(info), self.reply.payload.words.eq(1)]
            with m.If(self.reply.ready):
                m.d.sync += state.eq(St.IDLE)
        with m.Else():                     # unreachable codes of the 3-bit state: back to IDLE
            m.d.sync += state.eq(St.IDLE)
        return m
