"""Number-format descriptors: integers and ExMy minifloats, looked up by name.

A descriptor holds only parameters (widths, bias, which codes are special); `encode` and `decode`
turn float64 arrays into unsigned integer codes and back.

Minifloat special-value policies (`special`):
  ieee   all-ones exponent is reserved: mantissa 0 = ±Inf, otherwise NaN (E5M2, FP16, BF16, FP32)
  fn     finite, one NaN per sign: S.1..1.1..1; the rest of the all-ones exponent is normal (E4M3)
  fnuz   finite, a single NaN at the negative-zero code 1000..0, no -0 (E4M3FNUZ, E5M2FNUZ)
  finite every code is a number, no Inf, no NaN (E2M1, E2M3, E3M2)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

SPECIAL_POLICIES = ("ieee", "fn", "fnuz", "finite")


@dataclass(frozen=True)
class IntFormat:
    """Two's-complement (`signed`) or unsigned integer of `bits` bits (2..32)."""
    bits: int
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 32:
            raise ValueError(f"IntFormat.bits: got {self.bits!r}, allowed: an integer from 2 to 32")

    @property
    def name(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"

    @property
    def min_value(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True)
class FloatFormat:
    """Sign + `exp_bits` exponent + `man_bits` mantissa minifloat with explicit `bias`.

    Subnormals (exponent field 0) are always part of the format; units that flush them say so.
    `special` is one of SPECIAL_POLICIES (see the module docstring).
    """
    exp_bits: int
    man_bits: int
    bias: int | None = None
    special: str = "ieee"
    name_: str | None = None

    def __post_init__(self):
        if not isinstance(self.exp_bits, int) or not 1 <= self.exp_bits <= 8:
            raise ValueError(f"FloatFormat.exp_bits: got {self.exp_bits!r}, allowed: an integer from 1 to 8")
        if not isinstance(self.man_bits, int) or not 1 <= self.man_bits <= 23:
            raise ValueError(f"FloatFormat.man_bits: got {self.man_bits!r}, allowed: an integer from 1 to 23")
        if 1 + self.exp_bits + self.man_bits > 32:
            raise ValueError(f"FloatFormat total width: got {1 + self.exp_bits + self.man_bits} bits "
                             f"(e{self.exp_bits}m{self.man_bits}), allowed: at most 32")
        if self.special not in SPECIAL_POLICIES:
            raise ValueError(f"FloatFormat.special: got {self.special!r}, allowed: {', '.join(SPECIAL_POLICIES)}")
        if self.special == "ieee" and self.exp_bits < 2:
            raise ValueError(f"FloatFormat.special: 'ieee' needs exp_bits >= 2, got exp_bits={self.exp_bits}")
        if self.bias is None:
            object.__setattr__(self, "bias", (1 << (self.exp_bits - 1)) - 1)
        if not isinstance(self.bias, int):
            raise ValueError(f"FloatFormat.bias: got {self.bias!r}, allowed: an integer")

    # --- shape -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        if self.name_:
            return self.name_
        default_bias = (1 << (self.exp_bits - 1)) - 1
        bias = "" if self.bias == default_bias else f"b{self.bias}"
        special = "" if self.special == "ieee" else self.special
        return f"e{self.exp_bits}m{self.man_bits}{bias}{special}"

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def sign_mask(self) -> int:
        return 1 << (self.bits - 1)

    @property
    def mag_mask(self) -> int:
        """Mask of the exponent+mantissa field (the magnitude bits)."""
        return self.sign_mask - 1

    @property
    def exp_max_field(self) -> int:
        return (1 << self.exp_bits) - 1

    # --- special codes -----------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        return self.special == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.special != "finite"

    @property
    def has_negative_zero(self) -> bool:
        return self.special != "fnuz"

    @property
    def inf_code(self) -> int | None:
        """Magnitude code of +Inf (None when the format has no Inf)."""
        return self.exp_max_field << self.man_bits if self.has_inf else None

    @property
    def nan_code(self) -> int | None:
        """The canonical NaN code produced by arithmetic (None when the format has no NaN)."""
        if self.special == "ieee":
            return (self.exp_max_field << self.man_bits) | (1 << (self.man_bits - 1))
        if self.special == "fn":
            return self.mag_mask
        if self.special == "fnuz":
            return self.sign_mask
        return None

    @property
    def max_finite_code(self) -> int:
        """Magnitude code of the largest finite value."""
        if self.special == "ieee":
            return (self.exp_max_field << self.man_bits) - 1
        if self.special == "fn":
            return self.mag_mask - 1
        return self.mag_mask

    def is_nan_code(self, code: int) -> bool:
        if self.special == "ieee":
            return (code & self.mag_mask) > self.inf_code
        if self.special == "fn":
            return (code & self.mag_mask) == self.mag_mask
        if self.special == "fnuz":
            return code == self.sign_mask
        return False

    # --- values ------------------------------------------------------------------------------
    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite value (the OCP MX `emax` of an element format)."""
        return (self.max_finite_code >> self.man_bits) - self.bias

    @property
    def max_finite(self) -> float:
        e = (self.max_finite_code >> self.man_bits) - self.bias
        m = self.max_finite_code & ((1 << self.man_bits) - 1)
        return (1 + m / (1 << self.man_bits)) * 2.0 ** e

    @property
    def min_normal(self) -> float:
        return 2.0 ** self.emin

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.man_bits)


# Named formats. The ml_dtypes twin (where it exists) is recorded for the reference tests.
_NAMED: dict[str, FloatFormat] = {
    "e4m3": FloatFormat(4, 3, 7, "fn", "e4m3"),
    "e4m3fn": FloatFormat(4, 3, 7, "fn", "e4m3fn"),
    "e4m3ieee": FloatFormat(4, 3, 7, "ieee", "e4m3ieee"),
    "e4m3fnuz": FloatFormat(4, 3, 8, "fnuz", "e4m3fnuz"),
    "e4m3b11fnuz": FloatFormat(4, 3, 11, "fnuz", "e4m3b11fnuz"),
    "e5m2": FloatFormat(5, 2, 15, "ieee", "e5m2"),
    "e5m2fnuz": FloatFormat(5, 2, 16, "fnuz", "e5m2fnuz"),
    "e3m4": FloatFormat(3, 4, 3, "ieee", "e3m4"),
    "e2m3": FloatFormat(2, 3, 1, "finite", "e2m3"),
    "e3m2": FloatFormat(3, 2, 3, "finite", "e3m2"),
    "e2m1": FloatFormat(2, 1, 1, "finite", "e2m1"),
    "bf16": FloatFormat(8, 7, 127, "ieee", "bf16"),
    "fp16": FloatFormat(5, 10, 15, "ieee", "fp16"),
    "fp32": FloatFormat(8, 23, 127, "ieee", "fp32"),
}

# The ml_dtypes / numpy dtype name of each named format that has a reference implementation.
ML_DTYPES_TWIN = {
    "e4m3": "float8_e4m3fn", "e4m3fn": "float8_e4m3fn", "e4m3ieee": "float8_e4m3",
    "e4m3fnuz": "float8_e4m3fnuz", "e4m3b11fnuz": "float8_e4m3b11fnuz",
    "e5m2": "float8_e5m2", "e5m2fnuz": "float8_e5m2fnuz", "e3m4": "float8_e3m4",
    "e2m3": "float6_e2m3fn", "e3m2": "float6_e3m2fn", "e2m1": "float4_e2m1fn",
    "bf16": "bfloat16", "fp16": "float16", "fp32": "float32",
}

_CUSTOM = re.compile(r"^e(\d+)m(\d+)(?:b(-?\d+))?(fn|fnuz|finite)?$")
_INT = re.compile(r"^(u?)int(\d+)$")

Format = IntFormat | FloatFormat


def format_names() -> list[str]:
    """Names `get_format` accepts without parsing (custom `eXmY[bB][fn|fnuz|finite]` and `[u]intN` also work)."""
    return list(_NAMED) + [f"int{n}" for n in (2, 3, 4, 6, 8, 16, 32)] + [f"uint{n}" for n in (2, 4, 8, 16)]


def get_format(name: str) -> Format:
    """Look up a format by name: a named format (`e4m3`, `bf16`, ...), `intN`/`uintN` (N = 2..32), or a custom
    minifloat `eXmY` with optional bias `bB` and policy suffix `fn`/`fnuz`/`finite` (default IEEE-like), at most
    16 bits in total for custom ones. Raises ValueError naming the value and what is allowed."""
    if not isinstance(name, str):
        raise ValueError(f"format: got {name!r}, allowed: a format name such as 'e4m3', 'bf16', 'int8'")
    key = name.strip().lower()
    if key in _NAMED:
        return _NAMED[key]
    if m := _INT.match(key):
        return IntFormat(int(m.group(2)), signed=not m.group(1))
    if m := _CUSTOM.match(key):
        e, mbits = int(m.group(1)), int(m.group(2))
        if 1 + e + mbits > 16:
            raise ValueError(f"format: custom {name!r} has {1 + e + mbits} bits, allowed: at most 16 bits for "
                             f"custom ExMy (named formats: {', '.join(_NAMED)})")
        bias = int(m.group(3)) if m.group(3) is not None else None
        return FloatFormat(e, mbits, bias, m.group(4) or "ieee")
    raise ValueError(f"format: unknown {name!r}, allowed: {', '.join(_NAMED)}, intN/uintN (N = 2..32), "
                     f"or custom eXmY[bBIAS][fn|fnuz|finite] up to 16 bits")


# --- encode / decode ---------------------------------------------------------------------------
# NaN and overflow behaviour, matched bit for bit to ml_dtypes 0.6.0 (and numpy for fp16/fp32):
#   ieee, fn  NaN in -> canonical NaN (nan_code) with the input's sign; the payload is dropped.
#   fnuz      NaN in -> the single NaN 0x80..0; -0.0 and negatives that round to zero -> +0.
#   finite    NaN in -> a zero whose sign is the *inverse* of the NaN's sign (+NaN -> 1.00..0 = -0,
#             -NaN -> +0): that is what ml_dtypes does for float6_e2m3fn/float6_e3m2fn/float4_e2m1fn.
# Natural overflow (overflow=None): ieee -> ±Inf, fn -> ±NaN, fnuz -> NaN, finite -> ±max finite; ±Inf input
# follows the same rule. Overflow is decided after rounding, so e4m3fn 464 (a tie) -> 448 but 465 -> NaN.
FLOAT_OVERFLOW = (None, "saturate", "inf")
INT_OVERFLOW = (None, "saturate", "wrap")
ROUNDINGS = ("even", "away")


def _resolve(fmt) -> Format:
    if isinstance(fmt, str):
        return get_format(fmt)
    if isinstance(fmt, (IntFormat, FloatFormat)):
        return fmt
    raise ValueError(f"fmt: got {fmt!r} of type {type(fmt).__name__}, allowed: an IntFormat, a FloatFormat "
                     f"or a format name (str)")


def code_dtype(bits: int) -> np.dtype:
    """Smallest unsigned numpy dtype holding `bits`-wide codes (uint8/uint16/uint32)."""
    return np.dtype(np.uint8 if bits <= 8 else np.uint16 if bits <= 16 else np.uint32)


def _check_codes(codes, fmt: Format) -> np.ndarray:
    """Validate codes as unsigned `fmt.bits`-wide integers; returns them as int64."""
    a = np.asarray(codes)
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise ValueError(f"codes: got dtype {a.dtype}, allowed: an integer dtype (unsigned codes of {fmt.name})")
    hi = (1 << fmt.bits) - 1
    # compare in the array's own signedness so uint64 values >= 2^63 are not mistaken for negatives
    wide = a.astype(np.uint64) if a.dtype.kind == "u" else a.astype(np.int64)
    bad = wide > hi if a.dtype.kind == "u" else (wide < 0) | (wide > hi)
    if bad.any():
        v = int(wide[bad].flat[0])
        raise ValueError(f"codes: got {v} for {fmt.name}, allowed: 0..{hi} ({fmt.bits}-bit unsigned codes)")
    return wide.astype(np.int64)


def decode(codes, fmt) -> np.ndarray:
    """Code array -> float64 values (exact). Ints: two's-complement bit patterns -> integer values."""
    fmt = _resolve(fmt)
    c = _check_codes(codes, fmt)
    if isinstance(fmt, IntFormat):
        if fmt.signed:
            c = np.where(c >= (1 << (fmt.bits - 1)), c - (1 << fmt.bits), c)
        return c.astype(np.float64)
    m = fmt.man_bits
    mag = c & fmt.mag_mask
    ef, mf = mag >> m, mag & ((1 << m) - 1)
    sig = np.where(ef == 0, mf, mf | (1 << m)).astype(np.float64)
    exp = np.where(ef == 0, fmt.emin, ef - fmt.bias) - m
    val = np.ldexp(sig, exp.astype(np.int32))
    if fmt.special == "ieee":
        top = ef == fmt.exp_max_field
        val = np.where(top, np.where(mf == 0, np.inf, np.nan), val)
    elif fmt.special == "fn":
        val = np.where(mag == fmt.mag_mask, np.nan, val)
    elif fmt.special == "fnuz":
        val = np.where(c == fmt.sign_mask, np.nan, val)
    return np.where(c & fmt.sign_mask, -val, val)


def _round(y: np.ndarray, rounding: str) -> np.ndarray:
    """Round non-negative float64 `y` to an integer: ties to even or away from zero."""
    return np.rint(y) if rounding == "even" else np.floor(y + 0.5)


def _check_choice(arg: str, value, allowed: tuple):
    if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
        raise ValueError(f"{arg}: got {value!r}, allowed: {', '.join(repr(a) for a in allowed)}")


def encode(values, fmt, overflow=None, *, rounding: str = "even") -> np.ndarray:
    """float values -> unsigned codes (uint8/16/32), exact round to nearest (ties to even, or `rounding="away"`).

    overflow (floats): None = the format's own behaviour (equal to the ml_dtypes cast), "saturate" = finite
    overflow -> ±max finite (±Inf in stays ±Inf if the format has Inf), "inf" = ±Inf, or NaN without Inf (not for
    `finite` formats). overflow (ints): None/"saturate" clamp to the range, "wrap" keeps the low `bits` bits.
    Values are taken as float64; see the comment above for NaN per policy."""
    fmt = _resolve(fmt)
    _check_choice("rounding", rounding, ROUNDINGS)
    x = np.asarray(values, dtype=np.float64)
    if isinstance(fmt, IntFormat):
        return _encode_int(x, fmt, overflow, rounding)
    _check_choice("overflow", overflow, FLOAT_OVERFLOW)
    if overflow == "inf" and not fmt.has_nan:
        raise ValueError(f"overflow: got 'inf' for {fmt.name}, which has neither Inf nor NaN; allowed: None, 'saturate'")
    return _encode_float(x, fmt, overflow, rounding)


def _encode_float(x: np.ndarray, f: FloatFormat, overflow, rounding: str) -> np.ndarray:
    m = f.man_bits
    sign = np.signbit(x)
    nan, inf = np.isnan(x), np.isinf(x)
    ax = np.where(nan | inf, 0.0, np.abs(x))
    e_top = f.exp_max_field - f.bias                 # largest exponent any exponent field can hold
    e = np.frexp(ax)[1].astype(np.int64) - 1         # floor(log2 |x|), exact
    e = np.where(ax == 0, f.emin, e)
    huge = e > e_top                                 # overflows whatever the rounding
    q = np.clip(e, f.emin, e_top)                    # exponent of the significand's leading bit
    # scale so one unit is one ulp at exponent q (an exact power-of-two scaling), then round to an integer
    n = _round(np.ldexp(np.where(huge, 0.0, ax), (m - q).astype(np.int32)), rounding).astype(np.int64)
    # magnitude code: subnormals (q == emin, n < 2^m) are n itself; a carry out of the significand rolls
    # into the exponent field on its own, as in hardware
    mag = ((q - f.emin) << m) + n
    over = huge | (mag > f.max_finite_code)
    nan_mag = f.nan_code & f.mag_mask if f.has_nan else 0
    # per-policy result of finite overflow and of ±Inf input: (magnitude, is NaN)
    if overflow == "saturate" or (overflow is None and f.special == "finite"):
        over_mag, over_nan = f.max_finite_code, False
    elif f.has_inf:
        over_mag, over_nan = f.inf_code, False
    else:
        over_mag, over_nan = nan_mag, True
    if f.has_inf:
        inf_mag, inf_nan = f.inf_code, False
    else:
        inf_mag, inf_nan = over_mag, over_nan
    mag = np.where(over, over_mag, mag)
    mag = np.where(inf, inf_mag, mag)
    mag = np.where(nan, nan_mag, mag)
    is_nan = nan | (over & over_nan) | (inf & inf_nan)
    s = sign.astype(np.int64)
    if f.special == "fnuz":
        s = np.where(is_nan, 1, np.where(mag == 0, 0, s))       # one NaN (0x80..), no -0
    elif f.special == "finite":
        s = np.where(nan, 1 - s, s)                              # ml_dtypes: NaN -> zero of the opposite sign
    code = (s << (f.bits - 1)) | mag
    return code.astype(code_dtype(f.bits))


def _encode_int(x: np.ndarray, f: IntFormat, overflow, rounding: str) -> np.ndarray:
    _check_choice("overflow", overflow, INT_OVERFLOW)
    if np.isnan(x).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(x))[0])
        raise ValueError(f"values: NaN at index {idx}, allowed: finite numbers (±Inf only with overflow='saturate') "
                         f"for {f.name}")
    n = np.sign(x) * _round(np.abs(x), rounding)
    if overflow == "wrap":
        if np.isinf(x).any():
            raise ValueError(f"values: ±Inf cannot wrap into {f.name}, allowed: finite numbers with overflow='wrap'")
        n = np.mod(n, float(1 << f.bits))            # fmod is exact, so this is exact for integral floats
    else:
        n = np.clip(n, f.min_value, f.max_value)
        n = np.where(n < 0, n + float(1 << f.bits), n)   # two's-complement pattern
    return n.astype(np.int64).astype(code_dtype(f.bits))


