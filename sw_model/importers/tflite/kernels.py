"""TFLite's int8/uint8 reference kernels in numpy: the host side of the importer.

Each function computes what the named TFLite kernel computes in its reference (BUILTIN_REF) build, on int64 numpy
arrays that hold the tensor's integer values, NHWC like TFLite:
  * integer paths use `sw_model.numerics.requant` (MultiplyByQuantizedMultiplier, RoundingDivideByPOT);
  * the kernels that TFLite computes through float32 lookup tables (LOGISTIC, SOFTMAX, CONCATENATION with
    rescaling, QUANTIZE from float) are computed in float32 here too, with the same operation order; exp is taken
    in float64 and rounded to float32 (a correctly rounded expf), std::round is half away from zero.
The per-op parameters (multipliers, shifts, tables) are derived once from the tensors' quantization by `prepare_*`
functions, as TFLite's Prepare does."""
from __future__ import annotations

import numpy as np

from sw_model.numerics.requant import multiply_by_quantized_multiplier, quantize_multiplier

F32 = np.float32
TYPE_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767), "INT32": (-(1 << 31), (1 << 31) - 1)}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def round_away(x) -> np.ndarray:
    """std::round / TfLiteRound: nearest, ties away from zero (float64 math, exact for float32 inputs)."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_range(code: int, scale: float, zero_point: int, type_name: str) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the clamp of a fused activation on the output's integer scale."""
    qmin, qmax = TYPE_RANGE[type_name]

    def q(f):
        return zero_point + int(round_away(F32(f) / F32(scale)))
    if code == 0:
        return qmin, qmax
    if code == 1:
        return max(qmin, q(0.0)), qmax
    if code == 3:
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if code == 2:
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"fused activation: got code {code}, allowed: {ACTIVATIONS}")


