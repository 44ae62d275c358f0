"""Configs and presets of the L-Mul family (LMul, FMul, LMulDot)."""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_float_format, check_int
from sw_model.lmul.golden import DOT_MODES, MODES, OVERFLOW_POLICIES
from sw_model.numerics.formats import FloatFormat, get_format


def check_overflow(fmt_name: str, overflow: str):
    """`overflow` is a known policy, and "inf" only for formats that have Inf or NaN."""
    fmt = get_format(fmt_name)
    check_choice("overflow", overflow, OVERFLOW_POLICIES)
    if overflow == "inf" and not fmt.has_nan:
        raise ConfigError(f"overflow: got 'inf', but fmt {fmt_name} has no Inf or NaN; allowed: saturate")


@dataclass(frozen=True)
class LMulConfig:
    """One L-Mul unit: `fmt` codes in and out, `mode` adder|formula, `overflow` saturate|inf,
    `pipeline` register stages between input handshake and output (0 = combinational)."""
    fmt: str = "e4m3"
    mode: str = "adder"
    overflow: str = "saturate"
    pipeline: int = 1
    unit = "lmul"

    def __post_init__(self):
        check_float_format("fmt", self.fmt)
        check_choice("mode", self.mode, MODES)
        check_overflow(self.fmt, self.overflow)
        check_int("pipeline", self.pipeline, 0, 4)

    @property
    def format(self) -> FloatFormat:
        return get_format(self.fmt)


@dataclass(frozen=True)
class FMulConfig:
    """The exact multiplier of one format (RNE, subnormals in and out), the comparison unit for L-Mul."""
    fmt: str = "e4m3"
    overflow: str = "saturate"
    pipeline: int = 2
    unit = "fmul"

    def __post_init__(self):
        check_float_format("fmt", self.fmt)
        check_overflow(self.fmt, self.overflow)
        check_int("pipeline", self.pipeline, 0, 4)

    @property
    def format(self) -> FloatFormat:
        return get_format(self.fmt)


@dataclass(frozen=True)
class LMulDotConfig:
    """An N-lane L-Mul dot product: `lanes` L-Mul products per beat in `fmt`, widened exactly into the IEEE
    accumulator format `acc_fmt`, summed by an adder tree and accumulated over the beats of a vector.
    `mode="exact"` puts exact multipliers in the lanes instead (the product, exact in `acc_fmt`): the baseline
    engine the L-Mul engine is compared with."""
    fmt: str = "e4m3"
    acc_fmt: str = "fp32"
    lanes: int = 16
    mode: str = "adder"
    overflow: str = "saturate"
    pipeline: int = 1
    unit = "lmuldot"

    def __post_init__(self):
        fmt = check_float_format("fmt", self.fmt, max_bits=16)
        acc = check_float_format("acc_fmt", self.acc_fmt)
        check_choice("mode", self.mode, DOT_MODES)
        check_overflow(self.fmt, self.overflow)
        check_int("lanes", self.lanes, 1, 256)
        check_int("pipeline", self.pipeline, 0, 1 + 8)
        if acc.special != "ieee":
            raise ConfigError(f"acc_fmt: got {self.acc_fmt!r}, allowed: an IEEE-like format (fp32, bf16, fp16, ...)")
        # Every L-Mul product (normal, zero, Inf or NaN) must be exactly representable in the accumulator.
        lo, hi = fmt.emin, (fmt.max_finite_code >> fmt.man_bits) - fmt.bias
        if self.mode == "exact":
            # every exact product (subnormal x subnormal up to max x max) must be an exact normal acc_fmt value
            lo_p, hi_p = 2 * (fmt.emin - fmt.man_bits), 2 * hi + 1
            if acc.man_bits < 2 * fmt.man_bits + 1 or acc.emin > lo_p or \
                    (acc.inf_code >> acc.man_bits) - 1 - acc.bias < hi_p:
                raise ConfigError(f"acc_fmt: got {self.acc_fmt!r}, allowed with mode='exact': a format that holds "
                                  f"every exact {self.fmt} product (at least {2 * fmt.man_bits + 1} mantissa bits, "
                                  f"exponents {lo_p}..{hi_p})")
        if acc.man_bits < fmt.man_bits or acc.emin > lo or (acc.inf_code >> acc.man_bits) - 1 - acc.bias < hi:
            raise ConfigError(f"acc_fmt: got {self.acc_fmt!r}, allowed: a format that holds every {self.fmt} value "
                              f"exactly (at least {fmt.man_bits} mantissa bits, exponents {lo}..{hi})")

    @property
    def format(self) -> FloatFormat:
        return get_format(self.fmt)

    @property
    def acc_format(self) -> FloatFormat:
        return get_format(self.acc_fmt)


PRESETS_LMUL = {
    "lmul-e4m3": LMulConfig(fmt="e4m3"),
    "lmul-e4m3-formula": LMulConfig(fmt="e4m3", mode="formula"),
    "lmul-e5m2": LMulConfig(fmt="e5m2"),
    "lmul-e3m4": LMulConfig(fmt="e3m4"),
    "lmul-bf16": LMulConfig(fmt="bf16"),
    "fmul-e4m3": FMulConfig(fmt="e4m3"),
    "fmul-e5m2": FMulConfig(fmt="e5m2"),
    "fmul-bf16": FMulConfig(fmt="bf16"),
    "lmuldot-e4m3x16": LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=16),
    "lmuldot-e5m2x8-bf16": LMulDotConfig(fmt="e5m2", acc_fmt="bf16", lanes=8),
    "exactdot-e4m3x16": LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=16, mode="exact"),
}
