"""The system's command decoder: takes host command and data words, writes and reads the scratchpads, starts
runs, and builds the reply beats (command set: `hwgen.system.top`)."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from hwgen.system.commands import ERROR_CODES, INFO_MAGIC, STATUS_FIELDS, VERSION, Opcode, header_layout, words
from hwgen.system.counters import COUNTER_BITS, COUNTER_NAMES, COUNTER_VALUES
from hwgen.system.serializer import reply_layout, word_layout
from sw_model.system.config import HEADER_ENGINE_BITS, SystemConfig


class DecoderState(enum.Enum):
    IDLE = 0        # waiting for a header
    WRITE = 1       # taking the data words of a WRITE
    READ = 2        # reading OUT[e] into reply beats
    REPLY = 3       # offering the COUNTERS, INFO or STATUS reply beat
    WAIT = 4        # waiting for an engine's run to end


class CommandDecoder(wiring.Component):
    """Executes the host commands one at a time.

    Interface: `i` host words (a header, then a WRITE's data words); `reply` beats for the `ReplySerializer`
    (`beat_words` words at most: a READ beat of OUT[e], the COUNTERS values or the INFO word). Per engine e:
    `spad_in{e}` drives a write port of IN[e], `spad_out{e}` a synchronous read port of OUT[e]; `run[e]` is a
    one-cycle strobe that starts engine e's run controller with the header `cmd` (the header of the word on `i`
    in that cycle); `busy[e]` says engine e still runs. `clear` is the CLEAR strobe for the counters;
    `counter_engine` selects whose `counter_values` a COUNTERS reply carries.

    Malformed headers are taken and dropped without touching any state but the error status: an unknown opcode,
    an engine index >= the engine count on an engine command, or a range past the scratchpad (`ERROR_CODES`;
    a dropped WRITE of a valid engine still takes its data words, so they are never decoded as commands). They
    count in the STATUS reply (and INFO's `errors`), saturating at 0xFFFF; STATUS also gives the first error's
    code, opcode and engine, and clears them once sent.

    Hazards wait instead of racing: a RUN for a busy engine, a WRITE into the input range or a READ of the output
    range of engine e's active run (engines in `open_out`, whose runs may write past `count2` beats, have the
    whole OUT[e] as their output range) is not taken until the run has ended. So any program gives the results
    of its commands executed one after the other (`sw_model.system.golden.GoldenSystem`).

    Timing (the cycle model of `sw_model.system.golden.CycleModel`): a header is taken in IDLE unless it waits
    for a hazard (`i.ready` low until the engine is free). WRITE takes one word per cycle, then spends a cycle
    back to IDLE; READ offers OUT[e]'s beats from the second cycle after the header, one per cycle while `reply`
    takes them; WAIT goes back to IDLE at the end of the first cycle in which `busy[e]` is low; COUNTERS / INFO /
    STATUS offer their beat in the cycle after the header; any other header (and a dropped one) frees the decoder
    in the next cycle. `reply.valid` never waits for `reply.ready`."""

    def __init__(self, config: SystemConfig, in_widths: list[int], out_widths: list[int],
                 open_out: list[bool] | None = None):
        if len(in_widths) != len(out_widths) or not 1 <= len(in_widths) <= 1 << HEADER_ENGINE_BITS:
            raise ValueError(f"in_widths, out_widths: got {len(in_widths)} and {len(out_widths)} engines, allowed: "
                             f"equal counts from 1 to {1 << HEADER_ENGINE_BITS}")
        self.config, self.in_widths, self.out_widths = config, list(in_widths), list(out_widths)
        self.open_out = [bool(x) for x in (open_out or [False] * len(in_widths))]
        if len(self.open_out) != len(in_widths):
            raise ValueError(f"open_out: got {len(self.open_out)} entries, allowed: one per engine ({len(in_widths)})")
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

        # --- error status (STATUS_FIELDS) ---
        errors, commands = Signal(16), Signal(16)
        err_code, err_op, err_engine = Signal(4), Signal(4), Signal(4)
        discard = Signal()                            # the WRITE being taken was dropped: take its words, write none

        state = Signal(St)
        beat_last = Signal()                          # this WRITE word completes a beat of the selected engine
        write_hs = (state == St.WRITE) & (wleft != 0) & self.i.valid
        start_run = Signal()                          # a RUN header is taken this cycle

        def engine_busy(index):
            return Cat(*(self.busy[e] & (index == e) for e in range(n_eng))).any()

        # ranges [lo, hi) of each engine's last RUN, for the WRITE/READ hazards; an empty range overlaps nothing
        lo_in = [Signal(cfg.addr_bits, name=f"run{e}_in_lo") for e in range(n_eng)]
        hi_in = [Signal(cfg.addr_bits + 1, name=f"run{e}_in_hi") for e in range(n_eng)]
        lo_out = [Signal(cfg.addr_bits, name=f"run{e}_out_lo") for e in range(n_eng)]
        hi_out = [Signal(cfg.addr_bits + 1, name=f"run{e}_out_hi") for e in range(n_eng)]
        end1, end2 = cmd.addr + cmd.count, cmd.addr2 + cmd.count2

        def overlaps(lo, hi):
            return (cmd.count != 0) & (lo < hi) & (cmd.addr < hi) & (lo < end1)

        hazard_write, hazard_read = Signal(), Signal()
        for e in range(n_eng):
            with m.If(cmd.engine == e):
                m.d.comb += hazard_write.eq(self.busy[e] & overlaps(lo_in[e], hi_in[e]))
                if self.open_out[e]:
                    m.d.comb += hazard_read.eq(self.busy[e])
                else:
                    m.d.comb += hazard_read.eq(self.busy[e] & overlaps(lo_out[e], hi_out[e]))
            with m.If(start_run & (cmd.engine == e)):
                m.d.sync += [lo_in[e].eq(cmd.addr), hi_in[e].eq(end1), lo_out[e].eq(cmd.addr2), hi_out[e].eq(end2)]

        for e, (iw, ow) in enumerate(zip(self.in_widths, self.out_widths)):
            wp_in, rp_out = getattr(self, f"spad_in{e}"), getattr(self, f"spad_out{e}")
            selected = hdr.engine == e
            # WRITE: the beat's last word goes straight to the memory with the staged ones
            m.d.comb += [wp_in.addr.eq(waddr), wp_in.data.eq(Cat(stage[:(k_in[e] - 1) * w], word)[:iw]),
                         wp_in.en.eq(write_hs & selected & beat_last & ~discard),
                         rp_out.addr.eq(raddr), rp_out.en.eq(advance & (state == St.READ) & selected),
                         self.run[e].eq(start_run & (cmd.engine == e))]
            with m.If((state == St.READ) & selected):
                m.d.comb += [read_ready.eq(self.reply.ready), self.reply.payload.beat.eq(rp_out.data),
                             self.reply.valid.eq(rvalid), self.reply.payload.words.eq(words(ow, w))]
            with m.If(selected):
                m.d.comb += beat_last.eq(sk_in == k_in[e] - 1)

        m.d.comb += self.i.ready.eq(0)
        with m.If(state == St.IDLE):
            op = cmd.op
            global_op = (op == Opcode.INFO) | (op == Opcode.CLEAR) | (op == Opcode.NOP) | (op == Opcode.STATUS)
            in_range = (end1 <= cfg.spad_depth) & ((op != Opcode.RUN) | (end2 <= cfg.spad_depth))
            # hazards: wait (the host's word stays offered) until the engine's run has ended
            blocked = Signal()
            m.d.comb += blocked.eq(((op == Opcode.RUN) & engine_busy(cmd.engine))
                                   | ((op == Opcode.WRITE) & in_range & hazard_write)
                                   | ((op == Opcode.READ) & in_range & hazard_read))
            m.d.comb += self.i.ready.eq(~blocked)

            def error(code):
                m.d.sync += errors.eq(errors + (errors != 0xFFFF))
                with m.If(errors == 0):                # keep the first error's cause until STATUS reads it
                    m.d.sync += [err_code.eq(ERROR_CODES[code]), err_op.eq(op.as_value()), err_engine.eq(cmd.engine)]

            with m.If(self.i.valid & ~blocked):
                m.d.sync += [hdr.eq(cmd), raddr.eq(cmd.addr), waddr.eq(cmd.addr), sk_in.eq(0), discard.eq(0),
                             commands.eq(commands + 1)]
                with m.If(op.as_value() >= len(Opcode)):
                    error("OPCODE")
                with m.Elif(~(engine_ok | global_op)):
                    error("ENGINE")
                with m.Elif(((op == Opcode.WRITE) | (op == Opcode.READ) | (op == Opcode.RUN)) & ~in_range):
                    error("RANGE")
                    with m.If(op == Opcode.WRITE):
                        m.d.sync += [state.eq(St.WRITE), wleft.eq(cmd.count), discard.eq(1)]
                with m.Elif(op == Opcode.WRITE):
                    m.d.sync += [state.eq(St.WRITE), wleft.eq(cmd.count)]
                with m.Elif(op == Opcode.RUN):
                    m.d.comb += start_run.eq(1)
                with m.Elif(op == Opcode.WAIT):
                    m.d.sync += state.eq(St.WAIT)
                with m.Elif(op == Opcode.READ):
                    m.d.sync += [state.eq(St.READ), rleft.eq(cmd.count)]
                with m.Elif((op == Opcode.COUNTERS) | (op == Opcode.INFO) | (op == Opcode.STATUS)):
                    m.d.sync += state.eq(St.REPLY)
                with m.Elif(op == Opcode.CLEAR):
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
            status = Signal(64)
            m.d.comb += status.eq(0)                   # the bits between the fields read 0
            for name, value in (("errors", errors), ("error_code", err_code), ("error_op", err_op),
                                ("error_engine", err_engine), ("busy", Cat(*self.busy)), ("commands", commands)):
                offset, width = STATUS_FIELDS[name]
                m.d.comb += status[offset:offset + width].eq(value)
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.beat.eq(counters),
                         self.reply.payload.words.eq(len(COUNTER_NAMES))]
            with m.If(hdr.op == Opcode.INFO):
                m.d.comb += [self.reply.payload.beat.eq(info), self.reply.payload.words.eq(1)]
            with m.If(hdr.op == Opcode.STATUS):
                m.d.comb += [self.reply.payload.beat.eq(status), self.reply.payload.words.eq(1)]
            with m.If(self.reply.ready):
                m.d.sync += state.eq(St.IDLE)
                with m.If(hdr.op == Opcode.STATUS):          # read-to-clear: the next STATUS shows new errors only
                    m.d.sync += [errors.eq(0), err_code.eq(0), err_op.eq(0), err_engine.eq(0)]
        with m.Else():                     # unreachable codes of the 3-bit state: back to IDLE
            m.d.sync += state.eq(St.IDLE)
        return m
