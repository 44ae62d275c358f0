"""Building blocks of the attention array: the 2D PE, the base-2 exponential, reduction trees, the 1D lane.

Each function adds combinational logic (and, for the PE and lane, registers) to module `m`; the arithmetic is
stated independently in numpy by `sw_model.attention.golden` and compared bit for bit by the benches.
"""
from amaranth.hdl import Const, Mux, Signal, signed, unsigned

from hwgen.attention.lmul import clamp, lmul_fixed


def exp2_neg(m, x, cfg, name):
    """2^W * 2^(-x / 2^F) for an unsigned fixed-point x: TABLE[x mod 2^F] >> (x >> F), 0 when x >> F > W."""
    w, f = cfg.exp_bits, cfg.logit_frac
    table = cfg.exp_table()
    # the table as a binary tree of Mux (continuous assigns): an Array index becomes an `always @*` case
    # statement, which Icarus never evaluates if the index keeps its initial value (the output stays X)
    level = [Const(t, w + 1) for t in table]
    for bit in range(f):
        level = [Mux(x[bit], level[j + 1], level[j]) for j in range(0, len(level), 2)]
    base = level[0]
    whole = x[f:]
    out = Signal(w + 1, name=name)
    m.d.comb += out.eq(Mux(whole > w, 0, base >> whole[:(w + 1).bit_length()]))
    return out


