"""Combinational floating-point building blocks on raw codes, for any `FloatFormat`.

Each function adds logic to module `m` and returns Amaranth values. They implement the arithmetic that
`sw_model.lmul.golden` states with numpy; the two are compared bit for bit by the benches, never shared.
"""
from amaranth.hdl import Cat, Const, Mux, Signal, Value

from sw_model.lmul.golden import lmul_constant, offset_lsbs
from sw_model.numerics.formats import FloatFormat


def wire(m, value, name=None):
    """A named comb signal carrying `value`, so that a shared expression is built once, not at every use."""
    value = Value.cast(value)
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


def unpack(code, fmt: FloatFormat) -> dict:
    """Sign, exponent field, mantissa field, magnitude and the special-value flags of a code."""
    sign = code[fmt.bits - 1]
    mag = code[:fmt.bits - 1]
    exp = code[fmt.man_bits:fmt.bits - 1]
    man = code[:fmt.man_bits]
    if fmt.special == "ieee":
        is_nan = mag > fmt.inf_code
        is_inf = mag == fmt.inf_code
    elif fmt.special == "fn":
        is_nan, is_inf = mag == fmt.mag_mask, Const(0)
    elif fmt.special == "fnuz":
        is_nan, is_inf = code == fmt.sign_mask, Const(0)
    else:
        is_nan, is_inf = Const(0), Const(0)
    return dict(sign=sign, mag=mag, exp=exp, man=man, is_nan=is_nan, is_inf=is_inf)


def signed_zero(sign, fmt: FloatFormat):
    """±0 with the given sign (+0 only, in formats without negative zero)."""
    return Cat(Const(0, fmt.bits - 1), sign if fmt.has_negative_zero else Const(0))


def finish(m, sign, r, nan, inf, zero, fmt: FloatFormat, overflow: str, subnormals: bool = False):
    """Turn a raw signed magnitude code `r` into a result code: `zero` and underflow (r <= 0, or with
    `subnormals=False` an exponent field <= 0) give signed zero, r above max finite follows `overflow`
    ("saturate" or "inf"), then Inf and NaN override."""
    out = Signal(fmt.bits)
    if overflow == "saturate":
        over_code = Cat(Const(fmt.max_finite_code, fmt.bits - 1), sign)
    elif fmt.has_inf:
        over_code = Cat(Const(fmt.inf_code, fmt.bits - 1), sign)
    else:
        over_code = Const(fmt.nan_code, fmt.bits)
    with m.If(nan if fmt.has_nan else 0):
        m.d.comb += out.eq(fmt.nan_code or 0)
    with m.Elif(inf if fmt.has_inf else 0):
        m.d.comb += out.eq(Cat(Const(fmt.inf_code or 0, fmt.bits - 1), sign))
    with m.Elif(zero | (r < (1 if subnormals else 1 << fmt.man_bits))):
        m.d.comb += out.eq(signed_zero(sign, fmt))
    with m.Elif(r > fmt.max_finite_code):
        m.d.comb += out.eq(over_code)
    with m.Else():
        m.d.comb += out.eq(Cat(r[:fmt.bits - 1], sign))
    return out


def lmul_raw(a, b, fmt: FloatFormat, mode: str) -> dict:
    """First half of L-Mul: flags and the raw magnitude code R (signed, may under/overflow)."""
    ua, ub = unpack(a, fmt), unpack(b, fmt)
    mbits = fmt.man_bits
    zero = (ua["exp"] == 0) | (ub["exp"] == 0)
    inf = ua["is_inf"] | ub["is_inf"]
    nan = ua["is_nan"] | ub["is_nan"] | (inf & zero)
    if mode == "adder":
        # the one integer adder: |a| + |b| - C; a mantissa carry runs into the exponent field
        r = ua["mag"] + ub["mag"] - lmul_constant(fmt)
    else:
        e = ua["exp"] + ub["exp"] - fmt.bias
        s = ua["man"] + ub["man"] + offset_lsbs(mbits)
        carry = s >= (1 << mbits)                  # 1 + s >= 2: renormalise (s may reach 2^(m+1))
        excess = (s - (1 << mbits))[:mbits + 1]
        halved = excess[1:] + (excess[0] & excess[1])  # drop one bit, a tie: round to even
        r = Mux(carry, ((e + 1) << mbits) + halved, (e << mbits) + s)
    return dict(sign=ua["sign"] ^ ub["sign"], r=r, nan=nan, inf=inf & ~nan, zero=zero)


