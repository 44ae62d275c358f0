"""Multicast routing-table unit of the spiking fabric (golden model: `sw_model.snn.fabric.route_stream`).

A table memory holds `fanout` entries per source neuron (2^src_bits sources, global ids), each (valid, destination
core, destination axon), written through the input stream. A SPIKE beat from source `src` reads the row entry by
entry and sends one AER packet (core, axon, src) per valid entry: source-keyed multicast.

Input stream `i`: op (0 SPIKE, 1 WRITE), src, entry, valid, core, axon. Output stream `o`: core, axon, src.
Cycle model (`RouterConfig.cycles`), no output stalls: WRITE 1; SPIKE 2 * fanout (per entry: read, then send or
skip). Stream rules: o.valid never waits for o.ready; while stalled the read port is disabled, so the payload (the
memory's read data) stays stable; the input payload is held by the source until i.ready.
"""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from sw_model.snn.fabric import ROUTE_WRITE, RouterConfig


class MulticastRouter(wiring.Component):
    """Source-keyed multicast routing table: one SPIKE in, one packet out per valid table entry of its source."""

    def __init__(self, config: RouterConfig):
        self.config = config
        c = config
        ebits = max(1, ceil_log2(c.fanout))
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"op": 1, "src": c.src_bits, "entry": ebits, "valid": 1,
                                                        "core": c.core_bits, "axon": c.axon_bits}))),
            "o": Out(stream.Signature(data.StructLayout({"core": c.core_bits, "axon": c.axon_bits,
                                                         "src": c.src_bits})))})

    def timing(self) -> dict:
        return {"latency": None, "ii": None, "cycles": {"write": 1, "spike": 2 * self.config.fanout}}

    def elaborate(self, platform):
        c, m = self.config, Module()
        ebits = ceil_log2(c.fanout)
        entry = data.StructLayout({"valid": 1, "core": c.core_bits, "axon": c.axon_bits})
        m.submodules.table = table = Memory(shape=entry, depth=(1 << ebits) << c.src_bits, init=[])
        wr, rd = table.write_port(), table.read_port()
        p = self.i.payload
        k = Signal(range(max(2, c.fanout)))         # entry being read / checked
        check = Signal()                            # 0: read entry k; 1: rd.data holds entry k
        m.d.comb += rd.en.eq(0)

        with m.If(self.i.valid & (p.op == ROUTE_WRITE)):
            m.d.comb += [wr.addr.eq(Cat(p.entry[:ebits], p.src)), wr.data.valid.eq(p.valid),
                         wr.data.core.eq(p.core), wr.data.axon.eq(p.axon), wr.en.eq(1), self.i.ready.eq(1)]
        with m.Elif(self.i.valid):
            with m.If(~check):
                m.d.comb += [rd.addr.eq(Cat(k[:ebits], p.src)), rd.en.eq(1)]
                m.d.sync += check.eq(1)
            with m.Else():
                m.d.comb += [self.o.valid.eq(rd.data.valid), self.o.payload.core.eq(rd.data.core),
                             self.o.payload.axon.eq(rd.data.axon), self.o.payload.src.eq(p.src)]
                with m.If(~rd.data.valid | self.o.ready):
                    m.d.sync += check.eq(0)
                    with m.If(k == c.fanout - 1):
                        m.d.sync += k.eq(0)
                        m.d.comb += self.i.ready.eq(1)
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
        return m
