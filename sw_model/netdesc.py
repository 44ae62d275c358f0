"""A small network description (Python API) and its int8 compiler onto the sparse DSP chain engine.

    net = Network((1, 8, 8), [Conv2d(w1, b1, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(w2, b2)])
    program = compile_int8(net, calibration_images, SparseChainConfig(stages=8))
    logits_q, records = program.run(images)               # golden backend; or backends={step: RtlBackend()}

Tensors are per image (C, H, W), (tokens, features) or (features,); a batch adds a leading axis. Quantization
follows TFLite's int8 reference kernels: per-output-channel symmetric int8 weights (scale max|w_c| / 127), int32 bias
round(b / (s_in s_w[c])), per-tensor symmetric int8 activations (zero point 0, scale max|a| / 127 over the
calibration set), requantization with `sw_model.requant` (MultiplyByQuantizedMultiplier per channel). Linear and
Conv2d run as a GEMM on the engine (`backend.gemm(config, w_q, x_q)` -> int32): Conv2d via im2col, the patch
matrix (C*kh*kw, B*H'*W') with columns in (image, row, column) order; a ReLU right after them is fused into the
requantization clamp [0, 127]; on a (tokens, features) input a Linear applies per token. Pooling, flatten, a
standalone ReLU, LayerNorm and the residual Add (TFLite's int8 ADD) run on the host. `Attention`
(sw_model/netdesc_attention.py: projections on the chain, softmax(QK^T/sqrt(d))V on the attention array) and
`Spiking` (sw_model/netdesc_spiking.py: a rate-coded LIF layer on the spiking core) live in their own modules and
are importable from here. The program reports, per step, where it runs and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .requant import quantize_multiplier, requantize


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


class Linear(Layer):
    """y = W x + b; weight (out_features, in_features); on a (tokens, features) input it applies per token."""

    def __init__(self, weight, bias=None):
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
    """2-D cross-correlation; weight (out_channels, in_channels, kh, kw), zero padding, one stride for both axes."""

    def __init__(self, weight, bias=None, stride: int = 1, padding: int = 0):
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


def _extra_kinds():
    """(Attention, Spiking): defined in their own modules, which import this one (so imported lazily here)."""
    from .netdesc_attention import Attention
    from .netdesc_spiking import Spiking
    return Attention, Spiking


def __getattr__(name):
    """`from sw_model.netdesc import Attention, Spiking` (PEP 562: the classes live in their own modules)."""
    if name in ("Attention", "Spiking"):
        return dict(zip(("Attention", "Spiking"), _extra_kinds()))[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
                                   "(sw_model.netdesc layer objects)")
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


def _check_config(config):
    if getattr(config, "unit", None) != "sparse_chain":
        raise NetworkError(f"config: got unit {getattr(config, 'unit', type(config).__name__)!r}, allowed: "
                           "sparse_chain (the engine of the int8 program)")
    if config.weight_bits != 8:
        raise NetworkError(f"config: weight_bits: got {config.weight_bits}, allowed: 8 (int8 weights)")
    if config.packed:
        raise NetworkError("config: packed: got True, allowed: false (the int8 program runs the chain in dense mode)")


def compile_int8(net: Network, calibration, config, max_beats: int = 1 << 16, attention=None) -> "Program":
    """Quantize `net` (activation scales from the float forward of `calibration`) for a sparse_chain `config`.
    `max_beats`: the largest engine job; GEMMs are split by columns so one call never streams more beats.
    `attention`: the attention array's config (`AttentionConfig`), needed when the network has Attention layers."""
    _check_config(config)
    Attention, Spiking = _extra_kinds()
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, BUILTIN + (Attention, Spiking)):
            raise NetworkError(f"layer {i} ({type(layer).__name__}): no engine and no host fallback of the int8 "
                               f"compiler supports it; supported: {SUPPORTED_NAMES}")
    acts = net.forward(calibration, keep=True)
    used_by_add = {layer.source for layer in net.layers if isinstance(layer, Add)}
    scales = {-1: _scale(np.abs(acts[-1]).max())}
    if net.layers and isinstance(net.layers[0], Spiking):
        scales[-1] = 1.0 / net.layers[0].input_levels     # the int8 input is the rate code's level directly
    steps, i, in_shape = [], 0, net.input_shape
    while i < len(net.layers):
        layer, s_in = net.layers[i], scales[i - 1]
        name = f"layer {i} ({type(layer).__name__})"
        if isinstance(layer, (Attention, Spiking)):
            from . import netdesc_attention, netdesc_spiking
            if isinstance(layer, Attention):
                new = netdesc_attention.compile_steps(layer, i, len(steps), s_in, acts[i - 1],
                                                      _scale(np.abs(acts[i]).max()), config, attention, max_beats)
            else:
                new = netdesc_spiking.compile_step(layer, i, len(steps), s_in, net, in_shape)
            steps += new
            scales[i] = new[-1].out_scale
            in_shape, i = net.shapes[i], i + 1
            continue
        fuse = (i + 1 < len(net.layers) and isinstance(net.layers[i + 1], ReLU) and i not in used_by_add
                and isinstance(layer, (Linear, Conv2d, Add)))
        covered = [i, i + 1] if fuse else [i]
        out_shape = net.shapes[covered[-1]]
        io = (int(np.prod(out_shape)), int(np.prod(in_shape)))
        st = Step(len(steps), covered, type(layer).__name__ + ("+ReLU" if fuse else ""), "host", "", out_shape,
                  s_in, s_in, 0 if fuse else -128, 127, layer, extra={"io": io})
        if isinstance(layer, (Linear, Conv2d)):
            w = layer.weight.reshape(len(layer.weight), -1)
            r, k = w.shape
            _check_acc(name, k, config)
            w_max = np.abs(w).max(axis=1)
            s_w = np.where(w_max > 0, w_max, 1.0) / 127.0         # an all-zero channel: any scale, w_q = 0
            st.w_q = np.clip(_round_away(w / s_w[:, None]), -127, 127).astype(np.int64)
            st.bias_q = _round_away(layer.bias / (s_in * s_w)).astype(np.int64)
            if np.abs(st.bias_q).max(initial=0) > 2**31 - 1:
                raise NetworkError(f"{name}: bias: a quantized bias leaves int32 (allowed: |b / (s_in s_w)| < 2^31)")
            st.out_scale = _scale(np.abs(acts[covered[-1]]).max())
            ms = [quantize_multiplier(s_in * sw / st.out_scale) for sw in s_w]
            st.multiplier = np.array([m for m, _ in ms], np.int64)
            st.shift = np.array([s for _, s in ms], np.int64)
            st.engine = "sparse_chain"
            beats = -(-k // config.stages)
            tokens = int(np.prod(out_shape[:-1])) if isinstance(layer, Linear) else 1
            st.why = (f"GEMM ({r} x {k}) on the sparse chain, dense mode, {beats} beat(s) per dot"
                      + (f", one column per token ({tokens})" if isinstance(layer, Linear) and len(out_shape) == 2
                         else "")
                      + ("; im2col on the host" if isinstance(layer, Conv2d) else "")
                      + "; int32 bias + requantization on the host" + ("; ReLU fused into the clamp" if fuse else ""))
            st.extra["cols_per_call"] = max(1, max_beats // (r * beats))
            st.extra["cols_per_sample"] = int(np.prod(out_shape[1:])) if isinstance(layer, Conv2d) else tokens
        elif isinstance(layer, Add):
            s_src = scales[layer.source]
            st.out_scale = _scale(np.abs(acts[covered[-1]]).max())
            twice = 2 * max(s_in, s_src)
            st.extra.update(left_shift=20, q1=quantize_multiplier(s_in / twice), q2=quantize_multiplier(s_src / twice),
                            qo=quantize_multiplier(twice / ((1 << 20) * st.out_scale)))
            st.why = ("host: no engine adds tensors; TFLite int8 ADD (both inputs rescaled with left shift 20, "
                      "requantized)" + ("; ReLU fused into the clamp" if fuse else ""))
        elif isinstance(layer, ReLU):
            st.lo, st.why = 0, "host: clamp at the zero point (scale unchanged)"
        elif isinstance(layer, MaxPool2d):
            st.why = "host: no engine pools; max of the int8 values (scale unchanged)"
        elif isinstance(layer, AvgPool2d):
            st.why = "host: no engine pools; TFLite int8 AveragePool (rounded mean, scale unchanged)"
        elif isinstance(layer, Flatten):
            st.why = "host: a reshape"
        elif isinstance(layer, LayerNorm):
            st.out_scale = _scale(np.abs(acts[covered[-1]]).max())
            st.why = ("host: no engine normalizes; float64 LayerNorm of the dequantized int8 values, requantized "
                      "(round half away from zero, clamp)")
        for j in covered:
            scales[j] = st.out_scale
        steps.append(st)
        in_shape, i = out_shape, covered[-1] + 1
    return Program(net, config, scales[-1], steps, attention)


ENGINE_METHODS = {"sparse_chain": "gemm", "attention": "attention", "snn_core": "spiking"}


class Program:
    """A compiled int8 network: `run(x, backends)` -> (int8 outputs, per-step records); `report()` per step."""

    def __init__(self, net, config, input_scale, steps, attention=None):
        self.net, self.config, self.input_scale, self.steps = net, config, input_scale, steps
        self.attention = attention

    @property
    def engine_steps(self) -> list[int]:
        return [s.index for s in self.steps if s.engine != "host"]

    @property
    def output_scale(self) -> float:
        return self.steps[-1].out_scale

    def engine_beats(self, images: int = 1) -> int:
        """Cycle model of the sparse-chain steps at one beat per cycle (fill/drain excluded): per GEMM, rows x
        columns x ceil(K / stages) beats; a conv has H' x W' columns per image, a linear layer or an attention
        projection one per token (one for a flat input). Attention-array and spiking-core steps not included."""
        total = 0
        for s in self.steps:
            if s.engine == "sparse_chain":
                total += s.w_q.shape[0] * s.extra["cols_per_sample"] * -(-s.w_q.shape[1] // self.config.stages)
        return total * images

    def report(self) -> list[dict]:
        return [{"step": s.index, "layers": s.layers, "op": s.op, "engine": s.engine, "why": s.why,
                 "shape": list(s.shape), "out_shape": list(s.out_shape)} for s in self.steps]

    def quantize_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape((-1,) + self.net.input_shape)
        return np.clip(_round_away(x / self.input_scale), -128, 127).astype(np.int64)

    def golden_backends(self) -> dict:
        """engine name -> the default (golden) backend: the chain's beat-level model, the attention array's
        bit-exact model (per head), the spiking core's batched model."""
        from .minilm_int8 import MiniLMGoldenBackend
        from .netdesc_spiking import SpikingGoldenBackend
        from .network_int8 import Int8GoldenBackend
        return {"sparse_chain": Int8GoldenBackend(), "attention": MiniLMGoldenBackend(),
                "snn_core": SpikingGoldenBackend()}

    def run(self, x, backends: dict | None = None, quantized: bool = False):
        """Run a batch. `backends`: step index -> backend (default: golden for every engine step): a sparse-chain
        step needs gemm(config, w_q, x_q), an attention step attention(config, q, k, v), a spiking step
        spiking(config, weights, spikes); a host step cannot take a backend. `quantized`: x is already int8."""
        backends = dict(backends or {})
        for k, b in backends.items():
            if k not in self.engine_steps:
                what = f"step {k} ({self.steps[k].op}) runs on the host" if 0 <= k < len(self.steps) else \
                    f"step {k} does not exist"
                raise NetworkError(f"backends: {what}, allowed: engine steps {self.engine_steps}")
            st = self.steps[k]
            method = ENGINE_METHODS[st.engine]
            if not callable(getattr(b, method, None)):
                raise NetworkError(f"backends: step {k} ({st.op}) runs on the {st.engine} engine: got a "
                                   f"{type(b).__name__} without {method}(), allowed: a backend with {method}()")
        golden = self.golden_backends()
        h = np.asarray(x, np.int64).reshape((-1,) + self.net.input_shape) if quantized else self.quantize_input(x)
        saved, records, scratch = {-1: h}, [], {}
        for st in self.steps:
            rec = {"step": st.index, "op": st.op, "engine": st.engine}
            if st.engine == "host":
                h = self._host(st, h, saved)
                rec["backend"] = "host"
            else:
                backend = backends.get(st.index, golden[st.engine])
                part = st.extra.get("part")
                if part is not None:
                    from . import netdesc_attention, netdesc_spiking
                    mod = netdesc_spiking if part == "spiking" else netdesc_attention
                    h, acc, stats = mod.run_step(self, st, h, backend, scratch)
                else:
                    h, acc, stats = self._gemm(st, h, backend)
                rec.update(backend=backend.name, acc=acc, **stats)
            for j in st.layers:
                saved[j] = h
            records.append(rec)
        return h, records

    def chain_gemm(self, st, cols, backend):
        """(R, K) W_q x (K, columns) int8 on `backend`, split into calls of at most `cols_per_call` columns;
        returns the int64 products (no bias) and the summed stats (cycles, beats, sim_seconds)."""
        step = st.extra["cols_per_call"]
        accs, stats = [], {"cycles": None, "beats": 0, "sim_seconds": 0.0}
        for c in range(0, cols.shape[1], step):
            acc, s = backend.gemm(self.config, st.w_q, cols[:, c:c + step])
            accs.append(np.asarray(acc, np.int64))
            for key, value in s.items():               # sum the backend's counts over the calls (None: none)
                if value is not None and np.ndim(value) == 0:
                    stats[key] = (stats.get(key) or 0) + value
        return np.concatenate(accs, axis=1), stats

    def _gemm(self, st, h, backend):
        layer = st.layer
        b = len(h)
        if isinstance(layer, Conv2d):
            _, _, kh, kw = layer.weight.shape
            cols, (oh, ow) = im2col(h, kh, kw, layer.stride, layer.padding)
        else:
            cols = h.reshape(-1, h.shape[-1]).T                     # one column per sample (and token)
        acc, stats = self.chain_gemm(st, cols, backend)
        acc = acc + st.bias_q[:, None]                               # (R, columns) int32
        y = requantize(acc, st.multiplier[:, None], st.shift[:, None], 0, st.lo, st.hi).astype(np.int64)
        if isinstance(layer, Conv2d):
            y = y.reshape(len(st.w_q), b, oh, ow).transpose(1, 0, 2, 3)
        else:
            y = y.T.reshape((b,) + tuple(st.out_shape))
        return y, acc, stats

    def _host(self, st, h, saved):
        layer = st.layer
        if isinstance(layer, ReLU):
            return np.clip(h, st.lo, st.hi)
        if isinstance(layer, Flatten):
            return h.reshape(len(h), -1)
        if isinstance(layer, MaxPool2d):
            return layer.windows(h).max(axis=-1)
        if isinstance(layer, AvgPool2d):
            win = layer.windows(h)
            total, n = win.sum(axis=-1), win.shape[-1]
            # TFLite: (acc +- n/2) / n with C++ division (truncates toward zero)
            q = (np.abs(total) + n // 2) // n
            return np.clip(np.where(total > 0, q, -q), st.lo, st.hi)
        if isinstance(layer, Add):
            from .requant import multiply_by_quantized_multiplier as mbqm
            ls = st.extra["left_shift"]
            a = mbqm(h * (1 << ls), *st.extra["q1"])
            b = mbqm(saved[layer.source] * (1 << ls), *st.extra["q2"])
            y = mbqm(a + b, *st.extra["qo"])
            return np.clip(y, st.lo, st.hi)
        if isinstance(layer, LayerNorm):
            y = layer.forward(h * st.in_scale) / st.out_scale
            return np.clip(_round_away(y), st.lo, st.hi).astype(np.int64)
        raise NetworkError(f"step {st.index}: no host implementation of {type(layer).__name__}")


class MatmulChainBackend:
    """The dense-mode chain result in one numpy matmul: the exact int8 x int8 sums taken modulo 2^acc_bits
    (two's complement), which is what `chain_model` accumulates beat by beat. Checked against
    `Int8GoldenBackend` in tests/test_netdesc.py; for fast full-data-set accuracy runs."""
    name = "golden-matmul"

    def gemm(self, config, w_q, x_q):
        acc = np.asarray(w_q, np.int64) @ np.asarray(x_q, np.int64)
        bits = config.acc_bits
        acc = acc & ((1 << bits) - 1) if bits < 64 else acc
        return (np.where(acc >= 1 << (bits - 1), acc - (1 << bits), acc) if bits < 64 else acc), {"cycles": None}
