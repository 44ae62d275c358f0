"""Every config class and named preset, looked up by name: the unit families and the accelerator top.

`load_config` resolves what a user types (a preset name or a TOML file) into (design name, config)."""
from __future__ import annotations

from pathlib import Path

from sw_model import config, units
from sw_model.config import ConfigError, check_design_name, read_toml
from sw_model.system.config import PRESETS_SYSTEM, SystemConfig

UNITS: dict[str, type] = {**units.UNITS, SystemConfig.unit: SystemConfig}
PRESETS: dict[str, object] = {**units.PRESETS, **PRESETS_SYSTEM}


def config_from_dict(d: dict):
    """Build a config from a dict with a `unit` key; unknown keys are errors."""
    return config.config_from_dict(d, UNITS)


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
    name = check_design_name(d.pop("name", path.stem))
    return name, config_from_dict(d)
