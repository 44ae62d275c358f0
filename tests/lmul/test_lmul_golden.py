"""sw_model.lmul.golden golden models checked against independent statements.

- the L-Mul constants against the spec's numbers (ALGORITHMS.md section 1);
- hand-worked E4M3/E5M2 cases with exact codes (carry into the exponent, signs, under/overflow, specials);
- both L-Mul modes over all normal x normal pairs of E4M3/E5M2/E3M4 against a float64 statement of the math
  (operands split with frexp, not with the format's bit fields);
- the exact multiplier against float64 products and against ml_dtypes (all 65,536 pairs of E4M3 and E5M2);
- float_add against numpy float32/float16 addition; the adder-tree and beat accumulation order;
- argument errors.
"""
import ml_dtypes
import numpy as np
import pytest

from sw_model.lmul.golden import (exact_products, float_add, fmul, lmul, lmul_constant, lmul_dot, offset_lsbs,
                                  tree_sum, widen)
from sw_model.numerics.formats import decode, encode, get_format

E4M3, E5M2, E3M4 = get_format("e4m3"), get_format("e5m2"), get_format("e3m4")
BF16, FP16, FP32 = get_format("bf16"), get_format("fp16"), get_format("fp32")


def l_of_m(m: int) -> int:
    """The paper's case split: l(m) = m for m <= 3, 3 for m == 4, 4 for m > 4."""
    if m <= 3:
        return m
    return 3 if m == 4 else 4


# --- constants --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, want", [("e4m3", 55), ("e4m3", 0x37), ("e5m2", 59), ("bf16", 0x3F78),
                                        ("fp32", 0x3F780000)])
def test_lmul_constant(name, want):
    assert lmul_constant(name) == want
    assert lmul_constant(get_format(name)) == want


@pytest.mark.parametrize("m, want", [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 4), (7, 8)])
def test_offset_lsbs(m, want):
    assert offset_lsbs(m) == want
    # the same number as the spec's formula 2^(m - l(m))
    assert want == 2 ** (m - l_of_m(m))


