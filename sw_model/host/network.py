"""Networks on hwgen engines: a small layer description, a compiler to an engine's number format, and the
backend interface with the bit-exact `golden` backend.

Engine `lmuldot` (the L-Mul dot-product unit): each Linear layer becomes a batch of dot products
`x_codes . w_codes[j]` in the unit's operand format (E4M3 by default), L-Mul products accumulated in its IEEE
accumulator format exactly as `sw_model.lmul.golden.lmul_dot` states; K is zero-padded to a multiple of the lanes.
Per-layer power-of-two scales keep weights and activations in the normal range (L-Mul flushes subnormals):
`w_q = encode(w * 2^sw)`, `x_q = encode(x * 2^sx)`; the host undoes them exactly (`acc * 2^-(sw+sx)`), adds
the bias and applies ReLU in float32, and re-encodes the next layer's input. Host steps are identical on every
backend, so any layer can run on RTL while the rest run on the golden model and the results still agree bit for
bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sw_model.lmul.golden import lmul_dot
from sw_model.numerics.formats import decode, encode


@dataclass(frozen=True)
class Linear:
    weight: np.ndarray          # (out, in)
    bias: np.ndarray            # (out,)
    relu: bool = False


@dataclass
class CompiledLinear:
    """One Linear layer lowered onto the lmuldot engine."""
    index: int
    w_codes: np.ndarray         # (out, K_padded) operand codes
    bias: np.ndarray            # float32
    w_shift: int
    x_shift: int
    relu: bool
    engine: str = "lmuldot"

    @property
    def shape(self):
        return self.w_codes.shape


@dataclass
class Program:
    """The compiled network: the engine config and one entry per layer."""
    config: object              # LMulDotConfig
    layers: list = field(default_factory=list)


def _pow2_shift(max_abs: float, limit: float) -> int:
    """Largest s with max_abs * 2^s <= limit (0 for an all-zero tensor)."""
    if max_abs <= 0:
        return 0
    return int(np.floor(np.log2(limit / max_abs)))


def compile_lmul(layers: list[Linear], config, calibration: np.ndarray) -> Program:
    """Quantize each layer for the lmuldot engine. Every L-Mul product must stay inside the operand format, so
    weights and activations are each scaled to at most 2^floor(log2(sqrt(max finite))) (16 for E4M3): products
    stay <= 256 < 448. Activation scales come from running `calibration` inputs through the float network."""
    fmt = config.format
    limit = 2.0 ** np.floor(np.log2(np.sqrt(fmt.max_finite)))
    program = Program(config)
    x = np.asarray(calibration, dtype=np.float64)
    for i, layer in enumerate(layers):
        w = np.asarray(layer.weight, dtype=np.float64)
        out_n, k = w.shape
        if x.shape[-1] != k:
            raise ValueError(f"layer {i}: input width {x.shape[-1]} does not match weight shape {w.shape}")
        k_pad = -(-k // config.lanes) * config.lanes
        w_shift, x_shift = _pow2_shift(np.abs(w).max(), limit), _pow2_shift(np.abs(x).max(), limit)
        w_codes = np.zeros((out_n, k_pad), dtype=np.int64)
        w_codes[:, :k] = encode(w * 2.0 ** w_shift, fmt, overflow="saturate")
        program.layers.append(CompiledLinear(i, w_codes, np.asarray(layer.bias, np.float32), w_shift, x_shift,
                                             layer.relu))
        x = x @ w.T + layer.bias
        if layer.relu:
            x = np.maximum(x, 0)
    return program


def dot_beats(config, x_codes: np.ndarray, w_codes: np.ndarray) -> dict:
    """LMulDot input beats for all dot products x_codes[n] . w_codes[j] ((N, K) x (J, K)), vector (n, j) in
    row-major order, K / lanes beats each."""
    n, k = x_codes.shape
    j = w_codes.shape[0]
    beats = k // config.lanes
    a = np.broadcast_to(x_codes[:, None, :], (n, j, k)).reshape(-1, config.lanes)
    b = np.broadcast_to(w_codes[None, :, :], (n, j, k)).reshape(-1, config.lanes)
    last = np.tile(np.arange(beats) == beats - 1, n * j).astype(np.int64)
    return {"a": a, "b": b, "last": last}


class GoldenBackend:
    """Bit-exact numpy model of the engines."""
    name = "golden"

    def dot(self, config, x_codes: np.ndarray, w_codes: np.ndarray) -> tuple[np.ndarray, dict]:
        """All dot products x_codes[n] . w_codes[j]: (N, K) x (J, K) -> (N, J) accumulator codes."""
        n, k = x_codes.shape
        j = w_codes.shape[0]
        beats = k // config.lanes
        a = np.broadcast_to(x_codes[:, None, :], (n, j, k)).reshape(n, j, beats, config.lanes)
        b = np.broadcast_to(w_codes[None, :, :], (n, j, k)).reshape(n, j, beats, config.lanes)
        acc = lmul_dot(a, b, config.format, config.acc_format, config.mode, config.overflow)
        return acc, {"cycles": None}


def run_layer(layer: CompiledLinear, config, x: np.ndarray, backend) -> tuple[np.ndarray, np.ndarray, dict]:
    """Host quantization of the input, the engine's dot products on `backend`, host dequantize + bias + ReLU.
    Returns (float32 output, accumulator codes, backend stats)."""
    fmt = config.format
    n, k = x.shape
    x_codes = np.zeros((n, layer.w_codes.shape[1]), dtype=np.int64)
    x_codes[:, :k] = encode(np.asarray(x, np.float64) * 2.0 ** layer.x_shift, fmt, overflow="saturate")
    acc, stats = backend.dot(config, x_codes, layer.w_codes)
    y = decode(acc, config.acc_format).astype(np.float32) * np.float32(2.0 ** -(layer.w_shift + layer.x_shift))
    y = y + layer.bias
    if layer.relu:
        y = np.maximum(y, np.float32(0))
    return y, acc, stats


def run_program(program: Program, x: np.ndarray, backends: list) -> tuple[np.ndarray, list[dict]]:
    """Run every layer on its backend (`backends[i]` for layer i); returns logits and per-layer records."""
    h = np.asarray(x, dtype=np.float32)
    records = []
    for layer, backend in zip(program.layers, backends):
        h, acc, stats = run_layer(layer, program.config, h, backend)
        records.append({"layer": layer.index, "engine": layer.engine, "backend": backend.name,
                        "shape": list(layer.shape), "acc": acc, **stats})
    return h, records
