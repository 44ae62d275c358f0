"""One all-MiniLM-L6-v2 encoder layer on the engines: int8 linear layers on the sparse chain, heads on the
attention array, the glue on the host.

Data flow of layer j (T tokens; "engine" = an integer op some backend runs, "host" = float64 numpy):
  host    x_q = clamp(round(x / s_x))                                   int8, per-tensor scale s_x
  engine  query/key/value: acc = W_q x_q (sparse chain, dense int8 gemm) ; host: + int32 bias, TFLite
          requantization (sw_model.numerics.requant) straight into the attention array's integer inputs: per output
          channel the scale of its head (Q: sq_h, K: sk_h, V: sv_h), so no float step sits between them
  engine  head0..head11: the attention array (sw_model.attention.golden, bit-exact) on (Q_h, K_h, V_h); the softmax
          scale 1/sqrt(32) and log2(e) live in sq_h * sk_h = scale * log2(e) * 2^(score_shift + logit_frac)
  host    ctx_q = requantize(out_h) to int8 (per-head multiplier 1 / (sv_h 2^out_frac s_ctx))   (integer)
  engine  attn_out: acc = W_q ctx_q ; host: + bias, dequantize to float, residual add, LayerNorm -> h1
  host    h1_q = clamp(round(h1 / s_h1))
  engine  ffn_in: acc = W_q h1_q ; host: + bias, dequantize, GELU (erf), quantize -> g_q
  engine  ffn_out: acc = W_q g_q ; host: + bias, dequantize, residual add with h1, LayerNorm -> layer output
Weights: symmetric per-output-channel int8 (max |w_j| -> 127), int32 bias round(b / (s_in s_w[j])), exactly as
sw_model.host.network_int8. Activation scales (s_x, s_ctx, s_h1, s_g, the per-head maxima) are calibrated on the float
model over CALIBRATION (fixed sentences); values beyond them saturate, as in TFLite.
Q/K split: the array's score_shift is hardware, so sq_h * sk_h is fixed per head; the driver balances the two
(sq_h max|Q_h| = sk_h max|K_h|) and both saturate only if even the balanced split overflows int8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sw_model.attention import golden as A
from sw_model.host.network_int8 import LinearOp, MiniLMGoldenBackend, quantized_multipliers
from sw_model.networks.minilm import HEAD_DIM, HEADS, REFERENCE_PAIR, MiniLM, gelu, layer_norm
from sw_model.networks.minilm_qkv import SENTENCE
from sw_model.numerics.requant import requantize

CALIBRATION = (SENTENCE, *REFERENCE_PAIR, "The quick brown fox jumps over the lazy dog.",
               "A woman is playing the violin.", "Two dogs run through a field of tall grass.",
               "The stock market fell sharply on Monday.", "How do I bake bread at home?")
LINEAR_OPS = ("query", "key", "value")
TAIL_OPS = ("attn_out", "ffn_in", "ffn_out")
OPS = LINEAR_OPS + tuple(f"head{h}" for h in range(HEADS)) + TAIL_OPS
TILE_BEATS = 1 << 16        # per engine call: one bulk testbench memory bucket, so one Verilator build serves all
HOST_OPS = ("input quantization (float -> int8); int32 bias add and TFLite requantization of Q/K/V into the "
            "attention array's per-head integer formats; integer requantization of the head outputs to int8; "
            "bias add + dequantization (float64) of attn_out/ffn_in/ffn_out; residual adds, LayerNorm, GELU (erf) "
            "and re-quantization to int8 in float64")


def _engine(op: str) -> str:
    return "attention" if op.startswith("head") else "sparse_chain"


def _quantize(x, scale) -> np.ndarray:
    return np.clip(np.round(np.asarray(x) / scale), -128, 127).astype(np.int64)


@dataclass
class Int8EncoderLayer:
    """Layer `index` compiled for the engines (see the module docstring)."""
    index: int
    attention: A.AttentionConfig
    s_x: float
    linear: dict = field(default_factory=dict)          # name -> LinearOp
    ctx_multiplier: np.ndarray | None = None             # per channel (384,)
    ctx_shift: np.ndarray | None = None
    s_ctx: float = 1.0
    s_h1: float = 1.0
    s_g: float = 1.0
    ln: dict = field(default_factory=dict)               # LayerNorm name -> (gamma, beta)
    stats: dict = field(default_factory=dict)            # calibration maxima, Q/K levels per head


def calibrate(model: MiniLM, j: int, sentences=CALIBRATION) -> dict:
    """Max |activation| of layer j's tensors (per head for q, k, v, ctx) over the float model on `sentences`."""
    mx: dict = {}
    for s in sentences:
        x = model.embeddings(model.tokens(s))
        for i in range(j):
            x = model.layer(i, x)
        trace: dict = {}
        model.layer(j, x, trace)
        for name, a in trace.items():
            per = np.abs(a.reshape(len(a), HEADS, HEAD_DIM)).max(axis=(0, 2)) if name in ("q", "k", "v", "ctx") \
                else np.abs(a).max()
            mx[name] = np.maximum(mx.get(name, 0.0), per)
    return mx


