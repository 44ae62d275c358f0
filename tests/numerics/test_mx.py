"""sw_model.numerics.mx: OCP MX v1.0 block quantization, hand-worked examples and a check against ml_dtypes element casts.

Rounding is RNE unless a test says "away" (half away from zero, microxcaling's default). Elements saturate to
±max normal; scale 0xFF is NaN. ml_dtypes fp6/fp4 casts saturate by themselves; for the fp8 elements the reference
clips to ±max before casting (ml_dtypes' e4m3fn would give NaN, e5m2 Inf).
"""
import math

import ml_dtypes
import numpy as np
import pytest

from sw_model.numerics.formats import decode
from sw_model.numerics.mx import MX_PRESETS, MXFormat, get_mx_format, mx_dequantize, mx_quantize

FP_PRESETS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"]
ML_ELEM = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn,
           "e2m3": ml_dtypes.float6_e2m3fn, "e2m1": ml_dtypes.float4_e2m1fn}


def block(*vals, k=32):
    return np.array(list(vals) + [0.0] * (k - len(vals)))


def test_presets_and_validation():
    assert {p: get_mx_format(p).element for p in MX_PRESETS} == MX_PRESETS
    assert get_mx_format("mxfp8_e4m3").emax_elem == 8 and get_mx_format("mxfp8_e5m2").emax_elem == 15
    assert get_mx_format("mxfp6_e3m2").emax_elem == 4 and get_mx_format("mxfp6_e2m3").emax_elem == 2
    assert get_mx_format("mxfp4").emax_elem == 2 and get_mx_format("mxint8").emax_elem == 0
    assert get_mx_format("MXFP4", 16) == MXFormat("e2m1", 16)
    cases = [(lambda: MXFormat("e4m3fn"), "MXFormat.element: got 'e4m3fn', allowed: e5m2, e4m3"),
             (lambda: MXFormat("e2m1", 0), "MXFormat.block_size: got 0, allowed: a positive integer"),
             (lambda: MXFormat("e2m1", 32.0), "MXFormat.block_size: got 32.0"),
             (lambda: get_mx_format("mxfp5"), "MX format: got 'mxfp5', allowed: mxfp8_e4m3"),
             (lambda: mx_quantize(block(1.0), "mxfp4", rounding="nearest"), "rounding: got 'nearest'"),
             (lambda: mx_quantize(block(1.0), "mxfp4", axis=1), "axis: got 1, allowed: an integer in -1..0"),
             (lambda: mx_quantize(block(1.0), 4), "mxfmt: got 4 of type int"),
             (lambda: mx_dequantize(np.zeros(2, np.uint8), np.zeros(32, np.uint8), "mxfp4"),
              "scale_codes: got shape (2,), allowed: (1,)")]
    for call, msg in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert msg in str(err.value)


def test_mxfp4_hand_example():
    # max|V| = 6: floor(log2 6) = 2 = emax(E2M1) -> shared_exp 0 -> scale code 127; elements are V itself
    x = block(6.0, 3.0, 2.5, -0.25, 0.75, -5.0, 0.2)
    s, c = mx_quantize(x, "mxfp4")
    assert list(s) == [127]
    assert list(c[:7]) == [0x7, 0x5, 0x4, 0x8, 0x2, 0xE, 0x0]    # 2.5->2, -0.25->-0, 0.75->1, -5->-4 (ties to even)
    s2, c2 = mx_quantize(x, "mxfp4", rounding="away")
    assert list(s2) == [127]
    assert list(c2[:7]) == [0x7, 0x5, 0x5, 0x9, 0x2, 0xF, 0x0]   # 2.5->3, -0.25->-0.5, -5->-6
    assert list(mx_dequantize(s, c, "mxfp4")[:7]) == [6, 3, 2, -0.0, 1, -4, 0]
    # max 12: shared_exp 1 -> code 128, elements V/2: 12->6, 1->0.5, 0.5->0.25 ties to 0
    s, c = mx_quantize(block(12.0, 1.0, 0.5, -7.0), "mxfp4")
    assert list(s) == [128] and list(c[:4]) == [0x7, 0x1, 0x0, 0xE]   # -7/2 = -3.5 -> -4 (tie, even)
    # max 7 -> floor(log2 7) = 2 -> shared 0; 7 saturates to 6
    s, c = mx_quantize(block(7.0, 0.5), "mxfp4")
    assert list(s) == [127] and list(c[:2]) == [0x7, 0x1]


