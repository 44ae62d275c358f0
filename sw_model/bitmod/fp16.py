"""Bit-exact golden model of the BitMoD array with FP16 activations (`BitModConfig(act="fp16")`,
hwgen/bitmod/array.py + hwgen/bitmod/fp16.py). Weights, terms, SV register file, beats and the cycle model are those
of the INT8-activation array (sw_model/bitmod/golden.py); only the PE arithmetic differs.

FP16 activation a (bits s | e[5] | f[10]): m = (e > 0) << 10 | f (11-bit mantissa with the hidden bit),
e_eff = max(e, 1), so a = (-1)^s * m * 2^(e_eff - 25) (subnormals exact). Policy for special inputs: e = 31
(Inf or NaN) counts as a zero lane in the datapath and sets the row's sticky `nonfinite` flag for the vector
(output bit per row; the host maps it to NaN); +-0 and subnormals are ordinary values.

Per PE (r, c), per term cycle j (a weight term is +-2^shift half units, shift 0..4, times 2^bsig):
  lane l is live iff the term is nonzero and m != 0 (e != 31); live exponent p_l = e_eff + shift, else p_l = 0
  P = max_l p_l;  delta_l = P - p_l
  mag_l = floor(m_l * 2^guard / 2^delta_l)             truncation of the magnitude (guard = cfg.guard_bits)
  S = sum_l (s_l XOR term_neg_l ? -mag_l : mag_l)       exact integer adder tree
  E_s = P + bsig if P > 0 else 0                        so S is in units of 2^(E_s - 26 - guard) weight units
Group accumulator (A, E_a), block floating point, starts at (0, 0), the exponent never decreases:
  E_n = max(E_a, E_s);  A = (A >> (E_n - E_a)) + (S >> (E_n - E_s));  E_a = E_n     (>> arithmetic = floor)
At a group end: (A * scale_code, E_a) (exact, bit-serial in hardware) is added the same way into the output
accumulator (Y, E_y), which starts at (0, 0) per vector. Output beat: y = Y (signed, cfg.out_bits), e = E_y
(6 bits), nonfinite[rows]. Value: y * 2^(e - 26 - guard) ~= sum_g scale_g * sum_n a_n * w_n (weight units).

Error bound (tested against a float64 reference): every unit 2^(E - 26 - guard) in a group is at most
u_g = max(2^-(10 + guard) * M_g, 2^-(15 + guard)), M_g = the largest |a * term| of the group (a normal
maximal lane has m >= 2^10; a subnormal one has E <= 1 + 4 + 6). A cycle loses < 1 unit per lane (truncation)
and < 1 unit in the accumulator alignment, each group end < 1 output unit (<= max_g u_g), so
  |value - exact| <= sum_g scale_g * (lanes + 1) * cycles_g * u_g + groups * max_g u_g.
"""
from __future__ import annotations

import numpy as np

from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import _check_beats, _split, half_units, weight_terms

EXP_OFFSET = 26                      # value = y * 2^(e - EXP_OFFSET - guard) weight units


def fp16_fields(bits) -> tuple[np.ndarray, ...]:
    """FP16 bit patterns -> (sign, e_eff, m with hidden bit (0 for Inf/NaN), live (m != 0), special (Inf/NaN))."""
    b = np.asarray(bits, dtype=np.int64) & 0xFFFF
    s, e, f = b >> 15, (b >> 10) & 31, b & 1023
    special = e == 31
    m = np.where(special, 0, np.where(e > 0, f | 1024, f))
    return s, np.maximum(e, 1), m, m != 0, special


def fp16_value(bits) -> np.ndarray:
    """FP16 bit patterns -> float64 (Inf/NaN as IEEE)."""
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(np.float64)


def _align_add(a, ea, b, eb):
    en = np.maximum(ea, eb)
    return (a >> (en - ea)) + (b >> (en - eb)), en


def _terms(cfg: BitModConfig, w, dt, sv, tables):
    """Per compute beat, column, lane, term j: (signed half-unit lane value, bsig (beat, col, j))."""
    n, C, k = w.shape
    lane = np.zeros((n, C, k, 4), dtype=np.int64)
    bsig = np.zeros((n, C, 4), dtype=np.int64)
    for b in range(n):
        for c in range(C):
            tab = tables[b, int(dt[b, c]) - 2] if dt[b, c] >= 2 else None
            lane[b, c], bsig[b, c] = weight_terms(w[b, c], dt[b, c], sv[b, c], cfg, tab)
    return lane, bsig


def cycle_sum(cfg: BitModConfig, a_bits, term, bsig):
    """One term cycle of every PE: a_bits (rows, k) FP16 patterns, term (cols, k) signed half-unit
    power-of-two lane values (0 = none), bsig (cols,) -> (S (rows, cols), E_s (rows, cols))."""
    s, e_eff, m, live_a, _ = fp16_fields(a_bits)
    mag_t = np.abs(term)
    shift = np.where(mag_t > 0, np.log2(np.maximum(mag_t, 1)).astype(np.int64), 0)
    live = live_a[:, None, :] & (mag_t > 0)[None]
    p = np.where(live, e_eff[:, None, :] + shift[None], 0)
    P = p.max(axis=-1)
    delta = P[..., None] - p
    mag = np.where(live, (m[:, None, :] << cfg.guard_bits) >> np.minimum(delta, 40), 0)
    neg = (s[:, None, :] == 1) ^ (term < 0)[None]
    S = np.where(neg, -mag, mag).sum(axis=-1)
    return S, np.where(P > 0, P + np.asarray(bsig)[None, :], 0)


