"""Multi-head self-attention in the network description: projections on the sparse chain, heads on the array.

    Attention(heads, wq, wk, wv, wo, bq=None, bk=None, bv=None, bo=None)   # on a (tokens, features) input

Float64 meaning (per sample, x of shape (T, F)): q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv (T, D each,
D = heads * d), per head h: ctx_h = softmax(q_h k_h^T / sqrt(d)) v_h, out = ctx Wo^T + bo (T, F_out).

The int8 program (`compile_int8(..., attention=AttentionConfig)`) makes five steps, with the quantization of the
MiniLM runner (sw_model/networks/minilm_int8.py; `LinearOp`, `quantized_multipliers` and the golden attention
backend of sw_model/host/network_int8.py are shared with it):
  Attention.q/k/v  sparse_chain  int8 GEMM (D x F) per token, host: int32 bias + TFLite requantization straight
                                 into the array's per-head integer inputs (Q scale sq_h, K sk_h, V sv_h)
  Attention.heads  attention     per sample and head the array's one-pass softmax(QK^T) V (sw_model.attention.golden);
                                 the softmax scale 1/sqrt(d) and log2(e) live in sq_h sk_h = log2(e)/sqrt(d)
                                 2^(score_shift + logit_frac), split so that sq_h max|q_h| = sk_h max|k_h|;
                                 sv_h = 127 / max|v_h|; host: integer requantization of the outputs to int8 s_ctx
  Attention.out    sparse_chain  int8 GEMM (F_out x D) per token, host: int32 bias + requantization to int8
Weights: per-output-channel symmetric int8 (np.round, as LinearOp), activation scales from the calibration set.
"""
from __future__ import annotations

import math

import numpy as np

from sw_model.host.netdesc.layers import Layer, NetworkError, Step, _array, _check_acc, _where
from sw_model.host.network_int8 import LinearOp, quantized_multipliers
from sw_model.numerics.requant import requantize


class Attention(Layer):
    """Multi-head self-attention on (tokens, features): `heads` heads of D / heads, D = wq.shape[0]; weights
    wq, wk, wv (D, F), wo (F_out, D), biases optional. No mask (every token attends to every token)."""

    def __init__(self, heads: int, wq, wk, wv, wo, bq=None, bk=None, bv=None, bo=None):
        if not isinstance(heads, (int, np.integer)) or isinstance(heads, bool) or heads < 1:
            raise NetworkError(f"layer (Attention): heads: got {heads!r}, allowed: an integer >= 1")
        self.heads = int(heads)
        self.w = {n: _array(w, 2, f"w{n}", None, "Attention") for n, w in zip("qkvo", (wq, wk, wv, wo))}
        d_in = self.w["q"].shape
        for n in "kv":
            if self.w[n].shape != d_in:
                raise NetworkError(f"layer (Attention): w{n}: got shape {self.w[n].shape}, allowed: {d_in} "
                                   "(the shape of wq)")
        if self.w["o"].shape[1] != d_in[0]:
            raise NetworkError(f"layer (Attention): wo: got shape {self.w['o'].shape}, allowed: (F_out, "
                               f"{d_in[0]}) (wo takes the {d_in[0]} context features)")
        self.b = {}
        for n, b in zip("qkvo", (bq, bk, bv, bo)):
            rows = self.w[n].shape[0]
            self.b[n] = np.zeros(rows) if b is None else _array(b, 1, f"b{n}", None, "Attention")
            if self.b[n].shape != (rows,):
                raise NetworkError(f"layer (Attention): b{n}: got shape {self.b[n].shape}, allowed: ({rows},)")

    @property
    def features(self) -> int:
        """D, the width of q, k, v (heads x head_dim)."""
        return self.w["q"].shape[0]

    def out_shape(self, s, i):
        f = self.w["q"].shape[1]
        if len(s) != 2:
            raise NetworkError(f"{_where(i)} (Attention): input: got shape {s}, allowed: (tokens, {f})")
        if s[1] != f:
            raise NetworkError(f"{_where(i)} (Attention): in_features: got {f}, allowed: {s[1]} (the size of "
                               "its input)")
        if self.features % self.heads:
            raise NetworkError(f"{_where(i)} (Attention): heads: got {self.heads}, allowed: a divisor of "
                               f"{self.features} (the q/k/v features)")
        return (s[0], self.w["o"].shape[0])

    def parts(self, x) -> dict:
        """Float64 q, k, v, ctx (B, T, D) and out (B, T, F_out) of a batch x (B, T, F)."""
        x = np.asarray(x, np.float64)
        b, t, f = x.shape
        d = self.features // self.heads
        flat = x.reshape(b * t, f)
        r = {n: (flat @ self.w[n].T + self.b[n]).reshape(b, t, -1) for n in "qkv"}
        qh, kh, vh = (r[n].reshape(b, t, self.heads, d).transpose(0, 2, 1, 3) for n in "qkv")
        s = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(d)
        p = np.exp(s - s.max(-1, keepdims=True))
        r["ctx"] = ((p / p.sum(-1, keepdims=True)) @ vh).transpose(0, 2, 1, 3).reshape(b, t, -1)
        r["out"] = (r["ctx"].reshape(b * t, -1) @ self.w["o"].T + self.b["o"]).reshape(b, t, -1)
        return r

    def forward(self, x, saved=None):
        return self.parts(x)["out"]