def test_mxfp8_e4m3_hand_example():
    # max 1.9: floor(log2) = 0, emax 8 -> shared_exp -8 -> code 119; 1.9 * 256 = 486.4 saturates to 448 (0x7E)
    x = block(1.9, 1.0, 1.75 * 2.0 ** -10, 2.0 ** -17, -2.0 ** -18)
    s, c = mx_quantize(x, "mxfp8_e4m3")
    assert list(s) == [119]
    # 1.0 -> 256 = 2^8 (0x78); 1.75*2^-10 -> 0.4375 = 1.75*2^-2 (0x2E); 2^-17 -> 2^-9 (min subnormal, 0x01);
    # -2^-18 -> -2^-10, the tie between 0 and the min subnormal -> -0 (0x80)
    assert list(c[:5]) == [0x7E, 0x78, 0x2E, 0x01, 0x80]
    d = mx_dequantize(s, c, "mxfp8_e4m3")
    assert list(d[:4]) == [1.75, 1.0, 1.75 * 2.0 ** -10, 2.0 ** -17]
    s, c = mx_quantize(x, "mxfp8_e4m3", rounding="away")
    assert c[4] == 0x81                                          # away: -2^-10 -> -2^-9


def test_mxint8_hand_example():
    # max 1.0 -> shared 0 -> code 127; elements round(V * 64), clamped to ±127
    s, c = mx_quantize(block(1.0, -0.5, 0.3, 2.5 / 64, -2.5 / 64), "mxint8")
    assert list(s) == [127] and list(c[:5]) == [0x40, 0xE0, 0x13, 0x02, 0xFE]
    s, c = mx_quantize(block(1.0, 2.5 / 64, -2.5 / 64), "mxint8", rounding="away")
    assert list(c[:3]) == [0x40, 0x03, 0xFD]
    s, c = mx_quantize(block(1.999, -1.999, 0.0), "mxint8")          # 127.9 -> 127 and -127 (never -128)
    assert list(s) == [127] and list(c[:3]) == [0x7F, 0x81, 0x00]
    s, c = mx_quantize(block(3.0, -1.0), "mxint8")                     # shared 1: 3/2 * 64 = 96
    assert list(s) == [128] and list(c[:2]) == [0x60, 0xE0]
    assert list(mx_dequantize(s, c, "mxint8")[:2]) == [3.0, -1.0]
    # code 0x80 is never produced but decodes as -2 (two's complement)
    assert mx_dequantize(np.array([127], np.uint8), np.array([0x80] * 32, np.uint8), "mxint8")[0] == -2.0


@pytest.mark.parametrize("preset", list(MX_PRESETS))
def test_zero_and_tiny_blocks(preset):
    mx = get_mx_format(preset)
    # amax = 0 is taken as 2^-126: shared = -126 - emax, clamped at -127
    s, c = mx_quantize(np.zeros(64), mx)
    assert list(s) == [max(-126 - mx.emax_elem, -127) + 127] * 2 and not c.any()
    assert not mx_dequantize(s, c, mx).any()
    s, c = mx_quantize(block(2.0 ** -150), mx)                      # clamp at -127, element underflows to 0
    assert list(s) == [0] and not c.any()


@pytest.mark.parametrize("preset", list(MX_PRESETS))
def test_nan_scale(preset):
    mx = get_mx_format(preset)
    big = 2.0 ** (128 + mx.emax_elem)                               # shared_exp 128 > 127
    ok = 2.0 ** (127 + mx.emax_elem)                                # shared_exp 127: the largest scale
    x = np.concatenate([block(np.nan, 1.0), block(-np.inf), block(big), block(ok, 1.0)])
    s, c = mx_quantize(x, mx)
    assert list(s) == [0xFF, 0xFF, 0xFF, 254]
    assert not c[:96].any()
    d = mx_dequantize(s, c, mx)
    assert np.isnan(d[:96]).all() and d[96] == ok


@pytest.mark.parametrize("preset", list(MX_PRESETS))
def test_round_trip_of_representable_values(preset):
    mx = get_mx_format(preset)
    f = mx.elem_format
    rng = np.random.default_rng(3)
    codes = np.arange(1 << f.bits)
    vals = decode(codes, f)
    finite = codes[np.isfinite(vals) & (codes != 0x80 if preset == "mxint8" else True)]
    el = rng.choice(finite, size=(8, 64)).astype(np.uint8)
    sc = rng.integers(60, 200, size=(8, 2)).astype(np.uint8)
    x = mx_dequantize(sc, el, mx)
    s2, c2 = mx_quantize(x, mx)
    assert np.array_equal(mx_dequantize(s2, c2, mx), x)
    # when each block's largest element is in the top binade the codes themselves come back
    top = np.where(np.abs(decode(el, f)).reshape(8, 2, 32).max(-1) >= 2.0 ** mx.emax_elem)
    assert np.array_equal(s2[top], sc[top])


