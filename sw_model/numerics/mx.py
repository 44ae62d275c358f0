"""OCP Microscaling (MX v1.0) block formats: `block_size` elements share one E8M0 power-of-two scale.

Quantize one block V (per the spec and the microxcaling reference):
  shared_exp = floor(log2(max|V|)) - emax_elem      (max|V| = 0 is taken as the FP32 min normal 2^-126)
  clamped below at -127; above +127 the scale is NaN (code 0xFF)
  P_i = round(V_i / 2^shared_exp) in the element format, saturating to ±max normal, subnormals kept
  scale code = shared_exp + 127 (E8M0: value 2^(code-127), 0xFF = NaN, no zero, no Inf)
MXINT8 elements are 8-bit two's complement with an implicit 2^-6 (emax 0), clamped to ±127 (code 0x80 = -2.0 is
never produced but decodes). Rounding is RNE ("even", the project default) or half away from zero ("away",
microxcaling's default).

Choices where the spec leaves one:
- A length that is not a multiple of the block size: the last block is padded with zeros (which cannot change its
  max); the padding is dropped again, so element codes keep the input's length and there are ceil(n/k) scales.
- A block holding NaN or ±Inf gets the NaN scale 0xFF and all-zero element codes; every element decodes to NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.numerics.formats import FloatFormat, IntFormat, decode, encode, get_format

MX_ELEMENTS = ("e5m2", "e4m3", "e3m2", "e2m3", "e2m1", "int8")
MX_PRESETS = {"mxfp8_e4m3": "e4m3", "mxfp8_e5m2": "e5m2", "mxfp6_e3m2": "e3m2", "mxfp6_e2m3": "e2m3",
              "mxfp4": "e2m1", "mxint8": "int8"}
SCALE_BIAS = 127
SCALE_NAN = 0xFF
MXINT8_FRAC_BITS = 6          # MXINT8 element = int8 * 2^-6
FP32_MIN_NORMAL_EXP = -126


@dataclass(frozen=True)
class MXFormat:
    """An MX block format: element format name (one of MX_ELEMENTS) and block size (OCP: 32)."""
    element: str
    block_size: int = 32

    def __post_init__(self):
        if self.element not in MX_ELEMENTS:
            raise ValueError(f"MXFormat.element: got {self.element!r}, allowed: {', '.join(MX_ELEMENTS)}")
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"MXFormat.block_size: got {self.block_size!r}, allowed: a positive integer (OCP MX: 32)")

    @property
    def elem_format(self) -> FloatFormat | IntFormat:
        return get_format(self.element)

    @property
    def emax_elem(self) -> int:
        """Exponent of the element format's largest power of two (0 for MXINT8)."""
        f = self.elem_format
        return 0 if isinstance(f, IntFormat) else f.emax

    @property
    def name(self) -> str:
        preset = {v: k for k, v in MX_PRESETS.items()}[self.element]
        return preset if self.block_size == 32 else f"{preset}_k{self.block_size}"


