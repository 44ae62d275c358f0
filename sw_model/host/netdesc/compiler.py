"""The int8 compiler of the network description onto the engines, and the compiled `Program` that runs it.

See `sw_model.host.netdesc` for the quantization rules; Linear and Conv2d become GEMMs on the sparse chain,
Attention and Spiking layers compile in their own modules, the rest runs on the host."""
from __future__ import annotations

import numpy as np

from sw_model.host.netdesc import attention as attention_steps
from sw_model.host.netdesc import spiking as spiking_steps
from sw_model.host.netdesc.attention import Attention
from sw_model.host.netdesc.layers import (
    BUILTIN,
    SUPPORTED_NAMES,
    Add,
    AvgPool2d,
    Conv2d,
    Flatten,
    LayerNorm,
    Linear,
    MaxPool2d,
    Network,
    NetworkError,
    ReLU,
    Step,
    _check_acc,
    _round_away,
    _scale,
    im2col,
)
from sw_model.host.netdesc.prune import nm_of, nm_violation
from sw_model.host.netdesc.spiking import Spiking, SpikingGoldenBackend
from sw_model.host.network_int8 import Int8GoldenBackend, MiniLMGoldenBackend
from sw_model.numerics.requant import multiply_by_quantized_multiplier, quantize_multiplier, requantize
from sw_model.sparse.golden import mode_of
from sw_model.sparse.group import group_window


def _check_config(config):
    if getattr(config, "unit", None) != "sparse_chain":
        raise NetworkError(f"config: got unit {getattr(config, 'unit', type(config).__name__)!r}, allowed: "
                           "sparse_chain (the engine of the int8 program)")
    if config.weight_bits != 8:
        raise NetworkError(f"config: weight_bits: got {config.weight_bits}, allowed: 8 (int8 weights)")
    if config.packed:
        raise NetworkError("config: packed: got True, allowed: false (the int8 program runs the chain with one "
                           "activation column per vector)")


def _sparsity_plan(net: Network, sparsity, config) -> dict:
    """{layer index: N:M mode} from the layers' own `sparsity` marks, overridden by the `sparsity` argument
    (a mode for every Linear / Conv2d layer, or {layer index: mode or None}); modes the chain must offer."""
    gemm = [i for i, layer in enumerate(net.layers) if isinstance(layer, (Linear, Conv2d))]
    plan = {i: net.layers[i].sparsity for i in gemm if getattr(net.layers[i], "sparsity", None)}
    if isinstance(sparsity, dict):
        for i, mode in sparsity.items():
            if i not in gemm:
                raise NetworkError(f"sparsity: layer {i!r} is not a Linear or Conv2d layer, allowed: {gemm}")
            plan[i] = mode
    elif sparsity is not None:
        plan = {i: sparsity for i in gemm}
    plan = {i: mode for i, mode in plan.items() if mode not in (None, "dense")}
    offered = {md.value for md in config.modes}
    for i, mode in plan.items():
        nm_of(mode)
        if mode_of(mode).value not in offered:
            raise NetworkError(f"layer {i} ({type(net.layers[i]).__name__}): sparsity: got {mode!r}, allowed: the "
                               f"modes this chain offers ({', '.join(m.name for m in config.modes)})")
    return plan


