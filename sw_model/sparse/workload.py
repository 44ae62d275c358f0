"""Random N:M workloads for the sparse chain: pruned weight rows, activations, the beats the driver sends and
the outputs the golden model expects. Shared by the tests and the benchmark."""
from __future__ import annotations

import numpy as np

from sw_model.sparse import golden as sp
from sw_model.sparse.group import group_chain_model, pack_rows


def random_row(rng, k: int, mode, weight_bits: int, zero_groups: float = 0.2, extreme: float = 0.1):
    """A dense weight row of length k, magnitude-pruned to `mode`'s N:M; some groups all zero, some entries
    at the extreme values. Returns (dense pruned row, values, indices); dense mode: values = row, indices None."""
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    w = rng.integers(lo, hi + 1, k)
    w = np.where(rng.random(k) < extreme, rng.choice([lo, hi], k), w)
    mode = sp.mode_of(mode)
    n, m = sp.MODE_NM[mode]
    if mode == sp.SparseMode.DENSE:             # dense rows: zero_groups is the share of zero weights
        w = np.where(rng.random(k) < zero_groups, 0, w)
        return w, w, None
    w = sp.prune_nm(w, n, m)
    g = w.reshape(-1, m)
    g[rng.random(len(g)) < zero_groups] = 0
    values, indices = sp.compress(w, n, m)
    return w, values, indices


def random_acts(rng, k: int, extreme: float = 0.1):
    x = rng.integers(-128, 128, k)
    return np.where(rng.random(k) < extreme, rng.choice([-128, 127], k), x)


def workload(cfg, rng, n_vectors: int, modes=None, ks=(8, 24, 40), rows="random", **kw) -> tuple[dict, dict, dict]:
    """`n_vectors` dot products, each in a random mode of `modes` (default: every mode of the chain) and with K
    from `ks` (rounded up to the mode's M). Grouped chains (`cfg.groups` > 1) get 1..R rows per vector (`rows`:
    "full" = always R, "random" = 1..R). Returns (beats, expected outputs as unsigned codes, info) where info
    has the per-vector modes, Ks, row counts, beat counts and the dense-equivalent MACs (rows x K per vector and
    lane)."""
    modes = [sp.mode_of(md) for md in (modes or cfg.modes)]
    parts, info = [], {"modes": [], "k": [], "rows": [], "beats": [], "dense_macs": 0}
    grouped = getattr(cfg, "groups", 1) > 1
    for _ in range(n_vectors):
        md = modes[rng.integers(len(modes))]
        m = sp.MODE_NM[md][1]
        k = -(-int(rng.choice(ks)) // m) * m
        n_rows = 1
        if grouped:
            n_rows = cfg.rows(md) if rows == "full" else int(rng.integers(1, cfg.rows(md) + 1))
        drawn = [random_row(rng, k, md, cfg.weight_bits, **kw) for _ in range(n_rows)]
        x = random_acts(rng, k, kw.get("extreme", 0.1))
        x2 = random_acts(rng, k, kw.get("extreme", 0.1)) if cfg.packed else None
        if grouped:
            idx = None if drawn[0][2] is None else [d[2] for d in drawn]
            part = pack_rows([d[1] for d in drawn], x, md, cfg, indices=idx, x2=x2)
        else:
            part = sp.pack_dot(drawn[0][1], x, md, cfg.stages, cfg.x_width, indices=drawn[0][2], x2=x2,
                               weight_bits=cfg.weight_bits)
        parts.append(part)
        info["modes"].append(int(md))
        info["k"].append(k)
        info["rows"].append(n_rows)
        info["beats"].append(len(part["mode"]))
        info["dense_macs"] += n_rows * k * (2 if cfg.packed else 1)
    beats = sp.concat_beats(parts)
    return beats, expected(cfg, beats), info


def expected(cfg, beats: dict) -> dict:
    """Golden outputs for `beats` as unsigned `acc_bits` codes (what the bench compares)."""
    out = group_chain_model(beats, cfg)
    return {k: v % (1 << cfg.acc_bits) for k, v in out.items()}
