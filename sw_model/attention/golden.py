"""Bit-exact golden model of the one-pass attention array (FuseMax cascade, FlashAttention-2 form).

For each query tile of `p0` rows (in order) and each key/value tile of `m0` rows (in order):
    S = Q K^T (exact), t = S >> score_shift, LM = max_m t, RM' = max(RM, LM) (RM' = LM on the first tile),
    p = exp2(-(RM' - t)), PRM = exp2(-(RM - RM')) (0 on the first tile),
    RD' = sum_m p + (RD * PRM) >> W,  RNV' = sum_m p V + (RNV * PRM) >> W,
and at the end out = (RNV * r + 2^(K-O-1)) >> (K-O), r = floor(2^K / RD). The number format and the
exponential are described in sw_model/attention/config.py; all sums are exact integer sums. With
`mult = "lmul"` the products Q.K and p.V and the corrections (RD * PRM) >> W, (RNV * PRM) >> W are fixed-point
L-Muls (sw_model/attention/lmul.py) and RD, RNV and the output saturate; "lmul-products" keeps exact corrections.

`attention_reference` is the float64 statement softmax2(S / 2^(shift+F)) V * 2^O that bounds the golden
model's error; `quantize_head` turns real float Q, K, V (and the softmax scale) into the integer inputs.
"""
from __future__ import annotations

import math

import numpy as np

from sw_model.attention.config import AttentionConfig
from sw_model.attention.lmul import lmul_array, saturate


def _check_ints(name: str, x, cfg: AttentionConfig) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name}: got shape {a.shape}, allowed: a 2-D array (rows, head_dim)")
    if a.shape[1] != cfg.head_dim:
        raise ValueError(f"{name}: head dimension mismatch: got {a.shape[1]}, config head_dim is {cfg.head_dim}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: contains NaN or Inf; the array's integer format has no code for them "
                             "(quantize finite values with quantize_head)")
        if np.any(a != np.round(a)):
            raise ValueError(f"{name}: got non-integer values; allowed: signed {cfg.data_bits}-bit integers")
    elif a.dtype.kind not in "iu" and a.size:
        raise ValueError(f"{name}: got dtype {a.dtype}, allowed: signed {cfg.data_bits}-bit integers")
    a = a.astype(np.int64)
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a[(a < lo) | (a > hi)].flat[0]
        raise ValueError(f"{name}: got {bad}, allowed: {lo}..{hi} (signed {cfg.data_bits}-bit)")
    return a


def check_inputs(cfg: AttentionConfig, q, k, v):
    """Validate Q (P, E), K (N, E), V (N, F) integer arrays; returns them as int64."""
    q, k, v = (_check_ints(n, x, cfg) for n, x in (("q", q), ("k", k), ("v", v)))
    if k.shape[0] != v.shape[0]:
        raise ValueError(f"v: got {v.shape[0]} rows, k has {k.shape[0]}; K and V need the same sequence length")
    if k.shape[0] == 0:
        raise ValueError("sequence length 0: attention over no keys is undefined; send at least one K/V row "
                         "(the hardware answers a query tile closed without keys with all-zero rows)")
    if k.shape[0] > (1 << cfg.max_keys_log2):
        raise ValueError(f"sequence length {k.shape[0]}: allowed at most 2^max_keys_log2 = "
                         f"{1 << cfg.max_keys_log2} keys")
    if q.shape[0] == 0:
        raise ValueError("q: got 0 query rows, allowed: at least 1")
    return q, k, v


def exp2_neg(cfg: AttentionConfig, x) -> np.ndarray:
    """exp2(-x / 2^F) * 2^W for integer x >= 0: TABLE[x mod 2^F] >> (x >> F), 0 once the shift exceeds W."""
    x = np.asarray(x, dtype=np.int64)
    if x.size and x.min() < 0:
        raise ValueError("exp2_neg: got a negative argument; the running max makes every argument >= 0")
    table = np.array(cfg.exp_table(), dtype=np.int64)
    whole, frac = x >> cfg.logit_frac, x & ((1 << cfg.logit_frac) - 1)
    return np.where(whole > cfg.exp_bits, 0, table[frac] >> np.minimum(whole, cfg.exp_bits + 1))


