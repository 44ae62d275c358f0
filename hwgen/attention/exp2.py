"""The attention array's base-2 exponential of a non-positive fixed-point number, as a table and a shift."""
from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sw_model.attention.config import AttentionConfig


class Exp2Neg(wiring.Component):
    """y = 2^W * 2^(-x / 2^F) for an unsigned fixed-point x (F = logit_frac fractional bits, W = exp_bits):
    TABLE[x mod 2^F] >> (x >> F), 0 once x >> F > W (`sw_model.attention.golden.exp2_neg`).

    Ports: `x` In(unsigned(width)), `y` Out(unsigned(W + 1)). Combinational (zero latency), or with
    `registered` the table entry and the shift amount go through a register (loaded every cycle) before the
    shift: latency 1."""

    def __init__(self, config: AttentionConfig, width: int, registered: bool = False):
        self.config = config
        self.registered = registered
        super().__init__({"x": In(unsigned(width)), "y": Out(unsigned(config.exp_bits + 1))})

    def elaborate(self, platform):
        m = Module()
        w, f = self.config.exp_bits, self.config.logit_frac
        # the table as a binary tree of Mux (continuous assigns): an Array index becomes an `always @*` case
        # statement, which Icarus never evaluates if the index keeps its initial value (the output stays X)
        level = [Const(t, w + 1) for t in self.config.exp_table()]
        for bit in range(f):
            level = [Mux(self.x[bit], level[j + 1], level[j]) for j in range(0, len(level), 2)]
        whole = self.x[f:]
        entry, zero, amount = level[0], whole > w, whole[:(w + 1).bit_length()]
        if self.registered:
            entry_r, zero_r, amount_r = Signal(w + 1), Signal(), Signal(len(amount))
            m.d.sync += [entry_r.eq(entry), zero_r.eq(zero), amount_r.eq(amount)]
            entry, zero, amount = entry_r, zero_r, amount_r
        m.d.comb += self.y.eq(Mux(zero, 0, entry >> amount))
        return m
