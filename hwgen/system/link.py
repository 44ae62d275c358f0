"""The reliable UART bridge (host-link protocol version 2, `sw_model.host.link`): frames with a sequence number,
a session and a CRC-16; every request gets an answer (ACK, OUT or ERR), a repeated request is answered again and
never executed twice, SYNC resets the unit, a board reset shows as a session mismatch.

`LinkBridge` is the board side; `LinkedUnit` puts a unit with one input stream `i` and one output stream `o`
(a single unit or a whole `System`) behind it. The version-1 bridge (`hwgen.system.bridge`, no integrity checks)
stays for the board builds that use it.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.system.bridge import MAX_PAYLOAD_BYTES, check_bridgeable, payload_bytes
from hwgen.system.uart import UARTRx, UARTTx, check_divisor
from sw_model.host import link as proto


def crc16_byte(crc, byte):
    """CRC-16/CCITT-FALSE register after one more byte (8 unrolled steps of the bitwise definition)."""
    crc = (crc ^ (byte << 8))[:16]
    for _ in range(8):
        crc = (crc << 1)[:16] ^ Mux(crc[15], 0x1021, 0)
    return crc


class LinkBridge(wiring.Component):
    """Frames on `rx` -> words on `beat`; words from `result` -> OUT answers on `tx` (protocol: sw_model.host.link).

    Receive: the frame's bytes update a running CRC (a whole frame, CRC included, leaves 0) and fill the type,
    sequence, session and payload registers; in the cycle after the last byte the frame is checked and executed.
    BEAT loads the `beat` register (BUSY if the previous word has not been taken yet); GET takes one `result`
    word into the OUT holding register (EMPTY if none is offered); SYNC pulses `unit_reset` for one cycle and
    adopts the frame's session. The sequence number and answer of the last executed request are kept, so a
    repeat of it is answered again (DUPLICATE for a BEAT, the same OUT word for a GET) and does nothing else.
    Errors: a frame whose bytes stop for `timeout` cycles (SHORT), a bad type byte (UNKNOWN) or stop bit
    (FRAMING: then bytes are ignored until the line has been idle for `timeout` cycles), a CRC mismatch (CRC), a
    session other than the board's (SESSION; the board's session is 0 after reset).

    Transmit: one answer at a time from a byte register, its CRC computed as the bytes leave, high byte first.
    A newer answer replaces one that has not started (only garbage makes several)."""

    def __init__(self, in_width: int, out_width: int, *, divisor: int, timeout: int):
        for name, width in (("in_width", in_width), ("out_width", out_width)):
            if not isinstance(width, int) or not 1 <= width <= 8 * MAX_PAYLOAD_BYTES:
                raise ValueError(f"{name}: got {width!r}, allowed: 1 to {8 * MAX_PAYLOAD_BYTES} bits")
        self.divisor = check_divisor(divisor)
        if not isinstance(timeout, int) or timeout < 2 * divisor:
            raise ValueError(f"timeout: got {timeout!r}, allowed: an integer >= 2 * divisor = {2 * divisor} cycles "
                             f"(shorter would cut the gap between the bytes of one frame)")
        self.in_width, self.out_width, self.timeout = in_width, out_width, timeout
        self.in_bytes, self.out_bytes = payload_bytes(in_width), payload_bytes(out_width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "unit_reset": Out(1),
                          "beat": Out(stream.Signature(in_width)), "result": In(stream.Signature(out_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        n_in, n_out = self.in_bytes, self.out_bytes

        session = Signal(8)                          # 0 after reset: no host uses it
        last_seq, have_last = Signal(8), Signal()
        last_kind, last_value = Signal(8), Signal(8)  # the last executed request's answer (ACK status or OUT)
        hold = Signal(8 * n_out)                      # the OUT word of the last GET

        # --- the answer waiting to be sent (one slot) and the transmitter ---
        rsp_pending, rsp_kind, rsp_seq, rsp_value = Signal(), Signal(8), Signal(8), Signal(8)
        body_bytes = max(1, n_out)
        obuf = Signal(8 * (3 + body_bytes))
        left, crc_left = Signal(range(3 + body_bytes + 1)), Signal(range(3))
        crc_tx = Signal(16)
        with m.If((left == 0) & (crc_left == 0)):
            with m.If(rsp_pending):
                m.d.sync += [rsp_pending.eq(0), crc_tx.eq(0xFFFF), crc_left.eq(2)]
                with m.If(rsp_kind == proto.RSP_OUT):
                    m.d.sync += [obuf.eq(Cat(rsp_kind, rsp_seq, session, hold)), left.eq(3 + n_out)]
                with m.Else():
                    m.d.sync += [obuf.eq(Cat(rsp_kind, rsp_seq, session, rsp_value)), left.eq(4)]
        with m.Elif(left != 0):
            m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq(obuf[:8])]
            with m.If(utx.i.ready):
                m.d.sync += [obuf.eq(obuf[8:]), left.eq(left - 1), crc_tx.eq(crc16_byte(crc_tx, obuf[:8]))]
        with m.Else():
            m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq(crc_tx[8:])]
            with m.If(utx.i.ready):
                m.d.sync += [crc_tx.eq(crc_tx << 8), crc_left.eq(crc_left - 1)]

        def answer(kind, seq, value=0):
            m.d.sync += [rsp_pending.eq(1), rsp_kind.eq(kind), rsp_seq.eq(seq), rsp_value.eq(value)]

        # --- receiver ---
        kind, seq, sess_in = Signal(8), Signal(8), Signal(8)
        pbuf = Signal(8 * n_in)
        got = Signal(range(3 + n_in + 3))
        crc = Signal(16)
        quiet = Signal(range(self.timeout + 1))
        timed_out = quiet == self.timeout
        byte, data, ferr = urx.o.valid, urx.o.payload.data, urx.o.payload.framing_error
        beat_data = Signal(self.in_width)            # the word offered to the unit: stable until taken
        m.d.comb += self.beat.payload.eq(beat_data)
        with m.If(self.beat.valid & self.beat.ready):
            m.d.sync += self.beat.valid.eq(0)
        need = Mux(kind == proto.REQ_BEAT, 5 + n_in, 5)

        def count_quiet():
            with m.If(urx.busy | byte):
                m.d.sync += quiet.eq(0)
            with m.Elif(~timed_out):
                m.d.sync += quiet.eq(quiet + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += quiet.eq(0)
                with m.If(byte):
                    with m.If(ferr):
                        answer(proto.RSP_ERR, 0, proto.ERR_FRAMING)
                        m.next = "DISCARD"
                    with m.Elif((data == proto.REQ_BEAT) | (data == proto.REQ_GET) | (data == proto.REQ_SYNC)):
                        m.d.sync += [kind.eq(data), crc.eq(crc16_byte(Const(0xFFFF, 16), data)), got.eq(1)]
                        m.next = "FRAME"
                    with m.Else():
                        answer(proto.RSP_ERR, 0, proto.ERR_UNKNOWN)
                        m.next = "DISCARD"
            with m.State("FRAME"):
                count_quiet()
                with m.If(byte):
                    with m.If(ferr):
                        answer(proto.RSP_ERR, 0, proto.ERR_FRAMING)
                        m.next = "DISCARD"
                    with m.Else():
                        m.d.sync += [crc.eq(crc16_byte(crc, data)), got.eq(got + 1)]
                        with m.If(got == 1):
                            m.d.sync += seq.eq(data)
                        with m.If(got == 2):
                            m.d.sync += sess_in.eq(data)
                        with m.If((got >= 3) & (got < 3 + n_in)):
                            m.d.sync += pbuf.eq(Cat(pbuf[8:], data))
                        with m.If(got + 1 == need):
                            m.next = "CHECK"
                with m.Elif(timed_out):
                    answer(proto.RSP_ERR, 0, proto.ERR_SHORT)
                    m.next = "IDLE"
            with m.State("CHECK"):
                m.next = "IDLE"
                repeat = have_last & (seq == last_seq)
                with m.If(crc != 0):
                    answer(proto.RSP_ERR, 0, proto.ERR_CRC)
                with m.Elif(kind == proto.REQ_SYNC):
                    m.d.comb += self.unit_reset.eq(1)
                    m.d.sync += [session.eq(sess_in), last_seq.eq(seq), have_last.eq(1),
                                 last_kind.eq(proto.RSP_ACK), last_value.eq(proto.ACK_OK), self.beat.valid.eq(0)]
                    answer(proto.RSP_ACK, seq, proto.ACK_OK)
                with m.Elif(sess_in != session):
                    answer(proto.RSP_ERR, seq, proto.ERR_SESSION)
                with m.Elif(repeat):
                    dup = (kind == proto.REQ_BEAT) & (last_kind == proto.RSP_ACK) & (last_value == proto.ACK_OK)
                    answer(last_kind, seq, Mux(dup, proto.ACK_DUPLICATE, last_value))
                with m.Elif(kind == proto.REQ_BEAT):
                    with m.If(self.beat.valid):
                        answer(proto.RSP_ACK, seq, proto.ACK_BUSY)      # not remembered: the host sends it again
                    with m.Else():
                        m.d.sync += [self.beat.valid.eq(1), beat_data.eq(pbuf[:self.in_width]),
                                     last_seq.eq(seq), have_last.eq(1),
                                     last_kind.eq(proto.RSP_ACK), last_value.eq(proto.ACK_OK)]
                        answer(proto.RSP_ACK, seq, proto.ACK_OK)
                with m.Else():                                          # GET
                    m.d.sync += [last_seq.eq(seq), have_last.eq(1)]
                    with m.If(self.result.valid):
                        m.d.comb += self.result.ready.eq(1)
                        m.d.sync += [hold.eq(self.result.payload), last_kind.eq(proto.RSP_OUT)]
                        answer(proto.RSP_OUT, seq)
                    with m.Else():
                        m.d.sync += [last_kind.eq(proto.RSP_ACK), last_value.eq(proto.ACK_EMPTY)]
                        answer(proto.RSP_ACK, seq, proto.ACK_EMPTY)
            with m.State("DISCARD"):
                count_quiet()
                with m.If(timed_out & ~byte):
                    m.next = "IDLE"
        return m


class LinkedUnit(wiring.Component):
    """`unit` behind a `LinkBridge`: serial `rx` in, serial `tx` out; SYNC resets the unit (not its memories)."""

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, unit: wiring.Component, *, divisor: int, timeout: int):
        in_width, out_width = check_bridgeable(unit)
        self.unit = unit
        self.bridge = LinkBridge(in_width, out_width, divisor=divisor, timeout=timeout)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = ResetInserter({"sync": self.bridge.unit_reset})(self.unit)
        m.submodules.bridge = bridge = self.bridge
        u = self.unit
        m.d.comb += [
            bridge.rx.eq(self.rx), self.tx.eq(bridge.tx),
            Value.cast(u.i.payload).eq(bridge.beat.payload), u.i.valid.eq(bridge.beat.valid),
            bridge.beat.ready.eq(u.i.ready),
            bridge.result.payload.eq(Value.cast(u.o.payload)), bridge.result.valid.eq(u.o.valid),
            u.o.ready.eq(bridge.result.ready),
        ]
        return m
