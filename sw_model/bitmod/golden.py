"""Bit-exact golden model of the BitMoD array (hwgen/bitmod/array.py): weights as signed power-of-two terms,
INT8 activations, per-cycle k-way term x activation dot products, exact integer accumulation, bit-serial
dequantization by the unsigned 8-bit group scale code.

Fixed point: every weight is handled in HALF units (1 fraction bit), so INT and FP groups share one datapath:
INT8/INT6 code c -> 2c, FP4/FP3 value v -> 2v (SVs included). Terms of one weight, in cycle order j:
  INT8 / INT6  radix-4 Booth digit d_j of (b_{2j+1}, b_{2j}, b_{2j-1}) (b_{-1} = 0), j < 4 / 3:
               term = d_j * 2 * 4^j  -> lane shift 1 + (|d_j| == 2), common shift (bsig) 2j
  FP4 / FP3    half-unit magnitude m (5 bits); j = 0: its leading one, j = 1: the leading one of the rest;
               sign = code sign (SV: the SV's sign) -> lane shift = bit position, bsig = 0
A beat of the array carries `lanes` weights per column and `lanes` activations per row; it takes
T = max over columns of terms(dtype) cycles; a column whose datatype has fewer terms adds zero terms.
PE (r, c), cycle j:  S = sum_l a[r, l] * (+-2^shift[c, l, j]);  acc += S << bsig[c, j]   (exact integers)
At the end of a group (every G/lanes beats): acc -> dequantizer, acc = 0; the dequantizer computes
acc * scale[c] MSB first (prod = 2 prod + bit_i * acc, 8 cycles) and adds it to the output accumulator; the
beat with `last` set closes the vector and the output leaves with the last group's dequantized sum.
All arithmetic is exact: the output is y[r, c] = sum_g scale_g[c] * sum_{n in g} a[r, n] * w_half[c, n].
SV register file: 8 words (FP4 selectors 0..3, FP3 selectors 0..3), reset to the config's tables; a beat with
sv_we = 1 writes sv_val (sign << 5 | half-unit magnitude) to sv_addr, computes nothing and takes 1 cycle;
every later compute beat decodes its SV codes with the table current at that beat.

Cycle model (no gaps, no backpressure): input beat b is accepted T_b cycles after beat b-1; the output of a
vector is accepted LATENCY cycles after its last beat (8 dequantization cycles + the output register).
"""
from __future__ import annotations

import numpy as np

from sw_model.bitmod.config import ACT_BITS, DTYPE_BY_CODE, DTYPES, SCALE_BITS, BitModConfig, sv_reg_encode

LATENCY = SCALE_BITS + 1
TERMS = np.array([DTYPE_BY_CODE[c].terms for c in range(4)])
BOOTH = {0b000: 0, 0b001: 1, 0b010: 1, 0b011: 2, 0b100: -2, 0b101: -1, 0b110: -1, 0b111: 0}


def half_units(codes, dtype: int, sv_sel, cfg: BitModConfig, sv_table=None) -> np.ndarray:
    """Value of weight codes in half units (the reference path: value tables, no term decomposition).
    `sv_table`: the 4 SVs of this datatype in weight units (default: the config's reset table)."""
    d = DTYPE_BY_CODE[int(dtype)]
    c = np.asarray(codes, dtype=np.int64)
    if d.kind == "int":
        return 2 * np.where(c >= 1 << (d.bits - 1), c - (1 << d.bits), c)
    mag_idx = c & ((1 << (d.bits - 1)) - 1)
    neg = c >> (d.bits - 1)
    grid2 = (2 * np.asarray(d.grid)).astype(np.int64)
    v = np.where(neg == 1, -grid2[mag_idx], grid2[mag_idx])
    sv2 = (2 * np.asarray(cfg.sv_table(d.name) if sv_table is None else sv_table)).astype(np.int64)
    return np.where(c == 1 << (d.bits - 1), sv2[np.asarray(sv_sel, dtype=np.int64)], v)