# --- hand-worked cases ------------------------------------------------------------------------------------------
# E4M3 (fn, bias 7): 0x38 = 1.0, 0x3C = 1.5, 0x40 = 2.0, 0x44 = 3.0, 0x08 = 2^-6 (min normal), 0x7E = 448 (max),
# 0x7F/0xFF = NaN. C = 55, so the adder result is a + b - 55 on the magnitudes.
E4M3_CASES = [
    # a, b, mode, overflow, want, why
    (0x38, 0x38, "adder", "saturate", 0x39, "1*1 = (1 + 0 + 0 + 1/8) = 1.125"),
    (0x38, 0x38, "formula", "saturate", 0x39, "no carry: both modes agree"),
    (0x3C, 0x3C, "adder", "saturate", 0x41, "1.5*1.5: s = .5+.5+.125 = 1.125 >= 1, carry -> 2s*2^0 = 2.25 = 0x41"),
    (0x3C, 0x3C, "formula", "saturate", 0x40, "1.5*1.5: 1+s = 2.125 = 1.0625*2, tie -> even 2.0 = 0x40"),
    (0xBC, 0x3C, "adder", "saturate", 0xC1, "-1.5*1.5 = -2.25"),
    (0x3C, 0xBC, "formula", "saturate", 0xC0, "1.5*-1.5 = -2.0"),
    (0xC0, 0xC4, "adder", "saturate", 0x4D, "-2*-3: s = 0 + .5 + .125, 1.625*2^2 = 6.5 = 0x4D"),
    (0xC0, 0xC4, "formula", "saturate", 0x4D, "no carry"),
    (0x20, 0x1F, "adder", "saturate", 0x08, "2^-3 * 1.875*2^-4: s = 1, 2*2^-7 = 2^-6 = min normal (R = 8)"),
    (0x20, 0x1E, "adder", "saturate", 0x00, "2^-3 * 1.75*2^-4: 1.875*2^-7 < min normal -> +0 (R = 7)"),
    (0xA0, 0x1E, "adder", "saturate", 0x80, "negative underflow -> -0"),
    (0x08, 0x08, "adder", "saturate", 0x00, "2^-6 * 2^-6: R = 16 - 55 < 0 -> +0"),
    (0x88, 0x08, "formula", "saturate", 0x80, "2^-6 * -2^-6 -> -0"),
    (0x38, 0x7D, "adder", "saturate", 0x7E, "1 * 416: (1 + .625 + .125)*256 = 448, max finite, not overflow"),
    (0x38, 0x7D, "adder", "inf", 0x7E, "448 is in range under either policy"),
    (0x38, 0x7E, "adder", "saturate", 0x7E, "1 * 448 -> 480 > 448: saturate"),
    (0x38, 0x7E, "adder", "inf", 0x7F, "1 * 448 -> 480: 'inf' without Inf -> canonical NaN 0x7F"),
    (0x7E, 0x7E, "adder", "saturate", 0x7E, "448*448 saturates"),
    (0xFE, 0x7E, "adder", "saturate", 0xFE, "-448*448 saturates to -448"),
    (0xFE, 0x7E, "adder", "inf", 0x7F, "-448*448 -> canonical NaN (no sign)"),
    (0x7E, 0x7E, "formula", "inf", 0x7F, "formula mode overflow -> canonical NaN"),
    (0x00, 0x38, "adder", "saturate", 0x00, "+0 * 1 = +0"),
    (0x80, 0x38, "adder", "saturate", 0x80, "-0 * 1 = -0"),
    (0x00, 0x7E, "formula", "inf", 0x00, "+0 * max = +0"),
    (0x01, 0x38, "adder", "saturate", 0x00, "subnormal 2^-9 flushed -> +0"),
    (0x81, 0x38, "adder", "saturate", 0x80, "subnormal -2^-9 flushed -> -0"),
    (0x07, 0xB8, "formula", "saturate", 0x80, "subnormal * -1 -> -0"),
    (0x07, 0x7E, "adder", "saturate", 0x00, "subnormal * max -> 0, not 0.875*2^-6*448"),
    (0x7F, 0x38, "adder", "saturate", 0x7F, "NaN in -> canonical NaN"),
    (0xFF, 0x38, "adder", "saturate", 0x7F, "-NaN in -> canonical NaN"),
    (0xFF, 0x00, "formula", "saturate", 0x7F, "NaN * 0 -> NaN"),
    (0x38, 0xFF, "formula", "inf", 0x7F, "x * NaN -> NaN"),
]


@pytest.mark.parametrize("a, b, mode, overflow, want, why", E4M3_CASES, ids=[c[-1] for c in E4M3_CASES])
def test_e4m3_hand_cases(a, b, mode, overflow, want, why):
    got = int(lmul(a, b, "e4m3", mode=mode, overflow=overflow))
    assert got == want, f"{why}: got 0x{got:02X}, want 0x{want:02X}"
    # the operation is commutative in both modes
    assert int(lmul(b, a, "e4m3", mode=mode, overflow=overflow)) == want


