"""A wide integer multiplier cut into free-running register slices, built from DSP-sized partial products.

A product wider than one DSP block (ECP5 MULT18X18D: 18 x 18 signed) is a sum of limb products: Yosys maps each
limb product to a DSP and adds them in the fabric, one long carry chain per level, all in one cycle. Here the
limb products are registered first and their sum is a `registered_tree` with the remaining slices, so the
multiplier reaches the clock rate of one DSP plus one wide adder per slice. The result is the exact product
(the same integer as `a * b`), `slices` cycles after the operands.
"""
from __future__ import annotations

from amaranth.hdl import Signal, Value

from hwgen.blocks.trees import registered_tree

#: Limb width: 17 unsigned bits (or 18 signed for the top limb) fit an 18 x 18 signed DSP multiplier.
LIMB = 17


def _limbs(x: Value) -> list[tuple[Value, int]]:
    """(limb, bit offset) pieces of `x`: unsigned LIMB-bit limbs, the top one keeps the sign of a signed x."""
    x = Value.cast(x)
    n, signed = len(x), x.shape().signed
    out, lo = [], 0
    while lo < n:
        hi = min(n, lo + LIMB)
        if signed and n - hi <= 1:           # the top limb (taking a lone sign bit with it) stays signed
            hi = n
            out.append((x[lo:hi].as_signed(), lo))
        else:
            out.append((x[lo:hi], lo))
        lo = hi
    return out


def pipelined_product(m, a, b, slices: int, name: str):
    """a * b (exact, the shape of `a * b`) with `slices` register slices: 0 = combinational `a * b`; >= 1 = the
    limb products registered, then their sum over the other slices - 1 (a `registered_tree`). The registers
    load every cycle: the result follows its operands `slices` cycles later."""
    a, b = Value.cast(a), Value.cast(b)
    if slices < 0:
        raise ValueError(f"pipelined_product {name}: got slices={slices}, allowed: >= 0")
    if slices == 0:
        return a * b
    shape = (a * b).shape()
    parts = []
    for i, (la, sa) in enumerate(_limbs(a)):
        for j, (lb, sb) in enumerate(_limbs(b)):
            reg = Signal((la * lb).shape(), name=f"{name}_pp{i}_{j}")
            m.d.sync += reg.eq(la * lb)
            parts.append(reg << (sa + sb))          # an unsigned limb product stays unsigned in the sum
    total = registered_tree(m, parts, lambda x, y: x + y, slices - 1, name)
    out = Signal(shape, name=f"{name}_product")
    m.d.comb += out.eq(total)
    return out