def check_config(att, layer: Attention, i: int, tokens: int):
    """The attention array must take this layer's heads: head_dim = D / heads, int8 data, no mask, tokens within
    its key counters."""
    name = f"layer {i} (Attention)"
    if getattr(att, "unit", None) != "attention":
        raise NetworkError(f"{name}: attention config: got {type(att).__name__ if att is not None else None}, "
                           "allowed: an AttentionConfig (compile_int8(..., attention=...), e.g. the preset "
                           "attention-4x4-d8)")
    d = layer.features // layer.heads
    if att.head_dim != d:
        raise NetworkError(f"{name}: head_dim: got {d} ({layer.features} features / {layer.heads} heads), allowed: "
                           f"{att.head_dim} (the attention config's head_dim)")
    if att.data_bits != 8 or att.causal:
        raise NetworkError(f"{name}: attention config: got data_bits {att.data_bits}, causal {att.causal}; "
                           "allowed: data_bits 8 (int8 Q/K/V), causal False (no mask)")
    if tokens > 1 << att.max_keys_log2:
        raise NetworkError(f"{name}: tokens: got {tokens}, allowed: at most {1 << att.max_keys_log2} "
                           "(2^max_keys_log2 keys of the attention config)")


def head_scales(att, mq, mk, mv):
    """Per-head integer scales (sq, sk, sv) from the calibrated max |q|, |k|, |v| per head, as
    sw_model.networks.minilm_int8.compile_layer derives them (checked bit for bit in tests/host/test_netdesc_attention.py)."""
    mq, mk, mv = (np.maximum(np.asarray(m, np.float64), 1e-12) for m in (mq, mk, mv))
    d = att.head_dim
    prod = math.log2(math.e) / math.sqrt(d) * 2.0 ** (att.score_shift + att.logit_frac)
    levels = np.sqrt(prod * mq * mk)                 # = sq max|q| = sk max|k|: Q and K share the int8 range
    return levels / mq, levels / mk, 127.0 / mv, levels