def booth_digits(codes, bits: int) -> np.ndarray:
    """Radix-4 Booth digits (..., bits // 2) of two's complement codes, least significant first."""
    c = np.asarray(codes, dtype=np.int64)
    ext = c << 1                                              # appends b_{-1} = 0
    lut = np.array([BOOTH[t] for t in range(8)])
    return np.stack([lut[(ext >> (2 * j)) & 7] for j in range(bits // 2)], axis=-1)


def _leading_one(x: np.ndarray) -> np.ndarray:
    """Bit position of the leading one (x > 0); -1 for x == 0."""
    out = np.full(x.shape, -1, dtype=np.int64)
    for b in range(5):
        out = np.where((x >> b) & 1 == 1, b, out)
    return out


def weight_terms(codes, dtype: int, sv_sel, cfg: BitModConfig, sv_table=None) -> tuple[np.ndarray, np.ndarray]:
    """Terms of every weight: (signed half-unit lane values before bsig, shape (..., 4); bsig, shape (4,)).
    Terms beyond the datatype's count are zero. sum_j lane[..., j] << bsig[j] == half_units(...)."""
    d = DTYPE_BY_CODE[int(dtype)]
    c = np.asarray(codes, dtype=np.int64)
    lane = np.zeros(c.shape + (4,), dtype=np.int64)
    if d.kind == "int":
        dig = booth_digits(c & ((1 << d.bits) - 1), d.bits)
        lane[..., :d.terms] = 2 * dig
        return lane, np.array([0, 2, 4, 6])
    v = half_units(c, dtype, sv_sel, cfg, sv_table)
    mag, sign = np.abs(v), np.where(v < 0, -1, 1)
    lo0 = _leading_one(mag)
    first = np.where(lo0 >= 0, 1 << np.maximum(lo0, 0), 0)
    rest = mag - first
    lo1 = _leading_one(rest)
    second = np.where(lo1 >= 0, 1 << np.maximum(lo1, 0), 0)
    lane[..., 0], lane[..., 1] = sign * first, sign * second
    return lane, np.array([0, 0, 0, 0])


def sv_reg_decode(word: int) -> float:
    mag = word & 31
    if bin(mag).count("1") > 2:
        raise ValueError(f"sv_val: got {word:#x}, the magnitude {mag} has more than two one bits")
    return (-mag if word >> 5 else mag) / 2


def _split(cfg: BitModConfig, beats: dict) -> tuple[dict, np.ndarray]:
    """Drop SV-write beats (sv_we = 1), applying them in order -> (compute beats, (n, 2, 4) SV tables in weight
    units, FP4 then FP3, as seen by each compute beat)."""
    n = len(np.asarray(beats["last"]))
    we = np.asarray(beats.get("sv_we", np.zeros(n)), dtype=np.int64).reshape(-1)
    addr = np.asarray(beats.get("sv_addr", np.zeros(n)), dtype=np.int64).reshape(-1)
    val = np.asarray(beats.get("sv_val", np.zeros(n)), dtype=np.int64).reshape(-1)
    if len(we) != n or len(addr) != n or len(val) != n:
        raise ValueError("beats: every field needs the same number of beats")
    table = np.array([cfg.sv_fp4, cfg.sv_fp3], dtype=np.float64)
    tables = []
    for b in range(n):
        if we[b]:
            if not 0 <= addr[b] < 8 or not 0 <= val[b] < 64:
                raise ValueError(f"sv_addr/sv_val: allowed 0..7 / 0..63, got {addr[b]} / {val[b]} at beat {b}")
            table[addr[b] >> 2, addr[b] & 3] = sv_reg_decode(int(val[b]))
        else:
            tables.append(table.copy())
    keep = we == 0
    compute = {f: np.asarray(beats[f])[keep] for f in ("w", "a", "dtype", "sv", "scale", "last")}
    return compute, np.array(tables).reshape(-1, 2, 4)


def _int8_only(cfg: BitModConfig):
    if cfg.act != "int8":
        raise ValueError(f"act: got {cfg.act!r}; this model is for act='int8', use sw_model.bitmod.fp16 for 'fp16'")


def _check_beats(cfg: BitModConfig, beats: dict) -> tuple[np.ndarray, ...]:
    k, R, C = cfg.lanes, cfg.rows, cfg.cols
    w = np.asarray(beats["w"], dtype=np.int64).reshape(-1, C, k)
    a = np.asarray(beats["a"], dtype=np.int64).reshape(-1, R, k)
    dt = np.asarray(beats["dtype"], dtype=np.int64).reshape(-1, C)
    sv = np.asarray(beats["sv"], dtype=np.int64).reshape(-1, C)
    sc = np.asarray(beats["scale"], dtype=np.int64).reshape(-1, C)
    last = np.asarray(beats["last"], dtype=np.int64).reshape(-1)
    n = len(last)
    if not all(len(x) == n for x in (w, a, dt, sv, sc)):
        raise ValueError("beats: every field needs the same number of beats")
    if cfg.act == "fp16":
        if a.size and (a.min() < 0 or a.max() >= 1 << 16):
            raise ValueError(f"a: fp16 activations are 16-bit patterns (0..65535), got {a.min()}..{a.max()}")
    elif a.size and (a.min() < -(1 << (ACT_BITS - 1)) or a.max() >= 1 << (ACT_BITS - 1)):
        raise ValueError(f"a: activations must be int8 (-128..127), got {a.min()}..{a.max()}")
    if ((dt < 0) | (dt > 3)).any() or ((sv < 0) | (sv > 3)).any() or ((sc < 0) | (sc > 255)).any():
        raise ValueError("dtype/sv/scale: allowed 0..3 / 0..3 / 0..255")
    width = np.array([DTYPE_BY_CODE[x].bits for x in range(4)])[dt][..., None]
    if ((w < 0) | (w >= (1 << width))).any():
        raise ValueError("w: a weight code does not fit its group's datatype (int8 < 256, int6 < 64, fp4 < 16, "
                         "fp3 < 8)")
    bpg = cfg.beats_per_group
    if n % bpg or any(last[i] for i in range(n) if i % bpg != bpg - 1) or (n and not last[-1]):
        raise ValueError(f"last: vectors must be whole groups of {bpg} beats and the final beat must have last set")
    for f, x in (("dtype", dt), ("sv", sv), ("scale", sc)):
        g = x.reshape(-1, bpg, C)
        if (g != g[:, :1]).any():
            raise ValueError(f"{f}: must be the same on every beat of a group")
    return w, a, dt, sv, sc, last


def array_outputs(cfg: BitModConfig, beats: dict) -> np.ndarray:
    """Golden outputs (vectors, rows * cols), exact signed integers, row-major over (row, col).
    INT8 activations only; FP16 configs: sw_model.bitmod.fp16.array_outputs."""
    _int8_only(cfg)
    beats, tables = _split(cfg, beats)
    w, a, dt, sv, sc, last = _check_beats(cfg, beats)
    n, C, k = w.shape
    terms = np.zeros((n, C, k, 4), dtype=np.int64)          # lane values with bsig applied
    for b in range(n):
        for c in range(C):
            tab = tables[b, int(dt[b, c]) - 2] if dt[b, c] >= 2 else None
            lane, bsig = weight_terms(w[b, c], dt[b, c], sv[b, c], cfg, tab)
            terms[b, c] = lane << bsig
    # per cycle j: tree sum over lanes, then accumulate (exact, so the sum over j may run in any order)
    beat_sum = np.einsum("brl,bclj->brc", a, terms)          # (beats, rows, cols)
    acc = beat_sum.reshape(-1, cfg.beats_per_group, cfg.rows, C).sum(axis=1)          # per group
    scale = sc.reshape(-1, cfg.beats_per_group, C)[:, 0]
    deq = acc * scale[:, None, :]
    ends = np.nonzero(last.reshape(-1, cfg.beats_per_group)[:, -1])[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    if (ends - starts + 1 > cfg.max_groups).any():
        raise ValueError(f"vector length: at most max_groups={cfg.max_groups} groups per output")
    out = np.stack([deq[s:e + 1].sum(axis=0) for s, e in zip(starts, ends)]) if len(ends) else \
        np.zeros((0, cfg.rows, C), dtype=np.int64)
    return out.reshape(len(ends), -1)


def reference_outputs(cfg: BitModConfig, beats: dict) -> np.ndarray:
    """Independent float64 reference: value tables (no terms), dot products per group, times the scale."""
    _int8_only(cfg)
    beats, tables = _split(cfg, beats)
    w, a, dt, sv, sc, last = _check_beats(cfg, beats)
    wv = np.zeros(w.shape)
    for b in range(len(w)):
        for c in range(cfg.cols):
            tab = tables[b, int(dt[b, c]) - 2] if dt[b, c] >= 2 else None
            wv[b, c] = half_units(w[b, c], dt[b, c], sv[b, c], cfg, tab)
    prod = np.einsum("brl,bcl->brc", a.astype(np.float64), wv) * sc[:, None, :]
    ends = np.nonzero(last)[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    return np.stack([prod[s:e + 1].sum(axis=0) for s, e in zip(starts, ends)]).reshape(len(ends), -1)


def latency(cfg: BitModConfig) -> int:
    """Output latency after the last beat's handshake: the dequantization cycles (8, or 8 * rows with
    dequant='column') + the output register, + 1 with the decode pipeline register (LATENCY = 9 by default)."""
    return cfg.dequant_cycles + 1 + cfg.pipeline


def cycles_per_beat(beats: dict) -> np.ndarray:
    """T of every beat: the most terms among the columns' datatypes; 1 for an SV-write beat."""
    dt = np.asarray(beats["dtype"], dtype=np.int64)
    dt = dt.reshape(len(dt), -1)
    we = np.asarray(beats.get("sv_we", np.zeros(len(dt))), dtype=np.int64).reshape(-1)
    return np.where(we == 1, 1, TERMS[dt].max(axis=1))


def to_bits(values, bits: int) -> np.ndarray:
    """Signed integers -> their two's complement bit patterns (uint64), as the bench compares them."""
    return (np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)).astype(np.uint64)


def make_beats(cfg: BitModConfig, w_codes, a, dtype, sv, scale) -> dict:
    """Stream beats for one batch: weight codes (cols, n), activations (vectors, rows, n), per group
    (cols, n / G) dtype / sv / scale -> beat fields, one vector after the other (the same weights each time)."""
    k, G = cfg.lanes, cfg.group_size
    w_codes = np.asarray(w_codes, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    C, n = w_codes.shape
    if C != cfg.cols or a.shape[1] != cfg.rows or a.shape[2] != n or n % G:
        raise ValueError(f"shapes: w {w_codes.shape}, a {a.shape}; need cols={cfg.cols}, rows={cfg.rows}, "
                         f"n a multiple of group_size={G}")
    nb, v = n // k, a.shape[0]
    per_beat = {f: np.repeat(np.asarray(x, dtype=np.int64), G // k, axis=1).T for f, x in
                (("dtype", dtype), ("sv", sv), ("scale", scale))}              # (nb, cols)
    last = np.zeros(nb, dtype=np.int64)
    last[-1] = 1
    wb = w_codes.reshape(C, nb, k).transpose(1, 0, 2).reshape(nb, C * k)
    ab = a.reshape(v, cfg.rows, nb, k).transpose(0, 2, 1, 3).reshape(v * nb, cfg.rows * k)
    zeros = np.zeros(v * nb, dtype=np.int64)
    return {"w": np.tile(wb, (v, 1)), "a": ab, **{f: np.tile(x, (v, 1)) for f, x in per_beat.items()},
            "last": np.tile(last, v), "sv_we": zeros, "sv_addr": zeros, "sv_val": zeros}


def sv_write_beats(cfg: BitModConfig, writes) -> dict:
    """SV-register write beats: `writes` = [(datatype name 'fp4' | 'fp3', selector 0..3, SV in weight units)]."""
    n = len(writes)
    addr = [(4 if dt == "fp3" else 0) + sel for dt, sel, _ in writes]
    val = [sv_reg_encode(v) for _, _, v in writes]
    z = np.zeros(n, dtype=np.int64)
    return {"w": np.zeros((n, cfg.cols * cfg.lanes), dtype=np.int64), "a": np.zeros((n, cfg.rows * cfg.lanes),
            dtype=np.int64), "dtype": np.zeros((n, cfg.cols), dtype=np.int64), "sv": np.zeros((n, cfg.cols),
            dtype=np.int64), "scale": np.zeros((n, cfg.cols), dtype=np.int64), "last": z,
            "sv_we": np.ones(n, dtype=np.int64), "sv_addr": np.array(addr, dtype=np.int64),
            "sv_val": np.array(val, dtype=np.int64)}


def concat_beats(*parts: dict) -> dict:
    return {f: np.concatenate([np.asarray(p[f]) for p in parts]) for f in parts[0]}


__all__ = ["LATENCY", "latency", "DTYPES", "half_units", "booth_digits", "weight_terms", "array_outputs",
           "reference_outputs", "cycles_per_beat", "to_bits", "make_beats", "sv_write_beats", "concat_beats",
           "sv_reg_encode", "sv_reg_decode"]