def compile_int8(net: Network, calibration, config, max_beats: int = 1 << 16, attention=None,
                 sparsity=None) -> "Program":
    """Quantize `net` (activation scales from the float forward of `calibration`) for a sparse_chain `config`.
    `max_beats`: the largest engine job; GEMMs are split by columns so one call never streams more beats.
    `attention`: the attention array's config (`AttentionConfig`), needed when the network has Attention layers.
    `sparsity`: None (each Linear / Conv2d layer's own `sparsity` mark), a mode for all of them ("2:4", ...), or
    {layer index: mode or None}. A sparse layer's int8 weights must be N:M sparse along K (zero-padded to a
    multiple of M; prune first with `sw_model.host.netdesc.prune.prune_network`); it runs in that mode of the
    chain with compressed weights (values + indices) in its beats."""
    _check_config(config)
    plan = _sparsity_plan(net, sparsity, config)
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
            if isinstance(layer, Attention):
                new = attention_steps.compile_steps(layer, i, len(steps), s_in, acts[i - 1],
                                                      _scale(np.abs(acts[i]).max()), config, attention, max_beats)
            else:
                new = spiking_steps.compile_step(layer, i, len(steps), s_in, net, in_shape)
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
            mode = plan.get(i, "dense")
            if mode != "dense":
                bad = nm_violation(st.w_q, mode)
                if bad:
                    raise NetworkError(f"{name}: sparsity {mode}: the int8 weights are not {mode} sparse: {bad} "
                                       "(prune first: sw_model.host.netdesc.prune.prune_network)")
                st.extra["sparsity"] = mode
            rows_per_vector = config.rows(mode)
            n, m = nm_of(mode) if mode != "dense" else (1, 1)
            kept = -(-k // m) * n                  # compressed weights per row (K padded to whole groups)
            per_beat = group_window(mode, config.stages, config.groups) // m * n     # of them in one beat
            beats = -(-kept // per_beat)
            st.extra["beats_per_vector"] = beats
            st.extra["rows_per_vector"] = rows_per_vector
            tokens = int(np.prod(out_shape[:-1])) if isinstance(layer, Linear) else 1
            st.why = (f"GEMM ({r} x {k}) on the sparse chain, {mode} mode"
                      + (f" (compressed weights: {n} values + {n} indices per {m} along K, {rows_per_vector} "
                         f"row(s) per vector)" if mode != "dense" else "") + f", {beats} beat(s) per dot"
                      + (f", one column per token ({tokens})" if isinstance(layer, Linear) and len(out_shape) == 2
                         else "")
                      + ("; im2col on the host" if isinstance(layer, Conv2d) else "")
                      + "; int32 bias + requantization on the host" + ("; ReLU fused into the clamp" if fuse else ""))
            st.extra["cols_per_call"] = max(1, max_beats // (-(-r // rows_per_vector) * beats))
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
SPARSE_METHOD = "sparse_gemm"          # a sparse-chain step with an N:M mode needs sparse_gemm(config, w_q, x_q, mode)


def _method(st) -> str:
    return SPARSE_METHOD if st.extra.get("sparsity") else ENGINE_METHODS[st.engine]


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
        """Cycle model of the sparse-chain steps at one beat per cycle (fill/drain excluded): per GEMM, vectors x
        columns x beats per vector; a vector covers one row dense, R rows in an N:M mode of a grouped chain, and
        ceil(K / window) beats (the window of the mode: dense = stages); a conv has H' x W' columns per image, a
        linear layer or an attention projection one per token (one for a flat input). Attention-array and
        spiking-core steps not included."""
        total = 0
        for s in self.steps:
            if s.engine == "sparse_chain":
                beats = s.extra.get("beats_per_vector", -(-s.w_q.shape[1] // self.config.stages))
                vectors = -(-s.w_q.shape[0] // s.extra.get("rows_per_vector", 1))
                total += vectors * s.extra["cols_per_sample"] * beats
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
            method = _method(st)
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
                    mod = spiking_steps if part == "spiking" else attention_steps
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
        mode = st.extra.get("sparsity")
        accs, stats = [], {"cycles": None, "beats": 0, "sim_seconds": 0.0}
        for c in range(0, cols.shape[1], step):
            acc, s = (backend.sparse_gemm(self.config, st.w_q, cols[:, c:c + step], mode) if mode else
                      backend.gemm(self.config, st.w_q, cols[:, c:c + step]))
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
            mbqm = multiply_by_quantized_multiplier
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
    `Int8GoldenBackend` in tests/host/test_netdesc.py; for fast full-data-set accuracy runs. `sparse_gemm`: the
    same matmul of the N:M-sparse weights (the chain skips only zeros, so the sums are the same)."""
    name = "golden-matmul"

    def sparse_gemm(self, config, w_q, x_q, mode):
        return self.gemm(config, w_q, x_q)

    def gemm(self, config, w_q, x_q):
        acc = np.asarray(w_q, np.int64) @ np.asarray(x_q, np.int64)
        bits = config.acc_bits
        acc = acc & ((1 << bits) - 1) if bits < 64 else acc
        return (np.where(acc >= 1 << (bits - 1), acc - (1 << bits), acc) if bits < 64 else acc), {"cycles": None}