def reference_elements(x, mx):
    """Per block: shared exponent by math.log2, then ml_dtypes (fp) or rint (int8) on V / 2^shared_exp."""
    xb = x.reshape(x.shape[:-1] + (-1, mx.block_size))
    amax = np.abs(xb).max(-1)
    se = np.vectorize(lambda a: max(math.floor(math.log2(a if a else 2.0 ** -126)) - mx.emax_elem, -127))(amax)
    p = xb / np.exp2(se)[..., None]
    f = mx.elem_format
    if mx.element == "int8":
        codes = np.clip(np.rint(p * 64), -127, 127).astype(np.int8).view(np.uint8)
    else:
        # ml_dtypes fp8 casts do not saturate (e4m3fn -> NaN, e5m2 -> Inf): clip first; fp6/fp4 saturate alone
        pc = np.clip(p, -f.max_finite, f.max_finite) if f.bits == 8 else p
        codes = pc.astype(np.float32).astype(ML_ELEM[mx.element]).view(np.uint8)
    return (se + 127).astype(np.uint8), codes.reshape(x.shape), se, p


@pytest.mark.parametrize("preset", list(MX_PRESETS))
def test_against_ml_dtypes_and_error_bound(preset):
    mx = get_mx_format(preset)
    f = mx.elem_format
    rng = np.random.default_rng(11)
    # float32 values spread over many binades per block, so blocks hold saturating and subnormal elements
    x = np.ldexp(rng.normal(size=(16, 256)), rng.integers(-12, 12, size=(16, 256))).astype(np.float32)
    x = x.astype(np.float64)
    x[0] = np.ldexp(np.float32(1.5), rng.integers(-60, 60, 256))      # exact ties and powers of two
    x[1] = np.ldexp(np.float32(1.999), rng.integers(-3, 3, 256)) * rng.choice([-1, 1], 256)   # saturating maxima
    s, c = mx_quantize(x, mx)
    rs, rc, se, p = reference_elements(x, mx)
    assert np.array_equal(s, rs)
    assert np.array_equal(c, rc)
    d = mx_dequantize(s, c, mx).reshape(p.shape)
    xb = x.reshape(p.shape)
    scale = np.exp2(se)[..., None]
    if preset == "mxint8":
        half_ulp = np.full(p.shape, 0.5 / 64)
        sat = np.abs(p) * 64 > 127
        limit = 127 / 64
    else:
        e = np.floor(np.log2(np.maximum(np.abs(p), f.min_normal)))
        half_ulp = np.exp2(e - f.man_bits) / 2
        sat = np.abs(p) > f.max_finite
        limit = f.max_finite
    err = np.abs(xb - d)
    assert (err[~sat] <= (half_ulp * scale)[~sat]).all()
    assert sat.any() and np.array_equal(np.abs(d[sat]), np.broadcast_to(limit * scale, p.shape)[sat])


def test_partial_blocks_axis_and_block_size():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 70))
    s, c = mx_quantize(x, "mxfp6_e2m3")
    assert s.shape == (3, 3) and c.shape == (3, 70) and s.dtype == c.dtype == np.uint8
    sp, cp = mx_quantize(np.concatenate([x, np.zeros((3, 26))], axis=1), "mxfp6_e2m3")   # zero padding
    assert np.array_equal(s, sp) and np.array_equal(c, cp[:, :70])
    d = mx_dequantize(s, c, "mxfp6_e2m3")
    assert d.shape == x.shape
    s0, c0 = mx_quantize(x.T, "mxfp6_e2m3", axis=0)
    assert np.array_equal(s0, s.T) and np.array_equal(c0, c.T)
    assert np.array_equal(mx_dequantize(s0, c0, "mxfp6_e2m3", axis=0), d.T)
    x3 = rng.normal(size=(2, 48, 5))
    mx16 = MXFormat("e4m3", 16)
    s3, c3 = mx_quantize(x3, mx16, axis=1)
    assert s3.shape == (2, 3, 5)
    ref_s, ref_c = mx_quantize(np.moveaxis(x3, 1, -1), mx16)
    assert np.array_equal(np.moveaxis(s3, 1, -1), ref_s) and np.array_equal(np.moveaxis(c3, 1, -1), ref_c)
    assert np.array_equal(mx_dequantize(s3, c3, mx16, axis=1), np.moveaxis(mx_dequantize(ref_s, ref_c, mx16), -1, 1))