# E5M2 (ieee, bias 15): 0x3C = 1.0, 0xBC = -1.0, 0x7B = 57344 (max), 0x7C = +Inf, 0xFC = -Inf, 0x7D..0x7F NaN,
# canonical NaN 0x7E.
E5M2_CASES = [
    (0x3C, 0x3C, "saturate", 0x3D, "1*1 = 1.25 (offset 2^-2 = one LSB)"),
    (0x7B, 0x7B, "saturate", 0x7B, "max*max saturates"),
    (0xFB, 0x7B, "saturate", 0xFB, "-max*max saturates to -max"),
    (0x7B, 0x7B, "inf", 0x7C, "max*max -> +Inf"),
    (0xFB, 0x7B, "inf", 0xFC, "-max*max -> -Inf"),
    (0x7C, 0x3C, "saturate", 0x7C, "Inf*1 = Inf (also with saturate)"),
    (0x7C, 0xBC, "saturate", 0xFC, "Inf*-1 = -Inf"),
    (0xFC, 0xFC, "inf", 0x7C, "-Inf*-Inf = +Inf"),
    (0x7C, 0x7B, "saturate", 0x7C, "Inf*max = Inf"),
    (0x7C, 0x00, "saturate", 0x7E, "Inf*0 = NaN"),
    (0xFC, 0x80, "inf", 0x7E, "-Inf*-0 = NaN"),
    (0x7C, 0x01, "saturate", 0x7E, "Inf*subnormal: the subnormal is flushed to 0 -> NaN"),
    (0x7D, 0x3C, "saturate", 0x7E, "NaN (quiet/signalling payloads) -> canonical 0x7E"),
    (0xFF, 0x7C, "inf", 0x7E, "NaN*Inf -> NaN"),
    (0x04, 0x04, "saturate", 0x00, "min normal squared -> +0"),
    (0x84, 0x04, "saturate", 0x80, "-min normal * min normal -> -0"),
]


@pytest.mark.parametrize("mode", ["adder", "formula"])
@pytest.mark.parametrize("a, b, overflow, want, why", E5M2_CASES, ids=[c[-1] for c in E5M2_CASES])
def test_e5m2_hand_cases(a, b, overflow, want, why, mode):
    got = int(lmul(a, b, "e5m2", mode=mode, overflow=overflow))
    assert got == want, f"{why}: got 0x{got:02X}, want 0x{want:02X}"


def test_fnuz_zero_has_no_sign():
    f = get_format("e4m3fnuz")
    neg_one = int(encode(-1.0, f))
    assert int(lmul(neg_one, 0x00, f)) == 0x00       # -1 * 0 -> +0 (there is no -0)
    assert int(lmul(neg_one, 0x01, f)) == 0x00       # subnormal flushed
    assert int(lmul(0x80, neg_one, f)) == 0x80       # the single NaN


def test_broadcast_and_dtype():
    a = np.array([[0x38], [0x3C]], dtype=np.uint8)
    b = np.array([0x38, 0x3C, 0xBC], dtype=np.uint8)
    out = lmul(a, b, "e4m3")
    assert out.shape == (2, 3) and out.dtype == np.uint8
    assert out.tolist() == [[0x39, 0x3D, 0xBD], [0x3D, 0x41, 0xC1]]
    assert lmul(0x3F80, 0x3F80, "bf16").dtype == np.uint16
    assert int(lmul(0x3F80, 0x3F80, "bf16")) == 0x3F88             # 1 + 2^-4 (offset 8 LSB for m = 7)
    assert int(lmul(0x3F800000, 0x3F800000, "fp32")) == 0x3F880000


# --- both modes over all normal x normal pairs vs an independent float64 statement ---------------------------
def _normal_codes(fmt):
    codes = np.arange(1 << fmt.bits)
    v = decode(codes, fmt)
    keep = np.isfinite(v) & (np.abs(v) >= fmt.min_normal)
    return codes[keep]


def _split(v):
    """|v| = (1 + frac) * 2^exp for normal v, from frexp (not from the code's fields)."""
    f, k = np.frexp(np.abs(v))
    return 2 * f - 1, k - 1


def _expected(value, sign_neg, fmt, overflow):
    """Round the exact float64 result value to the format under the golden policy: exponent below emin -> signed
    zero; otherwise RNE with overflow decided after rounding; a NaN result is the canonical NaN."""
    mag = np.abs(value)
    signed = np.where(sign_neg, -mag, mag)
    out = encode(signed, fmt, overflow=overflow).astype(np.int64)
    out = np.where(np.isnan(decode(out, fmt)), fmt.nan_code, out)
    zero = (1 << (fmt.bits - 1)) if fmt.has_negative_zero else 0
    return np.where(mag < fmt.min_normal, np.where(sign_neg, zero, 0), out)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e3m4"])
