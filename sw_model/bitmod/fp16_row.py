"""Bit-exact golden model of the BitMoD array with FP16 activations and ROW alignment
(`BitModConfig(act="fp16", align="row")`, hwgen/bitmod/fp16_row.py). Weights, terms, SV register file, beats,
the Inf/NaN policy and the cycle model are those of sw_model/bitmod/golden.py and sw_model/bitmod/fp16.py; only the
alignment rule differs: the k activations of a beat are aligned ONCE per row (the same for every column and
every term cycle of the beat), so a PE shifts a pre-aligned mantissa left by its weight term exactly.

FP16 activation fields as in bitmod_fp16.fp16_fields: sign s, e_eff = max(e, 1), 11-bit mantissa m (0 for
Inf/NaN, which are dead lanes and flag their row), live = m != 0.

Row r keeps a block exponent E_r (6-bit field, values 0..30) that starts at 0 with every vector and never
decreases within the vector (it is NOT reset at group ends). For every compute beat b:
  E_a   = max over the row's live lanes of e_eff (0 if none)          E' = max(E_r, E_a),  dA = E' - E_r
  m''_l = live_l ? floor(m_l * 2^g / 2^(E' - e_l)) : 0               (g = guard_bits: truncation, per row)
  every PE (r, c): A = floor(A / 2^dA)                                (the only truncation in a PE)
      (with shift_step = n > 0 in steps of <= n bits, one per cycle: floor shifts compose, so the result is
      the same; a beat that is not the first of its group waits max_r ceil(dA_r / n) - 1 extra cycles, the
      first one never, as its accumulators are 0)
  then per term cycle j:  A += (sum_l (s_l XOR neg_l ? -1 : 1) * (m''_l << shift_l)) << bsig_j   (exact)
  E_r = E'
so after the beat A += sum_l (-1)^s_l * m''_l * w_half_l exactly (the terms of a weight sum to its half-unit
value). Units: A * 2^(E_r - 26 - g) weight units (as in bitmod_fp16: EXP_OFFSET 26).
Group end: P = A * scale (bit-serial, exact), A = 0 (E_r stays). Output accumulator (Y, E_y) per PE with one
exponent per row: E_g = E_r at the group end >= E_y, Y = floor(Y / 2^(E_g - E_y)) + P, E_y = E_g (the
hardware shifts Y during the 8 dequantization cycles). The beat with `last` set closes the vector: output
(y = Y, e = E_y, nonfinite), then Y = 0, E_y = 0 and E_r = 0.

Widths: |m''| < 2^(11 + g) and a weight is <= 256 half units (partial Booth sums within a beat <= 340), so
|A| < G * 2^(20 + g) (cfg.group_acc_bits = 21 + g + clog2(G)) and |Y| < max_groups * 255 * that.

Error bound (tested against float64): with U(E) = 2^(E - 26 - g) weight units, every live activation is
truncated by < 2^(E' - 25 - g) (= 2 U(E')) in magnitude, so an element loses < 2 U(E_b) |w_n| (E_b = the row
exponent at its beat <= the group's end exponent E_g); each beat's A shift loses < 1 U(E_g) (at most one per
beat and at most 30 per vector, as E_r only grows); each group end loses < 1 U(E_g) in the Y shift:
  |value - exact| <= sum_g [ scale_g * U(E_g) * (2 sum_{n in g} |w_n| + min(beats_g, 30)) + U(E_g) ].
"""
from __future__ import annotations

import numpy as np

from sw_model.bitmod.config import DTYPE_BY_CODE, BitModConfig
from sw_model.bitmod.fp16 import EXP_OFFSET, fp16_fields, fp16_value
from sw_model.bitmod.golden import _check_beats, _leading_one, _split, booth_digits, half_units
from sw_model.bitmod.golden import cycles_per_beat as base


