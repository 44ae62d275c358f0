"""N:M magnitude pruning of a network's Linear and Conv2d weights, and a short masked fine-tuning in numpy.

    pruned = prune_network(net, "2:4")                     # every Linear / Conv2d; or {layer index: "1:4", ...}
    tuned = finetune(pruned, x_train, y_train, epochs=10)  # optional: recover accuracy, pruned zeros stay zero
    program = compile_int8(tuned, x_train, config)         # those layers run in 2:4 mode on the sparse chain

The groups of M run along each layer's GEMM K axis, the axis the chain skips along: a Linear's in_features, a
Conv2d's flattened (in_channels, kh, kw) (the rows of `im2col`). A K that is not a multiple of M is padded with
zeros at its end (the compiler pads the same way), so the last group may hold fewer than M real weights.
Magnitude pruning keeps the N largest |w| of every group (ties: the lower position), as
`sw_model.sparse.golden.prune_nm`. The pruned layers carry `sparsity` = the mode, which is what the int8 compiler
reads; the other layers are copied unchanged.
"""
from __future__ import annotations

import numpy as np

from sw_model.host.netdesc.layers import (
    SPARSITY_MODES,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Network,
    NetworkError,
    ReLU,
    im2col,
)
from sw_model.sparse.golden import parse_nm, prune_nm


def nm_of(sparsity) -> tuple[int, int]:
    """'2:4' -> (2, 4); only the N:M modes the sparse chain runs."""
    if sparsity not in SPARSITY_MODES:
        raise NetworkError(f"sparsity: got {sparsity!r}, allowed: {', '.join(repr(m) for m in SPARSITY_MODES)}")
    return parse_nm(sparsity)


def pad_k(w2d, m: int):
    """(R, K) -> (R, K rounded up to a multiple of m), zero columns at the end."""
    k = w2d.shape[1]
    return np.pad(w2d, ((0, 0), (0, -k % m)))


def nm_mask(w2d, sparsity) -> np.ndarray:
    """Boolean (R, K) mask of the weights magnitude pruning keeps: the N largest |w| of each group of M along K."""
    n, m = nm_of(sparsity)
    w2d = np.asarray(w2d, dtype=np.float64)
    return prune_nm(np.abs(pad_k(w2d, m)), n, m)[:, :w2d.shape[1]] != 0


def nm_violation(w2d, sparsity) -> str | None:
    """None when every group of M along K (zero-padded) has at most N nonzeros, else where the first one is not."""
    n, m = nm_of(sparsity)
    g = pad_k(np.asarray(w2d), m)
    nnz = np.count_nonzero(g.reshape(len(g), -1, m), axis=-1)
    bad = np.argwhere(nnz > n)
    if not len(bad):
        return None
    r, grp = (int(v) for v in bad[0])
    return (f"row {r} group {grp} (K positions {grp * m}..{grp * m + m - 1}) has {int(nnz[r, grp])} nonzero "
            f"weights, allowed at most N = {n}")


def _targets(net: Network, sparsity, layers) -> dict:
    engine = [i for i, layer in enumerate(net.layers) if isinstance(layer, (Linear, Conv2d))]
    if isinstance(sparsity, dict):
        chosen = dict(sparsity)
        if layers is not None:
            raise NetworkError("layers: got a list with a sparsity dict, allowed: one of the two")
    else:
        nm_of(sparsity)
        chosen = {i: sparsity for i in (engine if layers is None else layers)}
    for i, mode in chosen.items():
        if i not in engine:
            raise NetworkError(f"sparsity: layer {i!r} is not a Linear or Conv2d layer, allowed: {engine}")
        nm_of(mode)
    return chosen


def prune_network(net: Network, sparsity, layers=None) -> Network:
    """A copy of `net` whose chosen Linear / Conv2d layers are magnitude-pruned to N:M and marked with
    `sparsity`. `sparsity`: a mode for every Linear / Conv2d layer (or only `layers`, a list of indices), or a
    dict {layer index: mode}."""
    chosen = _targets(net, sparsity, layers)
    out = []
    for i, layer in enumerate(net.layers):
        if i in chosen:
            w2d = layer.weight.reshape(len(layer.weight), -1)
            w = np.where(nm_mask(w2d, chosen[i]), w2d, 0.0).reshape(layer.weight.shape)
            layer = _with_weight(layer, w, layer.bias, chosen[i])
        out.append(layer)
    return Network(net.input_shape, out)


def _with_weight(layer, weight, bias, sparsity):
    if isinstance(layer, Linear):
        return Linear(weight, bias, sparsity=sparsity)
    return Conv2d(weight, bias, stride=layer.stride, padding=layer.padding, sparsity=sparsity)


def sparsity_of(net: Network) -> dict:
    """{layer index: mode} of the layers marked sparse."""
    return {i: layer.sparsity for i, layer in enumerate(net.layers) if getattr(layer, "sparsity", None)}


# ------------------------------------------------------------------------------------------------------------
# Masked fine-tuning (float64 backprop for Linear, Conv2d, ReLU, MaxPool2d, Flatten)
# ------------------------------------------------------------------------------------------------------------

TRAINABLE = (Linear, Conv2d, ReLU, MaxPool2d, Flatten)


def _col2im(dcols, x_shape, kh, kw, stride, padding):
    """Adjoint of `im2col`: scatter-add the patch gradients back onto the (padded) input."""
    b, c, h, w = x_shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    d = dcols.reshape(c, kh * kw, b, oh, ow)
    dx = np.zeros((b, c, h + 2 * padding, w + 2 * padding))
    for j in range(kh * kw):
        dy, dxo = divmod(j, kw)
        dx[:, :, dy:dy + stride * (oh - 1) + 1:stride, dxo:dxo + stride * (ow - 1) + 1:stride] += \
            d[:, j].transpose(1, 0, 2, 3)
    return dx[:, :, padding:padding + h, padding:padding + w]


