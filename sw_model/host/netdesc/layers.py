"""The network description (Python API): layers with shape checks and a float64 forward, the `Network` that
chains them, and the step record the int8 compiler (`sw_model.host.netdesc.compiler`) produces.

See `sw_model.host.netdesc` for the whole API and the quantization rules."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class NetworkError(ValueError):
    """A network that cannot be described, compiled or run; the message names the layer, field and value."""


# ------------------------------------------------------------------------------------------------------------
# Layers
# ------------------------------------------------------------------------------------------------------------

def _where(i) -> str:
    return "layer" if i is None else f"layer {i}"


class Layer:
    """Base class: `out_shape(in_shape, i)` validates and infers the per-image shape, `forward` is float64."""

    def out_shape(self, s: tuple, i) -> tuple:
        return s

    def forward(self, x, saved=None):
        return x

    def _need_3d(self, s, i):
        if len(s) != 3:
            raise NetworkError(f"{_where(i)} ({type(self).__name__}): input: got shape {s}, allowed: (C, H, W)")


def _check_positive(i, layer, name, value, lo=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo:
        raise NetworkError(f"{_where(i)} ({layer}): {name}: got {value!r}, allowed: an integer >= {lo}")


def _array(value, ndim, what, i, layer):
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != ndim or not np.all(np.isfinite(a)):
        raise NetworkError(f"{_where(i)} ({layer}): {what}: got shape {a.shape}, allowed: {ndim}-D finite values")
    return a


def _check_acc(name, k, config):
    """The chain's accumulator must hold any K-term int8 x int8 dot (|w| <= 127, |x| <= 128)."""
    need = (k * 127 * 128).bit_length() + 1
    if need > config.acc_bits:
        raise NetworkError(f"{name}: acc_bits: config has {config.acc_bits}, a K = {k} int8 dot needs "
                           f"{need} (allowed: >= {need})")


def _check_sparsity(layer, sparsity):
    """None / "dense" (the chain's dense mode) or an N:M mode of the sparse chain ("2:4", "1:4", "2:8", "4:8")."""
    if sparsity in (None, "dense"):
        return None
    if sparsity not in SPARSITY_MODES:
        raise NetworkError(f"layer ({layer}): sparsity: got {sparsity!r}, allowed: None, 'dense', "
                           f"{', '.join(repr(m) for m in SPARSITY_MODES)}")
    return sparsity


SPARSITY_MODES = ("2:4", "1:4", "2:8", "4:8")


class Linear(Layer):
    """y = W x + b; weight (out_features, in_features); on a (tokens, features) input it applies per token.
    `sparsity`: None (dense) or an N:M mode ("2:4", ...): the int8 compiler then runs the layer in that mode of the
    chain with compressed weights; the weights must already be N:M sparse along in_features
    (`sw_model.host.netdesc.prune.prune_network`)."""

    def __init__(self, weight, bias=None, sparsity=None):
        self.sparsity = _check_sparsity("Linear", sparsity)
        self.weight = _array(weight, 2, "weight", None, "Linear")
        self.bias = np.zeros(len(self.weight)) if bias is None else _array(bias, 1, "bias", None, "Linear")
        if self.bias.shape != (self.weight.shape[0],):
            raise NetworkError(f"layer (Linear): bias: got shape {self.bias.shape}, allowed: "
                               f"({self.weight.shape[0]},) (one per output feature)")

    def out_shape(self, s, i):
        k = self.weight.shape[1]
        if len(s) not in (1, 2):
            raise NetworkError(f"{_where(i)} (Linear): input: got shape {s}, allowed: a flat vector of {k} "
                               f"(insert Flatten()) or (tokens, {k})")
        if s[-1] != k:
            raise NetworkError(f"{_where(i)} (Linear): in_features: got {k}, allowed: {s[-1]} (the size of its input)")
        return s[:-1] + (self.weight.shape[0],)

    def forward(self, x, saved=None):
        return x @ self.weight.T + self.bias