@pytest.mark.parametrize("overflow", ["saturate", "inf"])
def test_modes_vs_float64_statement(name, overflow):
    fmt = get_format(name)
    m = fmt.man_bits
    codes = _normal_codes(fmt)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes, indexing="ij"))
    va, vb = decode(a, fmt), decode(b, fmt)
    xm, xe = _split(va)
    ym, ye = _split(vb)
    s = xm + ym + 2.0 ** -l_of_m(m)                    # exact: all terms are multiples of 2^-m
    scale = np.ldexp(1.0, (xe + ye).astype(np.int32))
    neg = (va < 0) != (vb < 0)

    formula = (1 + s) * scale                          # the paper's formula, exact in float64
    want_formula = _expected(formula, neg, fmt, overflow)
    got_formula = lmul(a, b, fmt, mode="formula", overflow=overflow).astype(np.int64)
    bad = np.flatnonzero(got_formula != want_formula)
    assert bad.size == 0, (f"formula: {bad.size} mismatches, first a=0x{a[bad[0]]:X} b=0x{b[bad[0]]:X} "
                           f"got 0x{got_formula[bad[0]]:X} want 0x{want_formula[bad[0]]:X}")

    # adder mode: s < 1 -> the formula's value; s >= 1 -> Mitchell's 2s * 2^(xe+ye), exactly representable
    adder = np.where(s < 1, formula, 2 * s * scale)
    carry = s >= 1
    want_adder = _expected(adder, neg, fmt, overflow)
    got_adder = lmul(a, b, fmt, mode="adder", overflow=overflow).astype(np.int64)
    bad = np.flatnonzero(got_adder != want_adder)
    assert bad.size == 0, (f"adder: {bad.size} mismatches, first a=0x{a[bad[0]]:X} b=0x{b[bad[0]]:X} "
                           f"got 0x{got_adder[bad[0]]:X} want 0x{want_adder[bad[0]]:X}")
    # in range, the adder result is the exact value (no rounding at all)
    in_range = (adder >= fmt.min_normal) & (adder <= fmt.max_finite)
    assert np.array_equal(np.abs(decode(got_adder[in_range], fmt)), adder[in_range])
    # the cases the comparison covers are not vacuous
    assert carry.any() and (~carry).any()
    assert (in_range & carry).sum() > 100
    assert (adder < fmt.min_normal).any() and (adder > fmt.max_finite).any()
    # the two modes really differ on carries (Mitchell 2s vs the formula's 1+s)
    assert np.any(got_adder[carry & in_range] != got_formula[carry & in_range])


# --- exact multiplier ------------------------------------------------------------------------------------------
def _all_pairs(fmt):
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    return (x.ravel() for x in np.meshgrid(codes, codes, indexing="ij"))


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
@pytest.mark.parametrize("overflow", ["saturate", "inf"])
def test_fmul_vs_float64_product(name, overflow):
    fmt = get_format(name)
    a, b = _all_pairs(fmt)
    with np.errstate(invalid="ignore"):
        prod = decode(a, fmt) * decode(b, fmt)       # exact: 4-bit x 4-bit significands
    want = encode(prod, fmt, overflow=overflow).astype(np.int64)
    want = np.where(np.isnan(prod), fmt.nan_code, want)
    got = fmul(a, b, fmt, overflow=overflow).astype(np.int64)
    # every NaN result is the canonical NaN code
    got_nan, want_nan = np.isnan(decode(got, fmt)), np.isnan(decode(want, fmt))
    assert np.array_equal(got_nan, want_nan)
    assert np.array_equal(got[~got_nan], want[~want_nan])
    assert np.all(got[got_nan] == fmt.nan_code)


