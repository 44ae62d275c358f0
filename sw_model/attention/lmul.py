"""L-Mul of two fixed-point integers: the multiplication of the attention array's `mult = "lmul"` option.

The attention array works on integers (sw_model/attention/config.py), which have no exponent field. An integer
x != 0 is read as the float it is, with its bits below the leading one truncated to `man` (m) bits:
    e_x = bitlen(|x|) - 1,  f_x = floor(|x| * 2^(m - e_x)) - 2^m   (m-bit fraction; zero-padded when e_x < m)
    log code L_x = e_x * 2^m + f_x
and L-Mul is the project's default L-Mul semantics (shared/specs/ALGORITHMS.md, "Decisions": one integer adder
on the exponent+mantissa fields, the mantissa carry runs into the exponent, Mitchell-style):
    R = L_a + L_b + 2^(m - l(m))            (the paper's 2^-l(m) offset in mantissa LSBs, sw_model.lmul.golden.offset_lsbs)
    E = R >> m, F = R mod 2^m,  value = (2^m + F) * 2^(E - m)
    lmul(a, b, m, s) = sign(a) * sign(b) * floor(value / 2^s)     (0 when a or b is 0)
The magnitude is floored before the sign is applied (sign-magnitude, i.e. rounding toward zero). `s` folds a
following right shift (the ">> W" of a correction multiply) into the one final shift, so nothing is rounded twice.
For |a|, |b| < 2^(m+1) the value equals the bf16/float L-Mul of a and b read as floats (tests check this with
sw_model.lmul.golden). Bound: |value| <= |a| |b| (1 + 2^-l(m)) <= 2 |a| |b|.
"""
from __future__ import annotations

import numpy as np

from sw_model.lmul.golden import offset_lsbs


def lmul_int(a: int, b: int, man: int, shift: int = 0) -> int:
    """Fixed-point L-Mul of two Python integers (see module docstring)."""
    a, b = int(a), int(b)
    if a == 0 or b == 0:
        return 0
    codes = []
    for x in (abs(a), abs(b)):
        e = x.bit_length() - 1
        frac = (x << man >> e) - (1 << man)           # m bits below the leading one, truncated
        codes.append((e << man) + frac)
    r = codes[0] + codes[1] + offset_lsbs(man)
    mant, exp = (1 << man) + (r & ((1 << man) - 1)), r >> man
    net = exp - man - shift
    mag = mant << net if net >= 0 else mant >> -net
    return -mag if (a < 0) != (b < 0) else mag


_lmul_obj = np.frompyfunc(lmul_int, 4, 1)


def lmul_array(a, b, man: int, shift: int = 0) -> np.ndarray:
    """Elementwise (broadcasting) `lmul_int`; returns an object array of Python integers."""
    out = _lmul_obj(np.asarray(a, dtype=object), np.asarray(b, dtype=object), man, shift)
    return np.asarray(out, dtype=object)


def saturate(x, bits: int, signed: bool) -> np.ndarray:
    """Clamp to the range of a `bits`-bit register (the L-Mul running sums saturate instead of wrapping)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return np.asarray(np.minimum(np.maximum(np.asarray(x, dtype=object), lo), hi), dtype=object)