def compile_layer(model: MiniLM, att: A.AttentionConfig, j: int = 0, sentences=CALIBRATION) -> Int8EncoderLayer:
    """Quantize encoder layer j for the engines; `att` is the attention array's config (head_dim 32, 8-bit)."""
    if getattr(att, "unit", None) != "attention":
        raise ValueError(f"attention config: got {type(att).__name__}, allowed: an attention-array config")
    if att.head_dim != HEAD_DIM or att.data_bits != 8:
        raise ValueError(f"attention config: got head_dim {att.head_dim}, data_bits {att.data_bits}; allowed: "
                         f"head_dim {HEAD_DIM} (MiniLM's heads) and data_bits 8 (int8 Q/K/V)")
    if att.causal:
        raise ValueError("attention config: got causal, allowed: a non-causal config (BERT attends both ways)")
    if not 0 <= j < 6:
        raise ValueError(f"layer: got {j}, allowed: 0..5")
    mx = calibrate(model, j, sentences)
    p = f"encoder.layer.{j}"
    w = model.w
    lay = Int8EncoderLayer(j, att, s_x=mx["x"] / 127.0)
    # sq * sk fixed by the hardware's shift; balance the two so both use the same fraction of int8
    prod = math.log2(math.e) / math.sqrt(HEAD_DIM) * 2.0 ** (att.score_shift + att.logit_frac)
    levels = np.sqrt(prod * mx["q"] * mx["k"])                 # = sq max|Q| = sk max|K| per head
    sq, sk, sv = levels / mx["q"], levels / mx["k"], 127.0 / mx["v"]
    lay.stats = {"q_k_levels": levels.round(1).tolist(), "q_k_saturating_heads": int(np.sum(levels > 127.5))}
    for name, scale in zip(LINEAR_OPS, (sq, sk, sv)):
        pre = f"{p}.attention.self.{name}"
        lay.linear[name] = LinearOp.make(name, w[f"{pre}.weight"], w[f"{pre}.bias"], lay.s_x,
                                         np.repeat(scale, HEAD_DIM))
    lay.s_ctx = float(mx["ctx"].max()) / 127.0
    lay.ctx_multiplier, lay.ctx_shift = quantized_multipliers(np.repeat(1.0 / (sv * 2.0 ** att.out_frac * lay.s_ctx),
                                                               HEAD_DIM))
    lay.s_h1, lay.s_g = mx["h1"] / 127.0, mx["gelu"] / 127.0
    for name, key, s_in in (("attn_out", "attention.output.dense", lay.s_ctx),
                            ("ffn_in", "intermediate.dense", lay.s_h1), ("ffn_out", "output.dense", lay.s_g)):
        lay.linear[name] = LinearOp.make(name, w[f"{p}.{key}.weight"], w[f"{p}.{key}.bias"], s_in)
    for name in ("attention.output.LayerNorm", "output.LayerNorm"):
        lay.ln[name] = (w[f"{p}.{name}.weight"], w[f"{p}.{name}.bias"])
    return lay


def _check_chain(config):
    if getattr(config, "unit", None) != "sparse_chain":
        raise ValueError(f"linear engine config: got {type(config).__name__}, allowed: a sparse_chain config")
    if config.weight_bits != 8 or getattr(config, "packed", False):
        raise ValueError(f"linear engine config: got weight_bits {config.weight_bits}, packed "
                         f"{getattr(config, 'packed', False)}; allowed: an unpacked chain with 8-bit weights")


