"""ANN -> SNN conversion of the digits MLP (64-32-10, ReLU) for two `snn_core` layers (rate coding).

- Data: sklearn's digits (1797 real 8x8 images, pixels 0..16), read with numpy from the CSV file that ships inside
  scikit-learn (no sklearn import needed); a fixed permutation splits 1437 train / 360 test.
- ANN: numpy MLP trained with Adam from a fixed seed on x = pixel / 16.
- Conversion (data-based normalisation, reset by subtraction): lambda_l = the 99.9th percentile of layer l's
  ReLU activations on the training set; layer l becomes an integrate-and-fire core (no leak, `>=`, soft reset) with
  one extra bias axon that spikes every timestep; weights (W_l * lambda_{l-1} / lambda_l and b_l / lambda_l, in
  units of the threshold) are quantized to `weight_bits` with the threshold theta_l = round(1 / scale_l).
- Encoding: each pixel drives an integrate-and-fire encoder (acc += pixel; spike and acc -= 16 when acc >= 16), a
  deterministic rate code with rate pixel / 16. Class = the output neuron with most spikes (ties: lowest index).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.host.netdesc import Network, Spiking
from sw_model.networks.digits import load_digits  # noqa: F401  (re-exported: the SNN code's data entry point)
from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig
from sw_model.snn.convert import quantize_layer, with_bias  # noqa: F401  (with_bias: used by the runners)


@dataclass
class MLP:
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def hidden(self, x):
        return np.maximum(x @ self.w1 + self.b1, 0)

    def logits(self, x):
        return self.hidden(x) @ self.w2 + self.b2

    def accuracy(self, x, y):
        return float((self.logits(x).argmax(1) == y).mean())


def train_mlp(x, y, hidden=32, epochs=60, seed=0, lr=3e-3) -> MLP:
    """Adam on softmax cross-entropy, minibatches of 32, inputs pixel / 16."""
    rng = np.random.default_rng(seed)
    x = x / 16.0
    p = [rng.normal(0, np.sqrt(2 / 64), (64, hidden)), np.zeros(hidden),
         rng.normal(0, np.sqrt(2 / hidden), (hidden, 10)), np.zeros(10)]
    m = [np.zeros_like(q) for q in p]
    v = [np.zeros_like(q) for q in p]
    step = 0
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(y)), len(y) // 32):
            xb, yb = x[idx], y[idx]
            z1 = xb @ p[0] + p[1]
            h = np.maximum(z1, 0)
            z2 = h @ p[2] + p[3]
            e = np.exp(z2 - z2.max(1, keepdims=True))
            d2 = e / e.sum(1, keepdims=True)
            d2[np.arange(len(yb)), yb] -= 1
            d2 /= len(yb)
            d1 = (d2 @ p[2].T) * (z1 > 0)
            grads = [xb.T @ d1, d1.sum(0), h.T @ d2, d2.sum(0)]
            step += 1
            for k, g in enumerate(grads):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p[k] -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
    return MLP(*p)


@dataclass
class SNNNet:
    """Two converted layers: per layer a core config and its integer weights (bias axon last)."""
    cfg1: SNNCoreConfig
    w1: np.ndarray
    cfg2: SNNCoreConfig
    w2: np.ndarray


def convert(mlp: MLP, x_train, weight_bits=8, state_bits=16, lanes=(8, 5), pct=99.9) -> SNNNet:
    x = x_train / 16.0
    lam1 = np.percentile(mlp.hidden(x), pct)
    lam2 = np.percentile(np.maximum(mlp.logits(x), 0), pct)
    cfg1, q1 = quantize_layer(mlp.w1 / lam1, mlp.b1 / lam1, weight_bits, state_bits, lanes[0])
    cfg2, q2 = quantize_layer(mlp.w2 * lam1 / lam2, mlp.b2 / lam2, weight_bits, state_bits, lanes[1])
    return SNNNet(cfg1, q1, cfg2, q2)


def encode(pixels, timesteps: int) -> np.ndarray:
    """(batch, 64) pixels 0..16 -> (batch, timesteps, 65) input spikes; axon 64 is the bias axon (always on)."""
    px = np.asarray(pixels, dtype=np.int64)
    acc = np.zeros_like(px)
    out = np.zeros((len(px), timesteps, 65), dtype=np.uint8)
    out[:, :, 64] = 1
    for t in range(timesteps):
        acc += px
        fire = acc >= 16
        acc -= 16 * fire
        out[:, t, :64] = fire
    return out


def run_golden(net: SNNNet, pixels, timesteps: int):
    """Golden-model inference: returns (predictions, input spikes, hidden spikes, output spikes)."""
    s_in = encode(pixels, timesteps)
    s_hid, _ = snn.run_batch(net.cfg1, net.w1, s_in)
    s_out, _ = snn.run_batch(net.cfg2, net.w2, with_bias(s_hid))
    return s_out.sum(1).argmax(1), s_in, s_hid, s_out


def threshold_units(mlp: MLP, x_train, pct=99.9) -> list[tuple[np.ndarray, np.ndarray]]:
    """The MLP's two layers normalised as `convert` does (lambda_l = the pct-th percentile of layer l's ReLU
    activations on pixels / 16): [(w1 / lam1, b1 / lam1), (w2 lam1 / lam2, b2 / lam2)], w as (in, out), in units of
    the firing threshold. (For sw_model.host.netdesc.spiking; `convert` itself is unchanged.)"""
    x = x_train / 16.0
    lam1 = np.percentile(mlp.hidden(x), pct)
    lam2 = np.percentile(np.maximum(mlp.logits(x), 0), pct)
    return [(mlp.w1 / lam1, mlp.b1 / lam1), (mlp.w2 * lam1 / lam2, mlp.b2 / lam2)]


def digits_snn_network(mlp=None, x_train=None, timesteps: int = 32):
    """The converted digits SNN (`hwgen run digits-snn`) as a netdesc Network on rates x = pixels / 16: two
    Spiking layers with the conversion's normalised weights, the input quantized to the 17 levels 0..16 (so the
    rate coder is digits_snn.encode) and the lanes of digits_snn.convert (8, 5)."""
    if mlp is None:
        x_train, y_train, _, _ = load_digits()
        mlp = train_mlp(x_train, y_train)
    (w1, b1), (w2, b2) = threshold_units(mlp, x_train)
    return Network((64,), [Spiking(w1.T, b1, timesteps, input_levels=16, core=SNNCoreConfig(lanes=8)),
                           Spiking(w2.T, b2, timesteps, core=SNNCoreConfig(lanes=5))])
