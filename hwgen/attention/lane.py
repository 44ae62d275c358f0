"""The 1D lane of the attention array: running max, running sums, reciprocal and final normalisation of one query."""
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwgen.attention.exp2 import Exp2Neg
from hwgen.attention.lmul import clamp, lmul_fixed
from hwgen.attention.pe import pe_product_shape
from hwgen.blocks.multiply import pipelined_product
from hwgen.blocks.trees import maximum
from sw_model.attention.config import AttentionConfig

#: Strobes the array's sequencer sends to every lane (one copy shared by all lanes).
LaneControl = data.StructLayout({
    "first": 1,        # with g1: the first key tile of a query tile (RM takes LM as is)
    "was_first": 1,    # with g2: the tile was the first one (PRM = 0: nothing to rescale)
    "g1": 1,           # G1: RM <= max(RM, LM)
    "g2": 1,           # last cycle of G2: PRM <= exp2(-(RM - RM_old))
    "rd_step": 1,      # rd_delay cycles after the first PV cycle: SLD and RD x PRM into registers
    "rd_step2": 1,     # the cycle after: RD <= SLD + (RD x PRM) >> W
    "lane_step": 1,    # one RNV element rescaled and rotated (head_dim cycles, lane_delay behind PV)
    "lane_tail": 1,    # the 1 + lane_pipe extra (bubble) rotations of the pipelined ring after the lane steps
    "norm_next": 1,    # NORM now or in the next cycle: the multiplier's operand register takes r, not PRM
    "norm_step": 1,    # NORM: one RNV element normalised and rotated (head_dim + 1 + lane_pipe cycles)
    "recip_init": 1,   # start the division 2^K / RD
    "recip_step": 1,   # one quotient bit (recip_bits cycles)
    "clear": 1,        # the query tile is done: RD and RNV restart from 0
})


def lane_sum_shapes(config: AttentionConfig):
    """Shapes of the column sums a lane takes (the adder trees over M0 PEs grow one bit per level):
    SLD (sum of probabilities) and SLNV (sum of prob x V products)."""
    grow = ceil_log2(config.m0)
    return unsigned(config.exp_bits + 1 + grow), signed(pe_product_shape(config).width + grow)