def _forward(net, params, x):
    caches, h = [], x
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Linear):
            w, b = params[i]
            caches.append(h)
            h = h @ w.T + b
        elif isinstance(layer, Conv2d):
            w, b = params[i]
            co, _, kh, kw = w.shape
            cols, (oh, ow) = im2col(h, kh, kw, layer.stride, layer.padding)
            caches.append((h.shape, cols))
            h = (w.reshape(co, -1) @ cols + b[:, None]).reshape(co, len(h), oh, ow).transpose(1, 0, 2, 3)
        elif isinstance(layer, ReLU):
            caches.append(h > 0)
            h = np.maximum(h, 0)
        elif isinstance(layer, MaxPool2d):
            win = layer.windows(h)
            arg = win.argmax(axis=-1)
            caches.append((h.shape, arg))
            h = np.take_along_axis(win, arg[..., None], -1)[..., 0]
        else:                                            # Flatten
            caches.append(h.shape)
            h = h.reshape(len(h), -1)
    return h, caches


def _backward(net, params, caches, g):
    grads = {}
    for i in reversed(range(len(net.layers))):
        layer, cache = net.layers[i], caches[i]
        if isinstance(layer, Linear):
            w, _ = params[i]
            grads[i] = (g.T @ cache, g.sum(axis=0))
            g = g @ w
        elif isinstance(layer, Conv2d):
            w, _ = params[i]
            x_shape, cols = cache
            co, _, kh, kw = w.shape
            gy = g.transpose(1, 0, 2, 3).reshape(co, -1)
            grads[i] = ((gy @ cols.T).reshape(w.shape), gy.sum(axis=1))
            if i:
                g = _col2im(w.reshape(co, -1).T @ gy, x_shape, kh, kw, layer.stride, layer.padding)
        elif isinstance(layer, ReLU):
            g = g * cache
        elif isinstance(layer, MaxPool2d):
            shape, arg = cache
            g = _pool_backward(layer, g, arg, shape)
        else:
            g = g.reshape(cache)
    return grads


def _pool_backward(layer, g, arg, shape):
    k, st = layer.kernel, layer.stride
    oh, ow = g.shape[2], g.shape[3]
    dx = np.zeros(shape)
    for j in range(k * k):
        dy, dxo = divmod(j, k)
        dx[:, :, dy:dy + st * (oh - 1) + 1:st, dxo:dxo + st * (ow - 1) + 1:st] += g * (arg == j)
    return dx


def finetune(net: Network, x, y, epochs: int = 10, lr: float = 1e-3, batch: int = 64, seed: int = 0) -> Network:
    """Softmax cross-entropy fine-tuning (Adam, mini-batches, fixed seed) of every Linear / Conv2d layer; the
    weights of layers marked sparse keep their N:M zero pattern (the gradient is masked and the weights are
    re-masked after every step). Supports networks of Linear, Conv2d, ReLU, MaxPool2d and Flatten layers whose
    output is the logits; returns a new Network (same sparsity marks)."""
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, TRAINABLE):
            raise NetworkError(f"layer {i} ({type(layer).__name__}): finetune supports "
                               f"{', '.join(c.__name__ for c in TRAINABLE)}")
    for name, v in (("epochs", epochs), ("batch", batch)):
        if not isinstance(v, int) or v < 1:
            raise NetworkError(f"finetune: {name}: got {v!r}, allowed: a positive integer")
    x = np.asarray(x, np.float64).reshape((-1,) + net.input_shape)
    y = np.asarray(y)
    classes = net.shapes[-1][-1]
    if y.shape != (len(x),) or y.min() < 0 or y.max() >= classes:
        raise NetworkError(f"finetune: y: got shape {y.shape} with labels {y.min()}..{y.max()}, allowed: one label "
                           f"0..{classes - 1} per sample ({len(x)})")
    params = {i: [layer.weight.copy(), layer.bias.copy()] for i, layer in enumerate(net.layers)
              if isinstance(layer, (Linear, Conv2d))}
    masks = {i: (layer.weight != 0).astype(np.float64) if getattr(layer, "sparsity", None) else 1.0
             for i, layer in enumerate(net.layers) if i in params}
    m = {i: [np.zeros_like(p) for p in ps] for i, ps in params.items()}
    v = {i: [np.zeros_like(p) for p in ps] for i, ps in params.items()}
    rng = np.random.default_rng(seed)
    onehot = np.eye(classes)[y]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = order[s:s + batch]
            logits, caches = _forward(net, params, x[idx])
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            grads = _backward(net, params, caches, (p - onehot[idx]) / len(idx))
            t += 1
            for i, (gw, gb) in grads.items():
                for j, gk in enumerate((gw * masks[i], gb)):
                    m[i][j] = 0.9 * m[i][j] + 0.1 * gk
                    v[i][j] = 0.999 * v[i][j] + 0.001 * gk * gk
                    params[i][j] -= lr * (m[i][j] / (1 - 0.9 ** t)) / (np.sqrt(v[i][j] / (1 - 0.999 ** t)) + 1e-8)
                params[i][0] *= masks[i]                  # Adam's momentum must not regrow a pruned weight
    layers = [_with_weight(layer, *params[i], layer.sparsity) if i in params else layer
              for i, layer in enumerate(net.layers)]
    return Network(net.input_shape, layers)


def accuracy(net: Network, x, y) -> float:
    """Top-1 accuracy of the float64 network."""
    return float(np.mean(net.forward(x).argmax(axis=1) == np.asarray(y)))
