"""TFLite/gemmlowp requantization, pinned against hand-worked values and an exact rational reference."""
from fractions import Fraction

import numpy as np
import pytest

from sw_model.numerics.requant import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)


def srdhm_reference(a: int, b: int) -> int:
    """gemmlowp's definition written with Python integers."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    return int(Fraction(total, 1 << 31).__trunc__())


def rdbpot_reference(x: int, e: int) -> int:
    """Round x / 2^e to nearest, ties away from zero."""
    q = Fraction(x, 1 << e)
    floor = q.__floor__()
    frac = q - floor
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and x > 0):
        return floor + 1
    return floor


def test_srdhm_hand_worked():
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
    assert saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == 1 << 29        # 0.5 * 0.5 = 0.25
    assert saturating_rounding_doubling_high_mul(3, 1 << 30) == 2                    # 1.5 rounds up
    assert saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1                  # -1.5 -> -1 (nudge 1-2^30)
    assert saturating_rounding_doubling_high_mul(-5, 1 << 30) == -2


def test_srdhm_random_against_reference():
    rng = np.random.default_rng(0)
    a = rng.integers(INT32_MIN, INT32_MAX, 3000, endpoint=True)
    b = rng.integers(INT32_MIN, INT32_MAX, 3000, endpoint=True)
    a[:3], b[:3] = [INT32_MIN, INT32_MIN, INT32_MAX], [INT32_MIN, INT32_MAX, INT32_MAX]
    got = saturating_rounding_doubling_high_mul(a, b)
    assert [int(g) for g in got] == [srdhm_reference(int(x), int(y)) for x, y in zip(a, b)]


def test_rdbpot_ties_away_from_zero():
    assert list(rounding_divide_by_pot([5, -5, 6, -6, 7, -7, 4, -4], 1)) == [3, -3, 3, -3, 4, -4, 2, -2]
    rng = np.random.default_rng(1)
    x = rng.integers(INT32_MIN, INT32_MAX, 2000)
    e = rng.integers(0, 32, 2000)
    assert [int(v) for v in rounding_divide_by_pot(x, e)] == [rdbpot_reference(int(a), int(b)) for a, b in zip(x, e)]
    with pytest.raises(ValueError, match="exponent: got -1..-1, allowed: 0..31"):
        rounding_divide_by_pot([1], -1)


def test_quantize_multiplier():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    m, s = quantize_multiplier(0.0009765625 * 3)          # 3 * 2^-10 = 0.75 * 2^-8
    assert (m, s) == (3 << 29, -8)
    m, s = quantize_multiplier(1 - 2 ** -40)               # rounds up to 2^31: renormalised
    assert (m, s) == (1 << 30, 1)
    with pytest.raises(ValueError, match="real multiplier: got -1.0"):
        quantize_multiplier(-1.0)


def test_requantize_close_to_real_scaling():
    rng = np.random.default_rng(2)
    acc = rng.integers(-(1 << 20), 1 << 20, 5000)
    for real in (0.00123, 0.0371, 0.6, 1.7):
        m, s = quantize_multiplier(real)
        got = multiply_by_quantized_multiplier(acc, m, s)
        assert np.max(np.abs(got - acc * real)) <= 1.0 + 1e-9 * np.max(np.abs(acc))   # within one step
    out = requantize(np.array([10_000, -10_000, 0]), *quantize_multiplier(0.01), zero_point=-3)
    assert out.dtype == np.int8 and list(out) == [97, -103, -3]
