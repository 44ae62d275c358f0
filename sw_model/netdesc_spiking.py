"""A fully connected spiking (LIF) layer in the network description, run on the spiking core (`snn_core`).

    Spiking(weight, bias=None, timesteps=32, input_levels=127, core=None)     # on a flat (features,) input

Meaning: the rate-coded integrate-and-fire layer of the project's ANN -> SNN conversion (sw_model/snn_convert.py).
Inputs and outputs are firing RATES in [0, 1] (spikes per timestep); the float64 forward is what the rates tend to,
y = clip(W clip(x, 0, 1) + b, 0, 1), with W and b in units of the firing threshold (one spike per timestep when
W x + b = 1).

The int8 program makes one `snn_core` step per layer:
  encode   an int8 input tensor is turned into spike trains on the host: its level v = clip(requantize(x_q,
           s_in * L), 0, L) with L = `input_levels` drives a deterministic integrate-and-fire rate coder
           (acc += v; spike and acc -= L when acc >= L), rate v / L, for `timesteps` steps; the network input is
           quantized straight to levels (scale 1 / L) when the first layer is Spiking, so L = 16 on raw digits
           pixels is exactly snn_convert.encode. Between two consecutive Spiking layers the spike trains
           themselves pass, with no re-encoding.
  core     the trains plus an always-on bias axon (last) go through a core whose config is derived per layer as
           snn_convert does (`_quantize_layer`: [W; b] to `weight_bits` integers, threshold round(1 / scale),
           integrate-and-fire, >=, soft reset); `core` (an SNNCoreConfig) may set the neuron-model knobs that
           stay (lanes, weight_bits, state_bits, compare, reset, leak, leak_shift, decay, refractory, saturate,
           time_bits); neurons, axons (in + 1), threshold and addr_bits come from the layer.
  decode   output = the spike count of each neuron over the timesteps (int8, scale 1 / timesteps).
Backends: golden `SpikingGoldenBackend` (sw_model.snn.run_batch), rtl `SpikingRtlBackend` (the SNNCore RTL in one
bulk simulation per call, the beats of hwgen/run_snn.py: weight writes, then per sample a CLEAR and its events).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from . import snn
from .netdesc import Layer, NetworkError, Step, _array, _where
from .snn_config import SNNCoreConfig

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
    from .configs import ConfigError
    from .snn_convert import _quantize_layer
    t = layer.core
    n_out = layer.weight.shape[0]
    try:
        cfg, w = _quantize_layer(layer.weight.T, layer.bias, t.weight_bits, t.state_bits, min(t.lanes, n_out))
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
    from .requant import quantize_multiplier
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
    from .requant import requantize
    from .snn_convert import with_bias
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
    """The spiking core's bit-exact batched model (`sw_model.snn.run_batch`)."""
    name = "golden"

    def spiking(self, cfg, weights, spikes):
        """(B, T, axons) 0/1 input spikes -> (B, T, neurons) 0/1 output spikes, stats."""
        return snn.run_batch(cfg, weights, spikes)[0], {"cycles": None}


class SpikingRtlBackend:
    """The SNNCore RTL (generated for each layer's derived config) in one bulk Verilator run per call: weight
    WRITE beats, then per sample a CLEAR and its spike/TICK beats (`snn.batch_beats`), as hwgen/run_snn.py;
    the number of output beats to wait for comes from the beat-level model `snn.stream_model`, whose input
    costs are also the cycle model (`model_cycles`)."""
    name = "rtl"

    def __init__(self, sim: str = "verilator", gap: float = 0.0, backpressure: float = 0.0, seed: int = 1):
        root = Path(__file__).resolve().parent.parent
        if str(root / "rtl_tests") not in sys.path:
            sys.path.insert(0, str(root / "rtl_tests"))
        from harness import check_simulator
        check_simulator(sim)
        self.sim, self.gap, self.backpressure, self.seed = sim, gap, backpressure, seed

    def spiking(self, cfg, weights, spikes):
        from bulk import run_bulk
        spikes = np.asarray(spikes, np.uint8)
        inp = snn.concat(snn.weight_beats(cfg, weights), snn.batch_beats(cfg, spikes))
        expected, cost, _ = snn.stream_model(cfg, inp)
        res = run_bulk(cfg, inp, len(expected["kind"]), gap=self.gap, backpressure=self.backpressure,
                       seed=self.seed, sim=self.sim)
        got = {k: np.asarray(v) for k, v in res["outputs"].items()}
        if len(got["kind"]) != len(expected["kind"]):
            raise RuntimeError(f"spiking core RTL: {len(got['kind'])} output beats, the model expects "
                               f"{len(expected['kind'])}")
        out = snn.batch_spikes(cfg, got, len(spikes), spikes.shape[1])
        return out, {"cycles": res["cycles"], "sim_seconds": res["sim_seconds"], "beats": len(inp["op"]),
                     "model_cycles": int(cost.sum())}


def digits_snn_network(mlp=None, x_train=None, timesteps: int = 32):
    """The converted digits SNN (`hwgen run digits-snn`) as a netdesc Network on rates x = pixels / 16: two
    Spiking layers with the conversion's normalised weights, the input quantized to the 17 levels 0..16 (so the
    rate coder is snn_convert.encode) and the lanes of snn_convert.convert (8, 5)."""
    from . import snn_convert as conv
    from .netdesc import Network
    if mlp is None:
        x_train, y_train, _, _ = conv.load_digits()
        mlp = conv.train_mlp(x_train, y_train)
    (w1, b1), (w2, b2) = conv.threshold_units(mlp, x_train)
    return Network((64,), [Spiking(w1.T, b1, timesteps, input_levels=16, core=SNNCoreConfig(lanes=8)),
                           Spiking(w2.T, b2, timesteps, core=SNNCoreConfig(lanes=5))])
