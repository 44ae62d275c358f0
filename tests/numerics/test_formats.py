"""sw_model.numerics.formats encode/decode: bit for bit against ml_dtypes (numpy for fp16/fp32), exact math for custom formats.

Reference notes (ml_dtypes 0.6.0, observed):
- Casting float64 -> an ml_dtypes type goes through float32 first, so it can double-round (1 + 2^-4 + 2^-40 -> e4m3fn
  gives 1.0, exact RNE gives 1.125). Our encode is exact RNE from float64, so comparisons with ml_dtypes use inputs
  that are exactly representable in float32 (asserted); numpy's float64 -> float16/float32 casts are exact RNE and
  are compared on float64 neighbours too.
- NaN in: canonical NaN with the input's sign for ieee/fn types (payload dropped; numpy fp16/fp32 keep payload
  bits, so only default NaNs are compared there); fnuz -> 0x80; the fp6/fp4 types without NaN give a zero with the
  *opposite* sign (+NaN -> 0x20 / 0x8, -NaN -> 0x00).
- Overflow: e4m3fn/fnuz types -> NaN, ieee types -> Inf, fp6/fp4 saturate; ±Inf in behaves the same.
"""
import math
import warnings

import ml_dtypes
import numpy as np
import pytest

from sw_model.numerics.formats import (
    ML_DTYPES_TWIN,
    FloatFormat,
    code_dtype,
    decode,
    encode,
    format_table,
    get_format,
)

TWINS = sorted(ML_DTYPES_TWIN)
SMALL_TWINS = [n for n in TWINS if get_format(n).bits <= 16]
CUSTOM = ["e3m3", "e5m3", "e6m9", "e2m2fn", "e4m3b5", "e3m2fnuz", "e2m2finite", "e3m3b-2", "e5m10b20fnuz"]


def ref_dtype(name):
    dt = ML_DTYPES_TWIN[name]
    return np.dtype(getattr(ml_dtypes, dt)) if hasattr(ml_dtypes, dt) else np.dtype(dt)


def ref_encode(values, name):
    """The reference cast's bit pattern (warnings about overflow/NaN in casts are expected here)."""
    dt = ref_dtype(name)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(values, dtype=np.float64).astype(dt).view(code_dtype(get_format(name).bits))


def ref_decode(codes, name):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")                  # float32 signalling NaNs warn when widened
        return codes.view(ref_dtype(name)).astype(np.float64)


