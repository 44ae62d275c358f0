"""Seeded random and directed input beats for the BitMoD array (shared by the golden tests and the benches)."""
from __future__ import annotations

import numpy as np

from sw_model.bitmod.config import DTYPE_BY_CODE, BitModConfig
from sw_model.bitmod.golden import concat_beats, make_beats, sv_write_beats


def random_codes(rng, dtype: int, shape, p_sv: float = 0.15) -> np.ndarray:
    """Uniform codes of a datatype, with the FP special-value code (-0) forced with probability p_sv."""
    bits = DTYPE_BY_CODE[dtype].bits
    c = rng.integers(0, 1 << bits, size=shape)
    if DTYPE_BY_CODE[dtype].kind == "fp":
        c = np.where(rng.random(shape) < p_sv, 1 << (bits - 1), c)
    return c


SV_MAGS = [m for m in range(32) if bin(m).count("1") <= 2]      # half units the decoder can split into 2 terms


def random_sv_writes(cfg: BitModConfig, rng, n: int) -> dict:
    writes = [(str(rng.choice(["fp4", "fp3"])), int(rng.integers(0, 4)),
               float(rng.choice(SV_MAGS)) / 2 * (-1 if rng.random() < 0.5 else 1)) for _ in range(n)]
    return sv_write_beats(cfg, writes)


def random_beats(cfg: BitModConfig, n_vectors: int, seed: int, dtypes=(0, 1, 2, 3), zero_groups: float = 0.1,
                 max_groups: int | None = None, sv_writes: float = 0.0, nonfinite: float = 0.0) -> dict:
    """`n_vectors` vectors of 1..max_groups groups each; per (column, group) a datatype drawn from `dtypes`,
    a random SV selector and scale (0 and 255 over-represented), some all-zero weight groups, int8
    activations with -128 / 127 over-represented. With probability `sv_writes` per vector, 1..3 random
    SV-register writes are inserted at a random beat of it (also mid-group). FP16 configs get `random_fp16`
    activations; in about 30 % of the vectors each activation is Inf/NaN with probability `nonfinite`."""
    rng = np.random.default_rng(seed)
    G, C = cfg.group_size, cfg.cols
    parts = []
    for _ in range(n_vectors):
        ng = int(rng.integers(1, (max_groups or cfg.max_groups) + 1))
        dt = rng.choice(np.asarray(dtypes), size=(C, ng))
        sv = rng.integers(0, 4, size=(C, ng))
        sc = np.where(rng.random((C, ng)) < 0.2, rng.choice([0, 1, 255], size=(C, ng)),
                      rng.integers(0, 256, size=(C, ng)))
        w = np.zeros((C, ng * G), dtype=np.int64)
        for c in range(C):
            for g in range(ng):
                if rng.random() >= zero_groups:
                    w[c, g * G:(g + 1) * G] = random_codes(rng, int(dt[c, g]), G)
        if cfg.act == "fp16":
            a = random_fp16(rng, (1, cfg.rows, ng * G), p_nonfinite=nonfinite if rng.random() < 0.3 else 0.0)
        else:
            a = rng.integers(-128, 128, size=(1, cfg.rows, ng * G))
            a = np.where(rng.random(a.shape) < 0.1, rng.choice([-128, 127], size=a.shape), a)
        vec = make_beats(cfg, w, a, dt, sv, sc)
        if rng.random() < sv_writes:
            cut = int(rng.integers(0, len(vec["last"])))
            head = {f: x[:cut] for f, x in vec.items()}
            tail = {f: x[cut:] for f, x in vec.items()}
            vec = concat_beats(head, random_sv_writes(cfg, rng, int(rng.integers(1, 4))), tail)
        parts.append(vec)
    return concat_beats(*parts)


def extreme_beats(cfg: BitModConfig) -> dict:
    """The largest-magnitude outputs: INT8 -128 weights x -128 activations, scale 255, max_groups groups
    (positive extreme), then the same with +127 activations (negative extreme)."""
    ng, C, G = cfg.max_groups, cfg.cols, cfg.group_size
    w = np.full((C, ng * G), 0x80)
    dt, sv, sc = np.zeros((C, ng), int), np.zeros((C, ng), int), np.full((C, ng), 255)
    acts = (0xFBFF, 0x7BFF) if cfg.act == "fp16" else (-128, 127)          # fp16: -65504, +65504
    return concat_beats(*[make_beats(cfg, w, np.full((1, cfg.rows, ng * G), v), dt, sv, sc) for v in acts])


def random_fp16(rng, shape, p_nonfinite: float = 0.0) -> np.ndarray:
    """FP16 bit patterns (int64): mostly normal values whose exponents spread over 2^-8..2^8 (so the lanes of a
    cycle need alignment), plus subnormals, +-0, the largest finite values and, with p_nonfinite, +-Inf/NaN."""
    x = (rng.normal(size=shape) * 2.0 ** rng.integers(-8, 9, size=shape)).astype(np.float16).view(np.uint16)
    x = x.astype(np.int64)
    kind = rng.random(shape)
    sign = rng.integers(0, 2, size=shape) << 15
    x = np.where(kind < 0.08, sign | rng.integers(1, 1024, size=shape), x)                  # subnormal
    x = np.where((kind >= 0.08) & (kind < 0.12), sign, x)                                   # +-0
    x = np.where((kind >= 0.12) & (kind < 0.15), sign | 0x7BFF, x)                          # +-65504
    bad = rng.random(shape) < p_nonfinite
    return np.where(bad, rng.choice([0x7C00, 0xFC00, 0x7E00, 0xFE01], size=shape), x)      # +-Inf, NaNs
