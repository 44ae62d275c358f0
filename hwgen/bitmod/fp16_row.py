"""Row-aligned FP16 blocks of the BitMoD array (`BitModConfig(act="fp16", align="row")`, used by
hwgen/bitmod/array.py): the row aligner, the row unit around it and the row PE. Bit-exact with
sw_model/bitmod/fp16_row.py.

Why: in an output-stationary array the k activations of a beat are the same for every PE of a row, so their
alignment (max exponent, per-lane barrel shift) is done once per row and beat, not per PE and cycle. A PE then
shifts a pre-aligned mantissa LEFT by its weight term's lane shift (0..4, exact), sums k lanes, shifts the sum
left by bsig (exact) and adds it to its group accumulator, which is right-shifted only when the row's block
exponent grows (the amount is the row's, shared). The output accumulator's exponent is also the row's; its
right shift at a group end runs during the 8 dequantization cycles by 16 / 4 / 1 / 0 bits per cycle (floor
shifts compose exactly), so a PE needs no full output barrel shifter.

Row r: E_r (block exponent, 0..30), per beat E' = max(E_r, max live e_eff), m''_l = (m_l << g) >> (E' - e_l),
dA = E' - E_r; at a group end the row hands E' to its dequant exponent dq_e and loads rem = E' - E_y (the
pending output shift); at the commit E_y = dq_e.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.layouts import (FP16_ACT, MAN_BITS, aligned_lane_layout, control_layout, row_layout,
                                  row_shift_shape)
from hwgen.bitmod.pe import PEBase
from hwgen.blocks.trees import adder_tree, max_tree, maximum
from sw_model.bitmod.config import EXP_BITS, BitModConfig


class RowAligner(wiring.Component):
    """Block exponent register E_r and the beat's pre-aligned lanes (also used by the INT8 x FP16 baseline).

    e_new = E' = max(E_r, max over live lanes of e_eff); lanes[l] = (sign, live ? (m << guard) >> (E' - e_l)
    : 0); d_a = E' - E_r, the group accumulators' right shift this cycle. E_r takes E' on `step` and clears on
    `clear` (clear wins). With shift_step = n > 0, d_a is at most n: a larger growth in a beat that is not the
    group's `first` raises need_stall, and a `stall` cycle moves E_r up by n. Combinational outputs."""

    def __init__(self, lanes: int, guard_bits: int, shift_step: int = 0):
        self.n_lanes, self.guard_bits, self.shift_step = lanes, guard_bits, shift_step
        members = {"acts": In(data.ArrayLayout(FP16_ACT, lanes)), "step": In(1), "clear": In(1),
                   "e_new": Out(EXP_BITS), "d_a": Out(row_shift_shape(shift_step)),
                   "lanes": Out(data.ArrayLayout(aligned_lane_layout(guard_bits), lanes))}
        if shift_step:
            members.update(first=In(1), stall=In(1), need_stall=Out(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        g, n, k = self.guard_bits, self.shift_step, self.n_lanes
        acts = [self.acts[l] for l in range(k)]
        e_r = Signal(EXP_BITS, name="E")
        xs = []
        for l, act in enumerate(acts):
            x = Signal(EXP_BITS, name=f"ex{l}")
            m.d.comb += x.eq(Mux(act.live, act.e, 0))
            xs.append(x)
        e_new = Signal(EXP_BITS, name="Enew")
        m.d.comb += [e_new.eq(maximum(e_r, max_tree(xs))), self.e_new.eq(e_new)]
        d_a = Signal(EXP_BITS, name="dA")
        m.d.comb += d_a.eq(e_new - e_r)
        if n:
            amt = Signal(range(n + 1), name="amt")
            m.d.comb += [amt.eq(Mux(d_a > n, n, d_a)), self.need_stall.eq(~self.first & (d_a > n))]
            with m.If(self.stall):
                m.d.sync += e_r.eq(e_r + amt)
            d_a = amt
        m.d.comb += self.d_a.eq(d_a)
        for l, act in enumerate(acts):
            sh, mag = Signal(5, name=f"sh{l}"), Signal(MAN_BITS + g, name=f"m{l}")
            m.d.comb += [sh.eq(e_new - act.e), mag.eq(Mux(act.live, (act.man << g) >> sh, 0)),   # truncating
                         self.lanes[l].sign.eq(act.sign), self.lanes[l].mag.eq(mag)]
        with m.If(self.step):
            m.d.sync += e_r.eq(e_new)
        with m.If(self.clear):
            m.d.sync += e_r.eq(0)
        return m


class RowUnit(wiring.Component):
    """Row r's aligner (RowAligner: E_r steps with ctl.step, clears at a vector's last handoff) and exponent
    bookkeeping: dq_e, the exponent of the group being dequantized (E' at the handoff) and with dequant="pe"
    the pending right shift of the row's output accumulators, done in the dequantizer's shift-add cycles by
    16 / 4 / 1 bits (row.y_sel).
    Interface: ctl (control_layout), acts[lanes] (FP16_ACT) -> row (row_layout, to every PE of the row); with
    shift_step: first (the beat is its group's first; a port of its own, as need_stall feeds the control) and
    need_stall. Combinational from acts to row.lanes / row.d_a; dq_e and y_sel from registers."""

    def __init__(self, config: BitModConfig):
        self.config = config
        members = {"ctl": In(control_layout(config)), "acts": In(data.ArrayLayout(FP16_ACT, config.lanes)),
                   "row": Out(row_layout(config))}
        if config.shift_step:
            members.update(first=In(1), need_stall=Out(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg, ctl = self.config, self.ctl
        m.submodules.aligner = al = RowAligner(cfg.lanes, cfg.guard_bits, cfg.shift_step)
        m.d.comb += [al.acts.eq(self.acts), al.step.eq(ctl.step), al.clear.eq(ctl.handoff & ctl.last),
                     self.row.lanes.eq(al.lanes), self.row.d_a.eq(al.d_a)]
        if cfg.shift_step:
            m.d.comb += [al.first.eq(self.first), al.stall.eq(ctl.shift_stall), self.need_stall.eq(al.need_stall)]
        dq_e = Signal(EXP_BITS, name="dqE")
        m.d.comb += self.row.dq_e.eq(dq_e)
        if cfg.dequant == "column":                    # RowExponents (hwgen/bitmod/dequant.py) keeps E_y
            with m.If(ctl.handoff):
                m.d.sync += dq_e.eq(al.e_new)
            return m

        # E_y: exponent of the output accumulators; rem: their pending right shift, done in the shift-add cycles
        e_y, rem = Signal(EXP_BITS, name="Ey"), Signal(EXP_BITS, name="rem")
        y_sel, amt = Signal(2, name="ysel"), Signal(EXP_BITS, name="amt")
        m.d.comb += [y_sel.eq(Mux(rem >= 16, 3, Mux(rem >= 4, 2, Mux(rem != 0, 1, 0)))),
                     amt.eq(Mux(rem >= 16, 16, Mux(rem >= 4, 4, Mux(rem != 0, 1, 0))))]
        with m.If(ctl.dq_shift):
            m.d.sync += rem.eq(rem - amt)
        with m.If(ctl.commit):
            m.d.sync += e_y.eq(Mux(ctl.dq_last, 0, dq_e))
        with m.If(ctl.handoff):
            # a commit in this same cycle has just moved dq_e into E_y (or cleared it at a vector end)
            e_y_now = Mux(ctl.commit, Mux(ctl.dq_last, 0, dq_e), e_y)
            m.d.sync += [dq_e.eq(al.e_new), rem.eq(al.e_new - e_y_now)]
        m.d.comb += self.row.y_sel.eq(Mux(ctl.dq_shift, y_sel, 0))
        return m


class Fp16RowPE(PEBase):
    """One row-aligned FP16 BitMoD PE: per term cycle S = sum_l +-(m''_l << shift_l) (exact), acc = (acc >>
    row.d_a) + (S << bsig); at a group end acc goes to the dequantizer. e (the output's block exponent) is the
    row's dq_e, taken at the vector's commit.
    Interface: PEBase's members plus row (row_layout, from its row's RowUnit) and e. Timing as Int8PE."""

    def __init__(self, config: BitModConfig):
        super().__init__(config, {"row": In(row_layout(config)), "e": Out(EXP_BITS)})

    def elaborate(self, platform):
        m = Module()
        cfg, ctl, row = self.config, self.ctl, self.row
        k, W = cfg.lanes, cfg.group_acc_bits
        lw = MAN_BITS + cfg.guard_bits + 3             # lane shift 0..3 (window term decoding)
        xs, negs = [], []
        for l in range(k):
            lane, t = row.lanes[l], self.terms.lanes[l]
            v, n, x = Signal(lw, name=f"v{l}"), Signal(name=f"n{l}"), Signal(signed(lw + 1), name=f"x{l}")
            # conditional negation as one's complement; the +1s are added once, after the tree
            m.d.comb += [v.eq(Mux(t.zero, 0, lane.mag << t.shift)), n.eq(~t.zero & (lane.sign ^ t.neg)),
                         x.eq(Cat(v, 0) ^ Cat(*([n] * (lw + 1))))]
            xs.append(x)
            negs.append(n)
        s_sum = Signal(signed(lw + 1 + (k - 1).bit_length()), name="S")
        m.d.comb += s_sum.eq(adder_tree(xs) + sum(negs[1:], negs[0]))
        acc, acc_sh, acc_next = (Signal(signed(W), name=n) for n in ("acc", "acc_sh", "acc_next"))
        m.d.comb += [acc_sh.eq(acc >> row.d_a), acc_next.eq(acc_sh + (s_sum << self.terms.bsig))]
        if cfg.shift_step:
            with m.If(ctl.shift_stall):                # a shift-only cycle: the beat's terms wait
                m.d.sync += acc.eq(acc_sh)
        hold = self._group_accumulator(m, acc, acc_next)
        with m.If(ctl.commit & ctl.dq_last):
            m.d.sync += self.e.eq(row.dq_e)
        self._dequantize(m, hold, y_sel=row.y_sel if cfg.dequant == "pe" else None)
        return m


__all__ = ["RowAligner", "RowUnit", "Fp16RowPE"]