def same_floats(a, b):
    """Equal as float64 bit patterns (so -0 != +0), with any NaN equal to any NaN."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(both_nan | (a.view(np.uint64) == b.view(np.uint64))))


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def f32_next(x, direction):
    with np.errstate(over="ignore"):
        return np.nextafter(np.asarray(x, np.float32), np.float32(direction)).astype(np.float64)


# --- decode ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SMALL_TWINS)
def test_decode_all_codes_match_reference(name):
    f = get_format(name)
    codes = np.arange(1 << f.bits).astype(code_dtype(f.bits))
    assert same_floats(decode(codes, f), ref_decode(codes, name))


def fp32_sample_codes():
    rng = np.random.default_rng(1234)
    edges = [0, 1, 2, 0x007FFFFF, 0x00800000, 0x00800001, 0x3F800000, 0x7F7FFFFF, 0x7F800000, 0x7F800001,
             0x7FC00000, 0x7FFFFFFF]
    edges += [c | 0x80000000 for c in edges]
    return np.concatenate([np.array(edges, np.uint32), rng.integers(0, 1 << 32, 1 << 20, dtype=np.uint64)
                           .astype(np.uint32)])


def test_decode_fp32_sample_matches_numpy():
    codes = fp32_sample_codes()
    assert same_floats(decode(codes, "fp32"), ref_decode(codes, "fp32"))


def test_decode_accepts_any_int_dtype():
    f = get_format("e4m3")
    ref = decode(np.arange(256, dtype=np.uint8), f)
    for dt in (np.int16, np.int64, np.uint32, np.uint64):
        assert same_floats(decode(np.arange(256, dtype=dt), f), ref)
    assert same_floats(decode(list(range(256)), f), ref)


# --- encode against the references ----------------------------------------------------------------
def probe_values(f: FloatFormat) -> np.ndarray:
    """Every representable value, every midpoint, float32 neighbours of midpoints, overflow and underflow edges,
    specials; both signs. All exactly representable in float32."""
    v = decode(np.arange(1 << f.bits), f)
    grid = np.unique(np.abs(v[np.isfinite(v)]))
    mids = (grid[:-1] + grid[1:]) / 2
    top_ulp = 2.0 ** (f.emax - f.man_bits)
    boundary = f.max_finite + top_ulp / 2                  # ties at the top: round up into overflow or not
    tiny = f.min_subnormal
    edges = np.array([boundary, f.max_finite + top_ulp, 2 * f.max_finite, 2.0 ** 100, float(np.finfo(np.float32).max),
                      tiny / 2, tiny / 4, 1.5 * tiny, 2.0 ** -149, 2.0 ** -140])
    edges = edges[(edges <= np.finfo(np.float32).max) & (edges >= 2.0 ** -149)]
    pos = np.concatenate([grid, mids, f32_next(mids, np.inf), f32_next(mids, 0), edges,
                          f32_next(edges, np.inf), f32_next(edges, 0)])
    vals = np.concatenate([pos, -pos, [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan]])
    finite = np.isfinite(vals)
    assert np.array_equal(f32(vals[finite]), vals[finite]), "probe values must be float32-exact"
    return vals


@pytest.mark.parametrize("name", SMALL_TWINS)
def test_encode_matches_reference_bit_for_bit(name):
    f = get_format(name)
    vals = probe_values(f)
    mine, ref = encode(vals, f), ref_encode(vals, name)
    assert mine.dtype == code_dtype(f.bits)
    bad = np.flatnonzero(mine != ref)
    assert bad.size == 0, [(vals[i], hex(mine[i]), hex(ref[i])) for i in bad[:8]]


def test_encode_fp16_float64_inputs_match_numpy():
    # numpy's float64 -> float16 cast is direct RNE, so float64 neighbours of the ties can be compared too
    f = get_format("fp16")
    vals = probe_values(f)
    vals = np.concatenate([vals, np.nextafter(vals, np.inf), np.nextafter(vals, -np.inf)])
    assert np.array_equal(encode(vals, f), ref_encode(vals, "fp16"))


def fp32_probe_values():
    rng = np.random.default_rng(99)
    v = ref_decode(fp32_sample_codes(), "fp32")
    v = v[np.isfinite(v)]
    nxt = f32_next(v, np.inf)
    ok = np.isfinite(nxt)
    mids = (v[ok] + nxt[ok]) / 2                           # exact: float32 has 24 bits, float64 53
    rand = np.ldexp(rng.uniform(0.5, 1.0, 200_000), rng.integers(-160, 140, 200_000)) * rng.choice([-1, 1], 200_000)
    top = float(np.finfo(np.float32).max)
    edges = np.array([top + 2.0 ** 103, top + 2.0 ** 104, 2.0 ** 128, 1e300, 2.0 ** -150, 3 * 2.0 ** -150,
                      2.0 ** -151, 1e-300, 5e-324, 2.0 ** -126 - 2.0 ** -150])
    pos = np.concatenate([v, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), rand, edges,
                          np.nextafter(edges, np.inf), np.nextafter(edges, 0)])
    return np.concatenate([pos, -pos, [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan]])


def test_encode_fp32_matches_numpy_cast():
    vals = fp32_probe_values()
    mine, ref = encode(vals, "fp32"), ref_encode(vals, "fp32")
    bad = np.flatnonzero(mine != ref)
    assert bad.size == 0, [(vals[i], hex(mine[i]), hex(ref[i])) for i in bad[:8]]


@pytest.mark.parametrize("name", [n for n in TWINS if n not in ("fp16", "fp32")])
def test_ml_dtypes_float64_cast_rounds_via_float32(name):
    # documents why the comparisons above use float32-exact inputs
    rng = np.random.default_rng(5)
    x = np.ldexp(rng.uniform(-1, 1, 50_000), rng.integers(-30, 20, 50_000))
    assert np.array_equal(ref_encode(x, name), ref_encode(f32(x), name))


def test_ml_dtypes_double_rounding_example():
    x = np.array([1 + 2.0 ** -4 + 2.0 ** -40])                # just above the 1.0/1.125 tie
    assert ref_encode(x, "e4m3fn")[0] == 0x38                  # ml_dtypes: 1.0 (the float32 tie went to even)
    assert encode(x, "e4m3fn")[0] == 0x39                      # exact RNE: 1.125


# --- directed special / overflow policies ------------------------------------------------------------
NAN, INF = np.nan, np.inf
DIRECTED = [  # (format, overflow, inputs, expected codes)
    ("e4m3fn", None, [448, 464, 465, 1e9, -465, INF, -INF, NAN, -NAN], [0x7E, 0x7E, 0x7F, 0x7F, 0xFF, 0x7F, 0xFF, 0x7F, 0xFF]),
    ("e4m3fn", "saturate", [464, 465, 1e9, -1e9, INF, -INF, NAN], [0x7E, 0x7E, 0x7E, 0xFE, 0x7E, 0xFE, 0x7F]),
    ("e4m3fn", "inf", [465, -465, INF, -INF], [0x7F, 0xFF, 0x7F, 0xFF]),
    ("e5m2", None, [57344, 61439, 61440, -61440, INF, NAN, -NAN], [0x7B, 0x7B, 0x7C, 0xFC, 0x7C, 0x7E, 0xFE]),
    ("e5m2", "saturate", [61440, 1e9, -1e9, INF, -INF], [0x7B, 0x7B, 0xFB, 0x7C, 0xFC]),
    ("e5m2", "inf", [61440, -1e9, INF], [0x7C, 0xFC, 0x7C]),
    ("e4m3fnuz", None, [240, 247, 248, -248, INF, -INF, NAN, -NAN, -0.0, -1e-9], [0x7F, 0x7F, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0]),
    ("e4m3fnuz", "saturate", [248, -248, INF, -INF], [0x7F, 0xFF, 0x7F, 0xFF]),
    ("e4m3fnuz", "inf", [248, -INF], [0x80, 0x80]),
    ("e2m1", None, [5, 2.5, 0.25, 0.75, 6.9, 7, 1e9, -INF, NAN, -NAN, -0.0, -0.2], [6, 4, 0, 2, 7, 7, 7, 0xF, 0x8, 0x0, 0x8, 0x8]),
    ("e2m1", "saturate", [1e9, -INF], [7, 0xF]),
    ("e3m2", None, [28, 30, 32, -1e9, NAN], [0x1F, 0x1F, 0x1F, 0x3F, 0x20]),
    ("fp32", "saturate", [1e39, -1e39, INF, -INF], [0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000]),
    ("bf16", None, [3.4e38 * 1.01, NAN], [0x7F80, 0x7FC0]),
    ("bf16", "saturate", [3.4e38 * 1.01, -INF], [0x7F7F, 0xFF80]),
    ("e3m4", None, [15.5, 15.75, 16, NAN], [0x6F, 0x70, 0x70, 0x78]),
]


@pytest.mark.parametrize("name,overflow,inputs,expected", DIRECTED)
def test_directed_codes(name, overflow, inputs, expected):
    with np.errstate(over="ignore"):
        got = encode(np.array(inputs, dtype=np.float64), name, overflow=overflow)
    assert [hex(c) for c in got] == [hex(c) for c in expected]


def test_directed_natural_policy_matches_ml_dtypes():
    for name, overflow, inputs, expected in DIRECTED:
        if overflow is None and name in SMALL_TWINS:
            assert [hex(c) for c in ref_encode(inputs, name)] == [hex(c) for c in expected], name


def test_round_half_away():
    got = encode([2.5, 0.25, 0.75, -5, 5.0, 0.2], "e2m1", rounding="away")
    assert list(got) == [5, 1, 2, 0xF, 7, 0]


# --- custom formats against exact math ------------------------------------------------------------
def formula_value(code: int, f: FloatFormat) -> float:
    """Value of a code written straight from the format definition (independent of decode)."""
    E, M = f.exp_bits, f.man_bits
    s, e, m = code >> (E + M), (code >> M) & ((1 << E) - 1), code & ((1 << M) - 1)
    mag = code & ((1 << (E + M)) - 1)
    if f.special == "ieee" and e == (1 << E) - 1:
        v = math.inf if m == 0 else math.nan
    elif f.special == "fn" and mag == (1 << (E + M)) - 1:
        v = math.nan
    elif f.special == "fnuz" and code == 1 << (E + M):
        v = math.nan
    elif e == 0:
        v = math.ldexp(m, 1 - f.bias - M)
    else:
        v = math.ldexp((1 << M) + m, e - f.bias - M)
    return -v if s else v


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_decode_by_formula(name):
    f = get_format(name)
    codes = np.arange(1 << f.bits)
    assert same_floats(decode(codes, f), [formula_value(int(c), f) for c in codes])


@pytest.mark.parametrize("name", CUSTOM + SMALL_TWINS)
def test_round_trip_and_ties_to_even(name):
    f = get_format(name)
    codes = np.arange(1 << f.bits)
    vals = decode(codes, f)
    keep = ~np.isnan(vals)
    assert np.array_equal(encode(vals[keep], f), codes[keep])
    # magnitude codes 0..max_finite_code are increasing: the midpoint of neighbours k, k+1 goes to the even one
    mag = np.arange(f.max_finite_code + 1)
    pos = decode(mag, f)
    mids = (pos[:-1] + pos[1:]) / 2
    even = np.where(mag[:-1] % 2 == 0, mag[:-1], mag[1:])
    assert np.array_equal(encode(mids, f), even)
    neg = np.where(even == 0, 0 if f.special == "fnuz" else f.sign_mask, even | f.sign_mask)
    assert np.array_equal(encode(-mids, f), neg)


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_encode_matches_nearest_search(name):
    # brute force: the nearest grid value, ties to the even code; float32 inputs keep the differences exact
    f = get_format(name)
    grid = decode(np.arange(f.max_finite_code + 1), f)
    rng = np.random.default_rng(7)
    e = rng.integers(f.emin - f.man_bits - 2, f.emax + 1, 20_000)
    x = f32(np.minimum(np.ldexp(rng.uniform(0.5, 1, e.size), e + 1), f.max_finite))
    hi = np.minimum(np.searchsorted(grid, x), grid.size - 1)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = x - grid[lo], grid[hi] - x
    want = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    want = np.where(x == grid[hi], hi, want)
    assert np.array_equal(encode(x, f), want)


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_overflow_by_policy(name):
    f = get_format(name)
    tie = f.max_finite + 2.0 ** (f.emax - f.man_bits) / 2
    over = np.nextafter(tie, np.inf)
    natural = {"ieee": f.inf_code, "fn": f.nan_code, "fnuz": f.nan_code, "finite": f.max_finite_code}[f.special]
    # the tie rounds up into overflow unless max finite is the even code (fn: S.11..1.11..0, like e4m3fn 464)
    assert encode([tie], f)[0] == (f.max_finite_code if f.max_finite_code % 2 == 0 else natural)
    assert list(encode([over, np.inf], f)) == [natural, f.inf_code if f.has_inf else natural]
    assert list(encode([over, np.inf], f, overflow="saturate")) == [f.max_finite_code,
                                                                   f.inf_code if f.has_inf else f.max_finite_code]
    assert encode([np.nextafter(tie, 0)], f)[0] == f.max_finite_code
    if f.has_nan:
        assert list(encode([over, -over, np.inf], f, overflow="inf")) == [
            f.inf_code if f.has_inf else f.nan_code, (f.inf_code | f.sign_mask) if f.has_inf
            else f.nan_code | (0 if f.special == "fnuz" else f.sign_mask), f.inf_code if f.has_inf else f.nan_code]


# --- integers --------------------------------------------------------------------------------------
def test_int_decode_all_codes():
    assert np.array_equal(decode(np.arange(256), "int8"), np.arange(256).astype(np.uint8).view(np.int8))
    assert np.array_equal(decode(np.arange(16), "int4"), [0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1])
    assert np.array_equal(decode(np.arange(256), "uint8"), np.arange(256))
    assert decode([0xFFFFFFFF], "int32")[0] == -1


def test_int_encode():
    x = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.4, 127.5, 1e9, -128.5, -1e9, np.inf, -np.inf, -0.0]
    assert list(encode(x, "int8")) == [0, 2, 2, 0, 0xFE, 0xFE, 127, 127, 127, 0x80, 0x80, 127, 0x80, 0]
    assert list(encode(x[:6], "int8", rounding="away")) == [1, 2, 3, 0xFF, 0xFE, 0xFD]
    assert list(encode([128, 300, -129, -1, 255.5], "int8", overflow="wrap")) == [0x80, 44, 127, 0xFF, 0]
    assert list(encode([-1, 256, 3.5], "uint8")) == [0, 255, 4]
    assert list(encode([-1, 256], "uint8", overflow="wrap")) == [255, 0]
    assert list(encode([7, 8, -9], "int4")) == [7, 7, 8]
    assert encode([-1], "int32").dtype == np.uint32 and encode([-1], "int32")[0] == 0xFFFFFFFF
    assert np.array_equal(decode(encode(np.arange(-128, 128), "int8"), "int8"), np.arange(-128, 128))


# --- errors ----------------------------------------------------------------------------------------
ERRORS = [
    (lambda: decode(np.array([256]), "e4m3"), "codes: got 256 for e4m3, allowed: 0..255"),
    (lambda: decode(np.array([-1]), "e2m1"), "codes: got -1 for e2m1, allowed: 0..15"),
    (lambda: decode(np.array([2 ** 64 - 1], np.uint64), "fp32"), "got 18446744073709551615 for fp32"),
    (lambda: decode(np.array([1.0]), "e4m3"), "codes: got dtype float64, allowed: an integer dtype"),
    (lambda: decode([16], "int4"), "codes: got 16 for int4, allowed: 0..15"),
    (lambda: encode([1.0], "e4m3", overflow="clamp"), "overflow: got 'clamp', allowed: None, 'saturate', 'inf'"),
    (lambda: encode([1.0], "e4m3", overflow="wrap"), "overflow: got 'wrap', allowed: None, 'saturate', 'inf'"),
    (lambda: encode([1.0], "e2m1", overflow="inf"), "overflow: got 'inf' for e2m1, which has neither Inf nor NaN"),
    (lambda: encode([1.0], "int8", overflow="inf"), "overflow: got 'inf', allowed: None, 'saturate', 'wrap'"),
    (lambda: encode([1.0], "e4m3", rounding="up"), "rounding: got 'up', allowed: 'even', 'away'"),
    (lambda: encode([1.0], 3.0), "fmt: got 3.0 of type float, allowed: an IntFormat, a FloatFormat"),
    (lambda: decode([1], None), "fmt: got None of type NoneType"),
    (lambda: encode([1.0, np.nan], "int8"), "values: NaN at index (1,)"),
    (lambda: encode([np.inf], "int8", overflow="wrap"), "values: ±Inf cannot wrap into int8"),
    (lambda: encode([1.0], "e4m3x"), "format: unknown 'e4m3x'"),
]


@pytest.mark.parametrize("call,message", ERRORS)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


# --- table -----------------------------------------------------------------------------------------
def test_format_table():
    rows = {r["name"]: r for r in format_table()}
    assert {"e4m3", "e5m2", "e2m1", "bf16", "fp32", "int8", "uint8", "int4"} <= set(rows)
    keys = {"name", "bits", "exp_bits", "man_bits", "bias", "max", "min_normal", "min_subnormal", "special"}
    assert all(set(r) == keys for r in rows.values())
    assert rows["e4m3"]["max"] == 448 and rows["e4m3"]["special"] == "NaN (S.1111.111)"
    assert rows["e4m3"]["min_subnormal"] == 2.0 ** -9 and rows["e4m3"]["min_normal"] == 2.0 ** -6
    assert rows["e5m2"]["special"] == "±Inf, NaN" and rows["e5m2"]["max"] == 57344
    assert rows["e4m3fnuz"]["special"] == "NaN at 0x80, no -0" and rows["e4m3fnuz"]["max"] == 240
    assert rows["e2m1"]["special"] == "none" and rows["e2m1"]["max"] == 6
    assert rows["int8"]["max"] == 127 and rows["int8"]["bits"] == 8 and rows["int8"]["special"] == "none"
    assert rows["uint8"]["max"] == 255 and rows["int4"]["max"] == 7
    for name in SMALL_TWINS:   # table maxima agree with the reference types
        assert rows[name]["max"] == float(ml_dtypes.finfo(ref_dtype(name)).max), name
    assert [r["name"] for r in format_table(["e3m3", "int4"])] == ["e3m3", "int4"]