def reciprocal(cfg: AttentionConfig, rd) -> np.ndarray:
    """r = floor(2^K / RD) (restoring division, R quotient bits); RD = 0 gives all ones, 2^R - 1."""
    all_ones = (1 << cfg.recip_bits) - 1
    return np.array([(1 << cfg.recip_shift) // int(x) if x else all_ones for x in np.ravel(rd)],
                    dtype=object).reshape(np.shape(rd))


def _query_tile(cfg: AttentionConfig, q, k, v, q_pos, trace=None):
    n_q, w = q.shape[0], cfg.exp_bits
    lmul = cfg.mult != "exact"                            # L-Mul products (Q.K, prob x V)
    lmul_corr = cfg.mult == "lmul"                        # L-Mul corrections (RD x PRM, RNV x PRM) too
    masked_logit = -(1 << (cfg.logit_width - 1))          # what the column max sees for a masked key
    rd = np.zeros(n_q, dtype=object)
    rnv = np.zeros((n_q, cfg.head_dim), dtype=object)
    rm = None
    for t0 in range(0, k.shape[0], cfg.m0):
        kt, vt = k[t0:t0 + cfg.m0], v[t0:t0 + cfg.m0]
        if lmul:                                              # every product an L-Mul, exact integer sums
            scores = lmul_array(q[:, None, :], kt[None, :, :], cfg.lmul_man).sum(axis=2)
            logits = scores.astype(np.int64).reshape(n_q, len(kt)) >> cfg.score_shift
        else:
            logits = (q @ kt.T) >> cfg.score_shift            # (n_q, keys in tile)
        keep = np.ones(logits.shape, bool)
        if cfg.causal:
            keep = np.arange(t0, t0 + len(kt))[None, :] <= q_pos[:, None]
            logits = np.where(keep, logits, masked_logit)
        lm = logits.max(axis=1)
        new = lm if rm is None else np.maximum(rm, lm)
        prm = np.zeros(n_q, dtype=np.int64) if rm is None else exp2_neg(cfg, new - rm)
        p = np.where(keep, exp2_neg(cfg, np.maximum(new[:, None] - logits, 0)), 0)
        sld = p.sum(axis=1)
        prm_o = prm.astype(object)
        if lmul:
            slnv = lmul_array(p[:, :, None], vt[None, :, :], cfg.lmul_man).sum(axis=1).reshape(n_q, -1)
        else:
            slnv = (p @ vt).astype(object)
        if lmul_corr:                    # corrections as L-Muls with the >> W folded in; registers saturate
            rd = saturate(sld.astype(object) + lmul_array(rd, prm_o, cfg.lmul_man, w), cfg.rd_width, False)
            rnv = saturate(slnv + lmul_array(rnv, prm_o[:, None], cfg.lmul_man, w), cfg.rnv_width, True)
        else:
            rd = sld.astype(object) + ((rd * prm_o) >> w)     # (L-Mul products are <= 1.5x exact ones:
            rnv = slnv + ((rnv * prm_o[:, None]) >> w)          # the RNV width still cannot overflow)
        rm = new
        if trace is not None:
            trace.append({"rm": rm.copy(), "prm": prm.copy(), "p": p.copy(), "rd": rd.copy(), "rnv": rnv.copy()})
    return rd, rnv


def normalize(cfg: AttentionConfig, rd, rnv) -> np.ndarray:
    """The final division: (RNV * r + 2^(K-O-1)) >> (K-O) with r = reciprocal(RD) (an exact multiply in both
    `mult` modes). With L-Mul, RNV / RD may leave V's range (the products are up to 2x too large): the output
    saturates to its signed out_width bits."""
    sh = cfg.recip_shift - cfg.out_frac
    r = reciprocal(cfg, rd)
    out = (rnv * r[:, None] + (1 << (sh - 1))) >> sh
    if cfg.mult != "exact":
        out = saturate(out, cfg.out_width, True)
    return out.astype(np.int64)


def _positions(cfg: AttentionConfig, q, q_pos):
    if q_pos is None:
        return np.arange(q.shape[0], dtype=np.int64)
    if not cfg.causal:
        raise ValueError("q_pos: given, but the config is not causal")
    q_pos = np.asarray(q_pos, dtype=np.int64)
    if q_pos.shape != (q.shape[0],) or (q_pos.size and (q_pos.min() < 0 or q_pos.max() >= 1 << cfg.max_keys_log2)):
        raise ValueError(f"q_pos: allowed: one position per query row in 0..{(1 << cfg.max_keys_log2) - 1}")
    return q_pos


def attention(cfg: AttentionConfig, q, k, v, trace=None, q_pos=None) -> np.ndarray:
    """Output rows (P, F) as signed integers with `out_frac` fractional bits, exactly as the array computes them.

    Query rows are processed in tiles of p0 (a tile may be partial), keys in tiles of m0 (the last one may be
    partial). `trace` (a list) collects per-key-tile state of the last query tile, for tests. Causal configs:
    `q_pos` (default 0, 1, 2, ...) is each query's position; key m is masked for queries at positions < m."""
    q, k, v = check_inputs(cfg, q, k, v)
    q_pos = _positions(cfg, q, q_pos)
    rows = []
    for q0 in range(0, q.shape[0], cfg.p0):
        rd, rnv = _query_tile(cfg, q[q0:q0 + cfg.p0], k, v, q_pos[q0:q0 + cfg.p0], trace)
        rows.append(normalize(cfg, rd, rnv))
    return np.concatenate(rows, axis=0)


def attention_reference(cfg: AttentionConfig, q, k, v, q_pos=None) -> np.ndarray:
    """float64 softmax attention on the same integers: softmax over base-2 logits S / 2^(shift + F), times V,
    in output units (x 2^out_frac). No floor, no table, no truncation: the golden model's error is against this."""
    q, k, v = check_inputs(cfg, q, k, v)
    q_pos = _positions(cfg, q, q_pos)
    logits = (q.astype(np.float64) @ k.T.astype(np.float64)) / 2.0 ** (cfg.score_shift + cfg.logit_frac)
    if cfg.causal:
        logits = np.where(np.arange(k.shape[0])[None, :] <= q_pos[:, None], logits, -np.inf)
    wts = np.exp2(logits - logits.max(axis=1, keepdims=True))
    return (wts @ v.astype(np.float64)) / wts.sum(axis=1, keepdims=True) * 2.0 ** cfg.out_frac


def quantize_head(cfg: AttentionConfig, q, k, v, scale: float | None = None) -> dict:
    """Real float Q (P, E), K (N, E), V (N, F) -> the integer inputs of the array.

    K and V use symmetric per-tensor scales (max |x| -> 2^(b-1) - 1); the softmax scale s (default 1/sqrt(E)) and
    log2(e) are folded into Q's scale, so that S / 2^(shift+F) ~ s * log2(e) * Q.K. Q values beyond the integer
    range are clipped (counted in `q_clipped`). Returns q, k, v (int64), and `out_scale`: real output =
    out / out_scale."""
    arrs = {}
    for name, x in (("q", q), ("k", k), ("v", v)):
        a = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: contains NaN or Inf; the array's integer format has no code for them")
        if a.ndim != 2 or a.shape[1] != cfg.head_dim:
            raise ValueError(f"{name}: head dimension mismatch: got shape {a.shape}, config head_dim is "
                             f"{cfg.head_dim}")
        arrs[name] = a
    scale = 1.0 / math.sqrt(cfg.head_dim) if scale is None else scale
    top = (1 << (cfg.data_bits - 1)) - 1
    sk = top / max(np.abs(arrs["k"]).max(), 1e-30)
    sv = top / max(np.abs(arrs["v"]).max(), 1e-30)
    sq = scale * math.log2(math.e) * 2.0 ** (cfg.score_shift + cfg.logit_frac) / sk
    qi = np.round(arrs["q"] * sq)
    clipped = int(np.sum(np.abs(qi) > top))
    return {"q": np.clip(qi, -top, top).astype(np.int64), "k": np.round(arrs["k"] * sk).astype(np.int64),
            "v": np.round(arrs["v"] * sv).astype(np.int64), "q_clipped": clipped,
            "out_scale": sv * 2.0 ** cfg.out_frac}


KIND_QUERY, KIND_KEYVALUE = 0, 1


def stream_beats(cfg: AttentionConfig, q, k, v, q_pos=None) -> dict:
    """The input beats of the array's stream for Q (P, E) against K/V (N, E/F): per query tile of p0 rows,
    its Q rows (kind 0) then all N K/V rows (kind 1, `last` on the final one). Fields: x, v (beats, head_dim),
    kind, last (+ pos for causal configs: the query position on QUERY beats, 0 on K/V beats)."""
    q, k, v = check_inputs(cfg, q, k, v)
    q_pos = _positions(cfg, q, q_pos)
    xs, vs, kinds, lasts, pos = [], [], [], [], []
    zeros = np.zeros((1, cfg.head_dim), dtype=np.int64)
    for q0 in range(0, q.shape[0], cfg.p0):
        qt = q[q0:q0 + cfg.p0]
        xs += [qt, k]
        vs += [np.repeat(zeros, len(qt), axis=0), v]
        kinds += [KIND_QUERY] * len(qt) + [KIND_KEYVALUE] * len(k)
        lasts += [0] * (len(qt) + len(k) - 1) + [1]
        pos += q_pos[q0:q0 + cfg.p0].tolist() + [0] * len(k)
    beats = {"x": np.concatenate(xs), "v": np.concatenate(vs), "kind": np.array(kinds), "last": np.array(lasts)}
    if cfg.causal:
        beats["pos"] = np.array(pos, dtype=np.int64)
    return beats


def best_score_shift(cfg: AttentionConfig, q, k, scale: float | None = None) -> int:
    """The largest score_shift for which `quantize_head` does not clip Q (more shift = finer Q): a config choice
    the driver makes once per layer, since the shift is fixed in the hardware."""
    scale = 1.0 / math.sqrt(cfg.head_dim) if scale is None else scale
    top = (1 << (cfg.data_bits - 1)) - 1
    sk = top / max(np.abs(np.asarray(k, dtype=np.float64)).max(), 1e-30)
    qmax = max(np.abs(np.asarray(q, dtype=np.float64)).max(), 1e-30)
    room = top * sk / (scale * math.log2(math.e) * 2.0 ** cfg.logit_frac * qmax)
    return int(min(max(math.floor(math.log2(room)), 0), cfg.score_width - 2))