def compile_steps(layer: Attention, i: int, first: int, s_in: float, x_cal, s_out: float, chain, att,
                  max_beats: int) -> list:
    """The five steps of layer i (see the module docstring); x_cal: the float calibration input (B, T, F)."""
    x_cal = np.asarray(x_cal, np.float64)
    tokens = x_cal.shape[1]
    check_config(att, layer, i, tokens)
    name, h, d = f"layer {i} (Attention)", layer.heads, layer.features // layer.heads
    r = layer.parts(x_cal)
    per_head = {n: np.abs(r[n].reshape(-1, h, d)).max(axis=(0, 2)) for n in ("q", "k", "v")}
    sq, sk, sv, levels = head_scales(att, per_head["q"], per_head["k"], per_head["v"])
    s_ctx = max(float(np.abs(r["ctx"]).max()), 1e-12) / 127.0
    ctx_mult, ctx_shift = quantized_multipliers(np.repeat(1.0 / (sv * 2.0 ** att.out_frac * s_ctx), d))
    ops = {}
    try:
        for n, scale in zip("qkv", (sq, sk, sv)):
            ops[n] = LinearOp.make(f"w{n}", layer.w[n], layer.b[n], s_in, np.repeat(scale, d))
        ops["o"] = LinearOp.make("wo", layer.w["o"], layer.b["o"], s_ctx, 1.0 / s_out)
    except ValueError as e:
        raise NetworkError(f"{name}: {e} (allowed: |b / (s_in s_w)| < 2^31)") from None
    steps = []
    for n in "qkvo":
        op = ops[n]
        rows, k = op.w_q.shape
        _check_acc(name, k, chain)
        beats = -(-k // chain.stages)
        what = {"q": "Q projection, requantized into each head's int8 Q format (sq balanced with sk)",
                "k": "K projection, requantized into each head's int8 K format",
                "v": "V projection, requantized into each head's int8 V format (max |v_h| -> 127)",
                "o": "output projection, int32 bias + requantization to int8 on the host"}[n]
        st = Step(first + len(steps), [i], f"Attention.{'out' if n == 'o' else n}", "sparse_chain",
                  f"GEMM ({rows} x {k}) on the sparse chain, dense mode, {beats} beat(s) per dot, one column per "
                  f"token ({tokens}); {what}", (tokens, rows), s_in if n != "o" else s_ctx,
                  s_out if n == "o" else 1.0, layer=layer, w_q=op.w_q, bias_q=op.bias_q,
                  multiplier=op.multiplier, shift=op.shift,
                  extra={"part": n, "op": op, "cols_per_call": max(1, max_beats // (rows * beats)),
                         "cols_per_sample": tokens})
        if n == "o":
            steps.append(Step(first + len(steps), [i], "Attention.heads", "attention",
                              f"{h} head(s) of {tokens} tokens x {d} on the attention array: its one-pass "
                              f"softmax(QK^T / sqrt({d})) V (the 1/sqrt(d) log2(e) scale folded into the Q/K "
                              "scales); host: integer requantization of the outputs to int8",
                              (tokens, layer.features), s_in, s_ctx, layer=layer,
                              multiplier=ctx_mult, shift=ctx_shift,
                              extra={"part": "heads", "io": (h, tokens, d), "sq": sq, "sk": sk, "sv": sv,
                                     "q_k_levels": levels, "q_k_saturating_heads": int(np.sum(levels > 127.5))}))
            st.index = first + len(steps)
        steps.append(st)
    return steps


def run_step(program, st: Step, h, backend, scratch: dict):
    """One attention step on a batch; returns (tensor passed on, integer results for the record, stats).
    q/k/v keep the layer input flowing (their int8 outputs go to `scratch`); heads and out consume them."""
    layer, part = st.layer, st.extra["part"]
    key = id(layer)
    if part in "qkv":
        b, t, f = h.shape
        acc, stats = program.chain_gemm(st, h.reshape(b * t, f).T, backend)       # (D, B*T)
        scratch[(key, part)] = st.extra["op"].finish(acc.T).reshape(b, t, -1)
        return h, acc + st.bias_q[:, None], stats
    nh, t, d = st.extra["io"] if part == "heads" else (layer.heads, h.shape[1], layer.features // layer.heads)
    if part == "heads":
        b = h.shape[0]
        q, k, v = (scratch.pop((key, n)).reshape(b, t, nh, d).transpose(0, 2, 1, 3).reshape(b * nh, t, d)
                   for n in "qkv")
        out, stats = backend.attention(program.attention, q, k, v)
        out = np.asarray(out, np.int64).reshape(b * nh, t, d)
        ctx = out.reshape(b, nh, t, d).transpose(0, 2, 1, 3).reshape(b * t, nh * d)
        scratch[(key, "ctx")] = requantize(ctx, st.multiplier, st.shift).astype(np.int64).reshape(b, t, -1)
        keep = {k_: v_ for k_, v_ in stats.items() if k_ in ("cycles", "beats", "sim_seconds", "head_cycles")}
        return h, out, keep
    ctx = scratch.pop((key, "ctx"))
    b = ctx.shape[0]
    acc, stats = program.chain_gemm(st, ctx.reshape(b * t, -1).T, backend)
    y = st.extra["op"].finish(acc.T).reshape(b, t, -1)
    return y, acc + st.bias_q[:, None], stats
