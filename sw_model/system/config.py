"""Config and presets of the accelerator top (`hwgen.system.top.System`): a set of engines behind one host port."""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_int, config_hash
from sw_model.units import PRESETS, UNITS, unit_config_from_dict

HEADER_OP_BITS = 4
HEADER_ENGINE_BITS = 4


@dataclass(frozen=True)
class SystemConfig:
    """`engines`: engine e is the e-th entry, a unit preset name or a unit config (a config object, or in TOML an
    inline table with `unit` and the fields); any stream unit with one input stream `i` and one output stream `o`.
    `host_width`: bits per host word on the command and response streams; `spad_depth`: beats per scratchpad
    (each engine has an input and an output scratchpad of this depth)."""
    engines: tuple = ("lmuldot-e4m3x16", "sparse-chain-8")
    host_width: int = 256
    spad_depth: int = 2048
    unit = "system"

    def __post_init__(self):
        if isinstance(self.engines, list):                    # from TOML / JSON
            object.__setattr__(self, "engines", tuple(self.engines))
        if isinstance(self.engines, tuple) and any(isinstance(e, dict) for e in self.engines):
            object.__setattr__(self, "engines", tuple(_engine_from_table(e) for e in self.engines))
        if not isinstance(self.engines, tuple) or not 1 <= len(self.engines) <= 1 << HEADER_ENGINE_BITS:
            raise ConfigError(f"engines: got {self.engines!r}, allowed: a list of 1 to {1 << HEADER_ENGINE_BITS} "
                              "unit preset names or unit configs")
        self.engine_configs
        check_int("host_width", self.host_width, 64, 1024)
        if self.host_width % 32:
            raise ConfigError(f"host_width: got {self.host_width}, allowed: a multiple of 32 from 64 to 1024")
        check_int("spad_depth", self.spad_depth, 16, 1 << 16)
        if self.spad_depth & (self.spad_depth - 1):
            raise ConfigError(f"spad_depth: got {self.spad_depth}, allowed: a power of two from 16 to 65536")
        if HEADER_OP_BITS + HEADER_ENGINE_BITS + 2 * (self.addr_bits + self.count_bits) > self.host_width:
            raise ConfigError(f"spad_depth: got {self.spad_depth}, allowed: a depth whose command header fits "
                              f"host_width {self.host_width}")

    @property
    def engine_configs(self) -> list:
        out = []
        for name in self.engines:
            cfg = PRESETS.get(name) if isinstance(name, str) else name
            if not isinstance(cfg, tuple(UNITS.values())):
                raise ConfigError(f"engines: got {name!r}, allowed: unit presets "
                                  f"({', '.join(PRESETS)}) or unit "
                                  "configs")
            out.append(cfg)
        return out

    @property
    def engine_names(self) -> list[str]:
        """Preset names; an engine given as a config is named `<unit>-<config hash>`."""
        return [e if isinstance(e, str) else f"{e.unit}-{config_hash(e)[:8]}" for e in self.engines]

    @property
    def addr_bits(self) -> int:
        return (self.spad_depth - 1).bit_length()

    @property
    def count_bits(self) -> int:
        return self.spad_depth.bit_length()


def _engine_from_table(entry):
    if not isinstance(entry, dict):
        return entry
    if entry.get("unit") == "system":
        raise ConfigError("engines: got a system table, allowed: unit presets or unit configs")
    return unit_config_from_dict(entry)


PRESETS_SYSTEM = {
    "system-default": SystemConfig(),
    "system-wide": SystemConfig(host_width=512),      # a beat is one host word: engines busier, cycles dearer
    "system-lmul": SystemConfig(engines=("lmuldot-e4m3x16",), host_width=128, spad_depth=1024),
    "system-int8": SystemConfig(engines=("sparse-chain-8",), host_width=128, spad_depth=1024),
    # N:M networks: the grouped chain computes M/N rows per beat at the dense activation width, so a beat stays
    # one 256-bit host word and the outputs of 2 rows share one reply word (docs/results/sparse_network.md)
    "system-sparse": SystemConfig(engines=("sparse-chain-8-g2",)),
}
