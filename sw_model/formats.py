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
