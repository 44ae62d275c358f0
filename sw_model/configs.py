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


UNITS: dict[str, type] = {}
FAMILIES_LOADED = False          # set once every family below has registered its presets
PRESETS: dict[str, object] = {}


def register_unit(cls, presets: dict):
    """Make a unit config class loadable by `unit = "<cls.unit>"` and add its named presets."""
    if cls.unit in UNITS:
        raise RuntimeError(f"unit {cls.unit!r} registered twice")
    UNITS[cls.unit] = cls
    for name, cfg in presets.items():
        if name in PRESETS:
            raise RuntimeError(f"preset {name!r} registered twice")
        PRESETS[name] = cfg


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


def read_toml(path, what: str, error=ConfigError) -> dict:
    """Parse a TOML file; a missing file or bad TOML raises `error` naming `what` and the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what}: file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what}: {str(path)!r} is not valid TOML: {e}") from None


def load_config(name_or_path: str):
    """Resolve a preset name or a TOML file into (design name, config).

    TOML: `unit = "lmul"` plus the config's fields, and an optional `name` (default: the file stem)."""
    if name_or_path in PRESETS:
        return name_or_path, PRESETS[name_or_path]
    path = Path(name_or_path)
    if path.suffix != ".toml":
        raise ConfigError(f"config: got {name_or_path!r}, allowed: a TOML file or a preset "
                          f"({', '.join(PRESETS)})")
    d = read_toml(path, "config")
    name = d.pop("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"name: got {name!r}, allowed: a letter then letters, digits, '-' or '_' (<= 64 chars)")
    return name, config_from_dict(d)


# Each unit family registers its configs and presets on import (one line per family).
from . import lmul_config  # noqa: E402,F401
from . import snn_config  # noqa: E402,F401
from . import bitmod_config  # noqa: E402,F401
from . import sparse_config  # noqa: E402,F401
from . import attention_config  # noqa: E402,F401
from . import system_config  # noqa: E402,F401
FAMILIES_LOADED = True