def leading_zeros(m, value, width: int):
    """Number of leading zeros of a `width`-bit value (`width` when it is 0)."""
    count = Signal(range(width + 1))
    m.d.comb += count.eq(width)
    for i in range(width):                        # later (higher) bits take priority
        with m.If(value[i]):
            m.d.comb += count.eq(width - 1 - i)
    return count


def shift_right_sticky(m, value, amount, width: int):
    """value >> amount (amount >= 0, any size) and the OR of the bits shifted out."""
    capped = Signal(range(width + 2))
    m.d.comb += capped.eq(Mux(amount > width, width + 1, amount))
    wide = Cat(Const(0, width + 1), value)        # room below for the shifted-out bits
    shifted = wide >> capped
    return shifted[width + 1:], shifted[:width + 1] != 0


def fmul_product(a, b, fmt: FloatFormat) -> dict:
    """Exact multiply, step 1: significand product P and the biased exponent E of P read with 2m fraction bits."""
    ua, ub = unpack(a, fmt), unpack(b, fmt)
    sig_a, sig_b = Cat(ua["man"], ua["exp"] != 0), Cat(ub["man"], ub["exp"] != 0)
    exp_a, exp_b = Mux(ua["exp"] == 0, 1, ua["exp"]), Mux(ub["exp"] == 0, 1, ub["exp"])
    inf = ua["is_inf"] | ub["is_inf"]
    nan = ua["is_nan"] | ub["is_nan"] | (inf & ((ua["mag"] == 0) | (ub["mag"] == 0)))
    return dict(sign=ua["sign"] ^ ub["sign"], p=sig_a * sig_b, e=exp_a + exp_b - fmt.bias, nan=nan, inf=inf & ~nan)


def normalize(m, p, e, width: int):
    """Shift significand `p` (`width` bits) whose MSB has biased exponent `e` so its leading one lands on the
    MSB, but never below exponent 1 (the subnormal range); returns (x, sticky, new exponent of the MSB).
    An `e` below 1 shifts right, OR-ing the lost bits into sticky."""
    lz = leading_zeros(m, p, width)
    t = Signal(e.shape(), name="norm_shift")
    m.d.comb += t.eq(Mux(e - 1 >= lz, lz, e - 1))
    left = (p << Mux(t >= 0, t, 0)[:len(lz)])[:width]
    right, sticky = shift_right_sticky(m, p, Mux(t < 0, -t, 0), width)
    return Mux(t < 0, right, left), (t < 0) & sticky, e - t


def round_code(x, sticky, e, fmt: FloatFormat, extra: int):
    """Code of significand x (m+1+extra bits, hidden bit on top) with MSB exponent field e, rounded to nearest
    even on the `extra` low bits plus sticky; the carry of the rounding runs into the exponent field."""
    mbits = fmt.man_bits
    sig = x[extra:]
    guard = x[extra - 1]
    rest = (x[:extra - 1] != 0) | sticky if extra > 1 else sticky
    return ((e - 1) << mbits) + sig + (guard & (rest | sig[0]))


def widen(code, fmt: FloatFormat, acc: FloatFormat):
    """Exact conversion of a zero/normal/Inf/NaN code of `fmt` into IEEE `acc` (subnormal inputs read as zero;
    L-Mul never produces them)."""
    u = unpack(code, fmt)
    normal = Cat(Const(0, acc.man_bits - fmt.man_bits), u["man"], (u["exp"] + (acc.bias - fmt.bias))[:acc.exp_bits],
                 u["sign"])
    return Mux(u["is_nan"], acc.nan_code,
               Mux(u["is_inf"], Cat(Const(acc.inf_code, acc.bits - 1), u["sign"]),
                   Mux(u["exp"] == 0, Cat(Const(0, acc.bits - 1), u["sign"]), normal)))


