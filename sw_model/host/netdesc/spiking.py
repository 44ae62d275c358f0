"""A fully connected spiking (LIF) layer in the network description, run on the spiking core (`snn_core`).

    Spiking(weight, bias=None, timesteps=32, input_levels=127, core=None)     # on a flat (features,) input

Meaning: the rate-coded integrate-and-fire layer of the project's ANN -> SNN conversion (sw_model/networks/digits_snn.py).
Inputs and outputs are firing RATES in [0, 1] (spikes per timestep); the float64 forward is what the rates tend to,
y = clip(W clip(x, 0, 1) + b, 0, 1), with W and b in units of the firing threshold (one spike per timestep when
W x + b = 1).

The int8 program makes one `snn_core` step per layer:
  encode   an int8 input tensor is turned into spike trains on the host: its level v = clip(requantize(x_q,
           s_in * L), 0, L) with L = `input_levels` drives a deterministic integrate-and-fire rate coder
           (acc += v; spike and acc -= L when acc >= L), rate v / L, for `timesteps` steps; the network input is
           quantized straight to levels (scale 1 / L) when the first layer is Spiking, so L = 16 on raw digits
           pixels is exactly digits_snn.encode. Between two consecutive Spiking layers the spike trains
           themselves pass, with no re-encoding.
  core     the trains plus an always-on bias axon (last) go through a core whose config is derived per layer as
           sw_model.snn.convert does (`quantize_layer`: [W; b] to `weight_bits` integers, threshold round(1 / scale),
           integrate-and-fire, >=, soft reset); `core` (an SNNCoreConfig) may set the neuron-model knobs that
           stay (lanes, weight_bits, state_bits, compare, reset, leak, leak_shift, decay, refractory, saturate,
           time_bits); neurons, axons (in + 1), threshold and addr_bits come from the layer.
  decode   output = the spike count of each neuron over the timesteps (int8, scale 1 / timesteps).
Backends: golden `SpikingGoldenBackend` (sw_model.snn.golden.run_batch), rtl
`hwgen.host.rtl_backend.SpikingRtlBackend` (the SNNCore RTL in one bulk simulation per call, the beats of hwgen/host/run_snn.py: weight writes, then per sample a CLEAR and its events).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from sw_model.config import ConfigError
from sw_model.host.netdesc.layers import Layer, NetworkError, Step, _array, _where
from sw_model.numerics.requant import quantize_multiplier, requantize
from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig
from sw_model.snn.convert import quantize_layer, with_bias

KNOBS = ("compare", "reset", "leak", "leak_shift", "decay", "refractory", "saturate", "time_bits")
MAX_SIZE = 4096           # SNNCoreConfig's limit on neurons and axons


class Spiking(Layer):
    """Fully connected LIF layer: weight (out, in) and bias (out,) in threshold units; rates in, rates out."""

    def __init__(self, weight, bias=None, timesteps: int = 32, input_levels: int = 127, core=None):
        self.weight = _array(weight, 2, "weight", None, "Spiking")
        self.bias = np.zeros(len(self.weight)) if bias is None else _array(bias, 1, "bias", None, "Spiking")
        if self.bias.shape != (self.weight.shape[0],):
            raise NetworkError(f"layer (Spiking): bias: got shape {self.bias.shape}, allowed: "
                               f"({self.weight.shape[0]},) (one per neuron)")
        for field, value, hi, why in (("timesteps", timesteps, 127, "spike counts are int8"),
                                      ("input_levels", input_levels, 127, "an int8 level per full rate")):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= hi:
                raise NetworkError(f"layer (Spiking): {field}: got {value!r}, allowed: 1..{hi} ({why})")
        self.timesteps, self.input_levels = int(timesteps), int(input_levels)
        if core is not None and getattr(core, "unit", None) != "snn_core":
            raise NetworkError(f"layer (Spiking): core: got {type(core).__name__}, allowed: an SNNCoreConfig")
        if core is not None and core.model != "lif":
            raise NetworkError(f"layer (Spiking): core: model: got {core.model!r}, allowed: 'lif' (the rate code "
                               "of the conversion)")
        self.core = core or SNNCoreConfig()

    def out_shape(self, s, i):
        n_out, n_in = self.weight.shape
        if len(s) != 1:
            raise NetworkError(f"{_where(i)} (Spiking): input: got shape {s}, allowed: a flat vector of {n_in} "
                               "(insert Flatten())")
        if s[0] != n_in:
            raise NetworkError(f"{_where(i)} (Spiking): in_features: got {n_in}, allowed: {s[0]} (the size of "
                               "its input)")
        if n_out > MAX_SIZE:
            raise NetworkError(f"{_where(i)} (Spiking): neurons: got {n_out}, allowed: at most {MAX_SIZE} (the "
                               "spiking core's limit)")
        if n_in + 1 > MAX_SIZE:
            raise NetworkError(f"{_where(i)} (Spiking): axons: got {n_in + 1} ({n_in} inputs + the bias axon), "
                               f"allowed: at most {MAX_SIZE} (the spiking core's limit)")
        return (n_out,)

    def forward(self, x, saved=None):
        return np.clip(np.clip(x, 0, 1) @ self.weight.T + self.bias, 0, 1)


def core_config(layer: Spiking, i: int):
    """(SNNCoreConfig, integer weights (in + 1, out) with the bias row last) of layer i."""
    t = layer.core
    n_out = layer.weight.shape[0]
    try:
        cfg, w = quantize_layer(layer.weight.T, layer.bias, t.weight_bits, t.state_bits, min(t.lanes, n_out))
        cfg = dataclasses.replace(cfg, **{k: getattr(t, k) for k in KNOBS})
    except ConfigError as e:
        raise NetworkError(f"layer {i} (Spiking): core config: {e}") from None
    return cfg, w


def rate_encode(levels, timesteps: int, full: int) -> np.ndarray:
    """(B, n) integer levels 0..full -> (B, timesteps, n) 0/1 spikes of the integrate-and-fire rate coder
    (acc += level; spike and acc -= full when acc >= full): floor((t + 1) level / full) spikes by step t."""
    v = np.asarray(levels, np.int64)
    acc = np.zeros_like(v)
    out = np.zeros((len(v), timesteps, v.shape[1]), np.uint8)
    for t in range(timesteps):
        acc += v
        fire = acc >= full
        acc -= full * fire
        out[:, t] = fire
    return out


def compile_step(layer: Spiking, i: int, index: int, s_in: float, net, in_shape) -> list:
    cfg, w = core_config(layer, i)
    prev = net.layers[i - 1] if i > 0 else None
    trains = isinstance(prev, Spiking)
    if trains and prev.timesteps != layer.timesteps:
        raise NetworkError(f"layer {i} (Spiking): timesteps: got {layer.timesteps}, allowed: {prev.timesteps} "
                           f"(the spike trains of layer {i - 1} pass straight in)")
    m, sh = quantize_multiplier(s_in * layer.input_levels)
    coding = (f"input: the spike trains of layer {i - 1}" if trains else
              f"input: int8 -> level 0..{layer.input_levels} -> integrate-and-fire rate code on the host")
    why = (f"LIF layer ({cfg.neurons} neurons x {cfg.axons} axons incl. bias) on the spiking core, "
           f"{layer.timesteps} timesteps, threshold {cfg.threshold}, {cfg.weight_bits}-bit weights, "
           f"leak {cfg.leak}, reset {cfg.reset}; {coding}; output: spike counts as int8 (scale 1/{layer.timesteps})")
    return [Step(index, [i], "Spiking", "snn_core", why, (cfg.neurons,), s_in, 1.0 / layer.timesteps, 0,
                 layer.timesteps, layer=layer, multiplier=np.array([m]), shift=np.array([sh]),
                 extra={"part": "spiking", "config": cfg, "weights": w, "trains": trains,
                        "io": (cfg.neurons, cfg.axons)})]


def input_spikes(st: Step, h, scratch: dict) -> np.ndarray:
    """The (B, timesteps, in + 1) input spikes of a spiking step, bias axon last."""
    layer = st.layer
    if st.extra["trains"]:
        spikes = scratch[("spikes", st.layers[0] - 1)]
    else:
        lv = requantize(np.asarray(h, np.int64), st.multiplier[0], st.shift[0], 0, 0, layer.input_levels)
        spikes = rate_encode(lv, layer.timesteps, layer.input_levels)
    return with_bias(spikes)


def run_step(program, st: Step, h, backend, scratch: dict):
    cfg = st.extra["config"]
    out, stats = backend.spiking(cfg, st.extra["weights"], input_spikes(st, h, scratch))
    out = np.asarray(out, np.uint8)
    scratch[("spikes", st.layers[0])] = out
    return out.sum(axis=1).astype(np.int64), out, stats


class SpikingGoldenBackend:
    """The spiking core's bit-exact batched model (`sw_model.snn.golden.run_batch`)."""
    name = "golden"

    def spiking(self, cfg, weights, spikes):
        """(B, T, axons) 0/1 input spikes -> (B, T, neurons) 0/1 output spikes, stats."""
        return snn.run_batch(cfg, weights, spikes)[0], {"cycles": None}
