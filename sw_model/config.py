"""What every unit config shares: the error type, field checks with exact messages, dict/TOML conversion and the
config hash that keys build directories. The configs themselves live in their families; `sw_model.registry` names
them all."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from pathlib import Path

from sw_model.numerics.formats import FloatFormat, get_format


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field, the value and what is allowed."""


def check_choice(field, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{field}: got {value!r}, allowed: {', '.join(map(str, allowed))}")


def check_int(field, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{field}: got {value!r}, allowed: an integer from {lo} to {hi}")


def check_float_format(field, name, max_bits=32):
    try:
        fmt = get_format(name)
    except ValueError as e:
        raise ConfigError(f"{field}: {e}") from None
    if not isinstance(fmt, FloatFormat):
        raise ConfigError(f"{field}: got {name!r}, allowed: a minifloat format (e.g. e4m3, e5m2, bf16)")
    if fmt.bits > max_bits:
        raise ConfigError(f"{field}: got {name!r} ({fmt.bits} bits), allowed: at most {max_bits} bits")
    return fmt


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def config_from_dict(d: dict, units: dict[str, type]):
    """Build a config from a dict with a `unit` key naming one of `units` (unit name -> config class); unknown
    keys are errors."""
    d = dict(d)
    unit = d.pop("unit", None)
    if unit not in units:
        raise ConfigError(f"unit: got {unit!r}, allowed: {', '.join(units)}")
    cls = units[unit]
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


def read_toml(path, what: str, error=ConfigError) -> dict:
    """Parse a TOML file; a missing file or bad TOML raises `error` naming `what` and the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what}: file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what}: {str(path)!r} is not valid TOML: {e}") from None


def check_design_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"name: got {name!r}, allowed: a letter then letters, digits, '-' or '_' (<= 64 chars)")
    return name
