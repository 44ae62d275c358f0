"""The grouped sparse DSP chain (FlightLLM DSP groups with reduction nodes): geometry, driver and golden model.

The chain of S stages is cut into G DSP groups of S/G stages (`SparseChainConfig.groups`). Each group is a fixed
PCOUT->PCIN cascade that starts from 0; its sum leaves through the group's reduction node. Per beat the
reduction combines the group sums into R output rows (R = `rows_per_beat`): the chain is read as R segments of
S/R consecutive stages, each segment holds one weight row's compressed values for the beat's shared activation
window, and segment r's sum (the sum of its groups) goes to output lane r. Dense: R = 1 (all groups reduce to
one output). N:M: R = min(G, M/N) (halved while a segment would hold fewer than N stages), so the activation
window per beat stays the dense width when G >= M/N and every DSP still does one useful MAC per cycle. G = 1 is
the ungrouped chain of `sw_model.sparse.golden` (R = 1, window grows to M/N x the dense width).

Packed chains split every group sum into its two lanes (`sparse.lane_split`, sign correction + overflow adjust)
before the reduction, so a lane holds at most S/G products: the FlightLLM overflow adjust unit at the group
boundaries. Never imports amaranth.
"""
from __future__ import annotations

import numpy as np

from sw_model.sparse import golden as sp
from sw_model.sparse.golden import MODE_NM, SparseFormatError, SparseMode, lane_split, mode_of