def window_terms(codes, dtype: int, sv_sel, cfg: BitModConfig, sv_table=None) -> tuple[np.ndarray, np.ndarray]:
    """The row-aligned PE's term decomposition (hwgen term_decoder(window=True)): (signed lane values
    +-2^shift with shift 0..3, shape (..., 4); bsig (4,)). INT: lane shift |d_j| - 1 + 2 (j & 1), bsig
    1 + 4 (j >> 1); FP: term 0 = the leading one within half-unit bits 4..1 (shift = position - 1, bsig 1),
    term 1 = the remaining one within bits 3..0 (bsig 0). sum_j lane_j << bsig_j == half_units(...)."""
    d = DTYPE_BY_CODE[int(dtype)]
    c = np.asarray(codes, dtype=np.int64)
    lane = np.zeros(c.shape + (4,), dtype=np.int64)
    if d.kind == "int":
        dig = booth_digits(c & ((1 << d.bits) - 1), d.bits)
        for j in range(d.terms):
            lane[..., j] = np.sign(dig[..., j]) * (np.abs(dig[..., j]) << (2 * (j & 1)))
        return lane, np.array([1, 1, 5, 5])
    v = half_units(c, dtype, sv_sel, cfg, sv_table)
    mag, sign = np.abs(v), np.where(v < 0, -1, 1)
    lo0 = _leading_one(mag)
    first = np.where(lo0 >= 1, 1 << np.maximum(lo0, 0), 0)            # bits 4..1 only
    lane[..., 0] = sign * (first >> 1)
    lane[..., 1] = sign * (mag - first)                                # one bit within 3..0 (or none)
    return lane, np.array([1, 0, 0, 0])


def _check(cfg: BitModConfig):
    if cfg.act != "fp16" or cfg.align != "row":
        raise ValueError(f"align: got act={cfg.act!r}, align={cfg.align!r}; this model is for act='fp16', "
                         f"align='row'")


def row_align(cfg: BitModConfig, a_bits, e_row):
    """One beat of the row aligners: a_bits (rows, k) FP16 patterns, e_row (rows,) the block exponents before
    the beat -> (E' (rows,), dA (rows,), signed pre-aligned mantissas (rows, k): (-1)^s * m'')."""
    s, e_eff, m, live, _ = fp16_fields(a_bits)
    e_a = np.where(live, e_eff, 0).max(axis=-1)
    e_new = np.maximum(np.asarray(e_row), e_a)
    mag = np.where(live, (m << cfg.guard_bits) >> np.maximum(e_new[:, None] - e_eff, 0), 0)
    return e_new, e_new - e_row, np.where(s == 1, -mag, mag)