def tree(m, values, op, name):
    """Pairwise reduction tree (adjacent pairs per level; an odd last value passes up)."""
    level = list(values)
    depth = 0
    while len(level) > 1:
        nxt = [op(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    out = Signal(level[0].shape(), name=name)
    m.d.comb += out.eq(level[0])
    return out


def maximum(a, b):
    return Mux(a > b, a, b)


class PE:
    """One PE (m, p) of the M0 x P0 array. One signed multiplier, time-shared:
    S phase (head_dim cycles): acc <= (first ? 0 : acc) + Q[p][e] * K[m][e] -- the score, output-stationary;
    G2: prob <= exp2(-(RM[p] - (acc >> shift))) (0 for a padding row of a partial tile or a masked key);
    PV phase (head_dim cycles): product = prob * V[m][f], summed down the column by the caller."""

    def __init__(self, m, cfg, row, col, pv, clear, s_step, load_prob, row_valid, q_head, k_head, v_head):
        w = cfg.exp_bits
        self.acc = Signal(signed(cfg.score_width), name=f"pe{row}_{col}_acc")
        self.prob = Signal(w + 1, name=f"pe{row}_{col}_prob")
        # operand a: the probability (unsigned, W+1 bits) in PV, Q in S; widened to a common signed shape
        a_s = Signal(signed(max(w + 2, cfg.data_bits)), name=f"pe{row}_{col}_a")
        m.d.comb += a_s.eq(Mux(pv, self.prob, q_head))
        b_s = Signal(signed(cfg.data_bits), name=f"pe{row}_{col}_b")
        m.d.comb += b_s.eq(Mux(pv, v_head, k_head))
        self.product = Signal(signed(len(a_s) + cfg.data_bits), name=f"pe{row}_{col}_prod")
        if cfg.mult == "exact":
            m.d.comb += self.product.eq(a_s * b_s)
        else:      # |L-Mul| <= 1.5 |a| |b| < 2^(len(a_s) + data_bits - 1): the exact product's width holds it
            m.d.comb += self.product.eq(lmul_fixed(m, a_s, b_s, cfg.lmul_man, 0, len(a_s) + cfg.data_bits - 1,
                                                   f"pe{row}_{col}_lmul"))
        with m.If(s_step):
            m.d.sync += self.acc.eq(Mux(clear, 0, self.acc) + self.product)
        # PV products are registered before the column adder tree (which then has a cycle of its own)
        self.pv_product = Signal(signed(len(self.product)), name=f"pe{row}_{col}_pvprod")
        m.d.sync += self.pv_product.eq(self.product)
        self.logit = Signal(signed(cfg.logit_width), name=f"pe{row}_{col}_logit")
        m.d.comb += self.logit.eq(self.acc >> cfg.score_shift)
        self.rm = Signal(signed(cfg.logit_width), name=f"pe{row}_{col}_rm")   # driven by lane `col`
        diff = Signal(unsigned(cfg.logit_width + 1), name=f"pe{row}_{col}_diff")
        m.d.comb += diff.eq(self.rm - self.logit)
        e = exp2_neg(m, diff, cfg, f"pe{row}_{col}_exp")
        with m.If(load_prob):
            m.d.sync += self.prob.eq(Mux(row_valid, e, 0))


class Lane:
    """1D-array lane p (one per query of the tile). Registers: running max RM, correction PRM, running
    denominator RD, running numerator RNV[0..F-1] kept as a rotating register (the head RNV[0] is updated and
    moves to the tail through the product register P, so after F + 1 steps the order is restored), the
    reciprocal r. One multiplier (output registered), time-shared:
    lane step   RNV <= SLNV + (RNV * PRM) >> W          (PV phase + 2, one element per cycle)
    norm step   RNV <= (RNV * r + 2^(K-O-1)) >> (K-O)    (after the last tile, one element per cycle)
    The reciprocal r = floor(2^K / RD) comes from a restoring divider, one quotient bit per cycle."""

    def __init__(self, m, cfg, idx, ctl, lm, sld, slnv):
        w, d = cfg.exp_bits, cfg.head_dim
        n = f"lane{idx}"
        self.rm = Signal(signed(cfg.logit_width), name=f"{n}_rm")
        rm_old = Signal(signed(cfg.logit_width), name=f"{n}_rm_old")
        self.prm = Signal(w + 1, name=f"{n}_prm")
        self.rd = Signal(cfg.rd_width, name=f"{n}_rd")
        self.rnv = [Signal(signed(cfg.rnv_width), name=f"{n}_rnv{f}") for f in range(d)]
        rem = Signal(cfg.rd_width + 1, name=f"{n}_rem")
        self.recip = Signal(cfg.recip_bits, name=f"{n}_recip")

        # G1: new running max (the first tile of a query tile takes the local max as is)
        with m.If(ctl["g1"]):
            m.d.sync += [rm_old.eq(self.rm), self.rm.eq(Mux(ctl["first"], lm, maximum(self.rm, lm)))]
        diff = Signal(cfg.logit_width + 1, name=f"{n}_prm_diff")
        m.d.comb += diff.eq(self.rm - rm_old)
        prm = exp2_neg(m, diff, cfg, f"{n}_prm_exp")
        with m.If(ctl["g2"]):
            m.d.sync += self.prm.eq(Mux(ctl["was_first"], 0, prm))
        # Pipelined: the multiplier output is registered (P), so the RD update takes two cycles (rd_step:
        # product and column sum into registers; rd_step2: the add) and the RNV ring has d + 1 stages
        # (RNV[0..d-1] and P): a pass over the d elements takes d + 1 rotations, the extra one a bubble.
        sh = cfg.recip_shift - cfg.out_frac
        p_norm = Signal(signed(cfg.rnv_width + cfg.recip_bits + 1), name=f"{n}_p")   # product register P
        rd_p = Signal(cfg.rd_width + 1, name=f"{n}_rd_p")            # (RD x PRM) >> W, registered
        sld_r = Signal(len(sld), name=f"{n}_sld_r")
        slnv_r = Signal(signed(len(slnv)), name=f"{n}_slnv_r")        # SLNV of the element in P
        rotate = ctl["lane_step"] | ctl["lane_tail"] | ctl["norm_step"]
        with m.If(ctl["rd_step"]):
            m.d.sync += sld_r.eq(sld)
        with m.If(rotate):
            m.d.sync += slnv_r.eq(slnv)
        if cfg.mult == "lmul":
            # corrections as L-Muls (the >> W folded into the L-Mul's shift; result <= 1.5x its operand),
            # running sums saturate; the normalisation multiply RNV x r stays exact
            rd_corr = lmul_fixed(m, self.rd, self.prm, cfg.lmul_man, w, cfg.rd_width + 1, f"{n}_rd_lmul")
            with m.If(ctl["rd_step"]):
                m.d.sync += rd_p.eq(rd_corr)
            rd_sat = clamp(m, sld_r + rd_p, cfg.rd_width, False, f"{n}_rd_sat")
            with m.If(ctl["rd_step2"]):
                m.d.sync += self.rd.eq(rd_sat)
            rnv_corr = lmul_fixed(m, self.rnv[0], self.prm, cfg.lmul_man, w, cfg.rnv_width, f"{n}_rnv_lmul")
            p_corr = Signal(signed(cfg.rnv_width + 1), name=f"{n}_p_corr")
            m.d.sync += [p_norm.eq(self.rnv[0] * self.recip), p_corr.eq(rnv_corr)]
            rescaled = clamp(m, slnv_r + p_corr, cfg.rnv_width, True, f"{n}_rnv_sat")
        else:
            with m.If(ctl["rd_step"]):
                m.d.sync += rd_p.eq((self.rd * self.prm) >> w)
            with m.If(ctl["rd_step2"]):
                m.d.sync += self.rd.eq(sld_r + rd_p)
            # the multiplier's second operand comes from a register loaded one cycle ahead (PRM is stable from
            # G2 through the lane steps, r from the end of the division through NORM): no control logic
            # between the mode register and the multiplier
            mul_b = Signal(max(cfg.recip_bits, w + 1), name=f"{n}_mul_b")
            m.d.sync += [mul_b.eq(Mux(ctl["norm_next"], self.recip, self.prm)), p_norm.eq(self.rnv[0] * mul_b)]
            rescaled = slnv_r + (p_norm >> w)
        normed = (p_norm + (1 << (sh - 1))) >> sh
        if cfg.mult != "exact":      # with L-Mul products RNV / RD may leave V's range: saturate the output
            normed = clamp(m, normed, cfg.out_width, True, f"{n}_out_sat")
        new = Signal(signed(cfg.rnv_width), name=f"{n}_new")
        m.d.comb += new.eq(Mux(ctl["norm_step"], normed, rescaled))
        with m.If(rotate):
            m.d.sync += [self.rnv[f].eq(self.rnv[f + 1]) for f in range(d - 1)]
            m.d.sync += self.rnv[d - 1].eq(new)

        # restoring division 2^K / RD: the remainder starts at 2^(W-1) (< RD whenever RD >= 2^W)
        rem2 = Signal(cfg.rd_width + 2, name=f"{n}_rem2")
        m.d.comb += rem2.eq(rem << 1)
        ge = rem2 >= self.rd
        with m.If(ctl["recip_init"]):
            m.d.sync += [rem.eq(1 << (w - 1)), self.recip.eq(0)]
        with m.If(ctl["recip_step"]):
            m.d.sync += [rem.eq(Mux(ge, rem2 - self.rd, rem2)), self.recip.eq((self.recip << 1) | ge)]

        with m.If(ctl["clear"]):
            m.d.sync += [self.rd.eq(0)] + [r.eq(0) for r in self.rnv]
