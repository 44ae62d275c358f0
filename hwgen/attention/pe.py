"""The 2D processing element of the attention array: score accumulation, exponential, probability x V."""
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.attention.exp2 import Exp2Neg
from hwgen.attention.lmul import lmul_fixed
from sw_model.attention.config import AttentionConfig

#: Strobes the array's sequencer sends to every PE (decoded once in the array, shared by all PEs).
PEControl = data.StructLayout({
    "step": 1,         # S phase: accumulate Q[e] * K[e]
    "clear": 1,        # with `step`: the first product of a score (acc restarts from 0)
    "pv": 1,           # PV phase: the multiplier takes (prob, V) instead of (Q, K)
    "load_prob": 1,    # G2: load the probability register
})


def pe_operand_shape(config: AttentionConfig):
    """Common signed shape of the multiplier's first operand: Q in S, the unsigned W + 1-bit prob in PV."""
    return signed(max(config.exp_bits + 2, config.data_bits))


def pe_product_shape(config: AttentionConfig):
    """Shape of the PE's product (and of `pv_product`); an L-Mul fits it too (|L-Mul| <= 1.5 |a| |b|)."""
    return signed(pe_operand_shape(config).width + config.data_bits)


class PE(wiring.Component):
    """PE (m, p) of the M0 x P0 array: key m against query p. One signed multiplier (exact, or a fixed-point
    L-Mul for `mult` != "exact"), time-shared between the two phases:

    - S (head_dim cycles with `ctl.step`): acc <= (ctl.clear ? 0 : acc) + q * k, the score (output-stationary);
      `logit` = acc >> score_shift (combinational from acc). With `mul_pipe` the operands and strobes are
      registered first: every product (score and PV) lands one cycle later.
    - G2 (`ctl.load_prob` in its last cycle): prob <= keep ? exp2(-(rm - logit)) : 0; `rm` is the lane's
      running max (>= logit), `keep` = 0 for a padding row of a partial tile or a causally masked key. The
      exponential path has `exp_pipe` free-running registers (after rm - logit, then after the table lookup):
      G2 lasts 1 + exp_pipe cycles, rm and logit stay stable through it.
    - PV (head_dim cycles with `ctl.pv`): pv_product <= prob * v, registered (one cycle latency), summed down the
      column by the array.

    Ports: ctl In(PEControl); q, k, v In(signed(data_bits)); keep In(1); rm In(signed(logit_width));
    logit Out(signed(logit_width)); prob Out(unsigned(exp_bits + 1)) (a register); pv_product
    Out(pe_product_shape) (a register, loaded every cycle)."""

    def __init__(self, config: AttentionConfig):
        self.config = config
        b = config.data_bits
        super().__init__({
            "ctl": In(PEControl), "keep": In(1),
            "q": In(signed(b)), "k": In(signed(b)), "v": In(signed(b)), "rm": In(signed(config.logit_width)),
            "logit": Out(signed(config.logit_width)), "prob": Out(unsigned(config.exp_bits + 1)),
            "pv_product": Out(pe_product_shape(config)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        acc = Signal(signed(cfg.score_width))
        # operand a: the probability (unsigned, W+1 bits) in PV, Q in S; widened to a common signed shape.
        # mul_pipe: the operands and the S strobes go through registers, so the product (and the score) follow
        # one cycle later and the sequencer's decode stays out of the multiply-accumulate path
        dom = "sync" if cfg.mul_pipe else "comb"
        a = Signal(pe_operand_shape(cfg))
        m.d[dom] += a.eq(Mux(self.ctl.pv, self.prob, self.q))
        b = Signal(signed(cfg.data_bits))
        m.d[dom] += b.eq(Mux(self.ctl.pv, self.v, self.k))
        step, clear = Signal(), Signal()
        m.d[dom] += [step.eq(self.ctl.step), clear.eq(self.ctl.clear)]
        product = Signal(pe_product_shape(cfg))
        if cfg.mult == "exact":
            m.d.comb += product.eq(a * b)
        else:      # |L-Mul| <= 1.5 |a| |b| < 2^(len(a) + data_bits - 1): the exact product's width holds it
            m.d.comb += product.eq(lmul_fixed(m, a, b, cfg.lmul_man, 0, len(a) + cfg.data_bits - 1, "lmul"))
        with m.If(step):
            m.d.sync += acc.eq(Mux(clear, 0, acc) + product)
        # PV products are registered before the column adder tree (which then has a cycle of its own)
        m.d.sync += self.pv_product.eq(product)
        m.d.comb += self.logit.eq(acc >> cfg.score_shift)
        m.submodules.exp = exp = Exp2Neg(cfg, cfg.logit_width + 1, registered=cfg.exp_pipe >= 2)
        diff = Signal(cfg.logit_width + 1)
        m.d["sync" if cfg.exp_pipe >= 1 else "comb"] += diff.eq(self.rm - self.logit)
        m.d.comb += exp.x.eq(diff)
        with m.If(self.ctl.load_prob):
            m.d.sync += self.prob.eq(Mux(self.keep, exp.y, 0))
        return m
