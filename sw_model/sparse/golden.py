"""N:M structured sparsity along K and the integer arithmetic of the sparse DSP chain (golden model).

Storage (cuSPARSELt-style): each group of M consecutive weights along K keeps N values plus N indices of
log2(M) bits, `w[g*M + idx[g*N + j]] = val[g*N + j]`. The generic functions (`prune_nm`, `compress`,
`decompress`, `check_compressed`, `sparse_dot`) work for any power-of-two M; the chain functions (`pack_dot`,
`chain_model`) describe what the gateware of `hwgen.sparse.chain` computes beat by beat, bit for bit, including
how it treats out-of-range indices and the 2-lane packed mode. Never imports amaranth.
"""
from __future__ import annotations

import enum

import numpy as np


class SparseFormatError(ValueError):
    """Compressed weights or an N:M spec are malformed; the message says where and what is allowed."""


class SparseMode(enum.IntEnum):
    """Runtime modes of the chain; the value is the `mode` field of an input beat."""
    DENSE = 0
    S2_4 = 1
    S1_4 = 2
    S2_8 = 3
    S4_8 = 4


MODE_NM = {SparseMode.DENSE: (1, 1), SparseMode.S2_4: (2, 4), SparseMode.S1_4: (1, 4),
           SparseMode.S2_8: (2, 8), SparseMode.S4_8: (4, 8)}
MODE_NAMES = {"dense": SparseMode.DENSE, "2:4": SparseMode.S2_4, "1:4": SparseMode.S1_4,
              "2:8": SparseMode.S2_8, "4:8": SparseMode.S4_8}
INDEX_BITS = 3          # index field per stage: log2 of the largest M of the chain modes
ACT_BITS = 8


def parse_nm(spec) -> tuple[int, int]:
    """'2:4' or (2, 4) -> (2, 4); M must be a power of two (1..256) and 1 <= N <= M."""
    try:
        n, m = (int(v) for v in (spec.split(":") if isinstance(spec, str) else spec))
    except (ValueError, TypeError):
        raise SparseFormatError(f"N:M: got {spec!r}, allowed: 'N:M' with integers, e.g. '2:4'") from None
    if m < 1 or m > 256 or m & (m - 1):
        raise SparseFormatError(f"N:M: got {n}:{m}, M must be a power of two from 1 to 256")
    if not 1 <= n <= m:
        raise SparseFormatError(f"N:M: got {n}:{m}, N must be from 1 to M = {m}")
    return n, m


def mode_of(mode) -> SparseMode:
    if isinstance(mode, str):
        if mode not in MODE_NAMES:
            raise SparseFormatError(f"mode: got {mode!r}, allowed: {', '.join(MODE_NAMES)}")
        return MODE_NAMES[mode]
    try:
        return SparseMode(mode)
    except ValueError:
        raise SparseFormatError(f"mode: got {mode!r}, allowed: {', '.join(MODE_NAMES)}") from None


