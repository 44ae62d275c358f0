"""Bit-exact golden models of the L-Mul family: L-Mul, the exact multiplier of the same format, the L-Mul
dot product.

L-Mul (Luo & Sun, arXiv 2410.00907) replaces the mantissa product of a float multiply by a constant:
`(1 + xm + ym + 2^-l(m)) * 2^(xe+ye)`, l(m) = m for m <= 3, 3 for m = 4, 4 for m > 4.

Two semantics (see docs/lmul.md and shared/specs/ALGORITHMS.md, "Decisions"):
  adder    one integer add on the exponent+mantissa fields, R = |a| + |b| - C with C = (bias << m) - 2^(m-l(m));
           a mantissa carry runs into the exponent field (value 2s * 2^e, Mitchell-style).
  formula  the paper's formula: when 1 + s >= 2 the result is renormalised (exponent + 1, mantissa halved,
           the dropped bit rounded to nearest even).
Policy shared by both: NaN in -> canonical NaN; Inf x 0 -> NaN; Inf x finite -> signed Inf; an operand with
exponent field 0 (zero or subnormal) is flushed to zero -> signed zero (+0 in fnuz formats); a result whose
exponent field would be <= 0 -> signed zero; a result above max finite -> `overflow` policy ("saturate" to
±max finite, or "inf": ±Inf where the format has Inf, else the canonical NaN).
"""
from __future__ import annotations

import numpy as np

from sw_model.numerics.formats import FloatFormat, decode, encode, get_format

MODES = ("adder", "formula")
#: the dot product's lane multipliers: L-Mul (either mode) or "exact", the exact product in the accumulator format
DOT_MODES = MODES + ("exact",)
OVERFLOW_POLICIES = ("saturate", "inf")


def _as_float_format(fmt) -> FloatFormat:
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    if not isinstance(fmt, FloatFormat):
        raise ValueError(f"fmt: got {fmt!r}, allowed: a minifloat format (L-Mul needs exponent and mantissa fields)")
    return fmt


def _check_policy(overflow: str, fmt: FloatFormat):
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow: got {overflow!r}, allowed: {', '.join(OVERFLOW_POLICIES)}")
    if overflow == "inf" and not fmt.has_nan:
        raise ValueError(f"overflow: 'inf' needs a format with Inf or NaN, {fmt.name} has neither; use 'saturate'")


def offset_lsbs(man_bits: int) -> int:
    """The constant 2^-l(m) expressed in mantissa LSBs: 2^(m - l(m))."""
    l = man_bits if man_bits <= 3 else (3 if man_bits == 4 else 4)
    return 1 << (man_bits - l)


def lmul_constant(fmt) -> int:
    """C in R = |a| + |b| - C (e.g. 55 = 0x37 for E4M3, 0x3F780000 for FP32)."""
    fmt = _as_float_format(fmt)
    return (fmt.bias << fmt.man_bits) - offset_lsbs(fmt.man_bits)


def _fields(codes, fmt: FloatFormat):
    c = np.asarray(codes)
    if c.dtype.kind not in "iub":
        raise ValueError(f"codes: got dtype {c.dtype}, allowed: integer codes of {fmt.name}")
    c = c.astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= (1 << fmt.bits)):
        bad = c[(c < 0) | (c >= (1 << fmt.bits))].flat[0]
        raise ValueError(f"codes: got {bad}, allowed: 0..{(1 << fmt.bits) - 1} for {fmt.name}")
    sign = c >> (fmt.bits - 1)
    mag = c & fmt.mag_mask
    return c, sign, mag


def _is_nan(c, fmt: FloatFormat):
    mag = c & fmt.mag_mask
    if fmt.special == "ieee":
        return mag > fmt.inf_code
    if fmt.special == "fn":
        return mag == fmt.mag_mask
    if fmt.special == "fnuz":
        return c == fmt.sign_mask
    return np.zeros(c.shape, bool)


def _is_inf(mag, fmt: FloatFormat):
    return mag == fmt.inf_code if fmt.has_inf else np.zeros(mag.shape, bool)


def _signed_zero(sign, fmt: FloatFormat):
    return sign << (fmt.bits - 1) if fmt.has_negative_zero else np.zeros_like(sign)


def _finish(sign, r, nan, inf, zero, fmt: FloatFormat, overflow: str):
    """Apply the shared special-value, underflow and overflow policy to a raw magnitude code r."""
    out_dtype = np.uint8 if fmt.bits <= 8 else np.uint16 if fmt.bits <= 16 else np.uint32
    over_code = fmt.max_finite_code if overflow == "saturate" else (fmt.inf_code if fmt.has_inf else None)
    under = zero | (r < (1 << fmt.man_bits))
    over = r > fmt.max_finite_code
    res = (sign << (fmt.bits - 1)) | np.clip(r, 0, fmt.mag_mask)
    if over_code is None:                       # 'inf' policy without Inf: overflow is NaN
        res = np.where(over, fmt.nan_code, res)
    else:
        res = np.where(over, (sign << (fmt.bits - 1)) | over_code, res)
    res = np.where(under, _signed_zero(sign, fmt), res)
    if fmt.has_inf:
        res = np.where(inf, (sign << (fmt.bits - 1)) | fmt.inf_code, res)
    if fmt.has_nan:
        res = np.where(nan, fmt.nan_code, res)
    return res.astype(out_dtype)