def float_add(m, x, y, fmt: FloatFormat):
    """IEEE addition in an IEEE-like format: RNE, subnormals kept, overflow to Inf, canonical NaN."""
    ux, uy = unpack(wire(m, x, "add_x"), fmt), unpack(wire(m, y, "add_y"), fmt)
    L = fmt.man_bits + 1
    swap = uy["mag"] > ux["mag"]
    big = {k: Mux(swap, uy[k], ux[k]) for k in ("sign", "exp", "man")}
    small = {k: Mux(swap, ux[k], uy[k]) for k in ("sign", "exp", "man")}
    e_big = Mux(big["exp"] == 0, 1, big["exp"])
    e_small = Mux(small["exp"] == 0, 1, small["exp"])
    sig_big = Cat(Const(0, 3), big["man"], big["exp"] != 0)
    shifted, lost = shift_right_sticky(m, Cat(Const(0, 3), small["man"], small["exp"] != 0), e_big - e_small, L + 3)
    sig_small = shifted | lost                      # the lost bits fold into the sticky LSB
    subtract = big["sign"] ^ small["sign"]
    total = Signal(L + 4, name="add_total")
    m.d.comb += total.eq(Mux(subtract, sig_big - sig_small, sig_big + sig_small))
    # normalize: a carry shifts right by one (keeping sticky); otherwise shift left, not below exponent 1
    carried = Cat(total[0] | total[1], total[2:])
    lz = leading_zeros(m, total[:L + 3], L + 3)
    left_shift = Mux(lz < e_big - 1, lz, e_big - 1)[:len(lz)]   # never more than lz, so the slice is exact
    x = Mux(total[L + 3], carried, (total[:L + 3] << left_shift)[:L + 3])
    e = Mux(total[L + 3], e_big + 1, e_big - left_shift)
    r = round_code(x, Const(0), e, fmt, extra=3)
    inf = ux["is_inf"] | uy["is_inf"]
    nan = ux["is_nan"] | uy["is_nan"] | (ux["is_inf"] & uy["is_inf"] & (ux["sign"] != uy["sign"]))
    exact_zero = total == 0
    sign = Mux(inf, Mux(ux["is_inf"], ux["sign"], uy["sign"]),
               Mux(exact_zero, ux["sign"] & uy["sign"], big["sign"]))
    return finish(m, sign, r, nan, inf, exact_zero, fmt, "inf", subnormals=True)


def exact_product(m, a, b, fmt: FloatFormat, acc: FloatFormat):
    """The exact product of two `fmt` codes (subnormals kept) as an IEEE `acc` code: no rounding, because the
    caller guarantees that `acc` holds every product as a normal number (`LMulDotConfig` checks it for
    mode="exact"). NaN in or Inf x 0 -> canonical NaN; Inf x finite -> signed Inf; a zero product is signed zero."""
    f = fmul_product(a, b, fmt)
    width = 2 * (fmt.man_bits + 1)
    # P's MSB has exponent E + 1 in fmt (see fmul_product); rebias it for acc, then put the leading one on top.
    x, _sticky, e = normalize(m, wire(m, f["p"], "xprod_p"), f["e"] + 1 + (acc.bias - fmt.bias), width)
    normal = Cat(Const(0, acc.man_bits - (width - 1)), x[:width - 1], e[:acc.exp_bits], f["sign"])
    return Mux(f["nan"], acc.nan_code,
               Mux(f["inf"], Cat(Const(acc.inf_code, acc.bits - 1), f["sign"]),
                   Mux(f["p"] == 0, Cat(Const(0, acc.bits - 1), f["sign"]), normal)))
