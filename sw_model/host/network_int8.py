"""The int8 path: Linear layers quantized as TFLite does and run on the sparse DSP chain engine (dense mode).

Weights: symmetric per-output-channel int8 (scale_w[j] = max|w_j| / 127). Activations: symmetric per-tensor int8
with zero point 0 (scale from the max over the calibration set). Bias: int32, round(b / (s_in * s_w[j])).
The engine computes the int32 products W_q x_q; the host adds the bias and requantizes each channel with
TFLite's MultiplyByQuantizedMultiplier (`sw_model.numerics.requant`) to the next layer's int8 scale, the ReLU fused
into the clamp [0, 127]. The last layer's int8 outputs are the logits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.attention import golden as A
from sw_model.numerics.requant import quantize_multiplier, requantize
from sw_model.sparse.golden import chain_model, pack_gemm, unpack_gemm
from sw_model.sparse.group import group_chain_model, pack_nm_gemm, unpack_gemm_grouped


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
    """(input scale, layers) for float `layers` (sw_model.host.network.Linear), activation scales from `calibration`."""
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
    """Bit-exact model of the sparse chain in dense mode (`sw_model.sparse.golden.chain_model`)."""
    name = "golden"

    def gemm(self, config, w_q: np.ndarray, x_q: np.ndarray) -> tuple[np.ndarray, dict]:
        """(R, K) int8 weights x (K, B) int8 activations -> (R, B) int32 accumulators."""
        beats = pack_gemm(w_q, x_q, "dense", config.stages, config.x_width, weight_bits=config.weight_bits)
        outputs = chain_model(beats, config.stages, config.acc_bits)
        return unpack_gemm(outputs, w_q.shape[0], x_q.shape[1]).astype(np.int64), {"cycles": None}

    def sparse_gemm(self, config, w_q, x_q, mode) -> tuple[np.ndarray, dict]:
        """The same product with N:M-sparse `w_q` (dense layout) run in `mode`: compressed weights packed into
        the beats of the (grouped or ungrouped) chain and its beat-level model `group_chain_model`."""
        beats = pack_nm_gemm(w_q, x_q, mode, config)
        outputs = group_chain_model(beats, config)
        acc = unpack_gemm_grouped(outputs, w_q.shape[0], np.shape(x_q)[1], mode, config).astype(np.int64)
        return acc, {"cycles": None}


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


def quantized_multipliers(real) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel real multipliers -> (Q31 multipliers, shifts) as TFLite quantizes them."""
    ms = [quantize_multiplier(float(r)) for r in np.ravel(real)]
    return np.array([m for m, _ in ms], np.int64), np.array([s for _, s in ms], np.int64)


@dataclass
class LinearOp:
    """y = W x + b as int8 W_q (out, in) on the engine, int32 bias and per-channel requant / dequant on the host."""
    name: str
    w_q: np.ndarray
    bias_q: np.ndarray
    s_in: float
    s_w: np.ndarray
    out_scale: np.ndarray | None = None        # per channel: integer output = real * out_scale (None: float)
    multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None

    @classmethod
    def make(cls, name, w, b, s_in, out_scale=None):
        s_w = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0
        w_q = np.clip(np.round(w / s_w[:, None]), -127, 127).astype(np.int64)
        bias_q = np.round(b / (s_in * s_w)).astype(np.int64)
        if np.abs(bias_q).max() >= 1 << 31:
            raise ValueError(f"{name}: int32 bias overflows (input scale {s_in} too small)")
        op = cls(name, w_q, bias_q, s_in, s_w)
        if out_scale is not None:
            op.out_scale = np.broadcast_to(np.asarray(out_scale, np.float64), s_w.shape).copy()
            op.multiplier, op.shift = quantized_multipliers(s_in * s_w * op.out_scale)
        return op

    @property
    def shape(self):
        return self.w_q.shape

    def finish(self, acc) -> np.ndarray:
        """Host side of the engine's (T, out) int32 products: bias, then requant (int8) or dequant (float64)."""
        acc = np.asarray(acc, np.int64) + self.bias_q
        if self.multiplier is None:
            return acc * (self.s_in * self.s_w)
        return requantize(acc, self.multiplier, self.shift).astype(np.int64)


class MiniLMGoldenBackend(Int8GoldenBackend):
    """Golden engines: the sparse chain in dense mode as one exact integer gemm wrapped to acc_bits (what
    sw_model.sparse.golden.chain_model computes beat by beat, ~100x faster; tests/networks/test_minilm.py checks the two agree)
    and the attention array's bit-exact model."""

    def gemm(self, config, w_q, x_q):
        acc = np.asarray(w_q, np.int64) @ np.asarray(x_q, np.int64)
        half = 1 << (config.acc_bits - 1)
        return (acc + half) % (2 * half) - half, {"cycles": None}

    def attention(self, config, q, k, v):
        """q (H, P, E), k/v (H, N, E) -> (H, P, E) integer outputs."""
        return np.stack([A.attention(config, *hv) for hv in zip(q, k, v)]), {"cycles": None}
