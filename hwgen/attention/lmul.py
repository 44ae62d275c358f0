"""Gateware of the fixed-point L-Mul (the attention array's `mult = "lmul"` option) and a saturating clamp.

`lmul_fixed` is the combinational circuit of `sw_model.attention.lmul.lmul_int`: per operand |x| (sign-magnitude),
a leading-zero count (exponent), a normalising shift that leaves the `man` bits below the leading one
(fraction), then ONE adder on the two log codes plus the 2^-l(m) offset, and a barrel shift of the
(1.F) mantissa by E - man - shift. No multiplier. Compared bit for bit with the numpy model by the benches.
"""
from amaranth.hdl import Cat, Const, Mux, Signal, Value, signed, unsigned

from sw_model.lmul.golden import offset_lsbs


def leading_zeros(m, value, width: int, name: str):
    """Leading zeros of a `width`-bit value (`width` for 0) as a chain of Mux (continuous assigns; an If chain
    would be an `always @*` process that Icarus leaves X while the operand keeps its initial value)."""
    count = Const(width, range(width + 1))
    for i in range(width):                         # higher bits take priority (outermost Mux)
        count = Mux(value[i], width - 1 - i, count)
    out = Signal(range(width + 1), name=name)
    m.d.comb += out.eq(count)
    return out


def _log_code(m, x, man: int, name: str):
    """(negative, is_zero, log code e * 2^man + f, max exponent) of a signed or unsigned operand `x`."""
    n = len(x)
    mag = Signal(n, name=f"{name}_mag")
    if x.shape().signed:
        neg = x[n - 1]
        m.d.comb += mag.eq(Mux(neg, -x, x))        # |-2^(n-1)| = 2^(n-1) still fits in n unsigned bits
    else:
        neg = Const(0, 1)
        m.d.comb += mag.eq(x)
    lz = leading_zeros(m, mag, n, f"{name}_lz")
    norm = Signal(n, name=f"{name}_norm")          # leading one moved to bit n-1
    m.d.comb += norm.eq(mag << lz)
    frac = Cat(Const(0, man), norm)[n - 1:n - 1 + man]   # the man bits below it (zero-padded when short)
    exp = Signal(range(n), name=f"{name}_exp")
    m.d.comb += exp.eq(n - 1 - lz)
    code = Signal(man + len(exp), name=f"{name}_code")
    m.d.comb += code.eq(Cat(frac, exp))
    return neg, mag == 0, code, n - 1


def lmul_fixed(m, a, b, man: int, shift: int, mag_bits: int, name: str, registered: bool = False):
    """sign(a) sign(b) floor(L-Mul(|a|, |b|) / 2^shift) as a signed(mag_bits + 1) Signal; `mag_bits` must hold
    the largest result magnitude (the caller's bound: <= 1.5 |a| |b| / 2^shift). `registered`: a free-running
    register between the log codes (leading-zero count, normalising shift) and the add + barrel shift, so the
    result follows the operands one cycle later."""
    neg_a, zero_a, code_a, emax_a = _log_code(m, a, man, f"{name}_a")
    neg_b, zero_b, code_b, emax_b = _log_code(m, b, man, f"{name}_b")
    if registered:
        regs = []
        for value, tag in ((neg_a, "neg_a"), (zero_a, "zero_a"), (code_a, "code_a"), (neg_b, "neg_b"),
                           (zero_b, "zero_b"), (code_b, "code_b")):
            reg = Signal(len(Value.cast(value)), name=f"{name}_{tag}_r")
            m.d.sync += reg.eq(value)
            regs.append(reg)
        neg_a, zero_a, code_a, neg_b, zero_b, code_b = regs
    r = Signal(max(len(code_a), len(code_b)) + 2, name=f"{name}_r")
    m.d.comb += r.eq(code_a + code_b + offset_lsbs(man))   # the one adder; the fraction carry runs into E
    mant = Cat(r[:man], Const(1, 1))                        # 1.F
    e = r[man:]
    base = man + shift                                      # value = 1.F * 2^E / 2^(man + shift)
    net_max = emax_a + emax_b + 1 - base
    mag = Signal(mag_bits, name=f"{name}_absval")
    right = mant >> (base - e)[:max(base, 1).bit_length()]
    if net_max > 0:
        left = mant << (e - base)[:net_max.bit_length()]
        m.d.comb += mag.eq(Mux(e >= base, left, right))
    else:
        m.d.comb += mag.eq(right)
    out = Signal(signed(mag_bits + 1), name=name)
    m.d.comb += out.eq(Mux(zero_a | zero_b, 0, Mux(neg_a ^ neg_b, -mag, mag)))
    return out


def clamp(m, x, bits: int, is_signed: bool, name: str):
    """x saturated to the range of a `bits`-bit register (signed or unsigned)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if is_signed else (0, (1 << bits) - 1)
    out = Signal(signed(bits) if is_signed else unsigned(bits), name=name)
    x = Value.cast(x)
    low = x if (lo == 0 and not x.shape().signed) else Mux(x < lo, lo, x)   # no constant compare (lint)
    m.d.comb += out.eq(Mux(x > hi, hi, low))
    return out