def lmul(a_codes, b_codes, fmt, mode: str = "adder", overflow: str = "saturate") -> np.ndarray:
    """L-Mul of two code arrays of format `fmt` (broadcasting); returns codes of the same format."""
    fmt = _as_float_format(fmt)
    if mode not in MODES:
        raise ValueError(f"mode: got {mode!r}, allowed: {', '.join(MODES)}")
    _check_policy(overflow, fmt)
    a, sa, ma = _fields(a_codes, fmt)
    b, sb, mb = _fields(b_codes, fmt)
    a, b, sa, sb, ma, mb = np.broadcast_arrays(a, b, sa, sb, ma, mb)
    m = fmt.man_bits
    sign = sa ^ sb
    ea, eb = ma >> m, mb >> m
    zero_in = (ea == 0) | (eb == 0)
    inf_in = _is_inf(ma, fmt) | _is_inf(mb, fmt)
    nan = _is_nan(a, fmt) | _is_nan(b, fmt) | (inf_in & zero_in)
    if mode == "adder":
        r = ma + mb - lmul_constant(fmt)
    else:
        e = ea + eb - fmt.bias
        s = (ma & ((1 << m) - 1)) + (mb & ((1 << m) - 1)) + offset_lsbs(m)
        carry = s >= (1 << m)
        half, dropped = (s - (1 << m)) >> 1, (s - (1 << m)) & 1
        halved = half + (dropped & half & 1)            # the dropped bit is exactly a tie: round to even
        r = np.where(carry, ((e + 1) << m) + halved, (e << m) + s)
    return _finish(sign, r, nan, inf_in & ~nan, zero_in, fmt, overflow)


def fmul(a_codes, b_codes, fmt, overflow: str = "saturate") -> np.ndarray:
    """Exact floating-point multiply of the same format, rounded to nearest even, subnormals in and out.

    The float64 product of two operands of <= 24-bit significands is exact, so one RNE cast rounds it correctly.
    NaN results are the canonical NaN; Inf x finite stays Inf; finite overflow follows `overflow`."""
    fmt = _as_float_format(fmt)
    _check_policy(overflow, fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        prod = decode(a_codes, fmt) * decode(b_codes, fmt)
    codes = np.asarray(encode(prod, fmt, overflow=overflow))
    if fmt.has_nan:                              # NaN operands and overflow to NaN ("inf" in fn formats)
        codes = np.where(np.isnan(decode(codes, fmt)), fmt.nan_code, codes).astype(codes.dtype)
    return codes


def float_add(x_codes, y_codes, fmt) -> np.ndarray:
    """IEEE addition in an IEEE-like format, RNE, subnormals kept, overflow to Inf, NaN canonical.

    float64 holds the sum of two <= 24-bit-significand values with one rounding whose double rounding is
    harmless (53 >= 2p + 2), so one RNE cast of the float64 sum is the correctly rounded result."""
    fmt = _as_float_format(fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        s = decode(x_codes, fmt) + decode(y_codes, fmt)
    codes = np.asarray(encode(s, fmt))
    return np.where(np.isnan(s), fmt.nan_code, codes).astype(codes.dtype)


def widen(codes, fmt, acc_fmt) -> np.ndarray:
    """Exact conversion of codes of `fmt` into the wider IEEE format `acc_fmt` (NaN canonical)."""
    fmt, acc_fmt = _as_float_format(fmt), _as_float_format(acc_fmt)
    v = decode(codes, fmt)
    out = np.asarray(encode(v, acc_fmt))
    return np.where(np.isnan(v), acc_fmt.nan_code, out).astype(out.dtype)


def tree_sum(codes, acc_fmt) -> np.ndarray:
    """Sum along the last axis as the hardware adder tree does: adjacent pairs per level, an odd last element
    passes up unchanged; ((x0+x1)+(x2+x3)) + x4 for five lanes."""
    acc_fmt = _as_float_format(acc_fmt)
    level = np.asarray(codes)
    while level.shape[-1] > 1:
        n = level.shape[-1]
        pairs = float_add(level[..., 0:n - 1:2], level[..., 1:n:2], acc_fmt)
        level = np.concatenate([pairs, level[..., n - 1:]], axis=-1) if n % 2 else pairs
    return level[..., 0]


def exact_products(a_codes, b_codes, fmt, acc_fmt) -> np.ndarray:
    """The exact product of two `fmt` codes as `acc_fmt` codes (subnormal operands kept; NaN canonical, Inf x 0
    is NaN). Exact when `acc_fmt` holds every product (LMulDotConfig checks that for mode="exact")."""
    fmt, acc_fmt = _as_float_format(fmt), _as_float_format(acc_fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        prod = decode(a_codes, fmt) * decode(b_codes, fmt)          # float64: exact for <= 26-bit significands
    out = np.asarray(encode(prod, acc_fmt))
    return np.where(np.isnan(prod), acc_fmt.nan_code, out).astype(out.dtype)


def lmul_dot(a_codes, b_codes, fmt, acc_fmt, mode: str = "adder", overflow: str = "saturate") -> np.ndarray:
    """L-Mul dot product as the N-lane unit computes it.

    a_codes, b_codes: (..., beats, lanes). Each beat's lane products are L-Mul codes in `fmt`, widened exactly
    to `acc_fmt` (mode "exact": the exact products, `exact_products`), and summed by `tree_sum`; the beat sums
    are accumulated in order, ((t0 + t1) + t2) + ... Returns acc_fmt codes of shape (...)."""
    fmt, acc_fmt = _as_float_format(fmt), _as_float_format(acc_fmt)
    if mode == "exact":
        prods = exact_products(a_codes, b_codes, fmt, acc_fmt)
    else:
        prods = widen(lmul(a_codes, b_codes, fmt, mode, overflow), fmt, acc_fmt)
    beats = tree_sum(prods, acc_fmt)
    acc = beats[..., 0]
    for k in range(1, beats.shape[-1]):
        acc = float_add(acc, beats[..., k], acc_fmt)
    return acc
