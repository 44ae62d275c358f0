"""Shared blocks in Amaranth's simulator: the pipelined limb multiplier equals a * b exactly, `slices` cycles
later, for signed and unsigned operands at widths around the 17-bit limb (a lone sign bit in the top limb, one
limb, several limbs) with extreme and random values; the registered tree equals the plain tree `slices` cycles
later, also with more slices than levels."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hwgen.blocks.multiply import _limbs, pipelined_product
from hwgen.blocks.trees import maximum, registered_tree


def run_clocked(m, bench):
    m.d.sync += Signal(name="keep_clock").eq(1)          # a sync domain even for a combinational block
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def extremes(shape):
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed else (0, (1 << shape.width) - 1)
    return [lo, hi, 0, 1, -1 if shape.signed else 2, lo + 1, hi - 1]


@pytest.mark.parametrize("sa,sb,slices", [
    (signed(40), unsigned(34), 2),      # the attention lane's RNV x reciprocal (three by two limbs)
    (signed(35), unsigned(17), 1),      # 35 = 2 limbs + a lone sign bit, folded into the top limb
    (unsigned(32), unsigned(16), 3),    # unsigned x unsigned, more slices than the limb sum's levels
    (signed(18), signed(18), 1),        # one DSP-sized product each way
    (signed(5), unsigned(3), 0),        # combinational
])
def test_pipelined_product_exact(sa, sb, slices):
    rng = np.random.default_rng(sa.width * 100 + sb.width)
    m = Module()
    a, b = Signal(sa), Signal(sb)
    p = pipelined_product(m, a, b, slices, "mul")
    assert p.shape() == (a * b).shape()
    pairs = [(x, y) for x in extremes(sa) for y in extremes(sb)]
    for _ in range(200):
        pairs.append(tuple(int(rng.integers(lo, hi + 1)) for lo, hi in (
            (min(extremes(s)), max(extremes(s))) for s in (sa, sb))))
    got = []

    async def bench(ctx):
        for x, y in pairs + [(0, 0)] * slices:
            ctx.set(a, x)
            ctx.set(b, y)
            got.append(ctx.get(p))
            await ctx.tick()
    run_clocked(m, bench)
    assert got[slices:] == [x * y for x, y in pairs]     # each product exactly `slices` cycles later


def test_limbs_cover_every_bit_once():
    for shape in (signed(35), signed(34), unsigned(17), signed(18), unsigned(52)):
        pieces = _limbs(Signal(shape))
        widths = [len(v) for v, _ in pieces]
        assert sum(widths) == shape.width and all(w <= 18 for w in widths)
        assert [off for _, off in pieces] == [sum(widths[:k]) for k in range(len(widths))]
        assert [v.shape().signed for v, _ in pieces] == [False] * (len(pieces) - 1) + [shape.signed]


@pytest.mark.parametrize("n,slices,consumer", [(1, 2, 0), (2, 1, 0), (2, 1, 1), (5, 2, 0), (8, 3, 1), (8, 5, 0)])
def test_registered_tree_latency(n, slices, consumer):
    rng = np.random.default_rng(n + slices)
    m = Module()
    xs = [Signal(signed(9), name=f"x{j}") for j in range(n)]
    top = registered_tree(m, xs, maximum, slices, "t", consumer_levels=consumer)
    total = registered_tree(m, xs, lambda a, b: a + b, slices, "s")
    rows = [[int(v) for v in rng.integers(-256, 256, n)] for _ in range(30)] + [[-256] * n, [255] * n]
    got = []

    async def bench(ctx):
        for row in rows + [[0] * n] * slices:
            for x, v in zip(xs, row):
                ctx.set(x, v)
            got.append((ctx.get(top), ctx.get(total)))
            await ctx.tick()
    run_clocked(m, bench)
    assert got[slices:] == [(max(r), sum(r)) for r in rows]


def test_registered_tree_slice_placement():
    """Two values, one slice: without a consumer level the register sits on the inputs; with one it sits on the
    tree's output (so the consumer's own compare gets a cycle of its own)."""
    m = Module()
    xs = [Signal(signed(4), name=f"x{j}") for j in range(2)]
    registered_tree(m, xs, maximum, 1, "early")
    late = registered_tree(m, xs, maximum, 1, "late", consumer_levels=1)
    assert isinstance(late, Signal) and late.name == "late_s0_0"       # the registered tree output itself
