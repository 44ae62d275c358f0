"""The int8 path: Linear layers quantized as TFLite does and run on the sparse DSP chain engine (dense mode).

Weights: symmetric per-output-channel int8 (scale_w[j] = max|w_j| / 127). Activations: symmetric per-tensor int8
with zero point 0 (scale from the max over the calibration set). Bias: int32, round(b / (s_in * s_w[j])).
The engine computes the int32 products W_q x_q; the host adds the bias and requantizes each channel with
TFLite's MultiplyByQuantizedMultiplier (`sw_model.requant`) to the next layer's int8 scale, the ReLU fused
into the clamp [0, 127]. The last layer's int8 outputs are the logits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .requant import quantize_multiplier, requantize
from .sparse import chain_model, pack_gemm, unpack_gemm


@dataclass
class Int8Layer:
    index: int
    w_q: np.ndarray             # (out, in) int8 values as int64
    bias_q: np.ndarray          # (out,) int32 values
    multiplier: np.ndarray      # (out,) Q31
    shift: np.ndarray           # (out,)
    relu: bool
    engine: str = "sparse_chain"

    @property
    def shape(self):
        return self.w_q.shape


def _scale(max_abs: float) -> float:
    return max(float(max_abs), 1e-12) / 127.0


def compile_int8(layers, calibration: np.ndarray) -> tuple[float, list[Int8Layer]]:
    """(input scale, layers) for float `layers` (sw_model.network.Linear), activation scales from `calibration`."""
    x = np.asarray(calibration, dtype=np.float64)
    s_in = input_scale = _scale(np.abs(x).max())
    out = []
    for i, layer in enumerate(layers):
        w = np.asarray(layer.weight, dtype=np.float64)
        s_w = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0
        w_q = np.clip(np.round(w / s_w[:, None]), -127, 127).astype(np.int64)
        bias_q = np.round(np.asarray(layer.bias) / (s_in * s_w)).astype(np.int64)
        x = x @ w.T + layer.bias
        if layer.relu:
            x = np.maximum(x, 0)
        s_out = _scale(np.abs(x).max())
        mult_shift = [quantize_multiplier(s_in * sw / s_out) for sw in s_w]
        out.append(Int8Layer(i, w_q, bias_q, np.array([m for m, _ in mult_shift], np.int64),
                             np.array([s for _, s in mult_shift], np.int64), layer.relu))
        s_in = s_out
    return input_scale, out


class Int8GoldenBackend:
    """Bit-exact model of the sparse chain in dense mode (`sw_model.sparse.chain_model`)."""
    name = "golden"

    def gemm(self, config, w_q: np.ndarray, x_q: np.ndarray) -> tuple[np.ndarray, dict]:
        """(R, K) int8 weights x (K, B) int8 activations -> (R, B) int32 accumulators."""
        beats = pack_gemm(w_q, x_q, "dense", config.stages, config.x_width, weight_bits=config.weight_bits)
        outputs = chain_model(beats, config.stages, config.acc_bits)
        return unpack_gemm(outputs, w_q.shape[0], x_q.shape[1]).astype(np.int64), {"cycles": None}


def run_int8(config, input_scale: float, layers: list[Int8Layer], x: np.ndarray, backends: list):
    """int8 logits (B, classes) and per-layer records (accumulators, backend stats)."""
    h = np.clip(np.round(np.asarray(x, np.float64) / input_scale), -128, 127).astype(np.int64)
    records = []
    for layer, backend in zip(layers, backends):
        acc, stats = backend.gemm(config, layer.w_q, h.T)
        acc = acc.T + layer.bias_q                                  # (B, out) int32
        h = requantize(acc, layer.multiplier, layer.shift, 0, 0 if layer.relu else -128, 127).astype(np.int64)
        records.append({"layer": layer.index, "engine": layer.engine, "backend": backend.name,
                        "shape": list(layer.shape), "acc": acc, **stats})
    return h, records
