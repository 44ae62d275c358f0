"""A small digits CNN with depthwise convolutions and average pooling, trained with numpy and written as an int8
.tflite file with uint8 input (the model the importer's tests compare with the LiteRT interpreter).

    uint8 pixels 0..16 (1, 8, 8, 1), scale 1/16
    -> QUANTIZE to int8 (scale 1/255, zero point -128)
    -> CONV_2D 3x3, 8 ch, SAME, ReLU                         8x8x8
    -> DEPTHWISE_CONV_2D 3x3, multiplier 2, stride 2, SAME, ReLU6   4x4x16
    -> CONV_2D 1x1, 16 ch, ReLU                               4x4x16
    -> DEPTHWISE_CONV_2D 3x3, dilation 2, SAME, ReLU           4x4x16
    -> AVERAGE_POOL_2D 2x2 stride 2                            2x2x16
    -> RESHAPE (1, 64) -> FULLY_CONNECTED 10 (int8 logits, output 0) -> SOFTMAX (int8, output 1)

Training: float64 numpy, softmax cross-entropy, Adam, mini-batches of 64 over the 1437 training images of
`sw_model.networks.digits.load_digits` (seed 0 split), He initialisation from `np.random.default_rng(seed)`.
Post-training quantization as TFLite's converter does it: per-output-channel symmetric int8 weights
(max|w| / 127), int32 biases round(b / (s_in s_w)), asymmetric int8 activations from the min/max over the
training set (range widened to include 0). Regenerate the committed file with
`python -m sw_model.importers.tflite.models.digits_dwcnn` (writes digits_dwcnn.tflite beside this script;
`--export-test DIR` also writes the test split as DIR/digits_test_x.npy (uint8, (360, 8, 8, 1)) and
DIR/digits_test_y.npy).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sw_model.importers.tflite.kernels import same_or_valid, windows
from sw_model.importers.tflite.writer import ModelBuilder
from sw_model.networks.digits import load_digits

MODEL_PATH = Path(__file__).with_name("digits_dwcnn.tflite")
# (kind, kernel, channels out, stride, dilation, activation): the layers before the pooling
LAYERS = [("conv", 3, 8, 1, 1, "relu"), ("dw", 3, 16, 2, 1, "relu6"), ("conv", 1, 16, 1, 1, "relu"),
          ("dw", 3, 16, 1, 2, "relu")]


def load_test_set():
    """The 360 test images as uint8 model inputs (360, 8, 8, 1) and their labels."""
    _, _, x, y = load_digits()
    return x.reshape(-1, 8, 8, 1).astype(np.uint8), y


def _unwindow(g, shape, k, stride, dilation):
    """Gradient of `windows` (SAME padding): scatter-add the window gradients back onto the input."""
    n, h, w, c = shape
    oh, ph = same_or_valid(h, k, stride, dilation, 0)
    ow, pw = same_or_valid(w, k, stride, dilation, 0)
    need_h, need_w = (oh - 1) * stride + (k - 1) * dilation + 1, (ow - 1) * stride + (k - 1) * dilation + 1
    dxp = np.zeros((n, max(need_h, ph + h), max(need_w, pw + w), c))
    for i, (ky, kx) in enumerate((a, b) for a in range(k) for b in range(k)):
        dxp[:, ky * dilation:ky * dilation + (oh - 1) * stride + 1:stride,
            kx * dilation:kx * dilation + (ow - 1) * stride + 1:stride] += g[:, :, :, i]
    return dxp[:, ph:ph + h, pw:pw + w]


def init(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    p, c_in = {}, 1
    for i, (kind, k, c_out, _, _, _) in enumerate(LAYERS):
        fan_in = k * k * (c_in if kind == "conv" else 1)
        shape = (c_out, k * k * c_in) if kind == "conv" else (k * k, c_out)
        p[f"w{i}"] = rng.normal(0, np.sqrt(2 / fan_in), shape)
        p[f"b{i}"] = np.zeros(c_out)
        c_in = c_out
    p["fc"] = rng.normal(0, np.sqrt(1 / 64), (10, 64))
    p["bfc"] = np.zeros(10)
    return p


def forward(p, x, keep=False):
    """Float logits of images x (B, 8, 8, 1) in [0, 1]; with keep, also every activation and cache."""
    acts, caches = [x], []
    h = x
    for i, (kind, k, c_out, s, d, act) in enumerate(LAYERS):
        win = windows(h, k, k, s, s, d, d, 0, 0.0)                     # (B, OH, OW, k*k, C)
        if kind == "conv":
            b, oh, ow = win.shape[:3]
            z = win.reshape(b * oh * ow, -1) @ p[f"w{i}"].T + p[f"b{i}"]
            z = z.reshape(b, oh, ow, c_out)
        else:
            rep = win[..., np.arange(c_out) // (c_out // h.shape[3])]
            z = np.einsum("bhwkc,kc->bhwc", rep, p[f"w{i}"]) + p[f"b{i}"]
        out = np.clip(z, 0, 6 if act == "relu6" else np.inf)
        caches.append((win, z, h.shape))
        acts.append(out)
        h = out
    b = len(h)
    pooled = h.reshape(b, 2, 2, 2, 2, 16).mean(axis=(2, 4))
    flat = pooled.reshape(b, 64)
    logits = flat @ p["fc"].T + p["bfc"]
    acts += [pooled, logits]
    return (logits, acts, caches) if keep else logits


def backward(p, grad_logits, acts, caches):
    g = {}
    flat = acts[-2].reshape(len(grad_logits), 64)
    g["fc"], g["bfc"] = grad_logits.T @ flat, grad_logits.sum(axis=0)
    gh = (grad_logits @ p["fc"]).reshape(-1, 2, 2, 16)
    gh = np.repeat(np.repeat(gh, 2, axis=1), 2, axis=2) / 4.0
    for i in reversed(range(len(LAYERS))):
        kind, k, c_out, s, d, act = LAYERS[i]
        win, z, in_shape = caches[i]
        gz = gh * ((z > 0) & (z < (6 if act == "relu6" else np.inf)))
        if kind == "conv":
            b, oh, ow = win.shape[:3]
            gz2 = gz.reshape(-1, c_out)
            g[f"w{i}"], g[f"b{i}"] = gz2.T @ win.reshape(b * oh * ow, -1), gz2.sum(axis=0)
            gwin = (gz2 @ p[f"w{i}"]).reshape(win.shape)
        else:
            m = c_out // in_shape[3]
            rep = win[..., np.arange(c_out) // m]
            g[f"w{i}"], g[f"b{i}"] = np.einsum("bhwkc,bhwc->kc", rep, gz), gz.sum(axis=(0, 1, 2))
            grep = np.einsum("bhwc,kc->bhwkc", gz, p[f"w{i}"])
            gwin = grep.reshape(grep.shape[:4] + (in_shape[3], m)).sum(axis=-1)
        if i:
            gh = _unwindow(gwin, in_shape, k, s, d)
    return g


def train(seed: int = 0, epochs: int = 40, batch: int = 64, lr: float = 0.01) -> dict:
    x_train, y_train, _, _ = load_digits()
    x = x_train.reshape(-1, 8, 8, 1) / 16.0
    p = init(seed)
    rng = np.random.default_rng(seed + 1)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            logits, acts, caches = forward(p, x[idx], keep=True)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob = e / e.sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), y_train[idx]] -= 1
            grads = backward(p, prob / len(idx), acts, caches)
            t += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    return p


def _act_quant(a) -> tuple[float, int]:
    lo, hi = min(0.0, float(np.min(a))), max(0.0, float(np.max(a)))
    scale = float(np.float32((hi - lo) / 255.0)) or 1.0
    return scale, int(np.clip(np.round(-128 - lo / scale), -128, 127))


def _weight_quant(w2d):
    """Per-row symmetric int8: (codes, float32 scales)."""
    s = np.maximum(np.abs(w2d).max(axis=1), 1e-8) / 127.0
    s = s.astype(np.float32)
    return np.clip(np.round(w2d / s[:, None].astype(np.float64)), -127, 127).astype(np.int64), s


def to_tflite(p) -> bytes:
    """The int8 .tflite of trained parameters, activation ranges from the training images."""
    x_train, _, _, _ = load_digits()
    _, acts, _ = forward(p, x_train.reshape(-1, 8, 8, 1) / 16.0, keep=True)
    b = ModelBuilder()
    t_in = b.tensor("pixels", (1, 8, 8, 1), "UINT8", scale=1 / 16, zero_point=0)
    s_prev, zp_prev = float(np.float32(1 / 255)), -128
    h = b.tensor("pixels_int8", (1, 8, 8, 1), "INT8", scale=s_prev, zero_point=zp_prev)
    b.op("QUANTIZE", [t_in], [h])
    size, c_in = 8, 1
    for i, (kind, k, c_out, s, d, act) in enumerate(LAYERS):
        size = -(-size // s)
        scale, zp = _act_quant(acts[i + 1])
        w = p[f"w{i}"]
        if kind == "conv":
            w_q, s_w = _weight_quant(w)
            w_t = b.tensor(f"w{i}", (c_out, k, k, c_in), "INT8", data=w_q.reshape(c_out, k, k, c_in),
                           scale=s_w, zero_point=np.zeros(c_out), quantized_dimension=0)
        else:
            w_q, s_w = _weight_quant(w.T)                                       # per output channel
            w_t = b.tensor(f"w{i}", (1, k, k, c_out), "INT8", data=w_q.T.reshape(1, k, k, c_out),
                           scale=s_w, zero_point=np.zeros(c_out), quantized_dimension=3)
        s_b = (np.float64(np.float32(s_prev)) * s_w.astype(np.float64))
        bias = np.round(p[f"b{i}"] / s_b).astype(np.int64)
        b_t = b.tensor(f"b{i}", (c_out,), "INT32", data=bias, scale=s_b, zero_point=np.zeros(c_out))
        y = b.tensor(f"act{i}", (1, size, size, c_out), "INT8", scale=scale, zero_point=zp)
        fused = {"relu": 1, "relu6": 3}[act]
        common = dict(Padding=0, StrideH=s, StrideW=s, DilationHFactor=d, DilationWFactor=d,
                      FusedActivationFunction=fused)
        if kind == "conv":
            b.op("CONV_2D", [h, w_t, b_t], [y], **common)
        else:
            b.op("DEPTHWISE_CONV_2D", [h, w_t, b_t], [y], DepthMultiplier=c_out // c_in, **common)
        h, s_prev, zp_prev, c_in = y, scale, zp, c_out
    pooled = b.tensor("pooled", (1, 2, 2, 16), "INT8", scale=s_prev, zero_point=zp_prev)
    b.op("AVERAGE_POOL_2D", [h], [pooled], Padding=1, StrideH=2, StrideW=2, FilterHeight=2, FilterWidth=2,
         FusedActivationFunction=0)
    shape = b.tensor("shape", (2,), "INT32", data=np.array([1, 64]))
    flat = b.tensor("flat", (1, 64), "INT8", scale=s_prev, zero_point=zp_prev)
    b.op("RESHAPE", [pooled, shape], [flat])
    w_q, s_w = _weight_quant(p["fc"])
    w_t = b.tensor("fc", (10, 64), "INT8", data=w_q, scale=s_w, zero_point=np.zeros(10))
    s_b = np.float64(np.float32(s_prev)) * s_w.astype(np.float64)
    b_t = b.tensor("bfc", (10,), "INT32", data=np.round(p["bfc"] / s_b), scale=s_b, zero_point=np.zeros(10))
    scale, zp = _act_quant(acts[-1])
    logits = b.tensor("logits", (1, 10), "INT8", scale=scale, zero_point=zp)
    b.op("FULLY_CONNECTED", [flat, w_t, b_t], [logits], FusedActivationFunction=0)
    probs = b.tensor("probs", (1, 10), "INT8", scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [logits], [probs], Beta=1.0)
    return b.build(inputs=[t_in], outputs=[logits, probs])


def main(argv=None):
    ap = argparse.ArgumentParser(description="train the digits depthwise CNN and write it as int8 .tflite")
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export-test", type=Path, default=None, metavar="DIR",
                    help="also write DIR/digits_test_x.npy (uint8) and DIR/digits_test_y.npy")
    args = ap.parse_args(argv)
    p = train(args.seed)
    _, _, x_test, y_test = load_digits()
    acc = float(np.mean(forward(p, x_test.reshape(-1, 8, 8, 1) / 16.0).argmax(axis=1) == y_test))
    args.out.write_bytes(to_tflite(p))
    print(f"float64 test accuracy {acc:.4f}; wrote {args.out}")
    if args.export_test:
        args.export_test.mkdir(parents=True, exist_ok=True)
        x, y = load_test_set()
        np.save(args.export_test / "digits_test_x.npy", x)
        np.save(args.export_test / "digits_test_y.npy", y)


if __name__ == "__main__":
    main()
