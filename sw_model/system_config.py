"""Config and presets of the accelerator top (`hwgen.system.System`): a set of engines behind one host port."""
from __future__ import annotations

from dataclasses import dataclass

from . import configs
from .configs import PRESETS, ConfigError, check_int, register_unit

HEADER_OP_BITS = 4
HEADER_ENGINE_BITS = 4


@dataclass(frozen=True)
class SystemConfig:
    """`engines`: unit presets (any stream unit with one input stream `i` and one output stream `o`), engine e is
    the e-th; `host_width`: bits per host word on the command and response streams; `spad_depth`: beats per
    scratchpad (each engine has an input and an output scratchpad of this depth)."""
    engines: tuple = ("lmuldot-e4m3x16", "sparse-chain-8")
    host_width: int = 256
    spad_depth: int = 2048
    unit = "system"

    def __post_init__(self):
        if isinstance(self.engines, list):                    # from TOML / JSON
            object.__setattr__(self, "engines", tuple(self.engines))
        if not isinstance(self.engines, tuple) or not 1 <= len(self.engines) <= 1 << HEADER_ENGINE_BITS:
            raise ConfigError(f"engines: got {self.engines!r}, allowed: a list of 1 to {1 << HEADER_ENGINE_BITS} "
                              "unit preset names")
        if configs.FAMILIES_LOADED:     # presets below are built while the families may still be importing
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
        for name in self.engines:
            cfg = PRESETS.get(name) if isinstance(name, str) else None
            if cfg is None or cfg.unit == "system":
                raise ConfigError(f"engines: got {name!r}, allowed: unit presets "
                                  f"({', '.join(n for n, c in PRESETS.items() if c.unit != 'system')})")
        return [PRESETS[name] for name in self.engines]

    @property
    def addr_bits(self) -> int:
        return (self.spad_depth - 1).bit_length()

    @property
    def count_bits(self) -> int:
        return self.spad_depth.bit_length()


PRESETS_SYSTEM = {
    "system-default": SystemConfig(),
    "system-wide": SystemConfig(host_width=512),      # a beat is one host word: engines busier, cycles dearer
    "system-lmul": SystemConfig(engines=("lmuldot-e4m3x16",), host_width=128, spad_depth=1024),
    "system-int8": SystemConfig(engines=("sparse-chain-8",), host_width=128, spad_depth=1024),
}
register_unit(SystemConfig, PRESETS_SYSTEM)
