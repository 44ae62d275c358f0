"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED as GEMMs on the sparse chain engine, zero points on the host.

TFLite computes acc = sum (x - zp_x) w + bias for int8 x and int8 weights (weight zero point 0). x - zp_x spans
up to 255 codes and does not fit the chain's signed 8-bit activation input, so the engine multiplies the raw
codes and the host folds the zero-point term into the bias, exactly:

    acc = W x + (bias - zp_x * rowsum(W))

Padding positions hold zp_x (so they contribute zp_x w - zp_x w = 0, as TFLite skips them). A convolution is
im2col on the host: one column per output pixel, rows in TFLite's filter order (ky, kx, c). A depthwise
convolution becomes ONE block-diagonal GEMM: output channel c*m + j has its kernel in the columns of input
channel c and zeros elsewhere (dense mode multiplies those zeros: C times the MACs of the depthwise layer, one
engine job instead of C). The int32 result is requantized per channel on the host (MultiplyByQuantizedMultiplier
with the multiplier of double(s_x) * double(s_w[c]) / double(s_out), + zp_out, clamp to the fused activation);
FULLY_CONNECTED with ruy's single-rounding MultiplyByQuantizedMultiplier, which LiteRT's reference build uses
for it (the convolutions use gemmlowp's two roundings).

The engine is any object with `gemm(config, w_q (R, K), x_q (K, B)) -> ((R, B) int64, stats)`; calls are split
by columns (at most `max_beats` beats each) and by K (no partial sum can wrap the chain's accumulator; at most
`max_k` per call), the parts summed exactly on the host.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sw_model.host.network_int8 import quantized_multipliers
from sw_model.importers.tflite import kernels as K
from sw_model.numerics.requant import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_single_round


@dataclass
class EngineOp:
    """One engine GEMM of a model: int8 weights (R, K), host bias with the zero-point term folded in, requant."""
    op: str
    index: int
    w_q: np.ndarray                     # (R, K) int64 holding int8 codes
    bias: np.ndarray                    # (R,) int64: bias - zp_x * rowsum(W)
    multiplier: np.ndarray              # (R,)
    shift: np.ndarray
    zp_x: int
    zp_out: int
    lo: int
    hi: int
    geometry: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.w_q.shape

    def columns(self, x) -> tuple[np.ndarray, tuple]:
        """(K, B) engine operand of the int8 input tensor and the output shape (NHWC or (batch, out))."""
        g = self.geometry
        if self.op == "FULLY_CONNECTED":
            rows = x.reshape(-1, self.w_q.shape[1])
            return rows.T, g["out_shape"](len(rows))
        win = K.windows(x, g["kh"], g["kw"], g["sh"], g["sw"], g["dh"], g["dw"], g["padding"], self.zp_x)
        n, oh, ow = win.shape[:3]
        return win.reshape(n * oh * ow, -1).T, (n, oh, ow, self.w_q.shape[0])

    def blocks(self, group: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, K indices) of the GEMMs of this op: one for CONV/FC; for a depthwise op one block-diagonal GEMM
        per `group` input channels (None: all channels in one)."""
        r, k = self.w_q.shape
        if self.op != "DEPTHWISE_CONV_2D" or group is None:
            return [(np.arange(r), np.arange(k))]
        c = k // (self.geometry["kh"] * self.geometry["kw"])
        m = self.geometry["depth_multiplier"]
        out = []
        for c0 in range(0, c, group):
            ch = np.arange(c0, min(c, c0 + group))
            rows = (ch[:, None] * m + np.arange(m)).reshape(-1)
            kidx = (np.arange(k // c)[:, None] * c + ch).reshape(-1)          # K order (ky, kx, c)
            out.append((rows, kidx))
        return out

    def run(self, x, backend, config, max_beats: int = 1 << 16, max_k: int | None = None,
            depthwise_group: int | None = None):
        """int8 output tensor and the record (int32 accumulators before requantization, summed backend stats).
        `depthwise_group`: input channels per block-diagonal GEMM of a depthwise op (None: all in one GEMM;
        1: a GEMM per channel, no zero weights but C engine jobs)."""
        cols, out_shape = self.columns(np.asarray(x, np.int64))
        acc = np.zeros((self.w_q.shape[0], cols.shape[1]), np.int64)
        stats = {}
        for rows, kidx in self.blocks(depthwise_group):
            part, st = engine_gemm(self.w_q[np.ix_(rows, kidx)], cols[kidx], backend, config, max_beats, max_k)
            acc[rows] = part
            for key, value in st.items():
                stats[key] = value if stats.get(key) is None or value is None else stats[key] + value
        acc = acc + self.bias[:, None]
        mbqm = multiply_by_quantized_multiplier_single_round if self.op == "FULLY_CONNECTED" else \
            multiply_by_quantized_multiplier
        y = np.clip(mbqm(acc, self.multiplier[:, None], self.shift[:, None]) + self.zp_out, self.lo, self.hi)
        return y.T.reshape(out_shape), {"acc": acc, **stats}


def engine_gemm(w_q, cols, backend, config, max_beats, max_k=None):
    """(R, K) x (K, B) on `backend` in calls that fit: K split so |partial sum| < 2^(acc_bits - 1) and into parts
    of at most `max_k` (a system's scratchpad holds one dot product of at most half its depth in beats), columns
    split so one call streams at most `max_beats` beats. Returns exact int64 products and summed stats."""
    r, k = w_q.shape
    k_step = max(1, ((1 << (config.acc_bits - 1)) - 1) // (128 * 128))
    if max_k is not None:
        k_step = max(1, min(k_step, max_k))
    stats = {"cycles": None, "beats": 0, "sim_seconds": 0.0, "calls": 0}
    total = np.zeros((r, cols.shape[1]), np.int64)
    for k0 in range(0, k, k_step):
        w_part = w_q[:, k0:k0 + k_step]
        beats = -(-w_part.shape[1] // config.stages)
        c_step = max(1, max_beats // max(1, r * beats))
        for c0 in range(0, cols.shape[1], c_step):
            acc, s = backend.gemm(config, w_part, cols[k0:k0 + k_step, c0:c0 + c_step])
            total[:, c0:c0 + c_step] += np.asarray(acc, np.int64)
            stats["calls"] += 1
            for key, value in s.items():
                if value is not None and np.ndim(value) == 0:
                    stats[key] = (stats.get(key) or 0) + value
    return total, stats


def per_channel_requant(s_x, s_w, s_out):
    """QuantizeMultiplier of double(s_x) * double(s_w[c]) / double(s_out) for every output channel."""
    return quantized_multipliers(float(s_x) * np.asarray(s_w, np.float64) / float(s_out))


def make_engine_op(op, x, w, b, y, options) -> EngineOp:
    """The EngineOp of a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED operator from its tensors (checked by the
    caller: int8 x/w/y, int32 bias, weight zero points 0)."""
    wv = w.buffer.astype(np.int64)
    lo, hi = K.activation_range(options.get("FusedActivationFunction", 0), y.scale[0], int(y.zero_point[0]),
                                y.type_name)
    geometry = {}
    if op.op == "CONV_2D":
        r = wv.shape[0]
        w_q = wv.reshape(r, -1)                                   # (O, kh*kw*I) in (ky, kx, c) order
        geometry = {"kh": wv.shape[1], "kw": wv.shape[2]}
    elif op.op == "DEPTHWISE_CONV_2D":
        _, kh, kw, r = wv.shape
        c = x.shape[3]
        m = r // c
        w_q = np.zeros((r, kh * kw, c), np.int64)
        for oc in range(r):
            w_q[oc, :, oc // m] = wv[0, :, :, oc].reshape(-1)
        w_q = w_q.reshape(r, -1)
        geometry = {"kh": kh, "kw": kw, "depth_multiplier": m}
    else:
        r = wv.shape[0]
        w_q = wv.reshape(r, -1)
        keep = options.get("KeepNumDims", False)
        in_shape = tuple(x.shape)

        def fc_shape(rows, keep=keep, in_shape=in_shape):
            return in_shape[:-1] + (r,) if keep else (rows, r)
        geometry = {"out_shape": fc_shape}
    if op.op != "FULLY_CONNECTED":
        geometry.update(sh=options.get("StrideH", 1), sw=options.get("StrideW", 1),
                        dh=options.get("DilationHFactor", 1), dw=options.get("DilationWFactor", 1),
                        padding=options.get("Padding", 0))
    s_w = w.scale if len(w.scale) == r else np.full(r, w.scale[0])
    mult, shift = per_channel_requant(x.scale[0], s_w, y.scale[0])
    bias = b.buffer.astype(np.int64).reshape(-1) if b is not None else np.zeros(r, np.int64)
    zp_x = int(x.zero_point[0])
    return EngineOp(op.op, op.index, w_q, bias - zp_x * w_q.sum(axis=1), mult, shift, zp_x,
                    int(y.zero_point[0]), lo, hi, geometry)