ML_TWIN = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_fmul_vs_ml_dtypes(name):
    """ml_dtypes' own overflow is NaN for e4m3fn and Inf for e5m2: that is fmul's overflow='inf'. The float32
    product of two fp8 values is exact, so the float32 -> fp8 cast is a single rounding."""
    fmt = get_format(name)
    a, b = _all_pairs(fmt)
    fa = decode(a, fmt).astype(np.float32)
    fb = decode(b, fmt).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        p32 = fa * fb
        p64 = decode(a, fmt) * decode(b, fmt)
    assert np.array_equal(p32.astype(np.float64)[np.isfinite(p32)], p64[np.isfinite(p32)])
    ref = p32.astype(ML_TWIN[name]).view(np.uint8).astype(np.int64)
    got = fmul(a, b, fmt, overflow="inf").astype(np.int64)
    ref_nan, got_nan = np.isnan(decode(ref, fmt)), np.isnan(decode(got, fmt))
    assert np.array_equal(ref_nan, got_nan)
    bad = np.flatnonzero((got != ref) & ~got_nan)
    assert bad.size == 0, f"first a=0x{a[bad[0]]:X} b=0x{b[bad[0]]:X} got 0x{got[bad[0]]:X} ref 0x{ref[bad[0]]:X}"
    assert got_nan.sum() > 1000 and (~got_nan).sum() > 30000


FMUL_CASES = [
    # name, a, b, overflow, want, why
    ("e4m3", 0x7E, 0x40, "saturate", 0x7E, "448*2 -> 448"),
    ("e4m3", 0xFE, 0x40, "saturate", 0xFE, "-448*2 -> -448"),
    ("e4m3", 0x7E, 0x38, "saturate", 0x7E, "448*1 is exact"),
    ("e4m3", 0x7E, 0x39, "saturate", 0x7E, "448*1.125 = 504 -> 448"),
    ("e4m3", 0x7E, 0x40, "inf", 0x7F, "448*2 -> NaN (no Inf in e4m3fn)"),
    ("e4m3", 0x7F, 0x38, "saturate", 0x7F, "NaN in -> canonical NaN"),
    ("e4m3", 0xFF, 0xB8, "saturate", 0x7F, "-NaN in -> canonical NaN"),
    ("e4m3", 0x01, 0x38, "saturate", 0x01, "subnormals are kept: 2^-9 * 1"),
    ("e4m3", 0x01, 0x30, "saturate", 0x00, "2^-9 * 0.5 = 2^-10: tie -> even 0"),
    ("e4m3", 0x01, 0x34, "saturate", 0x01, "2^-9 * 0.75 -> 2^-9"),
    ("e4m3", 0x81, 0x30, "saturate", 0x80, "-2^-10 -> -0"),
    ("e5m2", 0x7B, 0x7B, "saturate", 0x7B, "max*max -> max"),
    ("e5m2", 0xFB, 0x7B, "saturate", 0xFB, "-max*max -> -max"),
    ("e5m2", 0x7B, 0x7B, "inf", 0x7C, "max*max -> Inf"),
    ("e5m2", 0x7C, 0x3C, "saturate", 0x7C, "Inf*1 stays Inf under saturate"),
    ("e5m2", 0xFC, 0x3C, "saturate", 0xFC, "-Inf*1 = -Inf"),
    ("e5m2", 0x7C, 0x00, "saturate", 0x7E, "Inf*0 -> canonical NaN"),
    ("e5m2", 0x7C, 0x01, "saturate", 0x7C, "Inf*subnormal = Inf (fmul keeps subnormals)"),
    ("e5m2", 0xFF, 0x3C, "inf", 0x7E, "NaN -> canonical NaN"),
]


@pytest.mark.parametrize("name, a, b, overflow, want, why", FMUL_CASES, ids=[c[-1] for c in FMUL_CASES])
def test_fmul_directed(name, a, b, overflow, want, why):
    got = int(fmul(a, b, name, overflow=overflow))
    assert got == want, f"{why}: got 0x{got:02X}, want 0x{want:02X}"


def test_fmul_negative_overflow_nan_is_canonical():
    assert int(fmul(0xFE, 0x40, "e4m3", overflow="inf")) == 0x7F