def _groups(w, m: int, what: str = "weights"):
    w = np.asarray(w)
    if w.ndim == 0 or w.shape[-1] % m:
        k = w.shape[-1] if w.ndim else 0
        raise SparseFormatError(f"{what}: K = {k} is not a multiple of M = {m}")
    return w.reshape(w.shape[:-1] + (w.shape[-1] // m, m))


def prune_nm(w, n: int, m: int):
    """Magnitude pruning along the last axis: keep the N largest |w| of every group of M (ties: lower index)."""
    n, m = parse_nm((n, m))
    g = _groups(w, m)
    order = np.argsort(-np.abs(g), axis=-1, kind="stable")[..., :n]
    keep = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, g, 0).reshape(np.shape(w))


def _where(shape, flat: int) -> str:
    pos = np.unravel_index(flat, shape)
    return f"group {pos[-1]}" + (f" of row {tuple(int(p) for p in pos[:-1])}" if len(pos) > 1 else "")


def compress(w, n: int, m: int):
    """Pruned weights (at most N nonzeros per group of M) -> (values, indices), both shaped (..., K // M * N).

    The kept positions of a group are its nonzeros in ascending order, topped up with the lowest zero
    positions (value 0) so that every group has exactly N distinct indices."""
    n, m = parse_nm((n, m))
    g = _groups(w, m)
    nnz = np.count_nonzero(g, axis=-1)
    if (nnz > n).any():
        bad = int(np.argmax((nnz > n).ravel()))
        raise SparseFormatError(f"weights: {_where(nnz.shape, bad)} has {nnz.ravel()[bad]} nonzero values, "
                                f"allowed at most N = {n} (prune with prune_nm first)")
    pos = np.sort(np.argsort(g == 0, axis=-1, kind="stable")[..., :n], axis=-1)
    values = np.take_along_axis(g, pos, axis=-1)
    shape = g.shape[:-2] + (g.shape[-2] * n,)
    return values.reshape(shape), pos.astype(np.uint8).reshape(shape)


def check_compressed(values, indices, n: int, m: int, value_bits: int | None = None):
    """Raise SparseFormatError unless (values, indices) is a valid N:M compressed tensor: equal shapes, a
    multiple of N along the last axis, indices in 0..M-1 and distinct within each group, values that fit in
    signed `value_bits` bits (when given)."""
    n, m = parse_nm((n, m))
    values, indices = np.asarray(values), np.asarray(indices)
    if values.shape != indices.shape:
        raise SparseFormatError(f"values and indices: shapes {values.shape} and {indices.shape} differ")
    if values.ndim == 0 or values.shape[-1] % n:
        raise SparseFormatError(f"values: last axis {values.shape[-1] if values.ndim else 0} is not a "
                                f"multiple of N = {n}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise SparseFormatError(f"indices: got dtype {indices.dtype}, allowed: integers")
    gi = indices.reshape(indices.shape[:-1] + (-1, n)).astype(np.int64)
    out = (gi < 0) | (gi >= m)
    if out.any():
        bad = int(np.argmax(out.any(axis=-1).ravel()))
        val = int(gi.reshape(-1, n)[bad][out.reshape(-1, n)[bad]][0])
        raise SparseFormatError(f"indices: {_where(gi.shape[:-1], bad)} has index {val}, allowed: 0..{m - 1}")
    s = np.sort(gi, axis=-1)
    dup = (s[..., 1:] == s[..., :-1]).any(axis=-1) if n > 1 else np.zeros(s.shape[:-1], bool)
    if dup.any():
        bad = int(np.argmax(dup.ravel()))
        row = s.reshape(-1, n)[bad]
        val = int(row[1:][row[1:] == row[:-1]][0])
        raise SparseFormatError(f"indices: {_where(gi.shape[:-1], bad)} repeats index {val}; the N = {n} "
                                f"indices of a group must be distinct")
    if value_bits is not None:
        lo, hi = -(1 << (value_bits - 1)), (1 << (value_bits - 1)) - 1
        v = values.astype(np.int64)
        bad = (v < lo) | (v > hi) | (v != values)
        if bad.any():
            k = int(np.argmax(bad.ravel()))
            raise SparseFormatError(f"values: {values.ravel()[k].item()!r} at flat position {k} does not fit in "
                                    f"signed {value_bits} bits ({lo}..{hi})")


def decompress(values, indices, n: int, m: int):
    """(values, indices) -> dense weights (..., K) with K = last axis // N * M."""
    check_compressed(values, indices, n, m)
    values, indices = np.asarray(values), np.asarray(indices).astype(np.int64)
    gv = values.reshape(values.shape[:-1] + (-1, n))
    dense = np.zeros(gv.shape[:-1] + (m,), dtype=values.dtype)
    np.put_along_axis(dense, indices.reshape(gv.shape), gv, axis=-1)
    return dense.reshape(values.shape[:-1] + (gv.shape[-2] * m,))


def sparse_dot(values, indices, x, n: int, m: int):
    """Exact integer y = sum_j val[j] * x[(j // N) * M + idx[j]] for each row of `values`; `x` is (K,) or
    (K, B) (GEMV / GEMM). Returns int64."""
    check_compressed(values, indices, n, m)
    values = np.asarray(values, dtype=np.int64)
    kc = values.shape[-1]
    pos = (np.arange(kc) // n) * m + np.asarray(indices, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    if x.shape[0] != kc // n * m:
        raise SparseFormatError(f"x: K = {x.shape[0]}, but the weights cover K = {kc // n * m}")
    gathered = x[pos]                                   # (..., kc) or (..., kc, B)
    return (values[..., None] * gathered).sum(axis=-2) if x.ndim == 2 else (values * gathered).sum(axis=-1)


# ------------------------------------------------------------------------------------------------------------
# The chain: beats and the per-beat arithmetic of hwgen.sparse.chain.SparseChain
# ------------------------------------------------------------------------------------------------------------

def groups_per_beat(mode, stages: int) -> int:
    """Groups of M one beat carries in N:M mode (dense: `stages` single positions); 0 = mode unusable."""
    n, _ = MODE_NM[mode_of(mode)]
    return stages // n


def window(mode, stages: int) -> int:
    """Activations one beat uses (K positions it covers): dense `stages`, N:M (stages // N) * M."""
    n, m = MODE_NM[mode_of(mode)]
    return (stages // n) * m


def active_stages(mode, stages: int) -> int:
    n, _ = MODE_NM[mode_of(mode)]
    return (stages // n) * n


def stage_position(mode, stages: int, s: int, idx: int):
    """Which activation of the beat's window stage `s` multiplies (None: the stage adds 0). Hardware rule: an
    index uses only its low log2(M) bits; stages past the last whole group are idle."""
    n, m = MODE_NM[mode_of(mode)]
    if s >= (stages // n) * n:
        return None
    return s if m == 1 else (s // n) * m + (int(idx) & (m - 1))


def check_range(name: str, values, bits: int):
    """Raise SparseFormatError unless every entry of `values` is an integer that fits in signed `bits` bits."""
    v = np.asarray(values)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    bad = (v < lo) | (v > hi) | (np.round(v) != v)
    if bad.any():
        k = int(np.argmax(bad.ravel()))
        raise SparseFormatError(f"{name}: {v.ravel()[k].item()!r} at flat position {k} does not fit in signed "
                                f"{bits} bits ({lo}..{hi})")


def pack_dot(w, x, mode, stages: int, x_width: int, indices=None, x2=None, weight_bits: int = 8) -> dict:
    """Driver side: the beats of one dot product. Dense: `w` is the dense row (K,). N:M: `w`/`indices` are the
    compressed row (K // M * N,). K is zero-padded up to whole beats. Weights must fit signed `weight_bits`,
    activations signed 8 bits. Returns field -> array (w, idx: (B, stages); x[, x2]: (B, x_width); mode, last:
    (B,))."""
    mode = mode_of(mode)
    check_range("w", w, weight_bits)
    check_range("x", x, ACT_BITS)
    if x2 is not None:
        check_range("x2", x2, ACT_BITS)
    n, m = MODE_NM[mode]
    win = window(mode, stages)
    if win == 0:
        raise SparseFormatError(f"mode: {mode.name} needs at least N = {n} stages, the chain has {stages}")
    w = np.asarray(w, dtype=np.int64)
    if mode == SparseMode.DENSE:
        idx = np.zeros_like(w)
    else:
        if indices is None:
            raise SparseFormatError("indices: required in N:M modes")
        check_compressed(w, indices, n, m)
        idx = np.asarray(indices, dtype=np.int64)
    k = len(w) // n * m
    xs = [np.asarray(v, dtype=np.int64) for v in ((x,) if x2 is None else (x, x2))]
    for v in xs:
        if v.shape != (k,):
            raise SparseFormatError(f"x: shape {v.shape}, the weights cover K = {k}")
    beats = max(1, -(-k // win))
    per = win // m * n                              # compressed entries per beat
    wb, ib = np.zeros((beats, stages), np.int64), np.zeros((beats, stages), np.int64)
    fill = np.zeros(beats * per, np.int64)
    fill[:len(w)] = w
    wb[:, :per] = fill.reshape(beats, per)
    fill_i = np.tile(np.arange(n), beats * per // n)  # padding groups: distinct indices, zero values
    fill_i[:len(idx)] = idx
    ib[:, :per] = fill_i.reshape(beats, per)
    out = {"w": wb, "idx": ib}
    for name, v in zip(("x", "x2"), xs):
        xb = np.zeros((beats, x_width), np.int64)
        pad = np.zeros(beats * win, np.int64)
        pad[:k] = v
        xb[:, :win] = pad.reshape(beats, win)
        out[name] = xb
    out["mode"] = np.full(beats, int(mode), np.int64)
    out["last"] = np.zeros(beats, np.int64)
    out["last"][-1] = 1
    return out


def concat_beats(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def pack_gemm(values, x, mode, stages: int, x_width: int, indices=None, packed: bool = False,
              weight_bits: int = 8) -> dict:
    """Beats of Y = W X: `values` (R, Kc) rows (dense: (R, K)), `x` (K,) or (K, B). Vectors leave in the order
    (column, row); packed chains take two columns per vector (y <- column c, y2 <- column c + 1; an odd last
    column is paired with zeros)."""
    x = np.asarray(x)
    cols = x[:, None] if x.ndim == 1 else x
    values = np.atleast_2d(values)
    idx = None if indices is None else np.atleast_2d(indices)
    parts = []
    step = 2 if packed else 1
    for c in range(0, cols.shape[1], step):
        x2 = None
        if packed:
            x2 = cols[:, c + 1] if c + 1 < cols.shape[1] else np.zeros(cols.shape[0], np.int64)
        for r in range(values.shape[0]):
            parts.append(pack_dot(values[r], cols[:, c], mode, stages, x_width,
                                  indices=None if idx is None else idx[r], x2=x2, weight_bits=weight_bits))
    return concat_beats(parts)


def unpack_gemm(outputs: dict, rows: int, cols: int, packed: bool = False):
    """Chain outputs of `pack_gemm` beats -> Y (rows, cols)."""
    if not packed:
        return np.asarray(outputs["y"]).reshape(cols, rows).T
    pairs = -(-cols // 2)
    y = np.stack([np.asarray(outputs["y"]).reshape(pairs, rows), np.asarray(outputs["y2"]).reshape(pairs, rows)],
                 axis=1).reshape(2 * pairs, rows)
    return y[:cols].T


def _wrap(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def beat_sum(w, idx, x, mode, stages: int) -> int:
    """What the cascade adds up for one beat (exact, Python ints). Unknown mode codes add 0."""
    try:
        mode = SparseMode(int(mode))
    except ValueError:
        return 0
    total = 0
    for s in range(stages):
        p = stage_position(mode, stages, s, idx[s])
        if p is not None:
            total += int(w[s]) * int(x[p])
    return total


def lane_split(p: int, lane_bits: int) -> tuple[int, int]:
    """Split one packed cascade sum P = hi * 2^L + lo into its lanes (L = `lane_bits`), with the overflow
    adjust: lo is taken from the window -2^(L-1) + 1 .. 2^(L-1) (not the plain sign extension's
    -2^(L-1) .. 2^(L-1) - 1), so a low-lane sum of exactly +2^(L-1) -- e.g. eight (-128) x (-128) products in an
    18-bit lane -- is returned exactly instead of borrowing 1 from the upper lane. Hardware: t = P - 1,
    lo = sext(t[0:L]) + 1, hi = (t >> L) + t[L-1]."""
    lo = _wrap(p - 1, lane_bits) + 1
    return lo, (p - lo) >> lane_bits


def lane_exact_products(weight_bits: int, lane_bits: int) -> int:
    """Largest number k of signed weight x signed 8-bit activation products whose low-lane sum always lies in
    `lane_split`'s window (k = 2^(L - weight_bits - 7) for the allowed widths: 8 for INT8 in 18-bit lanes, 2 for
    INT8 in 16-bit lanes). Sums of more products can leave the window: lo wraps and hi is off by the carry."""
    half = 1 << (lane_bits - 1)
    most_pos = 1 << (weight_bits - 1 + ACT_BITS - 1)              # (-2^(wb-1)) * (-128)
    most_neg = (1 << (weight_bits - 1)) * ((1 << (ACT_BITS - 1)) - 1)   # (-2^(wb-1)) * 127, magnitude
    return min(half // most_pos, (half - 1) // most_neg)


def chain_model(beats: dict, stages: int, acc_bits: int, packed: bool = False, lane_bits: int = 18) -> dict:
    """Bit-exact outputs of the (ungrouped) chain for a beat stream: per beat the cascade sum; summed over the
    beats of a vector in an `acc_bits` two's-complement accumulator (wraps), emitted on `last`.

    Packed: each stage multiplies its weight by (x2 << lane_bits) + x (two activations sharing one weight);
    per beat the cascade sum P is split by `lane_split` (sign correction + overflow adjust). If the true
    low-lane sum leaves the window, lo wraps and hi is off by the carry, exactly as in the hardware.
    y = accumulated lo, y2 = accumulated hi."""
    ys, y2s, acc, acc2 = [], [], 0, 0
    for b in range(len(beats["mode"])):
        w, idx, mode = beats["w"][b], beats["idx"][b], beats["mode"][b]
        if packed:
            xp = [(int(h) << lane_bits) + int(lo) for h, lo in zip(beats["x2"][b], beats["x"][b])]
            lo, hi = lane_split(beat_sum(w, idx, xp, mode, stages), lane_bits)
            acc, acc2 = _wrap(acc + lo, acc_bits), _wrap(acc2 + hi, acc_bits)
        else:
            acc = _wrap(acc + beat_sum(w, idx, beats["x"][b], mode, stages), acc_bits)
        if beats["last"][b]:
            ys.append(acc)
            y2s.append(acc2)
            acc = acc2 = 0
    out = {"y": np.array(ys, dtype=np.int64)}
    if packed:
        out["y2"] = np.array(y2s, dtype=np.int64)
    return out


def lane_out_of_window(lo_sum, lane_bits: int):
    """True where an exact low-lane sum is outside `lane_split`'s window (the split wraps)."""
    lo_sum = np.asarray(lo_sum)
    return (lo_sum <= -(1 << (lane_bits - 1))) | (lo_sum > (1 << (lane_bits - 1)))


def lane_overflows(beats: dict, stages: int, lane_bits: int) -> np.ndarray:
    """Per beat of an ungrouped packed chain: True where the exact low-lane sum leaves the lane window."""
    lo_sum = np.array([beat_sum(beats["w"][b], beats["idx"][b], beats["x"][b], beats["mode"][b], stages)
                       for b in range(len(beats["mode"]))])
    return lane_out_of_window(lo_sum, lane_bits)
