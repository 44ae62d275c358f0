"""The attention array's L-Mul option (golden model): the fixed-point L-Mul by hand and against the float L-Mul
golden model (sw_model.lmul.golden) on exactly representable operands, its bounds, the saturating running sums and
output, the error of whole attention heads against float64, and the config fields."""
import math

import numpy as np
import pytest

from sw_model.attention import golden as A
from sw_model.attention.config import AttentionConfig
from sw_model.attention.lmul import lmul_array, lmul_int
from sw_model.config import ConfigError
from sw_model.lmul.golden import lmul
from sw_model.numerics.formats import decode, encode
from sw_model.registry import PRESETS, config_from_dict


def test_lmul_int_hand_worked():
    # 3 = 1.1b * 2^1 (m = 3: f = 100b), 3 x 3: fractions .5 + .5 + offset 2^-3 carry into the exponent:
    # R = (1<<3 | 4) * 2 + 1 = 25 -> E = 3, F = 1 -> 1.001b * 2^3 = 9 (here exact)
    assert lmul_int(3, 3, 3) == 9
    # 5 = 1.01b * 4, 6 = 1.10b * 4 (m = 2, offset 1 LSB = 1/4): .25 + .5 + .25 = 1.0 carries -> 2 * 1.0 * 16 = 32
    assert lmul_int(5, 6, 2) == 32 and lmul_int(-5, 6, 2) == -32 and lmul_int(-5, -6, 2) == 32
    # 1 x 1 with m = 1 (offset 1/2): 1.5 -> floor 1; zero in -> zero out
    assert lmul_int(1, 1, 1) == 1 and lmul_int(0, 7, 3) == 0 and lmul_int(-7, 0, 3) == 0
    # 7 = 1.110b * 4, 9 = 1.001b * 8 (m = 3): .75 + .125 + .125 = 1.0 -> 64; shift 2 folds a >> 2 in: 16
    assert lmul_int(7, 9, 3) == 64 and lmul_int(7, 9, 3, shift=2) == 16
    # truncation: 23 = 10111b keeps 1.01b (20) with m = 2; 23 x 1 = (1 + .25 + 0 + .25) * 16 = 24
    assert lmul_int(23, 1, 2) == 24
    # sign-magnitude: the floor applies to the magnitude (rounds toward zero): 1 x 1 (m = 1) = 1.5 -> +-1
    assert lmul_int(-1, 1, 1) == -1


@pytest.mark.parametrize("fmt,man,top", [("bf16", 7, 256), ("e4m3", 3, 16), ("e5m2", 2, 8)])
def test_lmul_int_is_the_float_lmul(fmt, man, top):
    """On integers the float format holds exactly (|x| < 2^(m+1)) the fixed-point L-Mul before its floor is the
    format's adder-mode L-Mul (independent model, sw_model.lmul.golden): every pair."""
    x = np.arange(-top + 1, top)
    a, b = np.meshgrid(x, x)
    val = decode(lmul(encode(a.astype(float), fmt), encode(b.astype(float), fmt), fmt), fmt)
    want = np.sign(val) * np.floor(np.abs(val))
    got = lmul_array(a, b, man).astype(np.int64)
    assert np.array_equal(got, want)


def test_lmul_int_bounds_and_shift():
    rng = np.random.default_rng(3)
    a, b = rng.integers(-2 ** 20, 2 ** 20, 4000), rng.integers(-2 ** 12, 2 ** 12, 4000)
    for man in (1, 3, 7, 12):
        got = lmul_array(a, b, man).astype(np.float64)
        exact = a.astype(np.float64) * b
        nz = exact != 0
        ratio = got[nz] / exact[nz]
        assert ratio.max() <= 1.5 and ratio.min() >= 0.5, (man, ratio.min(), ratio.max())
        # the shift folded into the L-Mul = a later shift of the (floored) magnitude
        for s in (1, 5):
            ref = np.sign(got) * (np.abs(got).astype(np.int64) >> s)
            assert np.array_equal(lmul_array(a, b, man, s).astype(np.int64), ref)
    # more mantissa bits: smaller mean error, down to the offset's floor
    errs = [np.mean(np.abs(lmul_array(a, b, man).astype(float) / (a * b.astype(float)) - 1)) for man in (1, 3, 7)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.05


def gaussian_head(n_q, n_k, seed, d=32):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_q, d)), rng.normal(size=(n_k, d)), rng.normal(size=(n_k, d))


