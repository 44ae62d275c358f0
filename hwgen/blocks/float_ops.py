"""Combinational floating-point building blocks on raw codes, for any `FloatFormat`.

Each function adds logic to module `m` and returns Amaranth values. They implement the arithmetic that
`sw_model.lmul.golden` states with numpy; the two are compared bit for bit by the benches, never shared.
"""
from amaranth.hdl import Cat, Const, Mux, Signal, Value

from sw_model.lmul.config import ADD_STEPS
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
        # field tests, not a magnitude compare: no carry chain (Inf is the all-ones exponent with a zero mantissa)
        assert fmt.inf_code == ((1 << fmt.exp_bits) - 1) << fmt.man_bits
        top = exp == (1 << fmt.exp_bits) - 1
        is_nan = top & (man != 0)
        is_inf = top & (man == 0)
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
    """Number of leading zeros of a `width`-bit value (`width` when it is 0).

    Built as a balanced tree (halves: the upper half's count, or half + the lower half's count when the upper half
    is zero), log2(width) mux levels deep instead of a width-long priority chain, which limits Fmax."""
    size = 1 << width.bit_length()                # a power of two > width
    # below the value: a single one, then zeros, so an all-zero value counts exactly `width`
    padded = Cat(Const(1 << (size - width - 1), size - width), value[:width])

    def count(v, n):
        if n == 1:
            return ~v[0], ~v[0]                    # (count, all zero)
        hi_count, hi_zero = count(v[n // 2:], n // 2)
        lo_count, lo_zero = count(v[:n // 2], n // 2)
        return Mux(hi_zero, lo_count + n // 2, hi_count), hi_zero & lo_zero

    result = Signal(range(width + 1), name="lz_count")
    m.d.comb += result.eq(count(padded, size)[0])
    return result


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


def normalize_amount(m, p, e, width: int):
    """The shift that `normalize` applies: the leading zeros of `p`, but not below exponent 1 (t < 0: shift right)."""
    lz = leading_zeros(m, p, width)
    t = Signal(e.shape(), name="norm_shift")
    m.d.comb += t.eq(Mux(e - 1 >= lz, lz, e - 1))
    return t


def normalize_shift(m, p, e, t, width: int):
    """Apply shift `t` of `normalize_amount`: (x, sticky, new exponent of the MSB)."""
    left = (p << Mux(t >= 0, t, 0)[:width.bit_length()])[:width]
    right, sticky = shift_right_sticky(m, p, Mux(t < 0, -t, 0), width)
    return Mux(t < 0, right, left), (t < 0) & sticky, e - t


def normalize(m, p, e, width: int):
    """Shift significand `p` (`width` bits) whose MSB has biased exponent `e` so its leading one lands on the
    MSB, but never below exponent 1 (the subnormal range); returns (x, sticky, new exponent of the MSB).
    An `e` below 1 shifts right, OR-ing the lost bits into sticky."""
    return normalize_shift(m, p, e, normalize_amount(m, p, e, width), width)


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


FLOAT_ADD_STEPS = ADD_STEPS      # order, align, sum, normalize, round (the L-Mul dot config counts them)


def float_add_order(m, x, y, fmt: FloatFormat) -> dict:
    """Float add, step 1 of 5: order the operands by magnitude; the alignment shift (both exponent differences
    are formed in parallel with the magnitude compare, so no carry chain waits for another)."""
    ux, uy = unpack(wire(m, x, "add_x"), fmt), unpack(wire(m, y, "add_y"), fmt)
    L = fmt.man_bits + 1
    swap = uy["mag"] > ux["mag"]
    ex, ey = Mux(ux["exp"] == 0, 1, ux["exp"]), Mux(uy["exp"] == 0, 1, uy["exp"])
    d_xy, d_yx = (ex - ey)[:fmt.exp_bits], (ey - ex)[:fmt.exp_bits]     # the used one is never negative
    amount = Mux(swap, d_yx, d_xy)
    big = {k: Mux(swap, uy[k], ux[k]) for k in ("sign", "man")}
    small = {k: Mux(swap, ux[k], uy[k]) for k in ("sign", "man")}
    big_exp, small_exp = Mux(swap, uy["exp"], ux["exp"]), Mux(swap, ux["exp"], uy["exp"])
    inf = ux["is_inf"] | uy["is_inf"]
    e_big_m1 = Mux(swap, ey, ex) - 1
    return dict(sig_big=Cat(Const(0, 3), big["man"], big_exp != 0),
                sig_small=Cat(Const(0, 3), small["man"], small_exp != 0),
                amount=Mux(amount > L + 3, L + 4, amount)[:(L + 4).bit_length()],
                subtract=big["sign"] ^ small["sign"], e_big=Mux(swap, ey, ex), e_big_m1=e_big_m1,
                e_big_far=e_big_m1 >= L + 3,
                big_sign=big["sign"],
                both_neg=ux["sign"] & uy["sign"], inf=inf, inf_sign=Mux(ux["is_inf"], ux["sign"], uy["sign"]),
                nan=ux["is_nan"] | uy["is_nan"] | (ux["is_inf"] & uy["is_inf"] & (ux["sign"] != uy["sign"])))


def float_add_align(m, v: dict, fmt: FloatFormat) -> dict:
    """Float add, step 2 of 5: shift the smaller significand right by the exponent difference; the bits shifted
    out fold into its LSB (sticky)."""
    L = fmt.man_bits + 1
    shifted, lost = shift_right_sticky(m, v["sig_small"], v["amount"], L + 3)
    return dict({k: v[k] for k in v if k not in ("sig_small", "amount")}, sig_small=shifted | lost)


def float_add_sum(m, v: dict, fmt: FloatFormat) -> dict:
    """Float add, step 3 of 5: add or subtract the aligned significands and count the sum's leading zeros."""
    L = fmt.man_bits + 1
    total = Signal(L + 4, name="add_total")
    m.d.comb += total.eq(Mux(v["subtract"], v["sig_big"] - v["sig_small"], v["sig_big"] + v["sig_small"]))
    rest = {k: v[k] for k in ("e_big", "e_big_m1", "e_big_far", "big_sign", "both_neg", "inf", "inf_sign", "nan")}
    return dict(rest, total=total, lz=leading_zeros(m, total[:L + 3], L + 3))


def float_add_normalize(m, v: dict, fmt: FloatFormat) -> dict:
    """Float add, step 4 of 5: a carry shifts right by one (keeping sticky); otherwise shift left by the leading
    zeros, but not below exponent 1 (subnormal results). Leaves the unrounded code `pre` (exponent field and
    mantissa), the rounding increment `inc` and the flags."""
    L, mbits = fmt.man_bits + 1, fmt.man_bits
    total, lz, e_big = v["total"], v["lz"], v["e_big"]
    carried = Cat(total[0] | total[1], total[2:])
    # a normal result (shift the leading one onto the hidden bit) when lz <= e_big - 1: always when e_big - 1 >= L + 3
    # (flagged a step earlier), else a compare of the low bits only, short enough to leave no carry chain here
    use_lz = v["e_big_far"] | (lz <= v["e_big_m1"][:len(lz)])
    # otherwise shift by e_big - 1 (< lz <= L + 3, so its low bits are the amount): both shifts run beside the
    # compare, which only picks one
    by_lz = (total[:L + 3] << lz)[:L + 3]
    by_e = (total[:L + 3] << v["e_big_m1"][:len(lz)])[:L + 3]
    x = Mux(total[L + 3], carried, Mux(use_lz, by_lz, by_e))
    # the code's exponent field: e_big + 1 after a carry, e_big - lz for a normal result, 0 for a subnormal
    # (shifted to exponent 1 without reaching the hidden bit); the subtraction runs beside the compare
    normal = use_lz & (total[:L + 3] != 0)
    exp_field = Mux(total[L + 3], e_big + 1, Mux(normal, e_big - lz, 0))
    sig = x[3:]
    exact_zero = total == 0
    sign = Mux(v["inf"], v["inf_sign"], Mux(exact_zero, v["both_neg"], v["big_sign"]))
    return dict(pre=Cat(sig[:mbits], exp_field[:fmt.exp_bits + 1]),
                inc=x[2] & ((x[:2] != 0) | sig[0]), sign=sign, zero=exact_zero, inf=v["inf"], nan=v["nan"])


def float_add_round(m, v: dict, fmt: FloatFormat):
    """Float add, step 5 of 5: round to nearest even (the increment's carry runs into the exponent field),
    overflow to Inf, zero / Inf / NaN codes. The overflow and zero tests look at the code before the increment,
    so they do not wait for its carry chain."""
    pre, inc, sign = v["pre"], v["inc"], v["sign"]
    r = (pre + inc)[:fmt.bits - 1]
    over = (pre > fmt.max_finite_code) | ((pre == fmt.max_finite_code) & inc)
    out = Signal(fmt.bits, name="add_result")
    with m.If(v["nan"]):
        m.d.comb += out.eq(fmt.nan_code)
    with m.Elif(v["inf"] | over):
        m.d.comb += out.eq(Cat(Const(fmt.inf_code, fmt.bits - 1), sign))
    with m.Elif(v["zero"] | ((pre == 0) & ~inc)):
        m.d.comb += out.eq(signed_zero(sign, fmt))
    with m.Else():
        m.d.comb += out.eq(Cat(r, sign))
    return out


def float_add(m, x, y, fmt: FloatFormat):
    """IEEE addition in an IEEE-like format: RNE, subnormals kept, overflow to Inf, canonical NaN (the four steps
    above in one combinational block)."""
    v = float_add_align(m, float_add_order(m, x, y, fmt), fmt)
    return float_add_round(m, float_add_normalize(m, float_add_sum(m, v, fmt), fmt), fmt)


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
