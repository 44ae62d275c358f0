"""Comparison designs for the BitMoD benchmarks (not registered as units).

`Int8MacArray`: a bit-parallel rows x cols output-stationary INT8 x INT8 MAC array with `macs` multipliers per
PE, the same stream style as `BitModArray` (weights down columns, activations across rows, `last` closes a
vector); II = 1. With macs = lanes / 2 it has the peak throughput of a BitMoD array at 4-bit weights.

`Int8Fp16MacArray`: the same with FP16 activations: `macs` bit-parallel INT8 x FP16-mantissa multipliers per PE,
the products aligned to their largest exponent with `guard` truncation bits and accumulated in the same
block-floating-point format as the FP16 BitMoD PE (hwgen/bitmod/fp16.py), II = 1. With macs = lanes / 2 it has the
peak throughput of a FP16 BitMoD array at 4-bit weights. With `prealign=True` the activations are aligned once
per row and beat to the row's running block exponent (hwgen/bitmod/fp16_row.RowAligner, the same rule as the
BitMoD array with align="row"), so a PE multiplies |w| by a pre-aligned 14-bit mantissa exactly and only shifts
its accumulator by the row's amount: what a designer of an activation-broadcast array would do.

`SerialHarness`: a pin-light wrapper for place and route: every unit input comes from a register loaded from a
1-bit serial shift chain, every unit output lands in a register shifted out on 1 pin, so nextpnr times the
unit register to register without needing hundreds of pins.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.fp16_ops import align_add, decode_act
from hwgen.bitmod.fp16_row import RowAligner
from hwgen.blocks.trees import max_tree


class Int8MacArray(wiring.Component):
    """y[r, c] = sum over the beats of a vector of sum_m a[r, m] * w[c, m] (exact, `acc_bits` signed); a is INT8,
    w is signed `weight_bits` wide (8: INT8 x INT8; 4: the INT8 x INT4 array a 4-bit-weight design competes with)."""

    def __init__(self, rows: int, cols: int, macs: int, acc_bits: int, weight_bits: int = 8):
        if weight_bits not in range(2, 9):
            raise ValueError(f"weight_bits: got {weight_bits!r}, allowed: 2..8")
        self.rows, self.cols, self.macs, self.acc_bits = rows, cols, macs, acc_bits
        self.weight_bits = weight_bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "w": data.ArrayLayout(weight_bits, cols * macs), "a": data.ArrayLayout(8, rows * macs), "last": 1}))),
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
                prods = []
                for k in range(self.macs):
                    # a named 16-bit product per multiplier (also sidesteps a Yosys 0.70 ABC9 assertion on ECP5
                    # seen with 4 anonymous products per PE)
                    prod = Signal(signed(8 + self.weight_bits), name=f"prod{r}_{c}_{k}")
                    m.d.comb += prod.eq(p.a[r * self.macs + k].as_signed() * p.w[c * self.macs + k].as_signed())
                    prods.append(prod)
                total = prods[0]
                for x in prods[1:]:
                    total = total + x
                acc = Signal(signed(self.acc_bits), name=f"acc{r}_{c}")
                with m.If(take):
                    m.d.sync += acc.eq(acc + total)
                    with m.If(p.last):
                        m.d.sync += [acc.eq(0), self.o.payload.y[r * self.cols + c].eq(acc + total)]
        return m


class Int8Fp16MacArray(wiring.Component):
    """y * 2^(e - 25 - guard) ~= sum over the beats of a vector of sum_m a[r, m] * w[c, m], a FP16 (bit patterns),
    w signed `weight_bits` (default 8; 4 for the INT4 x FP16 array); per PE and cycle: |w| * mantissa (19 bits),
    shift right by (max exponent - exponent) after `guard`
    extra bits (truncation), sign, adder tree, block-floating-point accumulator. Inf/NaN count as zero and set
    nonfinite[r]. Resource baseline only (see benchmarks/bitmod_hw.py); checked in tests/bitmod/test_bitmod_hw_fp16.py."""

    def __init__(self, rows: int, cols: int, macs: int, acc_bits: int, guard: int = 3, prealign: bool = False,
                 weight_bits: int = 8):
        if weight_bits not in range(2, 9):
            raise ValueError(f"weight_bits: got {weight_bits!r}, allowed: 2..8")
        self.rows, self.cols, self.macs, self.acc_bits, self.guard = rows, cols, macs, acc_bits, guard
        self.prealign, self.weight_bits = prealign, weight_bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "w": data.ArrayLayout(weight_bits, cols * macs), "a": data.ArrayLayout(16, rows * macs), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "y": data.ArrayLayout(acc_bits, rows * cols), "e": data.ArrayLayout(6, rows * cols),
                "nonfinite": data.ArrayLayout(1, rows)}))),
        })

    def elaborate(self, platform):
        m = Module()
        p, g, k = self.i.payload, self.guard, self.macs
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take & p.last):
            m.d.sync += self.o.valid.eq(1)
        acts = [[decode_act(m, p.a[r * k + l], f"a{r}_{l}") for l in range(k)] for r in range(self.rows)]
        for r in range(self.rows):
            nf = Signal(name=f"nf{r}")
            beat_nf = Cat(*[x.special for x in acts[r]]).any()
            with m.If(take):
                m.d.sync += nf.eq(nf | beat_nf)
                with m.If(p.last):
                    m.d.sync += [nf.eq(0), self.o.payload.nonfinite[r].eq(nf | beat_nf)]
        wmag = []
        for c in range(self.cols):
            for l in range(k):
                w = p.w[c * k + l].as_signed()
                mag = Signal(self.weight_bits, name=f"w{c}_{l}_mag")
                m.d.comb += mag.eq(Mux(w < 0, -w, w))
                wmag.append((w < 0, mag))
        if self.prealign:
            self._prealigned(m, acts, wmag, take)
            return m
        for r in range(self.rows):
            for c in range(self.cols):
                name = f"pe{r}_{c}"
                exps, mags = [], []
                for l in range(k):
                    act = acts[r][l]
                    wneg, wm = wmag[c * k + l]
                    prod = Signal(19, name=f"{name}_prod{l}")
                    e = Signal(6, name=f"{name}_e{l}")
                    m.d.comb += [prod.eq(wm * act.man), e.eq(Mux(act.live & (wm != 0), act.e, 0))]
                    exps.append(e)
                    mags.append((act.sign ^ wneg, prod))
                big = Signal(6, name=f"{name}_big")
                m.d.comb += big.eq(max_tree(exps))
                terms = []
                for l, (neg, prod) in enumerate(mags):
                    al = Signal(19 + g, name=f"{name}_al{l}")
                    v = Signal(signed(20 + g), name=f"{name}_v{l}")
                    d = Signal(6, name=f"{name}_d{l}")
                    m.d.comb += [d.eq(big - exps[l]), al.eq(Mux(exps[l] != 0, (prod << g) >> d, 0)),
                                 v.eq(Mux(neg, -al, al))]
                    terms.append(v)
                total = terms[0]
                for x in terms[1:]:
                    total = total + x
                s_sum = Signal(signed(self.acc_bits), name=f"{name}_S")
                m.d.comb += s_sum.eq(total)
                acc, acc_e = Signal(signed(self.acc_bits), name=f"{name}_acc"), Signal(6, name=f"{name}_acc_e")
                nxt, nxt_e = align_add(m, acc, acc_e, s_sum, big, self.acc_bits, name)
                with m.If(take):
                    m.d.sync += [acc.eq(nxt), acc_e.eq(nxt_e)]
                    with m.If(p.last):
                        m.d.sync += [acc.eq(0), acc_e.eq(0), self.o.payload.y[r * self.cols + c].eq(nxt),
                                     self.o.payload.e[r * self.cols + c].eq(nxt_e)]
        return m


    def _prealigned(self, m, acts, wmag, take):
        p, g, k = self.i.payload, self.guard, self.macs
        for r in range(self.rows):
            m.submodules[f"row{r}"] = al = RowAligner(k, g)
            m.d.comb += [al.acts[l].eq(acts[r][l]) for l in range(k)] + [al.step.eq(take), al.clear.eq(take & p.last)]
            e_new, d_a = al.e_new, al.d_a
            for c in range(self.cols):
                name = f"pe{r}_{c}"
                terms, negs = [], []
                for l in range(k):
                    s, mag = al.lanes[l].sign, al.lanes[l].mag
                    wneg, wm = wmag[c * k + l]
                    prod = Signal(19 + g, name=f"{name}_prod{l}")
                    n = Signal(name=f"{name}_n{l}")
                    v = Signal(signed(20 + g), name=f"{name}_v{l}")
                    # the same one's complement negation (+1s added once) as the BitMoD row PE
                    m.d.comb += [prod.eq(wm * mag), n.eq(s ^ wneg), v.eq(Cat(prod, 0) ^ Cat(*([n] * (20 + g))))]
                    terms.append(v)
                    negs.append(n)
                total = sum(terms[1:], terms[0]) + sum(negs[1:], negs[0])
                acc = Signal(signed(self.acc_bits), name=f"{name}_acc")
                nxt = Signal(signed(self.acc_bits), name=f"{name}_nxt")
                m.d.comb += nxt.eq((acc >> d_a) + total)
                with m.If(take):
                    m.d.sync += acc.eq(nxt)
                    with m.If(p.last):
                        m.d.sync += [acc.eq(0), self.o.payload.y[r * self.cols + c].eq(nxt),
                                     self.o.payload.e[r * self.cols + c].eq(e_new)]


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