# --- float_add -------------------------------------------------------------------------------------------------
def _random_float_codes(rng, fmt, n):
    """A mix of random codes, operands with nearby exponents (cancellation), subnormals and specials."""
    bits, m = fmt.bits, fmt.man_bits
    dt = np.uint32 if bits > 16 else np.uint16
    top = 1 << bits
    x = rng.integers(0, top, n, dtype=np.int64)
    y = rng.integers(0, top, n, dtype=np.int64)
    # y's exponent field within +-3 of x's, random sign and mantissa: real cancellations and carries
    k = n // 3
    ex = (x[:k] >> m) & fmt.exp_max_field
    ey = np.clip(ex + rng.integers(-3, 4, k), 0, fmt.exp_max_field)
    y[:k] = (rng.integers(0, 2, k) << (bits - 1)) | (ey << m) | rng.integers(0, 1 << m, k)
    # subnormals on one side for the next chunk
    j = slice(k, k + n // 6)
    cnt = j.stop - j.start
    x[j] = (rng.integers(0, 2, cnt) << (bits - 1)) | rng.integers(0, 1 << m, cnt)
    y[j] = (rng.integers(0, 2, cnt) << (bits - 1)) | (rng.integers(0, 3, cnt) << m) | rng.integers(0, 1 << m, cnt)
    special = np.array([0, 1 << (bits - 1), fmt.inf_code, fmt.inf_code | (1 << (bits - 1)), fmt.nan_code,
                        fmt.nan_code | 1, fmt.max_finite_code, fmt.max_finite_code | (1 << (bits - 1)), 1,
                        (1 << m) - 1, 1 << m], dtype=np.int64)
    sx, sy = (v.ravel() for v in np.meshgrid(special, special, indexing="ij"))
    return np.concatenate([x, sx]).astype(dt), np.concatenate([y, sy]).astype(dt)


@pytest.mark.parametrize("name, np_float, np_uint, canonical", [("fp32", np.float32, np.uint32, 0x7FC00000),
                                                                ("fp16", np.float16, np.uint16, 0x7E00)])
def test_float_add_vs_numpy(name, np_float, np_uint, canonical):
    fmt = get_format(name)
    assert fmt.nan_code == canonical
    rng = np.random.default_rng(1234)
    x, y = _random_float_codes(rng, fmt, 300_000)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = x.view(np_float) + y.view(np_float)
    ref_codes = np.where(np.isnan(ref), canonical, ref.view(np_uint)).astype(np.int64)
    got = float_add(x, y, fmt).astype(np.int64)
    bad = np.flatnonzero(got != ref_codes)
    assert bad.size == 0, f"first x=0x{x[bad[0]]:X} y=0x{y[bad[0]]:X} got 0x{got[bad[0]]:X} ref 0x{ref_codes[bad[0]]:X}"
    # the mix really contains signed zero results, subnormal results, Inf results and NaN results
    gv = decode(got, fmt)
    assert np.any((gv == 0) & np.signbit(gv)) and np.any((gv == 0) & ~np.signbit(gv))
    assert np.any((gv != 0) & (np.abs(gv) < fmt.min_normal))
    assert np.any(np.isinf(gv)) and np.any(got == canonical)


def test_float_add_signed_zeros_fp32():
    pz, nz, one, mone = 0x00000000, 0x80000000, 0x3F800000, 0xBF800000
    assert int(float_add(pz, nz, FP32)) == pz
    assert int(float_add(nz, nz, FP32)) == nz
    assert int(float_add(one, mone, FP32)) == pz                  # x + (-x) = +0 under RNE
    assert int(float_add(0x7F800000, 0xFF800000, FP32)) == 0x7FC00000
    assert int(float_add(0x7F7FFFFF, 0x7F7FFFFF, FP32)) == 0x7F800000


# --- reduction order -------------------------------------------------------------------------------------------
def test_tree_sum_order_bf16():
    """x = [256, 256, -256, -1, -1] in bf16 (8-bit significand, one ulp = 2 in [256, 512)).
    Tree: x0+x1 = 512; x2+x3 = -257 -> tie -> -256 (even); 512 + -256 = 256; 256 + x4 = 255 (exact).
    Left-to-right gives 254 (512, 256, 255, 254), as does the exact sum; x4 folded into the second pair,
    (x0+x1) + ((x2+x3)+x4), gives 256."""
    x = encode(np.array([256.0, 256.0, -256.0, -1.0, -1.0]), BF16)
    assert int(tree_sum(x, BF16)) == int(encode(255.0, BF16)) == 0x437F
    seq = x[0]
    for v in x[1:]:
        seq = float_add(seq, v, BF16)
    assert int(seq) == int(encode(254.0, BF16))
    # leading axes are independent rows; reversed, [-1, -1, -256, 256, 256]: (-2) + (0) = -2, -2 + 256 = 254
    rows = np.stack([x, x[::-1]])
    assert tree_sum(rows, BF16).tolist() == [0x437F, int(encode(254.0, BF16))]


def test_tree_sum_single_and_even():
    x = encode(np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]), FP32)
    assert float(decode(tree_sum(x, FP32), FP32)) == 63.0
    assert int(tree_sum(x[:1], FP32)) == int(x[0])


