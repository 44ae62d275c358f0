"""Configs and presets of the spiking-core family (event-driven fixed-point LIF core).

Neuron model knobs (all integer, bit-exact in `sw_model.snn.golden` and the gateware `hwgen.snn.core`):
- `leak`: "none" (integrate-and-fire), "shift" (`v - (v >> leak_shift)`, arithmetic shift) or "mult"
  (`trunc0(v * (4096 - decay) / 4096)`, the Loihi-style 12-bit multiplicative decay, rounding toward zero).
- `compare`: "ge" (fire iff `v >= threshold`) or "gt" (`v > threshold`).
- `reset`: "hard" (`v = 0` after a spike) or "soft" (`v = v - threshold`, reset by subtraction).
- `refractory`: timesteps after a spike during which the neuron discards input and neither leaks nor fires.
- `saturate`: True clips every update to the signed `state_bits` range; False wraps (two's complement).
- `model`: "lif" (the above) or "cuba", the Loihi/Lava bit-accurate current-based LIF: input events sum into `a`;
  at a timestep boundary `u = wrap(trunc0(u (4096 - (du + 1)) / 4096) + (a << input_shift))`,
  `v = clip(trunc0(v (4096 - decay) / 4096) + u, +-(2^(s-1) - 1))`, fire on v (Lava: compare "gt", threshold =
  vth << 6), reset, `a = 0`. Needs leak = "mult" (`decay` is Lava's dv) and refractory = 0; no bias (use an
  always-on axon).
"""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_int

LEAKS = ("none", "shift", "mult")
COMPARES = ("ge", "gt")
RESETS = ("hard", "soft")
MODELS = ("lif", "cuba")


@dataclass(frozen=True)
class SNNCoreConfig:
    """An event-driven LIF core: `neurons` neurons processed `lanes` at a time, `axons` input lines with one signed
    `weight_bits` weight per (axon, neuron) in on-chip memory (written through the input stream), signed
    `state_bits` membrane potentials. `addr_bits` is the width of the address field of the input stream (it may
    carry addresses >= `axons`; the core reports those as error beats)."""
    neurons: int = 64
    lanes: int = 8
    axons: int = 64
    weight_bits: int = 8
    state_bits: int = 16
    threshold: int = 256
    compare: str = "ge"
    reset: str = "soft"
    leak: str = "none"
    leak_shift: int = 4
    decay: int = 256
    refractory: int = 0
    saturate: bool = True
    addr_bits: int = 10
    time_bits: int = 16
    model: str = "lif"
    du: int = 0
    input_shift: int = 0
    unit = "snn_core"

    def __post_init__(self):
        check_int("neurons", self.neurons, 1, 4096)
        check_int("lanes", self.lanes, 1, 64)
        if self.lanes > self.neurons:
            raise ConfigError(f"lanes: got {self.lanes}, allowed: at most neurons ({self.neurons})")
        check_int("axons", self.axons, 1, 4096)
        check_int("weight_bits", self.weight_bits, 2, 16)
        check_int("state_bits", self.state_bits, 4, 32)
        if self.weight_bits > self.state_bits:
            raise ConfigError(f"weight_bits: got {self.weight_bits}, allowed: at most state_bits ({self.state_bits})")
        check_int("threshold", self.threshold, 1, (1 << (self.state_bits - 1)) - 1)
        check_choice("compare", self.compare, COMPARES)
        check_choice("reset", self.reset, RESETS)
        check_choice("leak", self.leak, LEAKS)
        check_int("leak_shift", self.leak_shift, 1, 31)
        if self.leak == "shift" and self.leak_shift >= self.state_bits:
            raise ConfigError(f"leak_shift: got {self.leak_shift}, allowed: below state_bits ({self.state_bits})")
        check_int("decay", self.decay, 0, 4096)
        check_int("refractory", self.refractory, 0, 255)
        if not isinstance(self.saturate, bool):
            raise ConfigError(f"saturate: got {self.saturate!r}, allowed: true, false")
        check_int("addr_bits", self.addr_bits, 1, 16)
        if (1 << self.addr_bits) < self.axons:
            raise ConfigError(f"addr_bits: got {self.addr_bits}, allowed: enough bits for axons ({self.axons})")
        check_int("time_bits", self.time_bits, 1, 32)
        check_choice("model", self.model, MODELS)
        check_int("du", self.du, 0, 4095)
        check_int("input_shift", self.input_shift, 0, 8)
        if self.model == "cuba" and self.leak != "mult":
            raise ConfigError(f"leak: got {self.leak!r}, allowed with model 'cuba': mult (decay is the v decay dv)")
        if self.model == "cuba" and self.refractory:
            raise ConfigError(f"refractory: got {self.refractory}, allowed with model 'cuba': 0")

    @property
    def groups(self) -> int:
        """Weight words per axon row (= cycles per input spike event): ceil(neurons / lanes)."""
        return -(-self.neurons // self.lanes)

    @property
    def ref_bits(self) -> int:
        return max(1, self.refractory.bit_length())

    @property
    def state_range(self) -> tuple[int, int]:
        return -(1 << (self.state_bits - 1)), (1 << (self.state_bits - 1)) - 1

    @property
    def weight_range(self) -> tuple[int, int]:
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1


PRESETS_SNN = {
    "snn-core-256": SNNCoreConfig(neurons=256, lanes=16, axons=256, addr_bits=9),
    "snn-core-64x8": SNNCoreConfig(neurons=64, lanes=8, axons=64),
    "snn-core-lif-16x4": SNNCoreConfig(neurons=16, lanes=4, axons=16, weight_bits=6, state_bits=12, threshold=100,
                                       leak="shift", leak_shift=3, reset="hard", refractory=2, addr_bits=6),
    "snn-core-cuba-32x4": SNNCoreConfig(neurons=32, lanes=4, axons=32, state_bits=24, threshold=100 << 6,
                                        compare="gt", reset="hard", leak="mult", decay=410, du=819, input_shift=6,
                                        model="cuba", addr_bits=5),
}