def float_attention(q, k, v):
    s = q @ k.T / math.sqrt(q.shape[1])
    w = np.exp(s - s.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ v


def head_error(mult, q, k, v, man=7):
    cfg = AttentionConfig(head_dim=32, m0=8, p0=8, score_shift=8, mult=mult, lmul_man=man)
    cfg = AttentionConfig(**{**cfg.__dict__, "score_shift": A.best_score_shift(cfg, q, k)})
    z = A.quantize_head(cfg, q, k, v)
    return np.abs(A.attention(cfg, z["q"], z["k"], z["v"]) / z["out_scale"] - float_attention(q, k, v)).max()


def test_lmul_attention_error_against_float64():
    """Short sequences: L-Mul attention stays within ~10 % of the largest output (exact: ~2 %); measured
    exact 0.027 / lmul 0.086 / lmul-products 0.093 of max 1.21."""
    q, k, v = gaussian_head(8, 16, seed=1)
    ref = np.abs(float_attention(q, k, v)).max()
    assert head_error("exact", q, k, v) < 0.03 * ref
    for mult in ("lmul", "lmul-products"):
        assert head_error(mult, q, k, v) < 0.1 * ref, mult


def test_lmul_corrections_drift_with_length():
    """An L-Mul by PRM = 1 (the running max did not move) is not the identity: it adds the 2^-l(m) offset, so
    with L-Mul corrections early tiles gain weight tile after tile. At 256 keys (32 tiles) the error of `lmul` is
    several times that of `lmul-products` (measured 0.152 vs 0.019, max output 0.39)."""
    q, k, v = gaussian_head(8, 256, seed=4)
    assert head_error("lmul", q, k, v) > 3 * head_error("lmul-products", q, k, v)


def test_running_sums_and_output_saturate():
    # m = 1: offset 1/2, every correction by PRM = 1 multiplies RD by ~1.3..1.5; 32 one-key tiles overflow the
    # 10-bit RD (W + max_keys_log2 + 1): it must stop at its maximum instead of wrapping
    cfg = AttentionConfig(head_dim=2, m0=1, p0=1, data_bits=4, logit_frac=1, exp_bits=4, out_frac=2,
                          max_keys_log2=5, mult="lmul", lmul_man=1)
    trace = []
    out = A.attention(cfg, [[0, 0]], np.ones((32, 2), np.int64), np.full((32, 2), -8), trace=trace)
    rds = [int(t["rd"][0]) for t in trace]
    assert max(rds) == (1 << cfg.rd_width) - 1 and rds == sorted(rds)
    # RNV saturated as well (at -2^13); the output is their ratio, -8192 / 1023 * 2^2 = -32 (exact -8 * 4 too)
    assert int(trace[-1]["rnv"][0, 0]) == -(1 << (cfg.rnv_width - 1)) and out.tolist() == [[-32, -32]]
    # the output saturates to its out_width bits instead of wrapping (exact mode: RNV / RD is within V's range)
    sat = A.normalize(cfg, np.array([16], dtype=object), np.array([[16 * 100, -16 * 100]], dtype=object))
    assert sat.tolist() == [[(1 << (cfg.out_width - 1)) - 1, -(1 << (cfg.out_width - 1))]]
    plain = AttentionConfig(**{**cfg.__dict__, "mult": "exact"})
    assert A.normalize(plain, np.array([16], dtype=object), np.array([[16 * 100]], dtype=object)).tolist() == [[400]]


def test_score_width_holds_the_largest_lmul_score():
    cfg = AttentionConfig(head_dim=7, m0=1, p0=1, data_bits=5, mult="lmul", lmul_man=1)
    assert cfg.score_width == AttentionConfig(head_dim=7, data_bits=5).score_width + 1
    s = int(lmul_array(np.full(7, -16), np.full(7, -16), 1).sum())
    assert s > 7 * 256 and s < 1 << (cfg.score_width - 1)


@pytest.mark.parametrize("fields,message", [
    ({"mult": "float"}, "mult: got 'float', allowed: exact, lmul, lmul-products"),
    ({"lmul_man": 0}, "lmul_man: got 0, allowed: an integer from 1 to 16"),
])
def test_bad_lmul_configs(fields, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"unit": "attention", **fields})


def test_preset_and_defaults():
    p = PRESETS["attention-8x8-d32-lmul"]
    assert (p.mult, p.lmul_man, p.m0, p.p0, p.head_dim, p.score_shift) == ("lmul", 7, 8, 8, 32, 8)
    assert AttentionConfig().mult == "exact" and PRESETS["attention-8x8-d32"].mult == "exact"
