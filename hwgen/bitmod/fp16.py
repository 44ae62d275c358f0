"""FP16-activation blocks of the BitMoD array (used by hwgen/bitmod/array.py when `config.act == "fp16"`): the
product-aligned PE and the rows' Inf/NaN flags. Bit-exact with sw_model/bitmod/fp16.py.

Per PE and term cycle: k lane exponents e_eff + shift (dead lanes 0), their max P, per-lane right shift of the
11-bit mantissa (with `guard_bits` extra low bits) by P - p_l (magnitude truncation), sign XOR, adder tree,
then a block-floating-point group accumulator (one shifter: the operand with the smaller exponent is shifted
right arithmetically), the PE's bit-serial dequantizer (hwgen/bitmod/dequant.py) on the group mantissa, and the
same block-floating-point add into the output accumulator at the group end.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.fp16_ops import MAN_BITS, align_add, decode_act
from hwgen.bitmod.layouts import FP16_ACT, control_layout
from hwgen.bitmod.pe import PEBase
from hwgen.blocks.trees import adder_tree, max_tree
from sw_model.bitmod.config import EXP_BITS, BitModConfig


class Fp16PE(PEBase):
    """One product-aligned FP16 BitMoD PE (`act="fp16", align="product"`, always `dequant="pe"`).

    Per term cycle: S = sum_l +-(m_l << guard) >> (P - p_l), E_s = P + bsig (0 when no lane is live);
    (acc, acc_e) += (S, E_s) in block floating point; at a group end (acc, acc_e) goes to the PE's
    SerialDequantizer, whose output (y, e) means y * 2^(e - 26 - guard).
    Interface: PEBase's members plus acts[lanes] (its row's decoded activations, FP16_ACT) and e. Timing as
    Int8PE."""

    def __init__(self, config: BitModConfig):
        super().__init__(config, {"acts": In(data.ArrayLayout(FP16_ACT, config.lanes)), "e": Out(EXP_BITS)})

    def elaborate(self, platform):
        m = Module()
        cfg, ctl = self.config, self.ctl
        g, k, W = cfg.guard_bits, cfg.lanes, cfg.group_acc_bits
        p_lane, live_lane = [], []
        for l in range(k):
            act, t = self.acts[l], self.terms.lanes[l]
            live, p = Signal(name=f"live{l}"), Signal(EXP_BITS, name=f"p{l}")
            m.d.comb += [live.eq(act.live & ~t.zero), p.eq(Mux(live, act.e + t.shift, 0))]
            p_lane.append(p)
            live_lane.append(live)
        big_p = Signal(EXP_BITS, name="big_p")
        m.d.comb += big_p.eq(max_tree(p_lane))
        prods = []
        for l in range(k):
            act, t = self.acts[l], self.terms.lanes[l]
            delta = Signal(EXP_BITS, name=f"d{l}")
            mag = Signal(MAN_BITS + g, name=f"mag{l}")
            prod = Signal(signed(MAN_BITS + g + 1), name=f"p{l}_v")
            m.d.comb += [delta.eq(big_p - p_lane[l]),
                         mag.eq(Mux(live_lane[l], (act.man << g) >> delta, 0)),    # truncating alignment
                         prod.eq(Mux(act.sign ^ t.neg, -mag, mag))]
            prods.append(prod)
        s_sum, e_sum = Signal(signed(W), name="S"), Signal(EXP_BITS, name="Es")
        m.d.comb += [s_sum.eq(adder_tree(prods)), e_sum.eq(Mux(big_p != 0, big_p + self.terms.bsig, 0))]

        acc, acc_e = Signal(signed(W), name="acc"), Signal(EXP_BITS, name="acc_e")
        acc_next, acc_e_next = align_add(m, acc, acc_e, s_sum, e_sum, W, "ga")
        dq_val, dq_e = Signal(signed(W), name="dq_val"), Signal(EXP_BITS, name="dq_e")
        with m.If(ctl.step):
            m.d.sync += [acc.eq(acc_next), acc_e.eq(acc_e_next)]
        with m.If(ctl.handoff):
            m.d.sync += [acc.eq(0), acc_e.eq(0), dq_val.eq(acc_next), dq_e.eq(acc_e_next)]
        self._dequantize(m, dq_val, hold_e=dq_e)
        return m


class NonfiniteFlags(wiring.Component):
    """Per row: sticky OR of the Inf/NaN activations over a vector's compute beats (taken at each beat's end,
    `ctl.beat_done`), handed to the dequantizer stage with the last group's handoff and to `flags[r]` with the
    vector's commit. With the decode pipeline the handoff is one cycle later, when the sticky bit already holds
    the last beat (the next compute beat cannot finish in that cycle: it takes >= 2).
    Interface: ctl (control_layout), specials[rows] (per lane: the activation in the term engine's beat is
    Inf/NaN), flags (one bit per row, changes in the cycle after a commit with dq_last)."""

    def __init__(self, config: BitModConfig):
        self.config = config
        super().__init__({"ctl": In(control_layout(config)),
                          "specials": In(data.ArrayLayout(config.lanes, config.rows)), "flags": Out(config.rows)})

    def elaborate(self, platform):
        m = Module()
        ctl = self.ctl
        for r in range(self.config.rows):
            any_nf = Signal(name=f"beat{r}")
            m.d.comb += any_nf.eq(self.specials[r].any())
            sticky, dq_nf = Signal(name=f"sticky{r}"), Signal(name=f"dq{r}")
            with m.If(ctl.beat_done):
                m.d.sync += sticky.eq(sticky | any_nf)
            with m.If(ctl.handoff & ctl.last):
                m.d.sync += [dq_nf.eq(sticky if self.config.pipeline else sticky | any_nf), sticky.eq(0)]
            with m.If(ctl.commit & ctl.dq_last):
                m.d.sync += self.flags[r].eq(dq_nf)
        return m


def raw_specials(bits) -> Cat:
    """The Inf/NaN flags of FP16 patterns (exponent field all ones), one bit per pattern."""
    return Cat(*[b[10:15] == 31 for b in bits])


__all__ = ["MAN_BITS", "decode_act", "align_add", "Fp16PE", "NonfiniteFlags", "raw_specials"]
