"""BitMoD weight quantizer (Chen et al., HPCA'25, Alg. 1), its two-level scales, the hardware packing, and the
asymmetric-INT / MXFP4 baselines it is compared with.

Per group of G weights along the input channel (axis 1 of a (out, in) matrix), for each candidate grid Q of the
group's datatype (FP4/FP3: the basic grid plus one special value per SV selector 0..3, in that order; INT8/INT6:
the symmetric grid -(2^(b-1)-1)..2^(b-1)-1):
    delta = max|w_g| / max|Q|                     (symmetric absmax)
    q     = nearest grid value to w/delta; a tie goes to the LOWER grid value: (mid_{i-1}, mid_i] -> Q_i
    err   = mean((q * delta - w)^2)
and the first candidate with the smallest error wins (strict <). All of it runs in float64 (the reference runs
in fp16; float64 makes ties reproducible).
Second level (VS-Quant style): per output channel s_c = fp16(max_g delta_g / 127), the group scale code is
clip(rint(delta_g / s_c), 0, 127) (unsigned, the hardware's 8-bit scale field); the dequantized weight is
value(code) * scale_code * s_c. A NaN/Inf weight, a channel scale above the FP16 range, or a nonzero channel
whose scale underflows FP16 to zero raise ValueError.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.bitmod.config import DTYPE_BY_CODE, DTYPES, SV_FP3_DEFAULT, SV_FP4_DEFAULT, DType
from sw_model.numerics.mx import MXFormat, mx_dequantize, mx_quantize

SCALE_CODE_MAX = 127


def _dtype(name_or_code) -> DType:
    if isinstance(name_or_code, DType):
        return name_or_code
    if isinstance(name_or_code, str) and name_or_code in DTYPES:
        return DTYPES[name_or_code]
    if isinstance(name_or_code, (int, np.integer)) and int(name_or_code) in DTYPE_BY_CODE:
        return DTYPE_BY_CODE[int(name_or_code)]
    raise ValueError(f"dtype: got {name_or_code!r}, allowed: {', '.join(DTYPES)} (or codes 0..3)")


def code_table(dtype, sv: float | None = None) -> np.ndarray:
    """Value (weight units, before scaling) of every code of `dtype`; FP: code = sign << (bits-1) | magnitude
    index, the -0 code holds `sv`; INT: two's complement."""
    d = _dtype(dtype)
    n = 1 << d.bits
    if d.kind == "int":
        c = np.arange(n)
        return np.where(c >= n // 2, c - n, c).astype(np.float64)
    g = np.asarray(d.grid)
    vals = np.concatenate([g, -g])
    vals[n // 2] = np.nan if sv is None else sv
    return vals


def candidates(dtype, sv_fp4=SV_FP4_DEFAULT, sv_fp3=SV_FP3_DEFAULT) -> list[tuple[int, np.ndarray]]:
    """(sv selector, code table) of every candidate grid of a datatype, in search order."""
    d = _dtype(dtype)
    if d.kind == "int":
        return [(0, code_table(d))]
    table = sv_fp4 if d.name == "fp4" else sv_fp3
    return [(k, code_table(d, sv)) for k, sv in enumerate(table)]


def _usable(table: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct grid values and the code of each (INT: the symmetric range, never -2^(b-1))."""
    codes = np.arange(len(table))
    if kind == "int":
        keep = table > -(len(table) // 2)
        codes, table = codes[keep], table[keep]
    vals, first = np.unique(table, return_index=True)      # the lowest code wins for duplicated values
    return vals, codes[first]


def round_to_grid(x, table: np.ndarray, kind: str = "fp") -> tuple[np.ndarray, np.ndarray]:
    """Nearest grid value of each x, ties to the lower value -> (codes, values)."""
    vals, codes = _usable(table, kind)
    mids = (vals[1:] + vals[:-1]) / 2
    idx = np.searchsorted(mids, np.asarray(x, dtype=np.float64), side="left")   # x == mid -> lower value
    return codes[idx], vals[idx]


@dataclass
class BitModWeights:
    """A quantized (out, in) matrix: `codes` (out, in) uint8 weight codes, per group (out, in/G) the datatype
    code `dtype`, SV selector `sv` and unsigned INT8 `scale` code, the FP16 channel scale `chan_scale` (out,),
    and `delta` (out, in/G), the float64 first-level scales the codes were chosen with."""
    codes: np.ndarray
    dtype: np.ndarray
    sv: np.ndarray
    scale: np.ndarray
    chan_scale: np.ndarray
    delta: np.ndarray
    group_size: int
    sv_fp4: tuple = SV_FP4_DEFAULT
    sv_fp3: tuple = SV_FP3_DEFAULT

    def values(self) -> np.ndarray:
        """value(code) per weight (before scaling), (out, in) float64."""
        out = np.empty(self.codes.shape)
        G = self.group_size
        dt = np.repeat(self.dtype, G, axis=1)
        sv = np.repeat(self.sv, G, axis=1)
        for d in DTYPES.values():
            for k, table in candidates(d, self.sv_fp4, self.sv_fp3):
                sel = (dt == d.code) & (sv == k)
                out[sel] = table[self.codes[sel]]
        return out

    def dequantize(self, first_level: bool = False) -> np.ndarray:
        """value * scale_code * s_c (or value * delta with first_level=True: the one-level fake quant)."""
        G = self.group_size
        if first_level:
            return self.values() * np.repeat(self.delta, G, axis=1)
        s = np.repeat(self.scale.astype(np.float64), G, axis=1)
        return self.values() * s * self.chan_scale.astype(np.float64)[:, None]


def _groups(w, group_size: int) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weights: got shape {w.shape}, allowed: a 2-D (out, in) matrix")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size: got {group_size!r}, allowed: a positive integer")
    if w.shape[1] % group_size:
        raise ValueError(f"group_size: {group_size} does not divide the input channels ({w.shape[1]})")
    if not np.isfinite(w).all():
        raise ValueError("weights: contain NaN or Inf, allowed: finite values only")
    return w.reshape(w.shape[0], -1, group_size)


def quantize(w, dtypes="fp4", group_size: int = 128, sv_fp4=SV_FP4_DEFAULT, sv_fp3=SV_FP3_DEFAULT) -> BitModWeights:
    """Quantize an (out, in) matrix. `dtypes`: one datatype name for every group, or an (out, in/G) array of
    names or codes (mixed precision per group)."""
    g = _groups(w, group_size)
    out_ch, ng, G = g.shape
    if isinstance(dtypes, str):
        dt = np.full((out_ch, ng), _dtype(dtypes).code, dtype=np.uint8)
    else:
        arr = np.asarray(dtypes)
        if arr.shape != (out_ch, ng):
            raise ValueError(f"dtypes: got shape {arr.shape}, allowed: a name or shape {(out_ch, ng)}")
        dt = np.vectorize(lambda x: _dtype(x.item() if hasattr(x, "item") else x).code, otypes=[np.uint8])(arr)
    amax = np.abs(g).max(axis=2)
    codes = np.zeros(g.shape, dtype=np.uint8)
    best_err = np.full((out_ch, ng), np.inf)
    sv = np.zeros((out_ch, ng), dtype=np.uint8)
    delta = np.zeros((out_ch, ng))
    for d in DTYPES.values():
        sel = dt == d.code
        if not sel.any():
            continue
        for k, table in candidates(d, sv_fp4, sv_fp3):
            qmax = np.nanmax(np.abs(_usable(table, d.kind)[0]))
            dl = amax[sel] / qmax
            safe = np.where(dl > 0, dl, 1.0)[:, None]
            c, v = round_to_grid(g[sel] / safe, table, d.kind)
            err = np.mean((v * dl[:, None] - g[sel]) ** 2, axis=1)
            better = err < best_err[sel]                     # strict: the first candidate wins ties
            idx = tuple(a[better] for a in np.nonzero(sel))
            codes[idx] = c[better]
            best_err[idx], sv[idx], delta[idx] = err[better], k, dl[better]
    return BitModWeights(codes.reshape(out_ch, -1), dt, sv, *second_level(delta), delta, group_size,
                         tuple(sv_fp4), tuple(sv_fp3))


def second_level(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(out, ng) float group scales -> (unsigned INT8 scale codes, FP16 channel scales)."""
    dmax = delta.max(axis=1)
    with np.errstate(over="ignore"):
        chan = (dmax / SCALE_CODE_MAX).astype(np.float16)
    if np.isinf(chan).any():
        r = int(np.nonzero(np.isinf(chan))[0][0])
        raise ValueError(f"scale overflow: channel {r} needs scale {dmax[r] / SCALE_CODE_MAX:.4g}, above the FP16 "
                         f"maximum 65504")
    if ((chan == 0) & (dmax > 0)).any():
        r = int(np.nonzero((chan == 0) & (dmax > 0))[0][0])
        raise ValueError(f"scale underflow: channel {r} needs scale {dmax[r] / SCALE_CODE_MAX:.4g}, below the "
                         f"smallest FP16 subnormal")
    c = chan.astype(np.float64)[:, None]
    safe = np.where(c > 0, c, 1.0)
    codes = np.clip(np.rint(delta / safe), 0, SCALE_CODE_MAX).astype(np.uint8)
    return codes, chan


# ---- hardware memory layout --------------------------------------------------------------------------------
# Per output row, LSB first: the FP16 channel scale (16 bits), then per group a 12-bit header (dtype 2 bits,
# sv 2 bits, scale 8 bits) followed by its G weight codes at the datatype's width (8, 6, 4 or 3 bits).
# Each row starts on a byte boundary.

def _bits_of(values: np.ndarray, widths: np.ndarray) -> np.ndarray:
    values, widths = np.asarray(values, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    starts = np.repeat(np.cumsum(widths) - widths, widths)
    pos = np.arange(widths.sum()) - starts
    return ((np.repeat(values, widths) >> pos) & 1).astype(np.uint8)


def pack(qw: BitModWeights) -> list[bytes]:
    """One bytes object per output row in the hardware layout above."""
    rows = []
    width_of = {d.code: d.bits for d in DTYPES.values()}
    G = qw.group_size
    for r in range(qw.codes.shape[0]):
        vals, widths = [int(qw.chan_scale[r:r + 1].view(np.uint16)[0])], [16]
        for gi in range(qw.dtype.shape[1]):
            dt = int(qw.dtype[r, gi])
            vals += [dt, int(qw.sv[r, gi]), int(qw.scale[r, gi])]
            widths += [2, 2, 8]
            vals += qw.codes[r, gi * G:(gi + 1) * G].tolist()
            widths += [width_of[dt]] * G
        rows.append(np.packbits(_bits_of(vals, widths), bitorder="little").tobytes())
    return rows


def unpack(rows: list[bytes], in_features: int, group_size: int, sv_fp4=SV_FP4_DEFAULT,
           sv_fp3=SV_FP3_DEFAULT) -> BitModWeights:
    """Inverse of pack (delta, which is not stored, comes back as scale_code * s_c)."""
    if in_features % group_size:
        raise ValueError(f"group_size: {group_size} does not divide the input channels ({in_features})")
    ng = in_features // group_size
    n = len(rows)
    codes = np.zeros((n, in_features), dtype=np.uint8)
    dt, sv, sc = (np.zeros((n, ng), dtype=np.uint8) for _ in range(3))
    chan = np.zeros(n, dtype=np.float16)
    for r, raw in enumerate(rows):
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little").astype(np.int64)

        def field(pos, width):
            return int((bits[pos:pos + width] << np.arange(width)).sum())

        chan[r:r + 1] = np.array([field(0, 16)], dtype=np.uint16).view(np.float16)
        pos = 16
        for gi in range(ng):
            dt[r, gi], sv[r, gi], sc[r, gi] = field(pos, 2), field(pos + 2, 2), field(pos + 4, 8)
            pos += 12
            w = DTYPE_BY_CODE[int(dt[r, gi])].bits
            chunk = bits[pos:pos + w * group_size]
            if len(chunk) != w * group_size:
                raise ValueError(f"row {r}: truncated at group {gi}")
            codes[r, gi * group_size:(gi + 1) * group_size] = (chunk.reshape(group_size, w) << np.arange(w)).sum(1)
            pos += w * group_size
    delta = sc * chan.astype(np.float64)[:, None]
    return BitModWeights(codes, dt, sv, sc, chan, delta, group_size, tuple(sv_fp4), tuple(sv_fp3))


# ---- baselines ----------------------------------------------------------------------------------------------

def int_asym_fake_quant(w, bits: int, group_size: int = 128) -> np.ndarray:
    """Asymmetric INT-b per group: scale = (max - min) / (2^b - 1), zero = rint(-min / scale),
    q = clip(rint(w / scale) + zero, 0, 2^b - 1), w_hat = (q - zero) * scale. A constant group is kept as is."""
    g = _groups(w, group_size)
    lo, hi = g.min(axis=2, keepdims=True), g.max(axis=2, keepdims=True)
    rng = hi - lo
    scale = np.where(rng > 0, rng, 1.0) / ((1 << bits) - 1)
    zero = np.rint(-lo / scale)
    q = np.clip(np.rint(g / scale) + zero, 0, (1 << bits) - 1)
    out = np.where(rng > 0, (q - zero) * scale, g)
    return out.reshape(np.shape(w))


def mxfp4_fake_quant(w, block_size: int = 32) -> np.ndarray:
    """OCP MXFP4 (E2M1 elements, E8M0 scale per block of 32 along the input channel, RNE)."""
    fmt = MXFormat("e2m1", block_size)
    s, e = mx_quantize(np.asarray(w, dtype=np.float64), fmt, axis=1)
    return mx_dequantize(s, e, fmt, axis=1)
