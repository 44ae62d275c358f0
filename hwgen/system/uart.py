"""8N1 UART receiver and transmitter with a configurable clock divisor (clock cycles per bit).

Amaranth 0.5 ships no UART (the `amaranth-stdio` package on PyPI is an empty placeholder), hence this one.
Bits are LSB first: one start bit (0), 8 data bits, one stop bit (1); the idle line is 1.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4
MAX_DIVISOR = 1 << 20


def check_divisor(divisor) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or not MIN_DIVISOR <= divisor <= MAX_DIVISOR:
        raise ValueError(f"divisor: got {divisor!r}, allowed: an integer from {MIN_DIVISOR} to {MAX_DIVISOR} "
                         f"(clock cycles per bit)")
    return divisor


def divisor_for(clock_hz: float, baud: int) -> int:
    """The divisor for `baud` at `clock_hz`; refuses rates more than 2 % off (8N1 tolerates about 4 % in total)."""
    divisor = round(clock_hz / baud)
    error = abs(clock_hz / divisor - baud) / baud if divisor else 1.0
    if divisor < MIN_DIVISOR or error > 0.02:
        raise ValueError(f"baud: got {baud}, allowed: a rate reachable from the {clock_hz / 1e6:g} MHz clock within "
                         f"2 % with at least {MIN_DIVISOR} cycles per bit (e.g. 115200)")
    return check_divisor(divisor)


RX_LAYOUT = data.StructLayout({"data": 8, "framing_error": 1})


class UARTRx(wiring.Component):
    """Receiver. `rx` is the (asynchronous) line; it goes through a 2-flop synchronizer.

    A falling edge starts a byte; the start bit is re-checked half a bit later (a shorter glitch is ignored), then
    each bit is sampled in its middle, every `divisor` cycles. The byte leaves on `o` (always ready: one-cycle
    `valid` pulse) in the middle of the stop bit, with `framing_error` set when the stop bit reads 0; after a
    framing error the receiver waits for the line to return to 1 (a break does not start new bytes). `busy` is 1
    from the start edge to the stop bit sample."""

    rx: In(1, init=1)
    o: Out(stream.Signature(RX_LAYOUT, always_ready=True))
    busy: Out(1)

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        count = Signal(range(self.divisor))
        bits = Signal(range(8))
        shift = Signal(8)
        m.d.sync += self.o.valid.eq(0)
        with m.If(count != 0):
            m.d.sync += count.eq(count - 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += count.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                with m.If(count == 0):
                    m.d.sync += [count.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
                    with m.If(line):          # glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                m.d.comb += self.busy.eq(1)
                with m.If(count == 0):
                    m.d.sync += [count.eq(self.divisor - 1), shift.eq(shift[1:] | (line << 7)), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.comb += self.busy.eq(1)
                with m.If(count == 0):
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(shift),
                                 self.o.payload.framing_error.eq(~line)]
                    m.next = "IDLE"
                    with m.If(~line):
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter. Takes a byte from `i` when idle (`i.ready` = 1 only between frames) and drives `tx` for
    10 bit times of `divisor` cycles each; `tx` comes straight from a flop (no glitches on the pin)."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        frame = Signal(10, init=0x3FF)      # stop bit, data LSB first, start bit; shifts out bit 0 first
        left = Signal(range(11))
        count = Signal(range(self.divisor))
        m.d.comb += self.tx.eq(frame[0])
        m.d.comb += self.i.ready.eq(left == 0)
        with m.If(left == 0):
            with m.If(self.i.valid):
                m.d.sync += [frame.eq((1 << 9) | (self.i.payload << 1)), left.eq(10), count.eq(self.divisor - 1)]
        with m.Elif(count == 0):
            m.d.sync += [frame.eq((1 << 9) | frame[1:]), left.eq(left - 1), count.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += count.eq(count - 1)
        return m
