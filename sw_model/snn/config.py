"""Configs and presets of the spiking-core family (event-driven fixed-point LIF core).

Neuron model knobs (all integer, bit-exact in `sw_model.snn.golden` and the gateware `hwgen.snn.core`):
- `leak`: "none" (integrate-and-fire), "shift" (`v - (v >> leak_shift)`, arithmetic shift) or "mult"
  (`trunc0(v * (4096 - decay) / 4096)`, the Loihi-style 12-bit multiplicative decay, rounding toward zero).
- `compare`: "ge" (fire iff `v >= threshold`) or "gt" (`v > threshold`).
- `reset`: "hard" (`v = 0` after a spike) or "soft" (`v = v - threshold`, reset by subtraction).
- `refractory`: timesteps after a spike during which the neuron holds v and neither fires nor (LIF) takes input.
- `saturate`: True clips every update to the signed `state_bits` range; False wraps (two's complement).
- `bias_mant`, `bias_exp`: Loihi's constant bias `bias_mant << bias_exp` (13-bit signed mantissa, exponent 0..7),
  added to v at every timestep boundary of a non-refractory neuron (LIF: before the compare).
- `init_v`, `init_u`: the state after reset and after a CLEAR beat (the same for every neuron).
- `model`: "lif" (the above) or "cuba", the Loihi/Lava bit-accurate current-based LIF (Lava `PyLifModelBitAcc`):
  input events sum into `a`; at a timestep boundary
  `u = wrapu(trunc0(u (4096 - (du + 1)) / 4096) + (a << input_shift))` (wrapu: into (-2^(s-1), 2^(s-1)], Lava's
  wrap), and for a non-refractory neuron `v = clip(trunc0(v (4096 - decay) / 4096) + u + bias, +-(2^(s-1) - 1))`,
  fire on v (Lava: compare "gt", threshold = vth << 6, vth >= 0), reset, `ref = refractory`; a refractory neuron
  keeps v and counts down; `a = 0`. Needs leak = "mult" (`decay` is Lava's dv).
- `pipeline`: register slices of the neuron datapath (0 = none: one cycle from memory read to write-back; 1 adds
  the register after the memories; each further one cuts the timestep-boundary update). -1 picks the default of
  the model (`DEFAULT_PIPELINE`), chosen to meet 100 MHz on ECP5 speed 6. Costs: see `cycles`.
"""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_int

LEAKS = ("none", "shift", "mult")
COMPARES = ("ge", "gt")
RESETS = ("hard", "soft")
MODELS = ("lif", "cuba")
DEFAULT_PIPELINE = {"lif": 2, "cuba": 6}
MAX_PIPELINE = 7


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
    bias_mant: int = 0
    bias_exp: int = 0
    init_v: int = 0
    init_u: int = 0
    pipeline: int = -1
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
        check_int("threshold", self.threshold, 0, (1 << (self.state_bits - 1)) - 1)
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
        check_int("bias_mant", self.bias_mant, -4096, 4095)
        check_int("bias_exp", self.bias_exp, 0, 7)
        lo, hi = self.state_range
        if not lo <= self.bias <= hi:
            raise ConfigError(f"bias_mant: got {self.bias_mant} (bias_mant << bias_exp = {self.bias}), allowed: a bias "
                              f"within the state range {lo}..{hi}")
        check_int("init_v", self.init_v, lo, hi)
        if self.model == "cuba":
            check_int("init_u", self.init_u, lo + 1, hi + 1)
        elif self.init_u:
            raise ConfigError(f"init_u: got {self.init_u}, allowed with model 'lif': 0 (the LIF model has no current)")
        check_int("pipeline", self.pipeline, -1, MAX_PIPELINE)
        if self.pipeline == -1:         # resolve "auto" so that equal cores have equal configs (and hashes)
            object.__setattr__(self, "pipeline", DEFAULT_PIPELINE[self.model])

    @property
    def groups(self) -> int:
        """Weight words per axon row (= cycles per input spike event): ceil(neurons / lanes)."""
        return -(-self.neurons // self.lanes)

    @property
    def bias(self) -> int:
        """Loihi's effective bias, bias_mant * 2^bias_exp."""
        return self.bias_mant << self.bias_exp

    def cycles(self, op: str, spikes: int = 0) -> int:
        """The cycle model: cycles an input beat of kind `op` (spike, clear, tick, write, error) holds the input
        stream when the output is never stalled; `spikes` = output spikes of a tick. With pipeline >= 1 a
        read-modify-write takes 3 cycles, so a 1-group core spends 2 cycles per event (the next read must see the
        write); a tick reads, waits `pipeline` cycles and writes each group, then emits its spikes."""
        g = self.groups
        if op in ("spike", "clear"):
            return max(g, 2) if self.pipeline else g
        if op == "tick":
            return (2 + self.pipeline) * g + spikes + 1
        if op in ("write", "error"):
            return 1
        raise ValueError(f"op: got {op!r}, allowed: spike, clear, tick, write, error")

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
