"""The numerics config: which numeric each matmul/conv layer of an imported model runs in.

TOML:
    default = "float"                     # layers no rule matches (optional, default "float")
    [layers]
    "fc1" = "lmul-e4m3"                   # a layer's node name ...
    "/encoder/layer.*/ffn/*" = "int8"     # ... or a glob pattern (fnmatch: *, ?, [...])
An exact name wins over patterns; among patterns the first in the file wins. Every rule must match at least one
layer of the model (a typo is an error, not a silent float layer). Numeric names: `numerics.numeric_names()`.
"""
from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sw_model.importers.onnx.numerics import get_numeric, numeric_names


class NumericsConfigError(ValueError):
    """A bad numerics config; the message names the file, the key, the value and what is allowed."""


@dataclass
class NumericsConfig:
    """`default` numeric and the `rules` (pattern, numeric) in file order; `name` labels tables and plots."""
    default: str = "float"
    rules: list = field(default_factory=list)
    name: str = "float"

    def assign(self, layer_names: list[str]) -> dict[str, str]:
        """layer name -> numeric name for these layers; NumericsConfigError if a rule matches no layer."""
        out, used = {}, set()
        for layer in layer_names:
            exact = [(p, n) for p, n in self.rules if p == layer]
            hit = exact[0] if exact else next(((p, n) for p, n in self.rules if fnmatch.fnmatchcase(layer, p)), None)
            if hit:
                used.add(hit[0])
            out[layer] = hit[1] if hit else self.default
        for p, n in self.rules:
            if p not in used and not any(fnmatch.fnmatchcase(layer, p) for layer in layer_names):
                raise NumericsConfigError(f"{self.name}: layers.{p!r}: matches no layer; allowed: a layer name or "
                                          f"pattern of this model ({', '.join(layer_names)})")
        return out


def uniform(numeric: str) -> NumericsConfig:
    """Every layer in one numeric (the `--numerics NAME` form)."""
    get_numeric(numeric)
    return NumericsConfig(numeric, [], numeric)


def _check_numeric(where: str, key: str, value) -> str:
    if not isinstance(value, str) or value not in numeric_names():
        raise NumericsConfigError(f"{where}: {key}: got {value!r}, allowed: {', '.join(numeric_names())}")
    return value


def parse_config(data: dict, name: str = "config") -> NumericsConfig:
    """A NumericsConfig from the TOML's table."""
    unknown = sorted(set(data) - {"default", "layers", "name"})
    if unknown:
        raise NumericsConfigError(f"{name}: key {unknown[0]!r} is not known; allowed: default, layers, name")
    default = _check_numeric(name, "default", data.get("default", "float"))
    layers = data.get("layers", {})
    if not isinstance(layers, dict):
        raise NumericsConfigError(f"{name}: layers: got {layers!r}, allowed: a table of \"pattern\" = \"numeric\"")
    rules = [(p, _check_numeric(name, f"layers.{p!r}", n)) for p, n in layers.items()]
    label = data.get("name", name)
    if not isinstance(label, str):
        raise NumericsConfigError(f"{name}: name: got {label!r}, allowed: a string")
    return NumericsConfig(default, rules, label)


def load_config(text_or_path) -> NumericsConfig:
    """A numeric name (every layer), or a TOML file path."""
    if isinstance(text_or_path, str) and text_or_path in numeric_names():
        return uniform(text_or_path)
    path = Path(text_or_path)
    if path.suffix != ".toml":
        raise NumericsConfigError(f"--numerics: got {str(text_or_path)!r}, allowed: a numeric "
                                  f"({', '.join(numeric_names())}) or a .toml config file")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NumericsConfigError(f"--numerics: {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise NumericsConfigError(f"{path}: not valid TOML ({e})") from None
    return parse_config(data, data.get("name", path.stem) if isinstance(data.get("name"), str) else path.stem)
