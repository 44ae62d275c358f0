"""A small CNN for sklearn digits, trained by plain numpy with a fixed seed, as a `sw_model.host.netdesc.Network`.

    8x8x1 -> Conv2d 3x3, 8 ch, pad 1 -> ReLU -> MaxPool 2 -> Conv2d 3x3, 16 ch, pad 1 -> ReLU -> MaxPool 2
          -> Flatten (64) -> Linear 10

Training: softmax cross-entropy, Adam, mini-batches of 128 over the 1437 training images (pixels / 16), He
initialisation from `np.random.default_rng(seed)`; the 1/16 input scaling is folded into the first conv so the
network takes raw pixels 0..16. Weights are cached in <cache_dir>/digits_cnn_seed{seed}.npz (the runners pass
hwgen's cache folder).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sw_model.host.netdesc import Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, im2col
from sw_model.networks.digits import load_digits

SHAPES = {"c1": (8, 1, 3, 3), "c2": (16, 8, 3, 3), "fc": (10, 64)}


def build_network(p: dict) -> Network:
    """The CNN as a netdesc Network from parameters c1, b1, c2, b2, fc, b3 (c1 takes raw pixels 0..16)."""
    return Network((1, 8, 8), [Conv2d(p["c1"], p["b1"], padding=1), ReLU(), MaxPool2d(2),
                               Conv2d(p["c2"], p["b2"], padding=1), ReLU(), MaxPool2d(2),
                               Flatten(), Linear(p["fc"], p["b3"])])


def _conv_fwd(x, w, b):
    cols, (oh, ow) = im2col(x, w.shape[2], w.shape[3], 1, 1)
    y = w.reshape(len(w), -1) @ cols + b[:, None]
    return y.reshape(len(w), len(x), oh, ow).transpose(1, 0, 2, 3), cols


def _conv_bwd(g, w, cols, x_shape):
    """Gradients of a stride-1 pad-1 conv: (dx, dw, db) from dy (B, Co, H, W)."""
    co = len(w)
    gy = g.transpose(1, 0, 2, 3).reshape(co, -1)
    dw = (gy @ cols.T).reshape(w.shape)
    dcols = w.reshape(co, -1).T @ gy                     # (C*9, B*H*W)
    b, c, h, wd = x_shape
    d = dcols.reshape(c, 3, 3, b, h, wd)
    dxp = np.zeros((b, c, h + 2, wd + 2))
    for dy in range(3):
        for dx in range(3):
            dxp[:, :, dy:dy + h, dx:dx + wd] += d[:, dy, dx].transpose(1, 0, 2, 3)
    return dxp[:, :, 1:-1, 1:-1], dw, gy.sum(axis=1)


def _pool_fwd(x):
    b, c, h, w = x.shape
    win = x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], arg


def _pool_bwd(g, arg, shape):
    b, c, h, w = shape
    win = np.zeros((b, c, h // 2, w // 2, 4))
    np.put_along_axis(win, arg[..., None], g[..., None], -1)
    return win.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def train_cnn(x, y, epochs: int = 15, lr: float = 0.02, batch: int = 128, seed: int = 0) -> dict:
    """Parameters (raw-pixel input) after `epochs` of Adam on mini-batches; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    p = {k: rng.normal(0, np.sqrt(2 / np.prod(s[1:])), s) for k, s in SHAPES.items()}
    p.update(b1=np.zeros(8), b2=np.zeros(16), b3=np.zeros(10))
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    xs = (np.asarray(x, np.float64) / 16.0).reshape(-1, 1, 8, 8)
    onehot = np.eye(10)[y]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = order[s:s + batch]
            x0 = xs[idx]
            z1, cols1 = _conv_fwd(x0, p["c1"], p["b1"])
            a1 = np.maximum(z1, 0)
            p1, arg1 = _pool_fwd(a1)
            z2, cols2 = _conv_fwd(p1, p["c2"], p["b2"])
            a2 = np.maximum(z2, 0)
            p2, arg2 = _pool_fwd(a2)
            f = p2.reshape(len(idx), -1)
            logits = f @ p["fc"].T + p["b3"]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            g = (e / e.sum(axis=1, keepdims=True) - onehot[idx]) / len(idx)
            grads = {"fc": g.T @ f, "b3": g.sum(axis=0)}
            gp2 = (g @ p["fc"]).reshape(p2.shape)
            gz2 = _pool_bwd(gp2, arg2, a2.shape) * (z2 > 0)
            gp1, grads["c2"], grads["b2"] = _conv_bwd(gz2, p["c2"], cols2, p1.shape)
            gz1 = _pool_bwd(gp1, arg1, a1.shape) * (z1 > 0)
            _, grads["c1"], grads["b1"] = _conv_bwd(gz1, p["c1"], cols1, x0.shape)
            t += 1
            for k, gk in grads.items():
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                p[k] -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    p["c1"] = p["c1"] / 16.0                 # fold the input scaling: the network takes raw pixels
    return p


def digits_cnn(seed: int = 0, cache_dir=None):
    """(network, (x_train, y_train, x_test, y_test)); trained once per seed, then read from `cache_dir` (no
    cache: trained on every call)."""
    data = load_digits(seed=seed)
    cache = Path(cache_dir) / f"digits_cnn_seed{seed}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        p = dict(np.load(cache))
    else:
        p = train_cnn(data[0], data[1], seed=seed)
        if cache is None:
            return build_network(p), data
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + f".tmp{np.random.default_rng().integers(1 << 30)}.npz")
        np.savez(tmp, **p)
        tmp.replace(cache)                   # atomic: parallel test workers never read half a file
    return build_network(p), data


# the fine-tuning after N:M pruning (masked Adam, seed 0): benchmarks/sparse_network.py and `hwgen run digits-cnn
# --sparsity` use it, docs/results/sparse_network.md reports what it gives
PRUNE_RECIPE = {"epochs": 40, "lr": 3e-3, "batch": 64}


def pruned_digits_cnn(sparsity: str, seed: int = 0, cache_dir=None):
    """(network, data) of the digits CNN magnitude-pruned to `sparsity` ("2:4", "1:4", ...) in every conv and
    linear layer, fine-tuned with PRUNE_RECIPE; its layers carry the sparsity marks the int8 compiler reads.
    Cached in <cache_dir>/digits_cnn_seed{seed}_{N}of{M}.npz."""
    from sw_model.host.netdesc.prune import finetune, nm_of, prune_network
    n, m = nm_of(sparsity)
    net, data = digits_cnn(seed, cache_dir)
    cache = Path(cache_dir) / f"digits_cnn_seed{seed}_{n}of{m}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        # the cached weights are N:M already: pruning them again only sets the marks
        return prune_network(build_network(dict(np.load(cache))), sparsity), data
    tuned = finetune(prune_network(net, sparsity), data[0], data[1], seed=0, **PRUNE_RECIPE)
    if cache is not None:
        conv1, conv2, fc = (tuned.layers[i] for i in (0, 3, 7))
        tmp = cache.with_name(cache.stem + f".tmp{np.random.default_rng().integers(1 << 30)}.npz")
        np.savez(tmp, c1=conv1.weight, b1=conv1.bias, c2=conv2.weight, b2=conv2.bias, fc=fc.weight, b3=fc.bias)
        tmp.replace(cache)
    return tuned, data