def cycles_per_beat(cfg: BitModConfig, beats: dict) -> np.ndarray:
    """Cycles of every beat (SV writes included, no gaps or backpressure): bitmod.cycles_per_beat plus, with
    shift_step = n > 0, the accumulator-shift stalls: max over rows of ceil(dA / n) - 1 for a compute beat
    that is not the first of its group."""
    _check(cfg)
    t = base(beats).copy()
    if not cfg.shift_step:
        return t
    compute = np.nonzero(np.asarray(beats.get("sv_we", np.zeros(len(t))), dtype=np.int64).reshape(-1) == 0)[0]
    a = np.asarray(beats["a"], dtype=np.int64).reshape(len(t), cfg.rows, cfg.lanes)[compute]
    last = np.asarray(beats["last"], dtype=np.int64).reshape(-1)[compute]
    e_r = np.zeros(cfg.rows, dtype=np.int64)
    for n, b in enumerate(compute):
        e_r, d_a, _ = row_align(cfg, a[n], e_r)
        if n % cfg.beats_per_group:
            t[b] += max(0, int(-(-d_a.max() // cfg.shift_step)) - 1)
        if last[n]:
            e_r = np.zeros_like(e_r)
    return t


def array_outputs(cfg: BitModConfig, beats: dict) -> dict:
    """Golden outputs: {"y": (vectors, rows*cols) signed, "e": (vectors, rows*cols), "nonfinite": (vectors,
    rows)}, row-major over (row, col); value = y * 2^(e - 26 - guard_bits) weight units x scale code."""
    _check(cfg)
    beats, tables = _split(cfg, beats)
    w, a, dt, sv, sc, last = _check_beats(cfg, beats)
    R, C, bpg = cfg.rows, cfg.cols, cfg.beats_per_group
    wh = np.zeros(w.shape, dtype=np.int64)                            # the terms of each weight, summed
    for b in range(len(w)):
        for c in range(C):
            tab = tables[b, int(dt[b, c]) - 2] if dt[b, c] >= 2 else None
            lane, bsig = window_terms(w[b, c], dt[b, c], sv[b, c], cfg, tab)
            wh[b, c] = (lane << bsig).sum(axis=-1)
    e_r = np.zeros(R, dtype=np.int64)
    A = np.zeros((R, C), dtype=np.int64)
    Y, Ey = np.zeros((R, C), dtype=np.int64), np.zeros(R, dtype=np.int64)
    nf = np.zeros(R, dtype=bool)
    ngroups, ys, es, nfs = 0, [], [], []
    for b in range(len(last)):
        nf |= fp16_fields(a[b])[4].any(axis=1)
        e_r, d_a, ma = row_align(cfg, a[b], e_r)
        A = (A >> d_a[:, None]) + ma @ wh[b].T
        if b % bpg == bpg - 1:                                        # group end
            Y = (Y >> (e_r - Ey)[:, None]) + A * sc[b][None, :]
            Ey, A = e_r.copy(), np.zeros_like(A)
            ngroups += 1
            if last[b]:
                if ngroups > cfg.max_groups:
                    raise ValueError(f"vector length: at most max_groups={cfg.max_groups} groups per output")
                ys.append(Y.reshape(-1))
                es.append(np.repeat(Ey, C))
                nfs.append(nf.astype(np.int64))
                Y, Ey, e_r = np.zeros_like(Y), np.zeros_like(Ey), np.zeros_like(e_r)
                nf, ngroups = np.zeros(R, dtype=bool), 0
    shape = (len(ys), R * C)
    return {"y": np.array(ys, dtype=np.int64).reshape(shape), "e": np.array(es, dtype=np.int64).reshape(shape),
            "nonfinite": np.array(nfs, dtype=np.int64).reshape(len(ys), R)}


def output_values(cfg: BitModConfig, out: dict) -> np.ndarray:
    """y * 2^(e - 26 - guard) as float64, NaN where the row's nonfinite flag is set."""
    v = np.ldexp(np.asarray(out["y"], dtype=np.float64), np.asarray(out["e"]) - EXP_OFFSET - cfg.guard_bits)
    return np.where(np.repeat(np.asarray(out["nonfinite"], dtype=bool), cfg.cols, axis=1), np.nan, v)


def reference_and_bound(cfg: BitModConfig, beats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Float64 reference sum_g scale_g * sum_n a_n * w_n from the value tables (Inf/NaN activations zeroed)
    and the error bound of the module docstring, computed independently of the datapath model: E_g is the
    largest live activation exponent of the row in the vector up to the group's end. Both (vectors, rows*cols)."""
    _check(cfg)
    beats, tables = _split(cfg, beats)
    w, a, dt, sv, sc, last = _check_beats(cfg, beats)
    R, C, bpg, g = cfg.rows, cfg.cols, cfg.beats_per_group, cfg.guard_bits
    wv = np.zeros(w.shape)
    for b in range(len(w)):
        for c in range(C):
            tab = tables[b, int(dt[b, c]) - 2] if dt[b, c] >= 2 else None
            wv[b, c] = half_units(w[b, c], dt[b, c], sv[b, c], cfg, tab) / 2
    _, e_eff, _, live, special = fp16_fields(a)
    av = np.where(special, 0.0, fp16_value(a))                          # (beats, rows, k)
    prod = np.einsum("brl,bcl->brc", av, wv) * sc[:, None, :]
    mags = np.einsum("brl,bcl->brc", np.abs(av), np.abs(wv)) * sc[:, None, :]
    wsum = np.abs(wv).sum(axis=-1)                                      # (beats, cols)
    beat_e = np.where(live, e_eff, 0).max(axis=-1)                      # (beats, rows)
    ref, bound = [], []
    start = 0
    for end in np.nonzero(last)[0]:
        r_v, b_v = np.zeros((R, C)), np.zeros((R, C))
        for g0 in range(start, end + 1, bpg):
            grp = slice(g0, g0 + bpg)
            e_g = beat_e[start:g0 + bpg].max(axis=0)                    # running max up to the group end
            unit = np.ldexp(1.0, e_g - EXP_OFFSET - g)[:, None]          # (rows, 1)
            r_v += prod[grp].sum(axis=0)
            b_v += sc[g0][None, :] * unit * (2 * wsum[grp].sum(axis=0)[None, :] + min(bpg, 30)) + unit
            b_v += 1e-12 * mags[grp].sum(axis=0)
        ref.append(r_v.reshape(-1))
        bound.append(b_v.reshape(-1))
        start = end + 1
    return np.array(ref).reshape(-1, R * C), np.array(bound).reshape(-1, R * C)


__all__ = ["window_terms", "row_align", "cycles_per_beat", "array_outputs", "output_values", "reference_and_bound"]