def same_or_valid(in_size: int, k: int, stride: int, dilation: int, padding: int) -> tuple[int, int]:
    """(output size, padding before) as TFLite's ComputeOutSize / ComputePaddingWithOffset (padding 0 SAME, 1 VALID)."""
    eff = (k - 1) * dilation + 1
    out = (in_size + stride - 1) // stride if padding == 0 else (in_size - eff + stride) // stride
    pad = max(0, ((out - 1) * stride + eff - in_size) // 2)
    return out, pad


def windows(x, kh, kw, sh, sw, dh, dw, padding, pad_value):
    """(N, OH, OW, kh*kw, C) windows of an NHWC tensor, padded with `pad_value`, in (ky, kx) order (int64; a
    float tensor stays float64)."""
    n, h, w, c = x.shape
    oh, ph = same_or_valid(h, kh, sh, dh, padding)
    ow, pw = same_or_valid(w, kw, sw, dw, padding)
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    dtype = np.float64 if np.asarray(x).dtype.kind == "f" else np.int64
    xp = np.full((n, max(need_h, ph + h), max(need_w, pw + w), c), pad_value, dtype=dtype)
    xp[:, ph:ph + h, pw:pw + w] = x
    parts = [xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
             for ky in range(kh) for kx in range(kw)]
    return np.stack(parts, axis=3)


def requant_output(acc, multiplier, shift, zero_point, lo, hi) -> np.ndarray:
    """The int8 output stage of CONV/DEPTHWISE/FC/MUL: MultiplyByQuantizedMultiplier, + zero point, clamp."""
    return np.clip(multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point, lo, hi)


# ---- pooling -------------------------------------------------------------------------------------------------
def average_pool(x, fh, fw, sh, sw, padding, lo, hi):
    """reference_integer_ops::AveragePool: the sum over the window's in-image elements, divided by their count
    rounding half away from zero (C++ division), clamped."""
    win = windows(x, fh, fw, sh, sw, 1, 1, padding, 0)
    ones = windows(np.ones(x.shape[:3] + (1,), np.int64), fh, fw, sh, sw, 1, 1, padding, 0)
    total = win.sum(axis=3)
    count = ones.sum(axis=3)
    q = (np.abs(total) + count // 2) // count
    return np.clip(np.where(total > 0, q, -q), lo, hi)


def max_pool(x, fh, fw, sh, sw, padding, lo, hi):
    win = windows(x, fh, fw, sh, sw, 1, 1, padding, np.iinfo(np.int64).min)
    return np.clip(win.max(axis=3), lo, hi)


# ---- elementwise arithmetic ---------------------------------------------------------------------------------
def prepare_add(s1, s2, so):
    """Prepare of int8 ADD: both inputs rescaled to twice the larger scale with left shift 20."""
    twice = 2.0 * float(max(F32(s1), F32(s2)))
    left = 20
    return {"left_shift": left, "q1": quantize_multiplier(float(s1) / twice),
            "q2": quantize_multiplier(float(s2) / twice), "qo": quantize_multiplier(twice / ((1 << left) * float(so)))}


def add(a, b, zp1, zp2, zpo, params, lo, hi):
    """reference_integer_ops::Add (with broadcasting): (x + offset) << 20, each rescaled, summed, requantized."""
    left = params["left_shift"]
    sa = multiply_by_quantized_multiplier((a - zp1) * (1 << left), *params["q1"])
    sb = multiply_by_quantized_multiplier((b - zp2) * (1 << left), *params["q2"])
    return np.clip(multiply_by_quantized_multiplier(sa + sb, *params["qo"]) + zpo, lo, hi)


def mul(a, b, zp1, zp2, zpo, q, lo, hi):
    """reference_integer_ops::Mul: (a - zp1)(b - zp2) requantized by s1 s2 / so."""
    return np.clip(multiply_by_quantized_multiplier((a - zp1) * (b - zp2), *q) + zpo, lo, hi)


def prepare_mean(s_in, s_out, n: int) -> tuple[int, int]:
    """(multiplier, shift) of int8 MEAN over n elements: QuantizeMultiplier(s_in / s_out), then the 1/n folded in
    as reference_ops::QuantizedMeanOrSum does: shift = min(floor(log2 n), 32, 31 + shift_out), multiplier =
    (multiplier << shift) / n truncated."""
    m, sh = quantize_multiplier(float(s_in) / float(s_out))
    k = min(n.bit_length() - 1, 32, 31 + sh)
    return (m << k) // n, sh - k


def mean(x, axes, keep_dims, zp_in, zp_out, q, lo, hi):
    """reference_ops::QuantizedMeanOrSum (mean): sum over the axes, minus zp_in * n, one requantization."""
    x = np.asarray(x, np.int64)
    n = int(np.prod([x.shape[a] for a in axes]))
    total = x.sum(axis=tuple(axes), keepdims=keep_dims) - zp_in * n
    return np.clip(multiply_by_quantized_multiplier(total, *q) + zp_out, lo, hi)


# ---- quantize / dequantize -----------------------------------------------------------------------------------
def requantize_tensor(x, zp_in, zp_out, q, lo, hi):
    """QUANTIZE between integer types (e.g. uint8 <-> int8): MultiplyByQuantizedMultiplier(x - zp_in) + zp_out."""
    return np.clip(multiply_by_quantized_multiplier(x - zp_in, *q) + zp_out, lo, hi)


def quantize_float(x, scale, zero_point, lo, hi):
    """AffineQuantize: TfLiteRound(x / scale) in float32, + zero point, clamp."""
    return np.clip(round_away(F32(x) / F32(scale)).astype(np.int64) + zero_point, lo, hi)


def dequantize(x, scale, zero_point):
    """Dequantize: float(double(scale) * (x - zero_point)) as float32."""
    return (float(scale) * (np.asarray(x, np.float64) - zero_point)).astype(np.float32)


# ---- lookup-table activations --------------------------------------------------------------------------------
def expf(x) -> np.ndarray:
    """expf correctly rounded: exp in float64, rounded to float32."""
    return np.exp(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def logistic_table(s_in, zp_in, s_out, zp_out, type_name) -> np.ndarray:
    """PopulateLookupTable of LOGISTIC: every input code's sigmoid, computed in float32, rounded, clamped."""
    lo, hi = TYPE_RANGE[type_name]
    vals = np.arange(lo, hi + 1, dtype=np.int64)
    deq = F32(s_in) * (vals - zp_in).astype(np.float32)
    y = F32(1.0) / (F32(1.0) + expf(-deq))
    rescaled = round_away(y * (F32(1.0) / F32(s_out)))
    return np.clip(rescaled.astype(np.int64) + zp_out, lo, hi)


def lookup(x, table, type_name):
    lo, _ = TYPE_RANGE[type_name]
    return table[np.asarray(x, np.int64) - lo]


def softmax_table(s_in, beta) -> np.ndarray:
    """PopulateSoftmaxLookupTable: table[255 - d] = expf(-s_in * beta * d) for d = 0..255 (float32)."""
    scale = F32(-F32(s_in) * F32(beta))
    d = np.arange(256)
    table = np.zeros(256, np.float32)
    table[255 - d] = expf(scale * d.astype(np.float32))
    return table


def softmax(x, table, s_out, zp_out, out_type):
    """optimized_ops::Softmax for 8-bit tensors (the kernel the reference build registers too): float32 table of
    exp(x - max), sequential float32 sum, probabilities rescaled by 1 / (sum * s_out) and rounded."""
    x = np.asarray(x, np.int64)
    e = table[255 - (x.max(axis=-1, keepdims=True) - x)]
    total = np.cumsum(e, axis=-1, dtype=np.float32)[..., -1:]          # sequential float32 accumulation
    inv = F32(1.0) / (total * F32(s_out))
    prob = (e * inv).astype(np.float32)
    lo, hi = TYPE_RANGE[out_type]
    if out_type == "UINT8":                                             # static_cast<int32>(p + 0.5f)
        q = np.trunc((prob + F32(0.5)).astype(np.float32)).astype(np.int64)
    else:
        q = round_away(prob).astype(np.int64) + zp_out
    return np.clip(q, lo, hi)


# ---- data movement -------------------------------------------------------------------------------------------
def concatenation(xs, scales, zps, s_out, zp_out, axis, lo, hi):
    """reference_ops::Concatenation / ConcatenationWithScaling: inputs with the output's quantization are copied,
    the others rescaled in float32: round(x * s + (-zp * s)) + zp_out with s = s_in / s_out."""
    parts = []
    for x, s, zp in zip(xs, scales, zps):
        if F32(s) == F32(s_out) and zp == zp_out:
            parts.append(np.asarray(x, np.int64))
        else:
            scale = F32(F32(s) / F32(s_out))
            bias = F32(-F32(zp) * scale)
            y = round_away((np.asarray(x).astype(np.float32) * scale + bias).astype(np.float32))
            parts.append(np.clip(y.astype(np.int64) + zp_out, lo, hi))
    return np.concatenate(parts, axis=axis)


def strided_slice(x, begin, end, strides, begin_mask, end_mask, shrink_mask, offset=False):
    """STRIDED_SLICE without ellipsis / new-axis masks (refused at load)."""
    index = []
    for d in range(x.ndim):
        if d >= len(begin):
            index.append(slice(None))
            continue
        b, e, s = int(begin[d]), int(end[d]), int(strides[d])
        if offset:
            e = b + e
        if shrink_mask >> d & 1:
            index.append(b + x.shape[d] if b < 0 else b)
            continue
        index.append(slice(None if begin_mask >> d & 1 else b, None if end_mask >> d & 1 else e, s))
    return x[tuple(index)]
