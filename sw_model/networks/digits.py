"""sklearn's digits data set (1797 real 8x8 handwritten digits, pixels 0..16) and a numpy MLP trained on it.

The data is read with numpy from the CSV that ships inside scikit-learn (no hub, no download). Training is plain
numpy (softmax cross-entropy, Adam, full-batch) with a fixed seed, so every number derived from it is
reproducible.
"""
from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def digits_csv() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the digits data ships inside scikit-learn: run `pip install scikit-learn`")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def load_digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test): integer pixels 0..16 (n, 64) and labels; a seeded permutation split
    1437 train / 360 test (the split of shared/DATA.md)."""
    with gzip.open(digits_csv(), "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x, y = raw[:, :64], raw[:, 64]
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:1437], order[1437:]
    return x[train], y[train], x[test], y[test]


@dataclass
class MLPWeights:
    """Float weights of an MLP with ReLU between layers; weights[k] has shape (out, in)."""
    weights: list
    biases: list

    def forward(self, x):
        h = np.asarray(x, dtype=np.float64)
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T + b
            if k < len(self.weights) - 1:
                h = np.maximum(h, 0)
        return h


def train_mlp(x, y, sizes=(64, 32, 10), epochs: int = 300, lr: float = 0.01, seed: int = 0) -> MLPWeights:
    """Full-batch Adam on softmax cross-entropy; inputs scaled by 1/16 inside (the scale is folded into layer 1)."""
    rng = np.random.default_rng(seed)
    ws = [rng.normal(0, np.sqrt(2 / i), (o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o) for o in sizes[1:]]
    params = ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    xs = x / 16.0
    onehot = np.eye(sizes[-1])[y]
    for step in range(1, epochs + 1):
        acts = [xs]
        for k in range(len(ws)):
            z = acts[-1] @ ws[k].T + bs[k]
            acts.append(np.maximum(z, 0) if k < len(ws) - 1 else z)
        logits = acts[-1]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(y)
        gw, gb = [None] * len(ws), [None] * len(ws)
        for k in reversed(range(len(ws))):
            gw[k] = grad.T @ acts[k]
            gb[k] = grad.sum(axis=0)
            if k:
                grad = (grad @ ws[k]) * (acts[k] > 0)
        for i, g in enumerate(gw + gb):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] -= lr * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)
    ws, bs = params[:len(ws)], params[len(ws):]
    ws[0] = ws[0] / 16.0                     # fold the input scaling so forward() takes raw pixels
    return MLPWeights(ws, bs)
