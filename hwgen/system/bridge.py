"""UART stream bridge: puts a unit with one input stream `i` and one output stream `o` behind a serial line.

Byte protocol (version 1, 8N1, see docs/boards.md for the full description):

    host -> board   'B' (0x42) + IN_BYTES payload bytes     one beat for the unit's `i` stream
                    'I' (0x49)                              identify
    board -> host   'O' (0x4F) + OUT_BYTES payload bytes    one beat from the unit's `o` stream
                    'I' (0x49) + version, IN_BYTES, OUT_BYTES, 4-byte design id (little-endian)
                    'E' (0x45) + code                       error: 1 short frame, 2 unknown command,
                                                            3 framing error, 4 overrun

Payloads are the stream's flat payload bits, little-endian: payload bit k is bit k % 8 of byte k // 8 (the field
offsets are those of the manifest). After an error with code 2, 3 or 4 the bridge ignores bytes until the line has
been idle for `timeout` cycles; a frame that stops for `timeout` cycles is dropped with error 1.

The host-side helpers at the bottom (`encode_beats`, `decode_replies`, ...) use no Amaranth; they are the
reference for the driver's `board` backend.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.system.uart import UARTRx, UARTTx, check_divisor
from sw_model.host.beats import pack_beats as _pack
from sw_model.host.beats import unpack_beats  # noqa: F401  (part of this API)

PROTOCOL_VERSION = 1
CMD_BEAT, CMD_IDENT = 0x42, 0x49                 # 'B', 'I'
REPLY_OUT, REPLY_IDENT, REPLY_ERROR = 0x4F, 0x49, 0x45   # 'O', 'I', 'E'
ERR_SHORT, ERR_UNKNOWN, ERR_FRAMING, ERR_OVERRUN = 1, 2, 3, 4
ERROR_NAMES = {ERR_SHORT: "short frame (line idle mid-frame)", ERR_UNKNOWN: "unknown command byte",
               ERR_FRAMING: "UART framing error (stop bit 0)", ERR_OVERRUN: "overrun (unit not ready for the beat)"}
IDENT_BYTES = 8
MAX_PAYLOAD_BYTES = 255


def payload_bytes(width: int) -> int:
    return (width + 7) // 8


class StreamBridge(wiring.Component):
    """Bytes on `rx` -> beats on `beat` (payload `in_width` bits); beats on `result` -> bytes on `tx`.

    One beat is assembled in a shift register and offered on `beat` until taken; a data byte of the next frame
    that arrives while it is still untaken is an overrun (error 4). Replies leave one message at a time; a pending
    error reply goes first, then an identify reply, then a `result` beat (`result.ready` is 1 only when the
    transmitter is between messages and no error/identify reply waits). At most one error reply is pending; a
    later error replaces an unsent one. `timeout` counts clock cycles during which no byte is on the line."""

    def __init__(self, in_width: int, out_width: int, *, divisor: int, timeout: int, ident: int = 0):
        for field, width in (("in_width", in_width), ("out_width", out_width)):
            if not isinstance(width, int) or not 1 <= width <= 8 * MAX_PAYLOAD_BYTES:
                raise ValueError(f"{field}: got {width!r}, allowed: 1 to {8 * MAX_PAYLOAD_BYTES} bits "
                                 f"(the identify reply gives payload sizes in one byte)")
        self.divisor = check_divisor(divisor)
        if not isinstance(timeout, int) or timeout < 2 * divisor:
            raise ValueError(f"timeout: got {timeout!r}, allowed: an integer >= 2 * divisor = {2 * divisor} cycles "
                             f"(shorter would cut the gap between the bytes of one frame)")
        if not isinstance(ident, int) or not 0 <= ident < 1 << 32:
            raise ValueError(f"ident: got {ident!r}, allowed: an integer from 0 to 2**32 - 1")
        self.in_width, self.out_width, self.timeout, self.ident = in_width, out_width, timeout, ident
        self.in_bytes, self.out_bytes = payload_bytes(in_width), payload_bytes(out_width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "beat": Out(stream.Signature(in_width)), "result": In(stream.Signature(out_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        n_in, n_out = self.in_bytes, self.out_bytes

        err_pending, err_code, ident_pending = Signal(), Signal(8), Signal()

        # Transmit side: one message at a time from a byte shift register.
        msg_bytes = max(1 + n_out, IDENT_BYTES, 2)
        obuf = Signal(8 * msg_bytes)
        left = Signal(range(msg_bytes + 1))
        idle = left == 0
        m.d.comb += self.result.ready.eq(idle & ~err_pending & ~ident_pending)
        with m.If(idle):
            with m.If(err_pending):
                m.d.sync += [obuf.eq(Cat(Const(REPLY_ERROR, 8), err_code)), left.eq(2), err_pending.eq(0)]
            with m.Elif(ident_pending):
                m.d.sync += [obuf.eq(Cat(Const(REPLY_IDENT, 8), Const(PROTOCOL_VERSION, 8), Const(n_in, 8),
                                         Const(n_out, 8), Const(self.ident, 32))),
                             left.eq(IDENT_BYTES), ident_pending.eq(0)]
            with m.Elif(self.result.valid):
                m.d.sync += [obuf.eq(Cat(Const(REPLY_OUT, 8), self.result.payload)), left.eq(1 + n_out)]
        with m.Else():
            m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq(obuf[:8])]
            with m.If(utx.i.ready):
                m.d.sync += [obuf.eq(obuf[8:]), left.eq(left - 1)]

        # Receive side: command byte, then payload bytes shifted in from the top (byte 0 ends up at bit 0).
        buf = Signal(8 * n_in)
        got = Signal(range(n_in))
        quiet = Signal(range(self.timeout + 1))
        timed_out = quiet == self.timeout
        byte, data, ferr = urx.o.valid, urx.o.payload.data, urx.o.payload.framing_error
        taken = self.beat.valid & self.beat.ready
        m.d.comb += self.beat.payload.eq(buf[:self.in_width])
        with m.If(taken):
            m.d.sync += self.beat.valid.eq(0)

        def error(code):
            m.d.sync += [err_pending.eq(1), err_code.eq(code)]

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
                        error(ERR_FRAMING)
                        m.next = "DISCARD"
                    with m.Elif(data == CMD_BEAT):
                        m.d.sync += got.eq(0)
                        m.next = "DATA"
                    with m.Elif(data == CMD_IDENT):
                        m.d.sync += ident_pending.eq(1)
                    with m.Else():
                        error(ERR_UNKNOWN)
                        m.next = "DISCARD"
            with m.State("DATA"):
                count_quiet()
                with m.If(byte):
                    with m.If(ferr):
                        error(ERR_FRAMING)
                        m.next = "DISCARD"
                    with m.Elif(self.beat.valid & ~taken):
                        error(ERR_OVERRUN)
                        m.next = "DISCARD"
                    with m.Else():
                        m.d.sync += [buf.eq(Cat(buf[8:], data)), got.eq(got + 1)]
                        with m.If(got == n_in - 1):
                            m.d.sync += self.beat.valid.eq(1)
                            m.next = "IDLE"
                with m.Elif(timed_out):
                    error(ERR_SHORT)
                    m.next = "IDLE"
            with m.State("DISCARD"):
                count_quiet()
                with m.If(timed_out & ~byte):
                    m.next = "IDLE"
        return m


def check_bridgeable(unit: wiring.Component) -> tuple[int, int]:
    """(input payload width, output payload width) of a unit with exactly the streams `i` (in) and `o` (out)."""
    members = unit.signature.members
    extra = sorted(set(members) - {"i", "o"})
    ok = ("i" in members and "o" in members and members["i"].is_signature and members["o"].is_signature
          and isinstance(members["i"].signature, stream.Signature) and members["i"].flow == In
          and isinstance(members["o"].signature, stream.Signature) and members["o"].flow == Out)
    if extra or not ok:
        raise ValueError(f"bridge: {type(unit).__name__} has ports {', '.join(sorted(members))}; allowed: exactly "
                         f"an input stream `i` and an output stream `o` (put sideband inputs into the `i` payload)")
    return Value.cast(unit.i.payload).shape().width, Value.cast(unit.o.payload).shape().width


class BridgedUnit(wiring.Component):
    """`unit` behind a `StreamBridge`: serial `rx` in, serial `tx` out; the unit is submodule `unit`."""

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, unit: wiring.Component, *, divisor: int, timeout: int, ident: int = 0):
        in_width, out_width = check_bridgeable(unit)
        self.unit = unit
        self.bridge = StreamBridge(in_width, out_width, divisor=divisor, timeout=timeout, ident=ident)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        m.submodules.bridge = bridge = self.bridge
        m.d.comb += [
            bridge.rx.eq(self.rx), self.tx.eq(bridge.tx),
            Value.cast(unit.i.payload).eq(bridge.beat.payload), unit.i.valid.eq(bridge.beat.valid),
            bridge.beat.ready.eq(unit.i.ready),
            bridge.result.payload.eq(Value.cast(unit.o.payload)), bridge.result.valid.eq(unit.o.valid),
            unit.o.ready.eq(bridge.result.ready),
        ]
        return m


# ------------------------------------------------------------------------------------------------------------
# Host side (no Amaranth): the reference for the driver's `board` backend.
# ------------------------------------------------------------------------------------------------------------

def _field_values(field: dict, values, beats: int) -> list[tuple[int, int, np.ndarray]]:
    """(bit offset, width, per-beat integer array) of each element of one manifest field."""
    arr = np.asarray(values, dtype=np.int64)
    count = field.get("count")
    if count is None:
        if arr.shape != (beats,):
            raise ValueError(f"{field['name']}: got shape {arr.shape}, allowed: ({beats},)")
        return [(field["offset"], field["width"], arr)]
    if arr.shape != (beats, count):
        raise ValueError(f"{field['name']}: got shape {arr.shape}, allowed: ({beats}, {count})")
    w = field["elem_width"]
    return [(field["offset"] + k * w, w, arr[:, k]) for k in range(count)]


def pack_beats(fields: list[dict], inputs: dict) -> list[int]:
    """Flat payload integers, one per beat, from field name -> array (manifest `fields` of stream `i`)."""
    missing = sorted({f["name"] for f in fields} - set(inputs))
    unknown = sorted(set(inputs) - {f["name"] for f in fields})
    if missing or unknown:
        raise ValueError(f"inputs: missing fields {missing}, unknown fields {unknown}")
    beats = len(np.asarray(inputs[fields[0]["name"]]))
    for field in fields:
        for _, width, column in _field_values(field, inputs[field["name"]], beats):
            if column.size and (column.min() < 0 or column.max() >= 1 << width):
                raise ValueError(f"{field['name']}: values must be unsigned {width}-bit codes")
    return _pack(fields, inputs)


def encode_beat(word: int, in_bytes: int) -> bytes:
    return bytes([CMD_BEAT]) + word.to_bytes(in_bytes, "little")


def decode_replies(stream_bytes: bytes, out_bytes: int) -> list[tuple]:
    """Split the board's byte stream into ("O", int) / ("E", code) / ("I", dict) messages.

    Raises ValueError on a byte that starts no message or on a truncated last message."""
    msgs, k, data = [], 0, bytes(stream_bytes)
    while k < len(data):
        head = data[k]
        size = {REPLY_OUT: 1 + out_bytes, REPLY_ERROR: 2, REPLY_IDENT: IDENT_BYTES}.get(head)
        if size is None:
            raise ValueError(f"reply byte {k}: got 0x{head:02x}, allowed: 'O', 'E' or 'I'")
        if k + size > len(data):
            raise ValueError(f"reply byte {k}: message 0x{head:02x} truncated ({len(data) - k} of {size} bytes)")
        body = data[k + 1:k + size]
        if head == REPLY_OUT:
            msgs.append(("O", int.from_bytes(body, "little")))
        elif head == REPLY_ERROR:
            msgs.append(("E", body[0]))
        else:
            msgs.append(("I", {"version": body[0], "in_bytes": body[1], "out_bytes": body[2],
                               "ident": int.from_bytes(body[3:7], "little")}))
        k += size
    return msgs