def array_outputs(cfg: BitModConfig, beats: dict) -> dict:
    """Golden outputs of an FP16 config: {"y": (vectors, rows*cols) signed, "e": (vectors, rows*cols),
    "nonfinite": (vectors, rows)}, row-major over (row, col)."""
    if cfg.act != "fp16":
        raise ValueError(f"act: got {cfg.act!r}; this model is for act='fp16', use sw_model.bitmod.golden for 'int8'")
    if cfg.align != "product":
        raise ValueError(f"align: got {cfg.align!r}; this model is for align='product', use "
                         "sw_model.bitmod.fp16_row for 'row'")
    beats, tables = _split(cfg, beats)
    w, a, dt, sv, sc, last = _check_beats(cfg, beats)
    R, C, k, bpg = cfg.rows, cfg.cols, cfg.lanes, cfg.beats_per_group
    lane, bsig = _terms(cfg, w, dt, sv, tables)
    ngroups = 0
    A, Ea = np.zeros((R, C), dtype=np.int64), np.zeros((R, C), dtype=np.int64)
    Y, Ey = np.zeros((R, C), dtype=np.int64), np.zeros((R, C), dtype=np.int64)
    nf = np.zeros(R, dtype=bool)
    ys, es, nfs = [], [], []
    for b in range(len(last)):
        nf |= fp16_fields(a[b])[4].any(axis=1)
        for j in range(4):                      # cycles beyond a column's term count hold zero terms: no-ops
            S, Es = cycle_sum(cfg, a[b], lane[b, :, :, j], bsig[b, :, j])
            A, Ea = _align_add(A, Ea, S, Es)
        if b % bpg == bpg - 1:                  # group end
            Y, Ey = _align_add(Y, Ey, A * sc[b][None, :], Ea)
            A, Ea = np.zeros_like(A), np.zeros_like(Ea)
            ngroups += 1
            if last[b]:
                if ngroups > cfg.max_groups:
                    raise ValueError(f"vector length: at most max_groups={cfg.max_groups} groups per output")
                ys.append(Y.reshape(-1))
                es.append(Ey.reshape(-1))
                nfs.append(nf.astype(np.int64))
                Y, Ey, nf, ngroups = np.zeros_like(Y), np.zeros_like(Ey), np.zeros(R, dtype=bool), 0
    shape = (len(ys), R * C)
    return {"y": np.array(ys, dtype=np.int64).reshape(shape), "e": np.array(es, dtype=np.int64).reshape(shape),
            "nonfinite": np.array(nfs, dtype=np.int64).reshape(len(ys), R)}


def output_values(cfg: BitModConfig, out: dict) -> np.ndarray:
    """Golden/RTL outputs -> float64 values y * 2^(e - 26 - guard) (weight units x activation x scale code),
    NaN where the row's nonfinite flag is set."""
    v = np.ldexp(np.asarray(out["y"], dtype=np.float64), np.asarray(out["e"]) - EXP_OFFSET - cfg.guard_bits)
    nf = np.repeat(np.asarray(out["nonfinite"], dtype=bool), cfg.cols, axis=1)
    return np.where(nf, np.nan, v)


def reference_and_bound(cfg: BitModConfig, beats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Float64 reference sum_g scale_g * sum_n a_n * w_n from the value tables (no alignment), Inf/NaN
    activations zeroed (their rows are flagged), and the error bound of the module docstring (plus 1e-12
    of the magnitude sum for float64 rounding). Both (vectors, rows * cols)."""
    beats, tables = _split(cfg, beats)
    w, a, dt, sv, sc, last = _check_beats(cfg, beats)
    R, C, k, bpg, g = cfg.rows, cfg.cols, cfg.lanes, cfg.beats_per_group, cfg.guard_bits
    wv = np.zeros(w.shape)
    for b in range(len(w)):
        for c in range(C):
            tab = tables[b, int(dt[b, c]) - 2] if dt[b, c] >= 2 else None
            wv[b, c] = half_units(w[b, c], dt[b, c], sv[b, c], cfg, tab) / 2
    av = np.where(fp16_fields(a)[4], 0.0, fp16_value(a))                     # (beats, rows, k)
    lane, bsig = _terms(cfg, w, dt, sv, tables)
    term_w = np.abs(lane << bsig[:, :, None, :]).max(axis=-1) / 2           # largest term per weight (b, C, k)
    prod = np.einsum("brl,bcl->brc", av, wv) * sc[:, None, :]
    mags = np.einsum("brl,bcl->brc", np.abs(av), np.abs(wv)) * sc[:, None, :]
    big = (np.abs(av)[:, :, None, :] * term_w[:, None, :, :]).max(axis=-1)    # (beats, rows, cols)
    grp = lambda x, f: f(x.reshape(-1, bpg, R, C), axis=1)                   # noqa: E731
    u = np.maximum(2.0 ** -(10 + g) * grp(big, np.max), 2.0 ** -(15 + g))    # (groups, rows, cols)
    scale = sc.reshape(-1, bpg, C)[:, 0][:, None, :]
    per_group = scale * (k + 1) * 4 * bpg * u
    ends = np.nonzero(last.reshape(-1, bpg)[:, -1])[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    ref, bound = [], []
    for s0, e0 in zip(starts, ends):
        ref.append(grp(prod, np.sum)[s0:e0 + 1].sum(axis=0).reshape(-1))
        mag = grp(mags, np.sum)[s0:e0 + 1].sum(axis=0)
        bound.append((per_group[s0:e0 + 1].sum(axis=0) + (e0 - s0 + 1) * u[s0:e0 + 1].max(axis=0)
                      + 1e-12 * mag).reshape(-1))
    return np.array(ref).reshape(len(ends), -1), np.array(bound).reshape(len(ends), -1)


__all__ = ["EXP_OFFSET", "fp16_fields", "fp16_value", "cycle_sum", "array_outputs", "output_values",
           "reference_and_bound"]
