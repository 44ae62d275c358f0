"""Config and presets of the sparse DSP chain family (FlightLLM-style N:M, `hwgen.sparse.chain`)."""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_int
from sw_model.sparse.golden import ACT_BITS, MODE_NM, SparseMode, lane_exact_products
from sw_model.sparse.group import group_window, rows_per_beat


@dataclass(frozen=True)
class SparseChainConfig:
    """A cascade of `stages` MAC stages (one DSP each) with a sparse activation mux per stage.

    `weight_bits` 8 or 4 (signed), activations signed 8-bit, `acc_bits` accumulator over the beats of a vector
    (two's complement, wraps). `packed`: two activations share one weight per DSP (WP486 packing) with lanes of
    `lane_bits` bits; `lane_bits` must be left at its default when not packed. `groups`: DSP groups with
    reduction nodes (`sw_model.sparse.group`); 1 = one cascade, one output per vector (the original chain)."""
    stages: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    packed: bool = False
    lane_bits: int = 18
    groups: int = 1
    unit = "sparse_chain"

    def __post_init__(self):
        check_int("stages", self.stages, 1, 64)
        check_choice("groups", self.groups, (1, 2, 4, 8))
        if self.stages % self.groups:
            raise ConfigError(f"groups: got {self.groups}, allowed: a divisor of stages = {self.stages} "
                              f"(1, 2, 4 or 8)")
        check_choice("weight_bits", self.weight_bits, (4, 8))
        check_int("acc_bits", self.acc_bits, self.beat_bits, 64)
        if not isinstance(self.packed, bool):
            raise ConfigError(f"packed: got {self.packed!r}, allowed: true or false")
        if self.packed:
            check_int("lane_bits", self.lane_bits, self.product_bits, 24)
        elif self.lane_bits != 18:
            raise ConfigError(f"lane_bits: got {self.lane_bits!r}, allowed: 18 (the default) unless packed = true")

    @property
    def product_bits(self) -> int:
        """Signed bits of one weight x activation product."""
        return self.weight_bits + ACT_BITS

    @property
    def beat_bits(self) -> int:
        """Signed bits of one beat's exact cascade sum (unpacked)."""
        return self.product_bits + (self.stages - 1).bit_length()

    @property
    def modes(self) -> list[SparseMode]:
        """Modes this chain can run: N:M needs at least N stages."""
        return [md for md, (n, _) in MODE_NM.items() if n <= self.stages]

    @property
    def x_width(self) -> int:
        """Activations per beat: the widest window over the supported modes."""
        return max(group_window(md, self.stages, self.groups) for md in self.modes)

    def rows(self, mode) -> int:
        """Output rows per beat (and per vector) in `mode`: 1 dense, up to min(groups, M/N) in N:M."""
        return rows_per_beat(mode, self.stages, self.groups)

    @property
    def group_stages(self) -> int:
        return self.stages // self.groups

    @property
    def lane_exact(self) -> bool:
        """Packed: True when every group's low-lane sum fits the lane window for all inputs (no wrap)."""
        return self.group_stages <= lane_exact_products(self.weight_bits, self.lane_bits)


PRESETS_SPARSE = {
    "sparse-chain-8": SparseChainConfig(stages=8),
    "sparse-chain-16": SparseChainConfig(stages=16),
    "sparse-chain-8-int4": SparseChainConfig(stages=8, weight_bits=4),
    "sparse-chain-8-packed": SparseChainConfig(stages=8, packed=True),              # WP486 lanes (DSP48E2)
    "sparse-chain-8-packed-lane16": SparseChainConfig(stages=8, packed=True, lane_bits=16),   # fits DSP48E1
    # FlightLLM organisation: DSP groups with reduction nodes (N:M rows per beat at the dense activation width)
    "sparse-chain-8-g2": SparseChainConfig(stages=8, groups=2),
    "sparse-chain-16-g2": SparseChainConfig(stages=16, groups=2),
    "sparse-chain-16-g4": SparseChainConfig(stages=16, groups=4),
    "sparse-chain-16-packed": SparseChainConfig(stages=16, packed=True, groups=2),   # 8-DSP groups: lanes exact
    "sparse-chain-8-packed-lane16-g4": SparseChainConfig(stages=8, packed=True, lane_bits=16, groups=4),
}

