"""Integer requantization as TFLite's int8 reference kernels do it (gemmlowp fixed-point semantics).

An int32 accumulator is scaled by a real multiplier M = S_in * S_w / S_out represented as a Q31 integer
`multiplier` in [2^30, 2^31) and a power-of-two `shift` (positive = left):

    MultiplyByQuantizedMultiplier(x, multiplier, shift) =
        RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0), multiplier), max(-shift, 0))

SRDHM(a, b) = (a*b + nudge) / 2^31 rounded as gemmlowp does (nudge = 2^30 for a*b >= 0, 1 - 2^30 otherwise,
division truncating toward zero), saturating the single overflow case a = b = INT32_MIN. RDBPOT rounds half away
from zero. All functions are vectorized over int64 numpy arrays holding int32 values.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _i64(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise ValueError(f"requant: got dtype {x.dtype}, allowed: integer arrays")
    return x.astype(np.int64)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values."""
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    # a*b fits in int64 except INT32_MIN^2, which is the saturating case handled below
    ab = np.where(overflow, 0, a) * np.where(overflow, 0, b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    q = np.abs(total) >> 31                 # C++ integer division truncates toward zero
    high = np.where(total < 0, -q, q)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero (0 <= exponent <= 31)."""
    x, exponent = np.broadcast_arrays(_i64(x), _i64(exponent))
    if exponent.size and (exponent.min() < 0 or exponent.max() > 31):
        raise ValueError(f"exponent: got {int(exponent.min())}..{int(exponent.max())}, allowed: 0..31")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift)."""
    x, multiplier, shift = np.broadcast_arrays(_i64(x), _i64(multiplier), _i64(shift))
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = x * (np.int64(1) << left)
    if scaled.size and (scaled.min() < INT32_MIN or scaled.max() > INT32_MAX):
        raise ValueError("requant: the left shift overflows int32 (TFLite does not allow it either)")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


def multiply_by_quantized_multiplier_single_round(x, multiplier, shift) -> np.ndarray:
    """ruy's MultiplyByQuantizedMultiplier (the int8 FULLY_CONNECTED path of TFLite's reference build runs
    through it): one rounding of the exact 64-bit product, (x * multiplier + 2^(30 - shift)) >> (31 - shift),
    ties toward +inf; differs from the two-step gemmlowp version near exact halves."""
    x, multiplier, shift = np.broadcast_arrays(_i64(x), _i64(multiplier), _i64(shift))
    if shift.size and (shift.min() < -31 or shift.max() > 30):
        raise ValueError(f"shift: got {int(shift.min())}..{int(shift.max())}, allowed: -31..30")
    total = 31 - shift
    # |x * multiplier| < 2^62 for int32 x and multiplier < 2^31: exact in int64
    return (x * multiplier + (np.int64(1) << (total - 1))) >> total


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2^(shift - 31) with multiplier in [2^30, 2^31)."""
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"real multiplier: got {real!r}, allowed: a finite value >= 0")
    if real == 0:
        return 0, 0
    m, shift = math.frexp(real)             # real = m * 2^shift, m in [0.5, 1)
    q = round(m * (1 << 31))                # TFRound: half away from zero (m > 0)
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q), int(shift)


def requantize(acc, multiplier, shift, zero_point: int = 0, lo: int = -128, hi: int = 127) -> np.ndarray:
    """int32 accumulators -> int8 outputs: scale, add the output zero point, clamp (TFLite's int8 output stage)."""
    y = multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point
    return np.clip(y, lo, hi).astype(np.int8 if lo >= -128 and hi <= 127 else np.int32)
