"""Configs and presets of the L-Mul family (LMul, FMul, LMulDot)."""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_float_format, check_int
from sw_model.lmul.golden import DOT_MODES, MODES, OVERFLOW_POLICIES
from sw_model.numerics.formats import FloatFormat, get_format

ADD_STEPS = 5        # the hardware float add's steps (order, align, sum, normalize, round), each a possible register cut


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
    """The exact multiplier of one format (RNE, subnormals in and out), the comparison unit for L-Mul.
    `pipeline` register slices (0..6) over its five steps (multiply, leading zeros, shift, round, policy); the
    default 5 registers every step (>= 100 MHz on ECP5)."""
    fmt: str = "e4m3"
    overflow: str = "saturate"
    pipeline: int = 5
    unit = "fmul"

    def __post_init__(self):
        check_float_format("fmt", self.fmt)
        check_overflow(self.fmt, self.overflow)
        check_int("pipeline", self.pipeline, 0, 6)

    @property
    def format(self) -> FloatFormat:
        return get_format(self.fmt)


@dataclass(frozen=True)
class LMulDotConfig:
    """An N-lane L-Mul dot product: `lanes` L-Mul products per beat in `fmt`, widened exactly into the IEEE
    accumulator format `acc_fmt`, summed by an adder tree and accumulated over the beats of a vector.

    Pipelining: the tree is `tree_steps` combinational steps (the products, then 4 per float-add level: align, sum,
    normalize, round); `pipeline` register slices are spread evenly over them (0 .. tree_steps + 2). The
    accumulator's float add takes `acc_stages` cycles (1 .. 5), and the unit takes a beat every `acc_stages` cycles
    (the accumulation is a loop). Latency `pipeline + acc_stages`, II `acc_stages`.

    `mode="exact"` puts exact multipliers in the lanes instead (the product, exact in `acc_fmt`): the baseline
    engine the L-Mul engine is compared with."""
    fmt: str = "e4m3"
    acc_fmt: str = "fp32"
    lanes: int = 16
    mode: str = "adder"
    overflow: str = "saturate"
    pipeline: int = 1
    acc_stages: int = 1
    unit = "lmuldot"

    def __post_init__(self):
        fmt = check_float_format("fmt", self.fmt, max_bits=16)
        acc = check_float_format("acc_fmt", self.acc_fmt)
        check_choice("mode", self.mode, DOT_MODES)
        check_overflow(self.fmt, self.overflow)
        check_int("lanes", self.lanes, 1, 256)
        check_int("pipeline", self.pipeline, 0, self.tree_steps + 2)
        check_int("acc_stages", self.acc_stages, 1, ADD_STEPS)
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

    @property
    def tree_steps(self) -> int:
        """Combinational steps of the product + adder tree: 1 + ADD_STEPS per level of ceil(log2(lanes))."""
        return 1 + ADD_STEPS * (self.lanes - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from a lone vector's last beat to its sum (the accumulator's `acc_stages` included)."""
        return self.pipeline + self.acc_stages


PRESETS_LMUL = {
    "lmul-e4m3": LMulConfig(fmt="e4m3"),
    "lmul-e4m3-formula": LMulConfig(fmt="e4m3", mode="formula"),
    "lmul-e5m2": LMulConfig(fmt="e5m2"),
    "lmul-e3m4": LMulConfig(fmt="e3m4"),
    "lmul-bf16": LMulConfig(fmt="bf16"),
    "fmul-e4m3": FMulConfig(fmt="e4m3"),
    "fmul-e5m2": FMulConfig(fmt="e5m2"),
    "fmul-bf16": FMulConfig(fmt="bf16"),
    # every tree step registered (1 + 5 * levels) and the accumulator's add over 5 cycles: >= 100 MHz on ECP5
    "lmuldot-e4m3x16": LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=16, pipeline=21, acc_stages=5),
    "lmuldot-e5m2x8-bf16": LMulDotConfig(fmt="e5m2", acc_fmt="bf16", lanes=8, pipeline=16, acc_stages=5),
    # the exact-multiplier engine the L-Mul engine is compared with, pipelined the same way
    "exactdot-e4m3x16": LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=16, mode="exact", pipeline=21,
                                      acc_stages=5),
}