class Conv2d(Layer):
    """2-D cross-correlation; weight (out_channels, in_channels, kh, kw), zero padding, one stride for both axes.
    `sparsity`: as for Linear; the N:M groups run along the flattened (in_channels, kh, kw) axis, the GEMM's K."""

    def __init__(self, weight, bias=None, stride: int = 1, padding: int = 0, sparsity=None):
        self.sparsity = _check_sparsity("Conv2d", sparsity)
        self.weight = _array(weight, 4, "weight", None, "Conv2d")
        self.bias = np.zeros(len(self.weight)) if bias is None else _array(bias, 1, "bias", None, "Conv2d")
        if self.bias.shape != (self.weight.shape[0],):
            raise NetworkError(f"layer (Conv2d): bias: got shape {self.bias.shape}, allowed: "
                               f"({self.weight.shape[0]},) (one per output channel)")
        _check_positive(None, "Conv2d", "stride", stride)
        _check_positive(None, "Conv2d", "padding", padding, 0)
        self.stride, self.padding = int(stride), int(padding)

    def out_shape(self, s, i):
        self._need_3d(s, i)
        co, ci, kh, kw = self.weight.shape
        if ci != s[0]:
            raise NetworkError(f"{_where(i)} (Conv2d): in_channels: got {ci}, allowed: {s[0]} (channels of its input)")
        h, w = s[1] + 2 * self.padding, s[2] + 2 * self.padding
        if kh > h or kw > w:
            raise NetworkError(f"{_where(i)} (Conv2d): kernel: got {kh}x{kw}, allowed: at most {h}x{w} "
                               "(the padded input)")
        return (co, (h - kh) // self.stride + 1, (w - kw) // self.stride + 1)

    def forward(self, x, saved=None):
        co, _, kh, kw = self.weight.shape
        cols, (oh, ow) = im2col(x, kh, kw, self.stride, self.padding)
        y = self.weight.reshape(co, -1) @ cols + self.bias[:, None]
        return y.reshape(co, len(x), oh, ow).transpose(1, 0, 2, 3)


class ReLU(Layer):
    """max(x, 0)."""

    def forward(self, x, saved=None):
        return np.maximum(x, 0)


class _Pool(Layer):
    def __init__(self, kernel: int, stride: int | None = None):
        _check_positive(None, type(self).__name__, "kernel", kernel)
        if stride is not None:
            _check_positive(None, type(self).__name__, "stride", stride)
        self.kernel, self.stride = int(kernel), int(kernel if stride is None else stride)

    def out_shape(self, s, i):
        self._need_3d(s, i)
        if self.kernel > min(s[1], s[2]):
            raise NetworkError(f"{_where(i)} ({type(self).__name__}): kernel: got {self.kernel}, allowed: at most "
                               f"{min(s[1], s[2])} (the input is {s[1]}x{s[2]})")
        return (s[0], (s[1] - self.kernel) // self.stride + 1, (s[2] - self.kernel) // self.stride + 1)

    def windows(self, x):
        """(B, C, H', W', k*k) view of the pooling windows (no padding)."""
        k, st = self.kernel, self.stride
        oh, ow = (x.shape[2] - k) // st + 1, (x.shape[3] - k) // st + 1
        parts = [x[:, :, dy:dy + st * (oh - 1) + 1:st, dx:dx + st * (ow - 1) + 1:st]
                 for dy in range(k) for dx in range(k)]
        return np.stack(parts, axis=-1)


class MaxPool2d(_Pool):
    """Max over kernel x kernel windows (stride defaults to the kernel), no padding."""

    def forward(self, x, saved=None):
        return self.windows(x).max(axis=-1)


class AvgPool2d(_Pool):
    """Mean over kernel x kernel windows (stride defaults to the kernel), no padding."""

    def forward(self, x, saved=None):
        return self.windows(x).mean(axis=-1)


class Flatten(Layer):
    """(C, H, W) -> (C*H*W,) in C, H, W order."""

    def out_shape(self, s, i):
        return (int(np.prod(s)),)

    def forward(self, x, saved=None):
        return x.reshape(len(x), -1)


class Add(Layer):
    """Residual add: its input plus the output of layer `source` (-1 = the network input); shapes must match."""

    def __init__(self, source: int):
        if not isinstance(source, (int, np.integer)) or isinstance(source, bool):
            raise NetworkError(f"layer (Add): source: got {source!r}, allowed: a layer index or -1 (the input)")
        self.source = int(source)

    def forward(self, x, saved=None):
        return x + saved[self.source]


class LayerNorm(Layer):
    """LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias. No engine normalizes, so the
    int8 program runs it on the host in float64 between dequantization and requantization."""

    def __init__(self, weight, bias=None, eps: float = 1e-5):
        self.weight = np.asarray(weight, dtype=np.float64)
        if self.weight.ndim != 1:
            raise NetworkError(f"LayerNorm: weight: got shape {self.weight.shape}, allowed: (features,)")
        self.bias = np.zeros_like(self.weight) if bias is None else np.asarray(bias, dtype=np.float64)
        if self.bias.shape != self.weight.shape:
            raise NetworkError(f"LayerNorm: bias: got shape {self.bias.shape}, allowed: {self.weight.shape}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise NetworkError(f"LayerNorm: eps: got {eps!r}, allowed: a positive number")
        self.eps = float(eps)

    def out_shape(self, s, i):
        if s[-1] != len(self.weight):
            raise NetworkError(f"layer {i} (LayerNorm): features: got {s[-1]}, allowed: {len(self.weight)} "
                               "(the weight's length)")
        return s

    def forward(self, x, saved=None):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.weight + self.bias


BUILTIN = (Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Add, LayerNorm)
SUPPORTED_NAMES = ", ".join([c.__name__ for c in BUILTIN] + ["Attention", "Spiking"])


class Network:
    """An ordered list of layers on a per-image `input_shape`; shapes are checked at construction."""

    def __init__(self, input_shape, layers):
        self.input_shape = tuple(int(v) for v in input_shape)
        if len(self.input_shape) not in (1, 2, 3) or min(self.input_shape) < 1:
            raise NetworkError(f"input_shape: got {tuple(input_shape)}, allowed: (C, H, W), (tokens, features) or "
                               "(features,), sizes >= 1")
        self.layers = list(layers)
        self.shapes = []                    # per-image output shape of every layer
        s = self.input_shape
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise NetworkError(f"layer {i}: got {type(layer).__name__}, allowed: {SUPPORTED_NAMES} "
                                   "(sw_model.host.netdesc layer objects)")
            if isinstance(layer, Add):
                if not -1 <= layer.source < i:
                    raise NetworkError(f"layer {i} (Add): source: got {layer.source}, allowed: -1..{i - 1} "
                                       "(an earlier layer or -1 for the input)")
                other = self.input_shape if layer.source < 0 else self.shapes[layer.source]
                if other != s:
                    raise NetworkError(f"layer {i} (Add): source: layer {layer.source} has shape {other}, "
                                       f"allowed: the shape of its input {s}")
            s = layer.out_shape(s, i)
            self.shapes.append(s)

    def forward(self, x, keep: bool = False):
        """Float64 forward of a batch (B, *input_shape) (flat (B, prod) is reshaped); keep=True: every output."""
        h = np.asarray(x, dtype=np.float64).reshape((-1,) + self.input_shape)
        saved = {-1: h}
        for i, layer in enumerate(self.layers):
            h = layer.forward(h, saved)
            saved[i] = h
        return saved if keep else h


def im2col(x, kh: int, kw: int, stride: int = 1, padding: int = 0):
    """(B, C, H, W) -> ((C*kh*kw, B*H'*W') patch matrix, (H', W')); rows in (c, ky, kx) order (the order of
    weight.reshape(out, -1)), columns in (image, row, column) order; padding with zeros (= zero point 0)."""
    x = np.asarray(x)
    b, c, h, w = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    parts = [x[:, :, dy:dy + stride * (oh - 1) + 1:stride, dx:dx + stride * (ow - 1) + 1:stride]
             for dy in range(kh) for dx in range(kw)]
    p = np.stack(parts, axis=2)                         # (B, C, kh*kw, H', W')
    return p.transpose(1, 2, 0, 3, 4).reshape(c * kh * kw, b * oh * ow), (oh, ow)


# ------------------------------------------------------------------------------------------------------------
# int8 compiler
# ------------------------------------------------------------------------------------------------------------

@dataclass
class Step:
    """One compiled operation: a GEMM on the engine (with host bias + requantization) or a host op."""
    index: int
    layers: list                      # network layer indices it covers (a fused ReLU adds one)
    op: str
    engine: str                       # "sparse_chain" or "host"
    why: str
    out_shape: tuple
    in_scale: float = 1.0
    out_scale: float = 1.0
    lo: int = -128
    hi: int = 127
    layer: Layer | None = None
    w_q: np.ndarray | None = None     # (R, K) int8 values (int64)
    bias_q: np.ndarray | None = None  # (R,) int32 values
    multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def shape(self):
        """GEMM (R, K) for engine steps; (output size, input size) per image for host steps."""
        return tuple(self.w_q.shape) if self.w_q is not None else self.extra["io"]


def _scale(max_abs) -> float:
    return max(float(max_abs), 1e-12) / 127.0


def _round_away(v):
    """TFLite's TfLiteRound / std::round: half away from zero."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)
