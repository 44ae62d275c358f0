"""Unit configurations: one frozen dataclass per unit, validated on construction, loadable from TOML, with
named presets. Shared by the gateware generators, the golden models, the benches and the driver."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .formats import FloatFormat, get_format
from .lmul import MODES, OVERFLOW_POLICIES


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field, the value and what is allowed."""


def _check_choice(field, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{field}: got {value!r}, allowed: {', '.join(map(str, allowed))}")


def _check_int(field, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{field}: got {value!r}, allowed: an integer from {lo} to {hi}")


def _check_float_format(field, name, max_bits=32):
    try:
        fmt = get_format(name)
    except ValueError as e:
        raise ConfigError(f"{field}: {e}") from None
    if not isinstance(fmt, FloatFormat):
        raise ConfigError(f"{field}: got {name!r}, allowed: a minifloat format (e.g. e4m3, e5m2, bf16)")
    if fmt.bits > max_bits:
        raise ConfigError(f"{field}: got {name!r} ({fmt.bits} bits), allowed: at most {max_bits} bits")
    return fmt


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
        fmt = _check_float_format("fmt", self.fmt)
        _check_choice("mode", self.mode, MODES)
        _check_choice("overflow", self.overflow, OVERFLOW_POLICIES)
        if self.overflow == "inf" and not fmt.has_nan:
            raise ConfigError(f"overflow: got 'inf', but fmt {self.fmt} has no Inf or NaN; allowed: saturate")
        _check_int("pipeline", self.pipeline, 0, 4)

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
        fmt = _check_float_format("fmt", self.fmt)
        _check_choice("overflow", self.overflow, OVERFLOW_POLICIES)
        if self.overflow == "inf" and not fmt.has_nan:
            raise ConfigError(f"overflow: got 'inf', but fmt {self.fmt} has no Inf or NaN; allowed: saturate")
        _check_int("pipeline", self.pipeline, 0, 4)

    @property
    def format(self) -> FloatFormat:
        return get_format(self.fmt)


@dataclass(frozen=True)
class LMulDotConfig:
    """An N-lane L-Mul dot product: `lanes` L-Mul products per beat in `fmt`, widened exactly into the IEEE
    accumulator format `acc_fmt`, summed by an adder tree and accumulated over the beats of a vector."""
    fmt: str = "e4m3"
    acc_fmt: str = "fp32"
    lanes: int = 16
    mode: str = "adder"
    overflow: str = "saturate"
    pipeline: int = 1
    unit = "lmuldot"

    def __post_init__(self):
        fmt = _check_float_format("fmt", self.fmt, max_bits=16)
        acc = _check_float_format("acc_fmt", self.acc_fmt)
        _check_choice("mode", self.mode, MODES)
        _check_choice("overflow", self.overflow, OVERFLOW_POLICIES)
        if self.overflow == "inf" and not fmt.has_nan:
            raise ConfigError(f"overflow: got 'inf', but fmt {self.fmt} has no Inf or NaN; allowed: saturate")
        _check_int("lanes", self.lanes, 1, 256)
        _check_int("pipeline", self.pipeline, 0, 1 + 8)
        if acc.special != "ieee":
            raise ConfigError(f"acc_fmt: got {self.acc_fmt!r}, allowed: an IEEE-like format (fp32, bf16, fp16, ...)")
        # Every L-Mul product (normal, zero, Inf or NaN) must be exactly representable in the accumulator.
        lo, hi = fmt.emin, (fmt.max_finite_code >> fmt.man_bits) - fmt.bias
        if acc.man_bits < fmt.man_bits or acc.emin > lo or (acc.inf_code >> acc.man_bits) - 1 - acc.bias < hi:
            raise ConfigError(f"acc_fmt: got {self.acc_fmt!r}, allowed: a format that holds every {self.fmt} value "
                              f"exactly (at least {fmt.man_bits} mantissa bits, exponents {lo}..{hi})")

    @property
    def format(self) -> FloatFormat:
        return get_format(self.fmt)

    @property
    def acc_format(self) -> FloatFormat:
        return get_format(self.acc_fmt)


UNITS = {cls.unit: cls for cls in (LMulConfig, FMulConfig, LMulDotConfig)}

PRESETS = {
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
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def config_from_dict(d: dict):
    """Build a unit config from a dict with a `unit` key; unknown keys are errors."""
    d = dict(d)
    unit = d.pop("unit", None)
    if unit not in UNITS:
        raise ConfigError(f"unit: got {unit!r}, allowed: {', '.join(UNITS)}")
    cls = UNITS[unit]
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in fields:
            raise ConfigError(f"{key}: unknown field for unit {unit!r}, allowed: {', '.join(sorted(fields))}")
    try:
        return cls(**d)
    except TypeError as e:
        raise ConfigError(f"{unit}: {e}") from None


def config_to_dict(cfg) -> dict:
    return {"unit": cfg.unit, **dataclasses.asdict(cfg)}


def config_hash(cfg) -> str:
    return hashlib.sha256(json.dumps(config_to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def load_config(name_or_path: str):
    """Resolve a preset name or a TOML file into (design name, config).

    TOML: `unit = "lmul"` plus the config's fields, and an optional `name` (default: the file stem)."""
    if name_or_path in PRESETS:
        return name_or_path, PRESETS[name_or_path]
    path = Path(name_or_path)
    if path.suffix != ".toml":
        raise ConfigError(f"config: got {name_or_path!r}, allowed: a TOML file or a preset "
                          f"({', '.join(PRESETS)})")
    if not path.is_file():
        raise ConfigError(f"config: file {name_or_path!r} does not exist")
    try:
        d = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config: {name_or_path!r} is not valid TOML: {e}") from None
    name = d.pop("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"name: got {name!r}, allowed: a letter then letters, digits, '-' or '_' (<= 64 chars)")
    return name, config_from_dict(d)
