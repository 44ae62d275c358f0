"""The INT8 x FP16 comparison array of benchmarks/bitmod_hw.py (hwgen/bitmod_baseline.Int8Fp16MacArray) computes
what it claims: Amaranth simulation against a numpy model of the aligned products, and the model within its
truncation bound of float64, for both variants (products aligned per PE; activations pre-aligned once per row,
`prealign=True`). (A baseline that computed nothing would make the resource comparison meaningless.)"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hwgen.bitmod.baseline import Int8Fp16MacArray
from sw_model.bitmod.fp16 import _align_add, fp16_fields, fp16_value
from sw_model.bitmod.vectors import random_fp16


def model(w, a, last, g):
    """w (beats, cols, macs) int8, a (beats, rows, macs) FP16 bits -> list of (y (rows, cols), e, nonfinite)."""
    s, e_eff, m, live_a, special = fp16_fields(a)
    R, C = a.shape[1], w.shape[1]
    A, E = np.zeros((R, C), dtype=np.int64), np.zeros((R, C), dtype=np.int64)
    nf, outs = np.zeros(R, dtype=bool), []
    for b in range(len(last)):
        live = live_a[b][:, None, :] & (w[b] != 0)[None]
        ex = np.where(live, e_eff[b][:, None, :], 0)
        big = ex.max(-1)
        mag = np.where(live, ((np.abs(w[b])[None] * m[b][:, None, :]) << g) >> (big[..., None] - ex), 0)
        neg = (s[b][:, None, :] == 1) ^ (w[b] < 0)[None]
        A, E = _align_add(A, E, np.where(neg, -mag, mag).sum(-1), big)
        nf |= special[b].any(-1)
        if last[b]:
            outs.append((A, E, nf.copy()))
            A, E, nf = np.zeros_like(A), np.zeros_like(E), np.zeros(R, dtype=bool)
    return outs


def model_prealigned(w, a, last, g):
    """The row pre-aligned variant: per row a block exponent E (0 at a vector start, never decreasing),
    m'' = floor(m 2^g / 2^(E' - e)), A = floor(A / 2^(E' - E)) + sum +-|w| m''."""
    s, e_eff, m, live, special = fp16_fields(a)
    R, C = a.shape[1], w.shape[1]
    A, E = np.zeros((R, C), dtype=np.int64), np.zeros(R, dtype=np.int64)
    nf, outs = np.zeros(R, dtype=bool), []
    for b in range(len(last)):
        e_new = np.maximum(E, np.where(live[b], e_eff[b], 0).max(-1))
        mm = np.where(live[b], (m[b] << g) >> np.maximum(e_new[:, None] - e_eff[b], 0), 0)
        sm = np.where(s[b] == 1, -mm, mm)                                  # (R, macs)
        A = (A >> (e_new - E)[:, None]) + sm @ w[b].T
        E = e_new
        nf |= special[b].any(-1)
        if last[b]:
            outs.append((A, np.repeat(E[:, None], C, axis=1), nf.copy()))
            A, E, nf = np.zeros_like(A), np.zeros_like(E), np.zeros(R, dtype=bool)
    return outs


def simulate(dut, w, a, last):
    got = []
    wmask = (1 << dut.weight_bits) - 1

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for b in range(len(last)):
            ctx.set(dut.i.payload.w, [int(x) & wmask for x in w[b].reshape(-1)])
            ctx.set(dut.i.payload.a, [int(x) for x in a[b].reshape(-1)])
            ctx.set(dut.i.payload.last, int(last[b]))
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
        ctx.set(dut.i.valid, 0)
        await ctx.tick()
        if ctx.get(dut.o.valid):
            got.append(ctx.get(dut.o.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("prealign,wbits", [(False, 8), (True, 8), (True, 4)],
                         ids=["per-pe", "prealigned", "prealigned-int4"])
def test_int8_fp16_baseline_matches_model_and_float(prealign, wbits):
    rng = np.random.default_rng(1)
    R, C, k, g, acc_bits = 2, 3, 2, 3, 30
    n = 24
    w = rng.integers(-(1 << (wbits - 1)), 1 << (wbits - 1), size=(n, C, k))
    w[0, 0] = -(1 << (wbits - 1))                                      # the most negative weight
    w[rng.random(w.shape) < 0.1] = 0
    a = random_fp16(rng, (n, R, k), p_nonfinite=0.02)
    last = np.zeros(n, dtype=int)
    last[[5, 6, 15, 23]] = 1
    want = (model_prealigned if prealign else model)(w, a, last, g)
    got = simulate(Int8Fp16MacArray(R, C, k, acc_bits, g, prealign=prealign, weight_bits=wbits), w, a, last)
    assert len(got) == len(want) == 4
    av = np.where(fp16_fields(a)[4], 0.0, fp16_value(a))
    start = 0
    for (y, e, nf), o, end in zip(want, got, np.nonzero(last)[0]):
        ys = np.array([int(o.y[t].as_value().as_signed()) if hasattr(o.y[t], "as_value") else int(o.y[t])
                       for t in range(R * C)])
        ys = np.where(ys >= 1 << (acc_bits - 1), ys - (1 << acc_bits), ys)
        assert ys.tolist() == y.reshape(-1).tolist()
        assert [int(o.e[t]) for t in range(R * C)] == e.reshape(-1).tolist()
        assert [int(o.nonfinite[r]) for r in range(R)] == nf.astype(int).tolist()
        exact = np.einsum("brl,bcl->rc", av[start:end + 1], w[start:end + 1].astype(float))
        value = np.ldexp(y.astype(float), e - 25 - g)
        # each cycle: < 1 unit lost per lane and in the alignment; a unit is <= 2^-(10+g) * the largest
        # product (normal) or 2^(1 - 25 - g) * 128 (subnormal); pre-aligned: < |w| units per lane, a unit
        # <= 2^-(10+g) * the largest activation of the vector (or 2^(1 - 25 - g))
        prods = np.abs(av[start:end + 1])[:, :, None, :] * np.abs(w[start:end + 1])[:, None, :, :]
        u = np.maximum(2.0 ** -(10 + g) * prods.max(axis=(0, 3)), 2.0 ** (1 - 25 - g) * 128)
        if prealign:
            u = 129 * np.maximum(2.0 ** -(10 + g) * np.abs(av[start:end + 1]).max(axis=(0, 2)),
                                 2.0 ** (1 - 25 - g))[:, None]
        assert (np.abs(value - exact) <= (k + 1) * (end + 1 - start) * u).all()
        assert (value != 0).any()
        start = end + 1


@pytest.mark.parametrize("wbits", [8, 4])
def test_int8_baseline_exact(wbits):
    """The INT8 x INT8 and INT8 x INT4 comparison arrays (benchmarks/bitmod_hw.py) sum a * w exactly per vector."""
    from hwgen.bitmod.baseline import Int8MacArray
    rng = np.random.default_rng(2)
    R, C, k, acc_bits, n = 2, 3, 4, 22, 20
    w = rng.integers(-(1 << (wbits - 1)), 1 << (wbits - 1), size=(n, C, k))
    a = rng.integers(-128, 128, size=(n, R, k))
    w[0], a[1] = -(1 << (wbits - 1)), -128                             # the extremes
    last = np.zeros(n, dtype=int)
    last[[3, 4, 19]] = 1
    dut = Int8MacArray(R, C, k, acc_bits, weight_bits=wbits)
    wmask = (1 << wbits) - 1
    got = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for b in range(n + 1):
            if b < n:
                ctx.set(dut.i.payload.w, [int(x) & wmask for x in w[b].reshape(-1)])
                ctx.set(dut.i.payload.a, [int(x) & 0xFF for x in a[b].reshape(-1)])
                ctx.set(dut.i.payload.last, int(last[b]))
            ctx.set(dut.i.valid, int(b < n))
            await ctx.tick()
            if ctx.get(dut.o.valid):
                ys = [int(ctx.get(dut.o.payload.y[t])) for t in range(R * C)]
                got.append([y - (1 << acc_bits) if y >= 1 << (acc_bits - 1) else y for y in ys])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    start, want = 0, []
    for end in np.nonzero(last)[0]:
        want.append(np.einsum("brl,bcl->rc", a[start:end + 1], w[start:end + 1]).reshape(-1).tolist())
        start = end + 1
    assert got == want and len(got) == 3


@pytest.mark.filterwarnings("ignore:.*created but never used")      # the refused objects are never elaborated
def test_baseline_weight_bits_checked():
    from hwgen.bitmod.baseline import Int8MacArray
    with pytest.raises(ValueError, match=r"weight_bits: got 9, allowed: 2..8"):
        Int8MacArray(1, 1, 1, 16, weight_bits=9)
    with pytest.raises(ValueError, match=r"weight_bits: got 1, allowed: 2..8"):
        Int8Fp16MacArray(1, 1, 1, 30, weight_bits=1)