# --- format table (for `hwgen formats`) ---------------------------------------------------------
def _special_text(f: Format) -> str:
    if isinstance(f, IntFormat) or f.special == "finite":
        return "none"
    if f.special == "ieee":
        return "±Inf, NaN"
    if f.special == "fn":
        return f"NaN (S.{'1' * f.exp_bits}.{'1' * f.man_bits})"
    return f"NaN at 0x{f.sign_mask:0{(f.bits + 3) // 4}X}, no -0"


def format_table(names=None) -> list[dict]:
    """One row per format (default: the named formats plus int8, uint8, int4) with keys name, bits, exp_bits,
    man_bits, bias, max, min_normal, min_subnormal, special. Integer rows have None for the float-only fields
    and min_normal = 1 (the smallest non-zero magnitude)."""
    if names is None:
        names = list(_NAMED) + ["int8", "uint8", "int4"]
    elif isinstance(names, str):
        names = [names]
    rows = []
    for name in names:
        f = _resolve(name)
        if isinstance(f, IntFormat):
            rows.append(dict(name=f.name, bits=f.bits, exp_bits=None, man_bits=None, bias=None,
                             max=float(f.max_value), min_normal=1.0, min_subnormal=None, special=_special_text(f)))
        else:
            rows.append(dict(name=f.name, bits=f.bits, exp_bits=f.exp_bits,
                             man_bits=f.man_bits, bias=f.bias, max=f.max_finite, min_normal=f.min_normal,
                             min_subnormal=f.min_subnormal, special=_special_text(f)))
    return rows