def test_lmul_dot_beat_order():
    """3 beats, 1 lane, e4m3 operands, bf16 accumulator. Products (L-Mul, exact here):
    t0 = L(1, 240) = (1 + 0 + .875 + .125) * 2^7 = 256, t1 = L(-1, 240) = -256, t2 = L(1, 0.234375) = 0.5.
    ((t0 + t1) + t2) = 0.5; t0 + (t1 + t2) = 256 + (-255.5 -> tie -> -256) = 0."""
    a = np.array([[0x38], [0xB8], [0x38]])
    b = np.array([[0x77], [0x77], [0x2F]])
    prods = decode(lmul(a, b, E4M3), E4M3)[:, 0]
    assert prods.tolist() == [256.0, -256.0, 0.5]
    got = int(lmul_dot(a, b, "e4m3", "bf16"))
    assert got == int(encode(0.5, BF16)) == 0x3F00
    t = widen(lmul(a, b, E4M3), E4M3, BF16)[:, 0]
    assert int(float_add(t[0], float_add(t[1], t[2], BF16), BF16)) == 0x0000   # the other order differs


def test_lmul_dot_matches_tree_then_beats():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (50, 4, 5))
    b = rng.integers(0, 256, (50, 4, 5))
    for mode in ("adder", "formula"):
        got = lmul_dot(a, b, "e4m3", "fp16", mode=mode)
        t = tree_sum(widen(lmul(a, b, E4M3, mode), E4M3, FP16), FP16)     # (50, 4)
        acc = float_add(float_add(float_add(t[:, 0], t[:, 1], FP16), t[:, 2], FP16), t[:, 3], FP16)
        assert np.array_equal(got, acc)
    assert lmul_dot(a, b, "e4m3", "fp16").shape == (50,)


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_exact_products_vs_ml_dtypes_float32(name):
    """The exact-dot lanes (mode="exact"): all 65,536 products as fp32 codes equal numpy's float32 product of the
    ml_dtypes values (exact: <= 8-bit significands), subnormal operands included; NaN canonical."""
    fmt = get_format(name)
    a, b = _all_pairs(fmt)
    fa = a.astype(np.uint8).view(ML_TWIN[name]).astype(np.float32)
    fb = b.astype(np.uint8).view(ML_TWIN[name]).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = (fa * fb).view(np.uint32).astype(np.int64)
        nan = np.isnan(fa * fb)
    got = exact_products(a, b, fmt, FP32).astype(np.int64)
    assert (got[nan] == FP32.nan_code).all() and nan.sum() > 1000
    assert np.array_equal(got[~nan], ref[~nan])
    sub = (a & ((1 << (fmt.bits - 1)) - 1)) < (1 << fmt.man_bits)          # exponent field 0: zero or subnormal
    assert (got[sub & ~nan & (decode(a, fmt) != 0) & (decode(b, fmt) != 0)] & 0x7FFFFFFF).min() > 0   # kept


