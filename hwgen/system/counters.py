"""The system's performance counters: a free-running cycle counter and four event counters per engine."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sw_model.system.config import HEADER_ENGINE_BITS

COUNTER_NAMES = ("cycles", "busy", "in_beats", "out_beats", "in_stall")
COUNTER_BITS = 48

# One engine's events in one cycle (one bit per counter after `cycles`): its run is active, a beat enters the
# engine, a beat leaves it, a beat is offered to the engine but not taken.
ENGINE_EVENTS = data.StructLayout({name: 1 for name in COUNTER_NAMES[1:]})
# The COUNTERS reply of one engine, in COUNTER_NAMES order.
COUNTER_VALUES = data.StructLayout({name: unsigned(COUNTER_BITS) for name in COUNTER_NAMES})


class PerfCounters(wiring.Component):
    """`cycles` (every cycle) and, per engine e, one counter per field of `events[e]` (counts the cycles the
    field is high); all `COUNTER_BITS` wide, wrapping.

    `clear` zeroes every counter on the next edge (that cycle's events are not counted; `cycles` restarts at 0).
    `values` shows `cycles` and engine `engine`'s counters (zero for an index with no engine), combinationally
    from the registers, so a value read in the cycle after an event includes it."""

    def __init__(self, engines: int):
        if not isinstance(engines, int) or not 1 <= engines <= 1 << HEADER_ENGINE_BITS:
            raise ValueError(f"engines: got {engines!r}, allowed: an integer from 1 to {1 << HEADER_ENGINE_BITS}")
        self.n_engines = engines
        super().__init__({"clear": In(1), "events": In(data.ArrayLayout(ENGINE_EVENTS, engines)),
                          "engine": In(HEADER_ENGINE_BITS), "values": Out(COUNTER_VALUES)})

    def elaborate(self, platform):
        m = Module()
        cycles = Signal(COUNTER_BITS)
        m.d.sync += cycles.eq(Mux(self.clear, 0, cycles + 1))
        m.d.comb += self.values.cycles.eq(cycles)
        for e in range(self.n_engines):
            for name in COUNTER_NAMES[1:]:
                count = Signal(COUNTER_BITS, name=f"e{e}_{name}")
                with m.If(self.clear):
                    m.d.sync += count.eq(0)
                with m.Elif(getattr(self.events[e], name)):
                    m.d.sync += count.eq(count + 1)
                with m.If(self.engine == e):
                    m.d.comb += getattr(self.values, name).eq(count)
        return m
