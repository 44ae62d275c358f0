"""The INT8-activation PE of the BitMoD array and what every PE kind shares (hwgen/bitmod/array.py; the FP16 PEs
are in hwgen/bitmod/fp16.py and hwgen/bitmod/fp16_row.py). Bit-exact with sw_model/bitmod/golden.py."""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.dequant import SerialDequantizer
from hwgen.bitmod.layouts import column_terms_layout, control_layout, group_sum_shape, output_shape
from hwgen.blocks.trees import adder_tree
from sw_model.bitmod.config import ACT_BITS, BitModConfig


class PEBase(wiring.Component):
    """The members every PE kind has: ctl (control_layout), terms (its column's decoded terms this cycle) and,
    with dequant="pe", scale_bit (its column's scale bit this cycle, MSB first) and y (the output register,
    from its own SerialDequantizer), or with dequant="column" hold (the group sum of the last group end, for
    the column's ColumnDequantizer). Subclasses add their activation inputs."""

    def __init__(self, config: BitModConfig, members: dict):
        self.config = config
        sig = {"ctl": In(control_layout(config)), "terms": In(column_terms_layout(config)), **members}
        if config.dequant == "pe":
            sig.update(scale_bit=In(1), y=Out(output_shape(config)))
        else:
            sig["hold"] = Out(group_sum_shape(config))
        super().__init__(sig)

    def _dequantize(self, m, hold, hold_e=None, y_sel=None):
        """Hand the held group sum to this PE's SerialDequantizer, or out on `hold` to the column's."""
        if self.config.dequant == "column":
            m.d.comb += self.hold.eq(hold)
            return
        m.submodules.dq = dq = SerialDequantizer(self.config)
        m.d.comb += [dq.ctl.eq(self.ctl), dq.value.eq(hold), dq.scale_bit.eq(self.scale_bit), self.y.eq(dq.y)]
        if hold_e is not None:
            m.d.comb += [dq.value_e.eq(hold_e), self.e.eq(dq.e)]
        if y_sel is not None:
            m.d.comb += dq.y_sel.eq(y_sel)

    def _group_accumulator(self, m, acc, acc_next):
        """acc takes acc_next on ctl.step; on ctl.handoff acc_next is held for the dequantizer and acc clears.
        Returns the held group sum."""
        hold = Signal(signed(self.config.group_acc_bits), name="dq_val")
        with m.If(self.ctl.step):
            m.d.sync += acc.eq(acc_next)
        with m.If(self.ctl.handoff):
            m.d.sync += [acc.eq(0), hold.eq(acc_next)]
        return hold


class Int8PE(PEBase):
    """One INT8-activation BitMoD PE: per term cycle S = sum_l a_l * (+-2^shift_l) (exact), acc += S << bsig;
    at a group end acc goes to the dequantizer (then y = sum over a vector's groups of acc * scale).

    Interface: PEBase's members plus a[lanes] (int8 activations of its row). Combinational from terms to the
    accumulator input; acc and the held sum update on the clock edge of a step / handoff cycle."""

    def __init__(self, config: BitModConfig):
        super().__init__(config, {"a": In(data.ArrayLayout(signed(ACT_BITS), config.lanes))})

    def elaborate(self, platform):
        m = Module()
        k = self.config.lanes
        prods, negs = [], []
        for l in range(k):
            t = self.terms.lanes[l]
            # a << shift (0..3, window decoding), negated as one's complement: the +1s are added after the tree
            mag, n = Signal(signed(ACT_BITS + 3), name=f"m{l}"), Signal(name=f"n{l}")
            prod = Signal(signed(ACT_BITS + 3), name=f"p{l}")
            m.d.comb += [mag.eq(Mux(t.zero, 0, self.a[l] << t.shift)), n.eq(~t.zero & t.neg),
                         prod.eq(mag ^ Cat(*([n] * (ACT_BITS + 3))).as_signed())]
            prods.append(prod)
            negs.append(n)
        s_sum = Signal(signed(ACT_BITS + 4 + (k - 1).bit_length()), name="S")
        m.d.comb += s_sum.eq(adder_tree(prods) + sum(negs[1:], negs[0]))
        W = self.config.group_acc_bits
        acc, acc_next = Signal(signed(W), name="acc"), Signal(signed(W), name="acc_next")
        m.d.comb += acc_next.eq(acc + (s_sum << self.terms.bsig))
        self._dequantize(m, self._group_accumulator(m, acc, acc_next))
        return m


__all__ = ["PEBase", "Int8PE"]