def test_lmul_dot_exact_mode_sums_exact_products():
    rng = np.random.default_rng(8)
    a, b = rng.integers(0, 256, (40, 3, 4)), rng.integers(0, 256, (40, 3, 4))
    got = lmul_dot(a, b, "e4m3", "fp32", mode="exact")
    t = tree_sum(exact_products(a, b, E4M3, FP32), FP32)
    acc = float_add(float_add(t[:, 0], t[:, 1], FP32), t[:, 2], FP32)
    assert np.array_equal(got, acc)
    assert not np.array_equal(got, lmul_dot(a, b, "e4m3", "fp32"))           # not the L-Mul engine


def test_exact_mode_needs_an_accumulator_that_holds_every_product():
    from sw_model.config import ConfigError
    from sw_model.lmul.config import LMulDotConfig
    LMulDotConfig(fmt="e4m3", acc_fmt="bf16", mode="exact")     # 7 fraction bits, exponents -18..17: fits
    with pytest.raises(ConfigError, match=r"acc_fmt: got 'fp16', allowed with mode='exact'.*exponents -18\.\.17"):
        LMulDotConfig(fmt="e4m3", acc_fmt="fp16", mode="exact")
    with pytest.raises(ConfigError, match=r"acc_fmt: got 'fp32'.*at least 15 mantissa bits"):
        LMulDotConfig(fmt="bf16", acc_fmt="fp32", mode="exact")
    with pytest.raises(ConfigError, match=r"mode: got 'exakt', allowed: adder, formula, exact"):
        LMulDotConfig(mode="exakt")


# --- bad input -------------------------------------------------------------------------------------------------
def test_bad_mode():
    with pytest.raises(ValueError, match=r"mode: got 'mitchell', allowed: adder, formula"):
        lmul(0x38, 0x38, "e4m3", mode="mitchell")
    with pytest.raises(ValueError, match=r"mode: got 'x'"):
        lmul_dot(np.zeros((1, 2), int), np.zeros((1, 2), int), "e4m3", "fp32", mode="x")


@pytest.mark.parametrize("fn", [lambda o: lmul(0x38, 0x38, "e4m3", overflow=o),
                                lambda o: fmul(0x38, 0x38, "e4m3", overflow=o)])
def test_bad_overflow(fn):
    with pytest.raises(ValueError, match=r"overflow: got 'wrap', allowed: saturate, inf"):
        fn("wrap")
    with pytest.raises(ValueError, match=r"overflow: got None"):
        fn(None)


def test_inf_policy_without_inf_or_nan():
    with pytest.raises(ValueError, match=r"overflow: 'inf' needs a format with Inf or NaN, e2m1 has neither"):
        lmul(0b0010, 0b0010, "e2m1", overflow="inf")
    with pytest.raises(ValueError, match=r"e2m1 has neither; use 'saturate'"):
        fmul(0b0010, 0b0010, "e2m1", overflow="inf")
    assert int(lmul(0b0111, 0b0111, "e2m1")) == 0b0111             # saturate works: 6*6 -> 6


def test_codes_out_of_range():
    with pytest.raises(ValueError, match=r"codes: got 256, allowed: 0\.\.255 for e4m3"):
        lmul(256, 0x38, "e4m3")
    with pytest.raises(ValueError, match=r"codes: got -1, allowed: 0\.\.255 for e4m3"):
        lmul(0x38, np.array([0x38, -1]), "e4m3")
    with pytest.raises(ValueError, match=r"codes: got 65536, allowed: 0\.\.65535 for bf16"):
        lmul(0x3F80, 65536, "bf16")
    with pytest.raises(ValueError, match=r"codes: got 256 for e4m3, allowed: 0\.\.255"):
        fmul(0x38, 256, "e4m3")


def test_not_a_minifloat():
    with pytest.raises(ValueError, match=r"fmt: got .*allowed: a minifloat format"):
        lmul(1, 1, get_format("int8"))
    with pytest.raises(ValueError, match=r"format: unknown 'e9x'"):
        lmul(1, 1, "e9x")
