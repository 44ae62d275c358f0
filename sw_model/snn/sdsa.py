"""Spike-driven self-attention (SDSA), the Meta-SpikeFormer (Spike-driven Transformer V2) SDSA-3 form, integer and
multiplier-free (golden model of `hwgen.snn.sdsa.SDSA`).

For one head with binary Q, K, V (tokens x dim):
  KV[j, c] = popcount_t(K[t, j] AND V[t, c])             (saturating counters of `count_bits` bits)
  S[i, c]  = sum_j Q[i, j] ? KV[j, c] : 0                  (masked accumulation)
  out[i, c] = (S[i, c] >> scale_shift) >= vth              (= S >= vth << scale_shift; a shift and a compare)
With scale_shift = 3 and vth = 1 this is the released model's SN_0.5((Q (K^T V)) x 0.125) with a tau = 2 LIF at
T = 1: fire iff S >= 8 (spec section 5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.config import ConfigError, check_int


@dataclass(frozen=True)
class SDSAConfig:
    """One SDSA head: `dim` channels, up to `tokens` K/V tokens per KV accumulation (counter width), spike iff
    (S >> scale_shift) >= vth.

    `pipeline`: register slices inside a Q row's masked adder trees and threshold compare, on top of the output
    register (0 = the whole read-out in one cycle); output latency `latency(cfg)` = 1 + pipeline, II = 1."""
    dim: int = 8
    tokens: int = 16
    scale_shift: int = 3
    vth: int = 1
    pipeline: int = 1
    unit = "sdsa"

    def __post_init__(self):
        check_int("dim", self.dim, 2, 64)          # a 1-channel head is degenerate
        check_int("tokens", self.tokens, 1, 4096)
        check_int("scale_shift", self.scale_shift, 0, 16)
        check_int("vth", self.vth, 1, 1 << 16)
        check_int("pipeline", self.pipeline, 0, 8)
        if (self.vth << self.scale_shift) > self.dim * self.count_max:
            raise ConfigError(f"vth: got {self.vth}, allowed: vth << scale_shift at most dim * tokens "
                              f"({self.dim * self.count_max}), or no query could ever spike")

    @property
    def count_bits(self) -> int:
        return self.tokens.bit_length()

    @property
    def count_max(self) -> int:
        return (1 << self.count_bits) - 1


def latency(cfg: SDSAConfig) -> int:
    """Cycles from a Q row's input handshake to its output beat being valid (the output register plus the
    `pipeline` slices of the read-out trees)."""
    return 1 + cfg.pipeline


PRESETS_SDSA = {"sdsa-16x32": SDSAConfig(dim=16, tokens=32), "sdsa-8x16": SDSAConfig(dim=8, tokens=16)}


def _binary(name, x, cfg):
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != cfg.dim:
        raise ValueError(f"{name}: got shape {a.shape}, allowed: (tokens, dim={cfg.dim})")
    if not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name}: spikes must be 0 or 1")
    return a.astype(np.int64)


def kv_counts(cfg: SDSAConfig, k, v) -> np.ndarray:
    """KV co-occurrence counts, saturating at 2^count_bits - 1."""
    k, v = _binary("k", k, cfg), _binary("v", v, cfg)
    return np.minimum(k.T @ v, cfg.count_max)


def sdsa(cfg: SDSAConfig, q, k, v) -> np.ndarray:
    """Binary attention output (tokens_q, dim) for binary Q, K, V."""
    q = _binary("q", q, cfg)
    s = q @ kv_counts(cfg, k, v)
    return ((s >> cfg.scale_shift) >= cfg.vth).astype(np.int64)


def stream(cfg: SDSAConfig, heads) -> tuple[dict, dict]:
    """Input and expected output beats of `hwgen.snn.sdsa.SDSA` for a list of (q, k, v) heads: per head the K/V
    rows (op 0, `first` on the first row restarts the counters) then the Q rows (op 1, one output row each)."""
    op, first, a, b, out = [], [], [], [], []
    pack = (1 << np.arange(cfg.dim)).astype(np.int64)
    for q, k, v in heads:
        k, v, q = _binary("k", k, cfg), _binary("v", v, cfg), _binary("q", q, cfg)
        op += [0] * len(k) + [1] * len(q)
        first += [1] + [0] * (len(k) - 1) + [0] * len(q)
        a += (k @ pack).tolist() + (q @ pack).tolist()
        b += (v @ pack).tolist() + [0] * len(q)
        out += (sdsa(cfg, q, k, v) @ pack).tolist()
    arr = lambda x: np.array(x, dtype=np.int64)  # noqa: E731
    return {"op": arr(op), "first": arr(first), "a": arr(a), "b": arr(b)}, {"s": arr(out)}
