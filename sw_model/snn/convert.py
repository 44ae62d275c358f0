"""ANN -> SNN conversion rules for the spiking core (rate coding, soft reset): a ReLU layer's weights in threshold
units become a core config and integer weights, and a bias becomes an always-on input axon."""
from __future__ import annotations

import numpy as np

from sw_model.snn.config import SNNCoreConfig


def quantize_layer(w, b, weight_bits, state_bits, lanes):
    """Weights in threshold units -> (config, integer weights with the bias row last)."""
    full = np.vstack([w, b[None, :]])
    qmax = (1 << (weight_bits - 1)) - 1
    scale = np.abs(full).max() / qmax
    theta = max(1, int(round(1 / scale)))
    q = np.clip(np.round(full * theta), -qmax - 1, qmax).astype(np.int64)
    cfg = SNNCoreConfig(neurons=w.shape[1], lanes=lanes, axons=full.shape[0], weight_bits=weight_bits,
                        state_bits=state_bits, threshold=theta, compare="ge", reset="soft", leak="none",
                        addr_bits=max(1, (full.shape[0] - 1).bit_length()))
    return cfg, q


def with_bias(spikes) -> np.ndarray:
    """(batch, timesteps, n) spikes -> (batch, timesteps, n + 1) with the always-on bias axon last."""
    s = np.asarray(spikes, dtype=np.uint8)
    return np.concatenate([s, np.ones(s.shape[:2] + (1,), dtype=np.uint8)], axis=2)