def get_mx_format(name: str, block_size: int = 32) -> MXFormat:
    """Named preset: mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in MX_PRESETS:
        raise ValueError(f"MX format: got {name!r}, allowed: {', '.join(MX_PRESETS)}")
    return MXFormat(MX_PRESETS[key], block_size)


def _as_mx(mxfmt) -> MXFormat:
    if isinstance(mxfmt, MXFormat):
        return mxfmt
    if isinstance(mxfmt, str):
        return get_mx_format(mxfmt)
    raise ValueError(f"mxfmt: got {mxfmt!r} of type {type(mxfmt).__name__}, allowed: an MXFormat or a preset name "
                     f"({', '.join(MX_PRESETS)})")


def _axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"axis: got {axis!r}, allowed: an integer in {-ndim}..{ndim - 1}")
    return int(axis) % ndim


def _blocks(a: np.ndarray, k: int, fill) -> np.ndarray:
    """(..., n) -> (..., nblocks, k), padding the last block with `fill`."""
    n = a.shape[-1]
    pad = -n % k
    if pad:
        a = np.concatenate([a, np.full(a.shape[:-1] + (pad,), fill, dtype=a.dtype)], axis=-1)
    return a.reshape(a.shape[:-1] + (a.shape[-1] // k, k))


def mx_quantize(x, mxfmt, rounding: str = "even", axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Quantize `x` in blocks along `axis` -> (scale codes uint8 E8M0, element codes uint8).

    The scale array has the shape of x with ceil(n / block_size) along `axis`; element codes have x's shape."""
    mx = _as_mx(mxfmt)
    if rounding not in ("even", "away"):
        raise ValueError(f"rounding: got {rounding!r}, allowed: 'even', 'away'")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("x: got a scalar, allowed: an array with at least one dimension")
    ax = _axis(axis, x.ndim)
    v = np.moveaxis(x, ax, -1)
    n = v.shape[-1]
    if n == 0:
        raise ValueError(f"x: got length 0 along axis {axis}, allowed: at least one element")
    b = _blocks(v, mx.block_size, 0.0)

    with np.errstate(invalid="ignore"):
        amax = np.max(np.abs(b), axis=-1)                       # NaN if the block holds a NaN
    bad = ~np.isfinite(amax)
    amax = np.where(bad, 1.0, amax)
    # floor(log2 amax) from frexp is exact (log2 in floating point can land on the wrong side of an integer)
    e_amax = np.where(amax == 0, FP32_MIN_NORMAL_EXP, np.frexp(amax)[1].astype(np.int64) - 1)
    shared = np.maximum(e_amax - mx.emax_elem, -SCALE_BIAS)
    bad |= shared > SCALE_BIAS
    shared = np.where(bad, 0, shared)

    p = np.ldexp(np.where(bad[..., None], 0.0, b), (-shared[..., None]).astype(np.int32))   # exact scaling
    f = mx.elem_format
    if isinstance(f, IntFormat):
        # microxcaling clamps to ±127, never -128; clipping at integers before rounding gives the same result
        codes = encode(np.clip(np.ldexp(p, MXINT8_FRAC_BITS), -127, 127), f, rounding=rounding)
    else:
        codes = encode(p, f, overflow="saturate", rounding=rounding)
    codes = np.where(bad[..., None], 0, codes).astype(np.uint8)
    scales = np.where(bad, SCALE_NAN, shared + SCALE_BIAS).astype(np.uint8)

    codes = codes.reshape(codes.shape[:-2] + (-1,))[..., :n]
    return np.moveaxis(scales, -1, ax), np.moveaxis(codes, -1, ax)


def mx_dequantize(scale_codes, element_codes, mxfmt, axis: int = -1) -> np.ndarray:
    """Inverse of mx_quantize: element value * 2^(scale_code - 127); scale 0xFF makes its whole block NaN."""
    mx = _as_mx(mxfmt)
    s = np.asarray(scale_codes)
    e = np.asarray(element_codes)
    if e.ndim == 0:
        raise ValueError("element_codes: got a scalar, allowed: an array with at least one dimension")
    ax = _axis(axis, e.ndim)
    n = e.shape[ax]
    nblocks = -(-n // mx.block_size)
    want = e.shape[:ax] + (nblocks,) + e.shape[ax + 1:]
    if s.shape != want:
        raise ValueError(f"scale_codes: got shape {s.shape}, allowed: {want} (element_codes {e.shape} in blocks "
                         f"of {mx.block_size} along axis {axis})")
    sc = np.moveaxis(decode(s, "uint8"), ax, -1).astype(np.int64)
    ev = np.moveaxis(decode(e, mx.elem_format), ax, -1)
    if isinstance(mx.elem_format, IntFormat):
        ev = np.ldexp(ev, -MXINT8_FRAC_BITS)
    ev = _blocks(ev, mx.block_size, 0.0)
    out = np.ldexp(ev, (sc - SCALE_BIAS)[..., None].astype(np.int32))
    out = np.where((sc == SCALE_NAN)[..., None], np.nan, out)
    out = out.reshape(out.shape[:-2] + (-1,))[..., :n]
    return np.moveaxis(out, -1, ax)
