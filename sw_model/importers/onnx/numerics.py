"""Number formats of the matmul/conv layers of an imported model, each as its golden model computes it.

A numeric turns one layer's float weight (N, K) into a prepared layer (`prepare(w, x_absmax)`, with the largest
|input| seen on the calibration inputs) whose `__call__(x2d)` gives the (M, N) float32 product x2d @ W.T. Engine
numerics split that into `encode(x2d)` (engine operands), `golden(ops)` (the engine's result, bit-exact with
its golden model) and `decode(acc)` (host dequantization), so a backend can run the middle step on the system:

  float                        float32 reference (numpy matmul)
  lmul-e4m3|e5m2|bf16[-formula] L-Mul products (adder mode, or the paper's formula) in the operand format,
                               widened exactly to FP32, summed as the lmuldot engine does (16-lane adder tree per
                               beat, beats in order); engine `lmuldot`. Power-of-two scales per tensor keep every
                               product in range (`sw_model.host.network.compile_lmul`'s rule).
  fmul-e4m3|e5m2|bf16          the same with exact products rounded to the format (`sw_model.lmul.golden.fmul`);
                               no dot engine (golden only)
  bitmod-fp4|fp3-int8|fp16     BitMoD weights (`sw_model.bitmod.quant.quantize`, groups of up to 128 along K,
                               two-level scales); INT8 activations (per-tensor symmetric, calibrated) accumulate
                               exactly in integers as the BitMoD array does; FP16 activations are multiplied
                               exactly in float64 (the array's alignment truncation is not modelled)
  mxfp8_e4m3|mxfp8_e5m2|mxfp6_e3m2|mxfp6_e2m3|mxfp4|mxint8
                               weights and activations in OCP MX blocks of 32 along K (`sw_model.numerics.mx`),
                               dequantized, products and sums in float64
  int8                         TFLite-style PTQ: per-channel symmetric int8 weights, per-tensor int8 activations
                               (scale from the calibration max), int32 accumulation as the sparse chain in dense
                               mode computes it (wrapped to its 32-bit accumulator); engine `sparse_chain`
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sw_model.bitmod.quant import quantize as bitmod_quantize
from sw_model.lmul.config import LMulDotConfig
from sw_model.lmul.golden import fmul, lmul
from sw_model.numerics.formats import decode, encode, get_format
from sw_model.numerics.mx import MX_PRESETS, get_mx_format, mx_dequantize, mx_quantize
from sw_model.sparse.config import PRESETS_SPARSE

LMUL_FORMATS = ("e4m3", "e5m2", "bf16")
BITMOD_WEIGHTS = ("fp4", "fp3")
BITMOD_ACTS = ("int8", "fp16")
INT8_ENGINE = "sparse-chain-8"
_CHUNK = 1 << 22                        # products per numpy step (memory bound)


def numeric_names() -> list[str]:
    """Every numeric name `get_numeric` accepts."""
    names = ["float"]
    names += [f"lmul-{f}{m}" for f in LMUL_FORMATS for m in ("", "-formula")]
    names += [f"fmul-{f}" for f in LMUL_FORMATS]
    names += [f"bitmod-{w}-{a}" for w in BITMOD_WEIGHTS for a in BITMOD_ACTS]
    names += list(MX_PRESETS) + ["int8"]
    return names


@functools.lru_cache(maxsize=None)
def get_numeric(name: str):
    """The numeric called `name` (see `numeric_names`); ValueError naming the allowed ones otherwise."""
    if not isinstance(name, str) or name not in numeric_names():
        raise ValueError(f"numeric: got {name!r}, allowed: {', '.join(numeric_names())}")
    if name == "float":
        return FloatNumeric()
    kind, _, rest = name.partition("-")
    if kind == "lmul":
        fmt, _, mode = rest.partition("-")
        return LMulNumeric(name, fmt, mode or "adder")
    if kind == "fmul":
        return FMulNumeric(name, rest)
    if kind == "bitmod":
        w, a = rest.split("-")
        return BitModNumeric(name, w, a)
    if name == "int8":
        return Int8Numeric()
    return MXNumeric(name)


class FloatNumeric:
    """The float32 reference product."""
    name, engine, engine_config = "float", None, None

    def prepare(self, w, x_absmax):
        w = np.asarray(w, np.float32)
        return lambda x: np.asarray(x, np.float32) @ w.T


# ---------------------------------------------------------------------------------------------- L-Mul / FMul
def _pow2_shift(max_abs: float, limit: float) -> int:
    """Largest s with max_abs * 2^s <= limit (0 for an all-zero tensor)."""
    return int(np.floor(np.log2(limit / max_abs))) if max_abs > 0 else 0


@functools.lru_cache(maxsize=None)
def _product_table(kind: str, fmt_name: str, mode: str) -> np.ndarray:
    """float32 value of the product of every pair of 8-bit codes (a * 256 + b), computed by the golden model."""
    fmt = get_format(fmt_name)
    a, b = np.divmod(np.arange(1 << 16), 1 << 8)
    codes = lmul(a, b, fmt, mode) if kind == "lmul" else fmul(a, b, fmt)
    return decode(codes, fmt).astype(np.float32)


def _products(kind: str, fmt_name: str, mode: str, x_codes, w_codes) -> np.ndarray:
    """(M, 1, K) x (1, N, K) codes -> float32 products (exact: every product of these formats is an FP32 value)."""
    fmt = get_format(fmt_name)
    if fmt.bits == 8:
        return _product_table(kind, fmt_name, mode)[(x_codes << 8) | w_codes]
    codes = lmul(x_codes, w_codes, fmt, mode) if kind == "lmul" else fmul(x_codes, w_codes, fmt)
    return decode(codes, fmt).astype(np.float32)


def lanes_sum(prods: np.ndarray, lanes: int) -> np.ndarray:
    """FP32 sums along the last axis (a multiple of `lanes`) as the lmuldot engine adds: per beat an adder tree
    of adjacent pairs (an odd last element passes up), then the beat sums in order. numpy's float32 add is the
    IEEE RNE add that `sw_model.lmul.golden.float_add` specifies for FP32."""
    level = prods.reshape(prods.shape[:-1] + (-1, lanes))
    while level.shape[-1] > 1:
        n = level.shape[-1]
        pairs = level[..., 0:n - 1:2] + level[..., 1:n:2]
        level = np.concatenate([pairs, level[..., n - 1:]], axis=-1) if n % 2 else pairs
    beats = level[..., 0]
    acc = beats[..., 0].copy()
    for k in range(1, beats.shape[-1]):
        acc += beats[..., k]
    return acc


def dot_codes(kind: str, fmt_name: str, mode: str, lanes: int, x_codes, w_codes) -> np.ndarray:
    """All dot products x_codes[m] . w_codes[n] ((M, K) x (N, K), K a multiple of lanes) -> (M, N) FP32 codes,
    bit-exact with `sw_model.lmul.golden.lmul_dot` (kind "lmul") with acc_fmt fp32; NaN is the canonical NaN."""
    x_codes, w_codes = np.asarray(x_codes, np.int64), np.asarray(w_codes, np.int64)
    m, k = x_codes.shape
    rows = max(1, _CHUNK // max(1, w_codes.shape[0] * k))
    out = np.empty((m, w_codes.shape[0]), np.float32)
    for s in range(0, m, rows):
        p = _products(kind, fmt_name, mode, x_codes[s:s + rows, None, :], w_codes[None, :, :])
        with np.errstate(invalid="ignore", over="ignore"):
            out[s:s + rows] = lanes_sum(p, lanes)
    codes = out.view(np.uint32).astype(np.int64)
    return np.where(np.isnan(out), get_format("fp32").nan_code, codes)


@dataclass
class DotLayer:
    """A layer on the dot engine: (N, K_padded) weight codes, the power-of-two shifts, the engine config."""
    kind: str
    config: LMulDotConfig
    w_codes: np.ndarray
    w_shift: int
    x_shift: int

    def encode(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        out = np.zeros((len(x), self.w_codes.shape[1]), np.int64)
        out[:, :x.shape[1]] = encode(x * 2.0 ** self.x_shift, self.config.format, overflow="saturate")
        return out

    def golden(self, x_codes) -> np.ndarray:
        c = self.config
        return dot_codes(self.kind, c.fmt, c.mode, c.lanes, x_codes, self.w_codes)

    def decode(self, acc) -> np.ndarray:
        y = decode(np.asarray(acc, np.int64), "fp32").astype(np.float32)
        return y * np.float32(2.0 ** -(self.w_shift + self.x_shift))

    def __call__(self, x):
        return self.decode(self.golden(self.encode(x)))


class LMulNumeric:
    """L-Mul products on the lmuldot engine (16 lanes, FP32 accumulator); `engine_config` is its config."""
    engine = "lmuldot"
    kind = "lmul"

    def __init__(self, name, fmt, mode):
        self.name = name
        self.engine_config = LMulDotConfig(fmt=fmt, acc_fmt="fp32", lanes=16, mode=mode)

    def prepare(self, w, x_absmax) -> DotLayer:
        cfg = self.engine_config
        fmt = cfg.format
        # every product must stay in the operand format: both factors <= sqrt(max finite) (16 for E4M3); wide
        # formats are capped at 2^8 so that FP32 sums of up to 2^16 products cannot overflow
        limit = min(2.0 ** np.floor(np.log2(np.sqrt(fmt.max_finite))), 2.0 ** 8)
        w = np.asarray(w, np.float64)
        n, k = w.shape
        k_pad = -(-k // cfg.lanes) * cfg.lanes
        w_shift, x_shift = _pow2_shift(np.abs(w).max(), limit), _pow2_shift(float(x_absmax), limit)
        w_codes = np.zeros((n, k_pad), np.int64)
        w_codes[:, :k] = encode(w * 2.0 ** w_shift, fmt, overflow="saturate")
        return DotLayer(self.kind, cfg, w_codes, w_shift, x_shift)


class FMulNumeric(LMulNumeric):
    """Exact products of the format (RNE), summed as the dot engine sums; no engine of its own (golden only)."""
    engine = None
    kind = "fmul"

    def __init__(self, name, fmt):
        super().__init__(name, fmt, "adder")


# ---------------------------------------------------------------------------------------------- BitMoD
def _bitmod_group(k: int) -> int:
    return 128 if k >= 128 else k


@dataclass
class BitModLayer:
    """BitMoD weights of one layer: half-unit integer weights times the group scale code (N, K_padded), the
    FP16 channel scales, the activation type and scale."""
    w_int: np.ndarray           # value(code) * 2 * scale_code, exact integers
    chan_scale: np.ndarray      # (N,) float64 (FP16 values)
    act: str
    x_scale: float
    k: int

    def encode(self, x):
        x = np.asarray(x, np.float64)
        xp = np.zeros((len(x), self.w_int.shape[1]))
        xp[:, :self.k] = x
        if self.act == "int8":
            return np.clip(np.round(xp / self.x_scale), -127, 127).astype(np.int64)
        return xp.astype(np.float16).astype(np.float64)

    def golden(self, xq):
        """INT8: the exact integer sums of the BitMoD array (half units x scale code); FP16: float64 sums."""
        return xq @ (self.w_int.T if self.act == "int8" else self.w_int.T.astype(np.float64))

    def decode(self, acc):
        s = self.chan_scale / 2 * (self.x_scale if self.act == "int8" else 1.0)
        return (acc * s).astype(np.float32)

    def __call__(self, x):
        return self.decode(self.golden(self.encode(x)))


class BitModNumeric:
    """BitMoD-quantized weights (FP4 or FP3 with special values), INT8 or FP16 activations."""
    engine, engine_config = None, None

    def __init__(self, name, wdtype, act):
        self.name, self.wdtype, self.act = name, wdtype, act

    def prepare(self, w, x_absmax) -> BitModLayer:
        w = np.asarray(w, np.float64)
        n, k = w.shape
        g = _bitmod_group(k)
        wp = np.zeros((n, -(-k // g) * g))
        wp[:, :k] = w
        qw = bitmod_quantize(wp, self.wdtype, g)
        w_int = np.rint(qw.values() * 2).astype(np.int64) * np.repeat(qw.scale.astype(np.int64), g, axis=1)
        return BitModLayer(w_int, qw.chan_scale.astype(np.float64), self.act, max(float(x_absmax), 1e-12) / 127, k)


# ---------------------------------------------------------------------------------------------- MX
class MXNumeric:
    """Weights and activations in MX blocks of 32 along K, products and sums in float64."""
    engine, engine_config = None, None

    def __init__(self, name):
        self.name, self.fmt = name, get_mx_format(name)

    def prepare(self, w, x_absmax):
        fmt = self.fmt
        wq = mx_dequantize(*mx_quantize(np.asarray(w, np.float64), fmt), fmt)

        def run(x):
            xq = mx_dequantize(*mx_quantize(np.asarray(x, np.float64), fmt), fmt)
            return (xq @ wq.T).astype(np.float32)
        run.w_dequantized = wq
        return run


# ---------------------------------------------------------------------------------------------- int8
@dataclass
class Int8Layer:
    """int8 PTQ of one layer: (N, K) int8 weights, per-channel scales, the calibrated input scale."""
    config: object
    w_q: np.ndarray
    s_w: np.ndarray
    s_in: float

    def encode(self, x):
        return np.clip(np.round(np.asarray(x, np.float64) / self.s_in), -128, 127).astype(np.int64)

    def golden(self, x_q):
        """(M, N) accumulators: the exact integer products wrapped to the chain's acc_bits."""
        acc = np.asarray(x_q, np.int64) @ self.w_q.T
        half = 1 << (self.config.acc_bits - 1)
        return (acc + half) % (2 * half) - half

    def decode(self, acc):
        return (np.asarray(acc, np.float64) * (self.s_in * self.s_w)).astype(np.float32)

    def __call__(self, x):
        return self.decode(self.golden(self.encode(x)))


class Int8Numeric:
    """Per-channel int8 weights, per-tensor int8 activations calibrated on given inputs; sparse chain engine."""
    name, engine = "int8", "sparse_chain"
    engine_config = PRESETS_SPARSE[INT8_ENGINE]

    def prepare(self, w, x_absmax) -> Int8Layer:
        w = np.asarray(w, np.float64)
        s_w = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0
        w_q = np.clip(np.round(w / s_w[:, None]), -127, 127).astype(np.int64)
        return Int8Layer(self.engine_config, w_q, s_w, max(float(x_absmax), 1e-12) / 127.0)