def rows_per_beat(mode, stages: int, groups: int) -> int:
    """Output rows one beat produces: the largest power of two R <= min(G, M/N) with S/R >= N (0: N > S)."""
    n, m = MODE_NM[mode_of(mode)]
    if n > stages:
        return 0
    r = 1
    while 2 * r <= min(groups, m // n) and stages // (2 * r) >= n:
        r *= 2
    return r


def segment_stages(mode, stages: int, groups: int) -> int:
    r = rows_per_beat(mode, stages, groups)
    return stages // r if r else 0


def group_window(mode, stages: int, groups: int) -> int:
    """Activations one beat uses (shared by its R rows): (S/R // N) * M."""
    n, m = MODE_NM[mode_of(mode)]
    return segment_stages(mode, stages, groups) // n * m


def stage_candidates(mode, stages: int, groups: int, s: int):
    """The window positions stage `s` may multiply in `mode` (its sparse mux inputs; the index picks one of
    M), or None when the stage is idle (past the last whole group of its segment, or mode unusable)."""
    n, m = MODE_NM[mode_of(mode)]
    pseg = segment_stages(mode, stages, groups)
    if not pseg:
        return None
    t = s % pseg
    if t >= pseg // n * n:
        return None
    return [t] if m == 1 else [t // n * m + j for j in range(m)]


def _beat_group_sums(w, idx, xs, mode, stages: int, groups: int) -> list[int]:
    """Exact cascade sum of every DSP group for one beat (`xs`: the multiplier operands of the window)."""
    n, m = MODE_NM[mode]
    per = stages // groups
    sums = []
    for g in range(groups):
        total = 0
        for s in range(g * per, (g + 1) * per):
            cand = stage_candidates(mode, stages, groups, s)
            if cand is not None:
                total += int(w[s]) * int(xs[cand[0] if m == 1 else cand[int(idx[s]) & (m - 1)]])
        sums.append(total)
    return sums


def _known_mode(code):
    try:
        return SparseMode(int(code))
    except ValueError:
        return None


def group_chain_model(beats: dict, cfg) -> dict:
    """Bit-exact outputs of `hwgen.sparse.chain.SparseChain(cfg)` for any `cfg.groups` (G = 1 equals
    `sparse.chain_model`). Per beat: the G group sums (packed: each split into lo/hi lanes), reduced into
    lane r = the segment of the group, added to per-lane `acc_bits` accumulators (wrap), emitted on `last`.
    Lanes r >= R of a beat's mode add 0; unknown mode codes and modes the chain does not offer add 0.
    Returns y (and y2 when packed) shaped (vectors, G), or (vectors,) when G = 1."""
    s_, g_, lb = cfg.stages, cfg.groups, cfg.lane_bits
    kinds = 2 if cfg.packed else 1
    per = s_ // g_
    acc = [[0] * g_ for _ in range(kinds)]
    outs: list[list[list[int]]] = [[] for _ in range(kinds)]
    for b in range(len(beats["mode"])):
        mode = _known_mode(beats["mode"][b])
        if mode is not None and rows_per_beat(mode, s_, g_):
            if cfg.packed:
                xs = [(int(h) << lb) + int(lo) for h, lo in zip(beats["x2"][b], beats["x"][b])]
            else:
                xs = beats["x"][b]
            pseg = segment_stages(mode, s_, g_)
            for g, total in enumerate(_beat_group_sums(beats["w"][b], beats["idx"][b], xs, mode, s_, g_)):
                parts = lane_split(total, lb) if cfg.packed else (total,)
                for k, v in enumerate(parts):
                    r = g * per // pseg
                    acc[k][r] = sp._wrap(acc[k][r] + v, cfg.acc_bits)
        if beats["last"][b]:
            for k in range(kinds):
                outs[k].append(acc[k])
            acc = [[0] * g_ for _ in range(kinds)]
    res = {}
    for k, name in enumerate(("y", "y2")[:kinds]):
        a = np.array(outs[k], dtype=np.int64).reshape(-1, g_)
        res[name] = a[:, 0] if g_ == 1 else a
    return res


def group_lane_overflows(beats: dict, cfg) -> np.ndarray:
    """(beats, G) bool: where a group's exact low-lane sum leaves the lane window (packed split wraps)."""
    rows = []
    for b in range(len(beats["mode"])):
        mode = _known_mode(beats["mode"][b])
        if mode is None or not rows_per_beat(mode, cfg.stages, cfg.groups):
            rows.append([0] * cfg.groups)
            continue
        rows.append(_beat_group_sums(beats["w"][b], beats["idx"][b], beats["x"][b], mode, cfg.stages, cfg.groups))
    return sp.lane_out_of_window(np.array(rows, dtype=np.int64), cfg.lane_bits)


# ------------------------------------------------------------------------------------------------ driver

def pack_rows(values, x, mode, cfg, indices=None, x2=None) -> dict:
    """Beats of one grouped vector: up to R weight rows (2-D `values`, dense rows or compressed N:M rows with
    `indices`) times one activation column `x` (packed: and `x2`). Row r fills segment r (stages r*S/R ..);
    missing rows are zero. K is zero-padded to whole beats of `group_window` activations."""
    mode = mode_of(mode)
    n, _ = MODE_NM[mode]
    r_max = rows_per_beat(mode, cfg.stages, cfg.groups)
    if not r_max:
        raise SparseFormatError(f"mode: {mode.name} needs at least N = {n} stages, the chain has {cfg.stages}")
    values = np.atleast_2d(np.asarray(values))
    if not 1 <= len(values) <= r_max:
        raise SparseFormatError(f"rows: got {len(values)}, a {mode.name} beat of this chain carries 1 to "
                                f"R = {r_max} rows")
    if indices is not None:
        indices = np.atleast_2d(np.asarray(indices))
        if len(indices) != len(values):
            raise SparseFormatError(f"indices: {len(indices)} rows for {len(values)} rows of values")
    pseg = cfg.stages // r_max
    win = group_window(mode, cfg.stages, cfg.groups)
    parts = [sp.pack_dot(values[r], x, mode, pseg, win, indices=None if indices is None else indices[r], x2=x2,
                         weight_bits=cfg.weight_bits) for r in range(len(values))]
    beats = len(parts[0]["mode"])
    pad_idx = np.tile(np.arange(n), (beats, pseg // n + 1))[:, :pseg]   # a zero row: distinct indices
    ws = [p["w"] for p in parts] + [np.zeros((beats, pseg), np.int64)] * (r_max - len(parts))
    ids = [p["idx"] for p in parts] + [pad_idx] * (r_max - len(parts))
    out = {"w": np.hstack(ws), "idx": np.hstack(ids)}
    for name in ("x", "x2") if x2 is not None else ("x",):
        xb = np.zeros((beats, cfg.x_width), np.int64)
        xb[:, :win] = parts[0][name]
        out[name] = xb
    out["mode"], out["last"] = parts[0]["mode"], parts[0]["last"]
    return out


def pack_gemm_grouped(values, x, mode, cfg, indices=None) -> dict:
    """Beats of Y = W X on a grouped chain: `values` (rows, Kc) (dense: (rows, K)), `x` (K,) or (K, B).
    Vectors leave in the order (column, block of R rows); packed chains take two columns per vector."""
    x = np.asarray(x)
    cols = x[:, None] if x.ndim == 1 else x
    values = np.atleast_2d(values)
    idx = None if indices is None else np.atleast_2d(indices)
    r_max = max(rows_per_beat(mode, cfg.stages, cfg.groups), 1)
    parts = []
    step = 2 if cfg.packed else 1
    for c in range(0, cols.shape[1], step):
        x2 = None
        if cfg.packed:
            x2 = cols[:, c + 1] if c + 1 < cols.shape[1] else np.zeros(cols.shape[0], np.int64)
        for r0 in range(0, len(values), r_max):
            parts.append(pack_rows(values[r0:r0 + r_max], cols[:, c], mode, cfg,
                                   indices=None if idx is None else idx[r0:r0 + r_max], x2=x2))
    return sp.concat_beats(parts)


def unpack_gemm_grouped(outputs: dict, rows: int, cols: int, mode, cfg):
    """Chain outputs of `pack_gemm_grouped` beats -> Y (rows, cols)."""
    r_max = rows_per_beat(mode, cfg.stages, cfg.groups)
    blocks = -(-rows // r_max)

    def grid(name):                               # -> (vectors' columns, rows)
        a = np.asarray(outputs[name]).reshape(-1, cfg.groups)[:, :r_max]
        return a.reshape(-1, blocks * r_max)[:, :rows]
    if not cfg.packed:
        return grid("y")[:cols].T
    pairs = -(-cols // 2)
    y = np.stack([grid("y"), grid("y2")], axis=1).reshape(2 * pairs, rows)
    return y[:cols].T


def pack_nm_gemm(w, x, mode, cfg) -> dict:
    """Beats of Y = W X for an N:M-sparse weight matrix kept in its dense layout (`w` (rows, K), at most N
    nonzeros per group of M along K, K zero-padded to a multiple of M), in `mode` on chain `cfg` (grouped or
    not): the weights travel compressed (N values + N indices per group). Read back with `unpack_gemm_grouped`."""
    n, m = MODE_NM[mode_of(mode)]
    w, x = np.atleast_2d(np.asarray(w, np.int64)), np.asarray(x, np.int64)
    pad = -w.shape[1] % m
    w = np.pad(w, ((0, 0), (0, pad)))
    x = np.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1))
    if mode_of(mode) == SparseMode.DENSE:
        return pack_gemm_grouped(w, x, mode, cfg)
    values, indices = sp.compress(w, n, m)
    return pack_gemm_grouped(values, x, mode, cfg, indices=indices)
