"""Comparison designs for the BitMoD benchmarks (not registered as units).

`Int8MacArray`: a bit-parallel rows x cols output-stationary INT8 x INT8 MAC array with `macs` multipliers per
PE, the same stream style as `BitModArray` (weights down columns, activations across rows, `last` closes a
vector); II = 1. With macs = lanes / 2 it has the peak throughput of a BitMoD array at 4-bit weights.

`SerialHarness`: a pin-light wrapper for place and route: every unit input comes from a register loaded from a
1-bit serial shift chain, every unit output lands in a register shifted out on 1 pin, so nextpnr times the
unit register to register without needing hundreds of pins.
"""
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


class Int8MacArray(wiring.Component):
    """y[r, c] = sum over the beats of a vector of sum_m a[r, m] * w[c, m] (exact, `acc_bits` signed)."""

    def __init__(self, rows: int, cols: int, macs: int, acc_bits: int):
        self.rows, self.cols, self.macs, self.acc_bits = rows, cols, macs, acc_bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "w": data.ArrayLayout(8, cols * macs), "a": data.ArrayLayout(8, rows * macs), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"y": data.ArrayLayout(acc_bits, rows * cols)}))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take & p.last):
            m.d.sync += self.o.valid.eq(1)
        for r in range(self.rows):
            for c in range(self.cols):
                prods = [p.a[r * self.macs + k].as_signed() * p.w[c * self.macs + k].as_signed()
                         for k in range(self.macs)]
                total = prods[0]
                for x in prods[1:]:
                    total = total + x
                acc = Signal(signed(self.acc_bits), name=f"acc{r}_{c}")
                with m.If(take):
                    m.d.sync += acc.eq(acc + total)
                    with m.If(p.last):
                        m.d.sync += [acc.eq(0), self.o.payload.y[r * self.cols + c].eq(acc + total)]
        return m


class SerialHarness(wiring.Component):
    """Pins: sin, load, sout. Shift chain -> (load) -> input registers -> unit -> output registers ->
    (load) -> shift-out chain."""

    def __init__(self, unit: wiring.Component):
        self._unit = unit
        super().__init__({"sin": In(1), "load": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        ins, outs = [], []
        for path, member, value in unit.signature.flatten(unit):
            (ins if member.flow == wiring.In else outs).append(value)
        in_w = sum(len(v.as_value()) if hasattr(v, "as_value") else len(v) for v in ins)
        out_cat = Cat(*outs)
        chain, in_reg = Signal(in_w), Signal(in_w)
        out_reg, out_chain = Signal(len(out_cat)), Signal(len(out_cat))
        m.d.sync += [chain.eq(Cat(self.sin, chain[:-1])), out_reg.eq(out_cat)]
        with m.If(self.load):
            m.d.sync += [in_reg.eq(chain), out_chain.eq(out_reg)]
        with m.Else():
            m.d.sync += out_chain.eq(out_chain[1:])
        m.d.comb += [Cat(*ins).eq(in_reg), self.sout.eq(out_chain[0])]
        return m
