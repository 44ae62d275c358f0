"""Term decoding of one BitMoD array column: `TermDecoder`, the block the array instantiates per column.

Window decoding (INT8-activation and row-aligned FP16 PEs, built for few LUTs):

Terms (sw_model/bitmod_fp16_row.window_terms): every term is +-2^shift half units with a lane shift 0..3 (a
4:1 mux per PE lane bit), times 2^bsig, bsig shared by the column:
  INT8 / INT6  radix-4 Booth digit d_j: lane shift |d_j| - 1 + 2 (j & 1), bsig 1 + 4 (j >> 1)
  FP4 / FP3    term 0: the leading one within half-unit bits 4..1 (shift = position - 1), bsig 1;
               term 1: the remaining one within bits 3..0, bsig 0 (the paper's two 4-bit leading-one detectors)
What is shared by the column is computed once: the special value's register word, its two terms, the
bsig and whether term j is beyond the datatype's term count. A lane then only needs its Booth triplet, a
small table of the FP grid's terms (magnitude index, j, FP4/FP3 -> zero, shift) and the final selection.

Plain decoding (product-aligned FP16 PEs): INT terms as the golden model's (Booth digit j: lane shift 1 or 2,
bsig 2j), FP terms the leading one (j = 0) and the next one (j = 1) of the half-unit magnitude (shift 0..4,
bsig 0).
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.layouts import column_terms_layout, uses_window_terms
from sw_model.bitmod.config import CODE_BITS, DTYPES, BitModConfig

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


def _lod(m, x, width, name):
    """Leading-one position of x (0 when x == 0; callers test x == 0 separately)."""
    pos = Signal(range(width), name=name)
    for b in range(width):
        with m.If(x[b]):
            m.d.comb += pos.eq(b)
    return pos


def term_decoder(m, code, dtype, sv, j, sv_regs, name: str):
    """One weight code -> its term number j: (neg, zero, lane shift 0..4); the column's bsig is 2j for INT
    groups and 0 for FP groups. `sv_regs`: 8 SV register words (sign << 5 | half-unit magnitude), FP4
    selectors 0..3 then FP3. Combinational."""
    neg, zero, shift = Signal(name=f"{name}_neg"), Signal(name=f"{name}_zero"), Signal(range(5), name=f"{name}_sh")

    # radix-4 Booth digit j of the two's complement code (INT6 uses digits 0..2 of its 6 bits)
    ext = Cat(Const(0, 1), code)
    trip = Array([ext[2 * t:2 * t + 3] for t in range(4)])[j]
    b_neg = trip[2] & (trip != 0b111)
    b_two = (trip == 0b011) | (trip == 0b100)
    b_zero = (trip == 0b000) | (trip == 0b111)

    # FP: half-unit magnitude (<= 5 bits), SV substitution for the -0 code, then leading-one detection
    mag, sgn = Signal(5, name=f"{name}_mag"), Signal(name=f"{name}_sgn")
    with m.Switch(dtype):
        for base, (dname, top) in enumerate((("fp4", 3), ("fp3", 2))):
            with m.Case(DTYPES[dname].code):
                grid = Array([Const(int(2 * v), 5) for v in DTYPES[dname].grid])
                word = Array(sv_regs[4 * base:4 * base + 4])[sv]
                with m.If(code[:top + 1] == (1 << top)):
                    m.d.comb += [mag.eq(word[:5]), sgn.eq(word[5])]
                with m.Else():
                    m.d.comb += [mag.eq(grid[code[:top]]), sgn.eq(code[top])]
        with m.Default():                              # INT groups: mag/sgn unused
            m.d.comb += [mag.eq(0), sgn.eq(0)]
    lo0 = _lod(m, mag, 5, f"{name}_lo0")
    rest = Signal(5, name=f"{name}_rest")
    m.d.comb += rest.eq(mag & ~(Const(1, 5) << lo0))
    lo1 = _lod(m, rest, 5, f"{name}_lo1")

    is_int = dtype[1] == 0
    beyond = j >= Array([Const(t, 3) for t in _TERMS])[dtype]
    with m.If(is_int):
        m.d.comb += [neg.eq(b_neg), zero.eq(b_zero | beyond), shift.eq(1 + b_two)]
    with m.Elif(j == 0):
        m.d.comb += [neg.eq(sgn), zero.eq(mag == 0), shift.eq(lo0)]
    with m.Else():
        m.d.comb += [neg.eq(sgn), zero.eq((rest == 0) | beyond), shift.eq(lo1)]
    return neg, zero, shift


class TermDecoder(wiring.Component):
    """One array column's term decoder: the column's k weight codes -> their term number j (combinational).

    Interface: codes[lanes] (8-bit weight codes), dtype (0 INT8, 1 INT6, 2 FP4, 3 FP3), sv (SV selector), j
    (term number 0..3), sv_regs[8] (SV register words, sign << 5 | half-unit magnitude, FP4 selectors 0..3
    then FP3) -> o (column_terms_layout: bsig and per lane neg / zero / shift). Window decoding for the exact
    datapaths (INT8 activations, row-aligned FP16), plain leading-one decoding for product-aligned FP16."""

    def __init__(self, config: BitModConfig):
        self.config = config
        super().__init__({"codes": In(data.ArrayLayout(CODE_BITS, config.lanes)), "dtype": In(2), "sv": In(2),
                          "j": In(2), "sv_regs": In(data.ArrayLayout(6, 8)),
                          "o": Out(column_terms_layout(config))})

    def elaborate(self, platform):
        m = Module()
        k = self.config.lanes
        codes = [self.codes[l] for l in range(k)]
        sv_regs = [self.sv_regs[t] for t in range(8)]
        if uses_window_terms(self.config):
            bsig, lanes = window_column(m, codes, self.dtype, self.sv, self.j, sv_regs, "t")
        else:
            bsig = Mux(self.dtype[1], 0, self.j << 1)
            lanes = [term_decoder(m, codes[l], self.dtype, self.sv, self.j, sv_regs, f"t{l}") for l in range(k)]
        m.d.comb += self.o.bsig.eq(bsig)
        for l, (neg, zero, shift) in enumerate(lanes):
            m.d.comb += [self.o.lanes[l].neg.eq(neg), self.o.lanes[l].zero.eq(zero), self.o.lanes[l].shift.eq(shift)]
        return m


__all__ = ["window_bsig", "window_column", "term_decoder", "TermDecoder"]