class Lane(wiring.Component):
    """Lane p of the 1D array (one per query of the tile); the cascade's per-query state and one multiplier.

    Registers: running max RM, correction PRM, running denominator RD, running numerator RNV[0..F-1] kept as a
    rotating register (the head RNV[0] is updated and moves to the tail through the product register P and the
    lane_pipe multiplier slices before it, so after F + 1 + lane_pipe rotations the order is restored), the
    reciprocal r. Per key tile, driven by `ctl`:
    G1          RM <= first ? LM : max(RM, LM)                       (`lm` sampled)
    G2          PRM <= was_first ? 0 : exp2(-(RM - RM_old))  (last cycle of G2; exp_pipe registers before)
    rd_step     (`sld` sampled; RD and PRM stable for lane_pipe cycles before); rd_step2: RD <= SLD + (RD * PRM) >> W
    lane_step   RNV <= SLNV + (RNV * PRM) >> W, one element per cycle (`slnv` sampled, element f at the f-th
                lane_step), then 1 + lane_pipe lane_tail rotations, all back to back
    and at the end of a query tile: recip_init, recip_bits x recip_step (restoring division, one quotient bit per
    cycle): r = floor(2^K / RD); then F + 1 + lane_pipe norm_step rotations (norm_next from one cycle before):
    RNV <= (RNV * r + 2^(K-O-1)) >> (K-O). With `mult` = "lmul" the two corrections are L-Muls and RD, RNV and
    the output saturate (`sw_model.attention.golden`).

    Ports: ctl In(LaneControl); lm In(signed(logit_width)); sld, slnv In(lane_sum_shapes); rm
    Out(signed(logit_width)) (the RM register); rnv Out(ArrayLayout(signed(rnv_width), head_dim)) (the ring,
    element f in order once the rotations of a step are done; the output row after NORM)."""

    def __init__(self, config: AttentionConfig):
        self.config = config
        sld, slnv = lane_sum_shapes(config)
        super().__init__({
            "ctl": In(LaneControl), "lm": In(signed(config.logit_width)), "sld": In(sld), "slnv": In(slnv),
            "rm": Out(signed(config.logit_width)),
            "rnv": Out(data.ArrayLayout(signed(config.rnv_width), config.head_dim)),
        })
        # state that is no port, named here so that tests and waveforms can look at it
        self.prm = Signal(config.exp_bits + 1, name="prm")
        self.rd = Signal(config.rd_width, name="rd")
        self.recip = Signal(config.recip_bits, name="recip")

    def elaborate(self, platform):
        m = Module()
        cfg, ctl = self.config, self.ctl
        w, d = cfg.exp_bits, cfg.head_dim
        rnv = [Signal(signed(cfg.rnv_width), name=f"rnv{f}") for f in range(d)]
        m.d.comb += [self.rnv[f].eq(rnv[f]) for f in range(d)]
        rm_old = Signal(signed(cfg.logit_width))
        rem = Signal(cfg.rd_width + 1)

        # G1: new running max (the first tile of a query tile takes the local max as is)
        with m.If(ctl.g1):
            m.d.sync += [rm_old.eq(self.rm), self.rm.eq(Mux(ctl.first, self.lm, maximum(self.rm, self.lm)))]
        # the same exp_pipe registers as the PEs' exponentials (G2 lasts 1 + exp_pipe cycles)
        m.submodules.prm_exp = prm_exp = Exp2Neg(cfg, cfg.logit_width + 1, registered=cfg.exp_pipe >= 2)
        growth = Signal(cfg.logit_width + 1)
        m.d["sync" if cfg.exp_pipe >= 1 else "comb"] += growth.eq(self.rm - rm_old)
        m.d.comb += prm_exp.x.eq(growth)
        with m.If(ctl.g2):
            m.d.sync += self.prm.eq(Mux(ctl.was_first, 0, prm_exp.y))
        # Pipelined: the multiplier output is registered (P), so the RD update takes two cycles (rd_step:
        # product and column sum into registers; rd_step2: the add) and the RNV ring has d + 1 stages
        # (RNV[0..d-1] and P): a pass over the d elements takes d + 1 rotations, the extra one a bubble.
        # lane_pipe slices before P (registered limb products, then their sum: hwgen.blocks.multiply) make the
        # ring d + 1 + lane_pipe stages long, with as many bubbles; the multipliers run free (every cycle) and
        # the rotations of a pass are back to back, so the element leaving RNV[0] comes back 1 + lane_pipe
        # rotations later, and its SLNV waits in a chain of as many registers.
        sh = cfg.recip_shift - cfg.out_frac
        p_norm = Signal(signed(cfg.rnv_width + cfg.recip_bits + 1))   # product register P
        rd_p = Signal(cfg.rd_width + 1)                                # (RD x PRM) >> W, registered
        sld_r = Signal(len(self.sld))
        rotate = ctl.lane_step | ctl.lane_tail | ctl.norm_step
        with m.If(ctl.rd_step):
            m.d.sync += sld_r.eq(self.sld)
        slnv_chain = [self.slnv]                                       # SLNV of the element in P at the end
        for k in range(1 + cfg.lane_pipe):
            slnv_chain.append(Signal(signed(len(self.slnv)), name=f"slnv_r{k}"))
            with m.If(rotate):
                m.d.sync += slnv_chain[k + 1].eq(slnv_chain[k])
        slnv_r = slnv_chain[-1]
        lp = cfg.lane_pipe
        if cfg.mult == "lmul":
            # corrections as L-Muls (the >> W folded into the L-Mul's shift; result <= 1.5x its operand),
            # running sums saturate; the normalisation multiply RNV x r stays exact
            # lane_pipe >= 1: the L-Muls have a register after their log codes (RD, PRM are stable before rd_step)
            rd_corr = lmul_fixed(m, self.rd, self.prm, cfg.lmul_man, w, cfg.rd_width + 1, "rd_lmul",
                                 registered=lp >= 1)
            with m.If(ctl.rd_step):                # rd_step comes lane_pipe cycles later, like the exact one
                m.d.sync += rd_p.eq(rd_corr)
            rd_sat = clamp(m, sld_r + rd_p, cfg.rd_width, False, "rd_sat")
            with m.If(ctl.rd_step2):
                m.d.sync += self.rd.eq(rd_sat)
            rnv_corr = lmul_fixed(m, rnv[0], self.prm, cfg.lmul_man, w, cfg.rnv_width, "rnv_lmul",
                                  registered=lp >= 1)
            p_corr = Signal(signed(cfg.rnv_width + 1))
            corr_chain = [rnv_corr]
            for k in range(lp - 1 if lp else 0):            # the L-Mul's own register is the first slice
                corr_chain.append(Signal(signed(cfg.rnv_width + 1), name=f"rnv_corr_d{k}"))
                m.d.sync += corr_chain[k + 1].eq(corr_chain[k])
            m.d.sync += [p_norm.eq(pipelined_product(m, rnv[0], self.recip, lp, "rnv_norm")),
                         p_corr.eq(corr_chain[-1])]
            rescaled = clamp(m, slnv_r + p_corr, cfg.rnv_width, True, "rnv_sat")
        else:
            rd_prod = pipelined_product(m, self.rd, self.prm, lp, "rd_corr")   # RD, PRM stable before rd_step
            with m.If(ctl.rd_step):
                m.d.sync += rd_p.eq(rd_prod >> w)
            with m.If(ctl.rd_step2):
                m.d.sync += self.rd.eq(sld_r + rd_p)
            # the multiplier's second operand comes from a register loaded one cycle ahead (PRM is stable from
            # G2 through the lane steps, r from the end of the division through NORM): no control logic
            # between the mode register and the multiplier
            mul_b = Signal(max(cfg.recip_bits, w + 1))
            m.d.sync += [mul_b.eq(Mux(ctl.norm_next, self.recip, self.prm)),
                         p_norm.eq(pipelined_product(m, rnv[0], mul_b, lp, "rnv_mul"))]
            rescaled = slnv_r + (p_norm >> w)
        normed = (p_norm + (1 << (sh - 1))) >> sh
        if cfg.mult != "exact":      # with L-Mul products RNV / RD may leave V's range: saturate the output
            normed = clamp(m, normed, cfg.out_width, True, "out_sat")
        new = Signal(signed(cfg.rnv_width))
        m.d.comb += new.eq(Mux(ctl.norm_step, normed, rescaled))
        with m.If(rotate):
            m.d.sync += [rnv[f].eq(rnv[f + 1]) for f in range(d - 1)]
            m.d.sync += rnv[d - 1].eq(new)

        # restoring division 2^K / RD: the remainder starts at 2^(W-1) (< RD whenever RD >= 2^W)
        rem2 = Signal(cfg.rd_width + 2)
        m.d.comb += rem2.eq(rem << 1)
        ge = rem2 >= self.rd
        with m.If(ctl.recip_init):
            m.d.sync += [rem.eq(1 << (w - 1)), self.recip.eq(0)]
        with m.If(ctl.recip_step):
            m.d.sync += [rem.eq(Mux(ge, rem2 - self.rd, rem2)), self.recip.eq((self.recip << 1) | ge)]

        with m.If(ctl.clear):
            m.d.sync += [self.rd.eq(0)] + [r.eq(0) for r in rnv]
        return m