def tiled_gemm(backend, config, w_q, x_q, tile_beats: int = TILE_BEATS):
    """W_q (R, K) x x_q (K, B) on `backend` in row tiles of at most `tile_beats` chain beats (R*ceil(K/stages)*B
    beats in all); returns the (R, B) products and summed stats (cycles, model_cycles, beats, sim_seconds,
    calls; None where the backend gives none)."""
    per_row = -(-w_q.shape[1] // config.stages) * x_q.shape[1]
    rows = max(1, tile_beats // per_row)
    parts, stats = [], {"cycles": None, "model_cycles": None, "beats": 0, "sim_seconds": 0.0, "calls": 0}
    for r0 in range(0, w_q.shape[0], rows):
        acc, st = backend.gemm(config, w_q[r0:r0 + rows], x_q)
        parts.append(acc)
        for key in ("cycles", "model_cycles"):
            if st.get(key) is not None:
                stats[key] = (stats[key] or 0) + st[key]
        stats["beats"] += min(rows, w_q.shape[0] - r0) * per_row
        stats["sim_seconds"] += st.get("sim_seconds", 0.0)
        stats["calls"] += 1
    return np.concatenate(parts, axis=0), stats


def run_layer(lay: Int8EncoderLayer, chain, x, backends: dict | None = None, progress=None):
    """Layer output (T, 384) float64 and one record per engine op (OPS order): layer (op name), engine,
    backend, shape, acc (the engine's integer outputs, before the host's bias), cycles, beats, sim_seconds,
    calls (engine calls: gemms are tiled, all heads on one backend share one call).
    `backends`: op name -> backend (default golden); heads on the same backend run in one call."""
    _check_chain(chain)
    golden = MiniLMGoldenBackend()
    backends = {op: (backends or {}).get(op, golden) for op in OPS}
    x = np.asarray(x, np.float64)
    records = {}

    def note(op, shape, acc, stats):
        records[op] = {"layer": op, "engine": _engine(op), "backend": backends[op].name, "shape": list(shape),
                       "acc": acc, "cycles": stats.get("cycles"), "model_cycles": stats.get("model_cycles"),
                       "beats": stats.get("beats", 0),
                       "sim_seconds": stats.get("sim_seconds", 0.0), "calls": stats.get("calls", 1)}
        if progress:
            progress(records[op])

    def linear(name, a_q):
        op = lay.linear[name]
        acc, st = tiled_gemm(backends[name], chain, op.w_q, a_q.T)
        note(name, op.shape, acc.T, st)
        return op.finish(acc.T)

    x_q = _quantize(x, lay.s_x)
    qkv = [linear(n, x_q).reshape(len(x), HEADS, HEAD_DIM).transpose(1, 0, 2) for n in LINEAR_OPS]
    out = np.zeros((HEADS, len(x), HEAD_DIM), np.int64)
    for be in dict.fromkeys(backends[f"head{h}"] for h in range(HEADS)):     # distinct backends, in order
        hs = [h for h in range(HEADS) if backends[f"head{h}"] is be]
        res, st = be.attention(lay.attention, *(a[hs] for a in qkv))
        out[hs] = res
        cyc = st.get("head_cycles") or [None] * len(hs)
        total = sum(c or 0 for c in cyc)
        for i, h in enumerate(hs):
            share = (cyc[i] or 0) / total if total else 0.0
            note(f"head{h}", (len(x), HEAD_DIM), res[i],
                 {"cycles": cyc[i], "beats": (st.get("head_beats") or [0] * len(hs))[i],
                  "sim_seconds": st.get("sim_seconds", 0.0) * share})
    ctx = out.transpose(1, 0, 2).reshape(len(x), HEADS * HEAD_DIM)
    ctx_q = requantize(ctx, lay.ctx_multiplier, lay.ctx_shift).astype(np.int64)
    h1 = layer_norm(x + linear("attn_out", ctx_q), *lay.ln["attention.output.LayerNorm"])
    g_q = _quantize(gelu(linear("ffn_in", _quantize(h1, lay.s_h1))), lay.s_g)
    y = layer_norm(h1 + linear("ffn_out", g_q), *lay.ln["output.LayerNorm"])
    return y, [records[op] for op in OPS]


def layer_errors(y, ref) -> dict:
    """Per-token cosine similarity and max abs error of the int8 layer's output against the float64 layer."""
    cos = (y * ref).sum(-1) / (np.linalg.norm(y, axis=-1) * np.linalg.norm(ref, axis=-1))
    return {"cosine_per_token": [round(float(c), 6) for c in cos], "cosine_min": float(cos.min()),
            "cosine_mean": float(cos.mean()), "max_abs_err": float(np.abs(y - ref).max()),
            "max_abs_ref": float(np.abs(ref).max())}
