"""Window term decoding of one BitMoD array column (INT8-activation and row-aligned FP16 PEs), built for few LUTs.

Terms (sw_model/bitmod_fp16_row.window_terms): every term is +-2^shift half units with a lane shift 0..3 (a
4:1 mux per PE lane bit), times 2^bsig, bsig shared by the column:
  INT8 / INT6  radix-4 Booth digit d_j: lane shift |d_j| - 1 + 2 (j & 1), bsig 1 + 4 (j >> 1)
  FP4 / FP3    term 0: the leading one within half-unit bits 4..1 (shift = position - 1), bsig 1;
               term 1: the remaining one within bits 3..0, bsig 0 (the paper's two 4-bit leading-one detectors)
What is shared by the column is computed once: the special value's register word, its two terms, the
bsig and whether term j is beyond the datatype's term count. A lane then only needs its Booth triplet, a
small table of the FP grid's terms (magnitude index, j, FP4/FP3 -> zero, shift) and the final selection.
"""
from amaranth.hdl import Array, Cat, Const, Mux, Signal

from sw_model.bitmod.config import DTYPES

_TERMS = [DTYPES[n].terms for n in sorted(DTYPES, key=lambda n: DTYPES[n].code)]


def _window(half: int) -> list[tuple[int, int]]:
    """Window terms of a half-unit magnitude (<= 2 ones): [(zero, shift) for term 0, term 1]."""
    lo = half.bit_length() - 1
    first = 1 << lo if lo >= 1 else 0
    rest = half - first
    return [(int(first == 0), max(lo - 1, 0) if first else 0), (int(rest == 0), max(rest.bit_length() - 1, 0))]


def window_bsig(dtype, j):
    """Column bsig: INT 1 + 4 (j >> 1), FP 1 for term 0 and 0 for term 1."""
    return Mux(dtype[1], j == 0, Cat(Const(1, 2), j[1]))


def window_column(m, codes, dtype, sv, j, sv_regs, name: str):
    """codes: the column's k weight codes; dtype / sv: its datatype and SV selector; j: term number;
    sv_regs: 8 SV words (sign << 5 | half-unit magnitude, FP4 selectors 0..3 then FP3).
    Returns (bsig, [(neg, zero, shift 0..3)] per lane). Combinational."""
    bsig = Signal(3, name=f"{name}_bsig")
    beyond = Signal(name=f"{name}_beyond")
    m.d.comb += [bsig.eq(window_bsig(dtype, j)), beyond.eq(j >= Array([Const(t, 3) for t in _TERMS])[dtype])]
    is_int, fp3 = dtype[1] == 0, dtype[0]

    # the column's special value: register word, then its term j from a 32-entry table of window terms
    word = Signal(6, name=f"{name}_svw")
    m.d.comb += word.eq(Mux(fp3, Array(sv_regs[4:8])[sv], Array(sv_regs[0:4])[sv]))
    sv_zero, sv_shift = Signal(name=f"{name}_svz"), Signal(2, name=f"{name}_svsh")
    with m.Switch(Cat(word[:5], j[0])):
        for half in range(32):
            for t in range(2):
                z, sh = _window(half)[t]
                with m.Case(half | t << 5):
                    m.d.comb += [sv_zero.eq(z), sv_shift.eq(sh)]

    lanes = []
    for l, code in enumerate(codes):
        lname = f"{name}_{l}"
        neg, zero, shift = Signal(name=f"{lname}_neg"), Signal(name=f"{lname}_zero"), Signal(2, name=f"{lname}_sh")
        # INT: radix-4 Booth digit j of the two's complement code (b_{-1} = 0)
        ext = Cat(Const(0, 1), code)
        trip = Signal(3, name=f"{lname}_trip")
        m.d.comb += trip.eq(Array([ext[2 * t:2 * t + 3] for t in range(4)])[j])
        # FP: grid terms by (FP3?, term j, magnitude index); the code with only the sign set is the SV
        g_zero, g_shift = Signal(name=f"{lname}_gz"), Signal(2, name=f"{lname}_gsh")
        with m.Switch(Cat(code[:3], j[0], fp3)):
            for base, dname in enumerate(("fp4", "fp3")):
                grid = [int(2 * v) for v in DTYPES[dname].grid]
                for idx in range(8):
                    for t in range(2):
                        z, sh = _window(grid[idx % len(grid)])[t]
                        with m.Case(idx | t << 3 | base << 4):
                            m.d.comb += [g_zero.eq(z), g_shift.eq(sh)]
        f_sgn = Mux(fp3, code[2], code[3])
        f_sv = Mux(fp3, code[:3] == 0b100, code[:4] == 0b1000)
        with m.If(is_int):
            m.d.comb += [neg.eq(trip[2] & (trip != 0b111)), zero.eq((trip == 0b000) | (trip == 0b111) | beyond),
                         shift.eq(Cat((trip == 0b011) | (trip == 0b100), j[0]))]
        with m.Elif(f_sv):
            m.d.comb += [neg.eq(word[5]), zero.eq(sv_zero | beyond), shift.eq(sv_shift)]
        with m.Else():
            m.d.comb += [neg.eq(f_sgn), zero.eq(g_zero | beyond), shift.eq(g_shift)]
        lanes.append((neg, zero, shift))
    return bsig, lanes


__all__ = ["window_bsig", "window_column"]
