"""BitMoD FP16-activation golden model (sw_model/bitmod/fp16.py): hand-worked alignment/truncation and
block-floating-point accumulation, the special-value policy (subnormal, +-0, Inf, NaN), the derived error bound
against a float64 reference at 3 configs, an exact cross-check with the INT8-activation model, quantized
weights end to end, output width at the extremes, bad inputs and configs."""
import dataclasses

import numpy as np
import pytest

from sw_model.bitmod import fp16 as fp
from sw_model.bitmod import golden as bm
from sw_model.bitmod import quant as bq
from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.vectors import extreme_beats, random_beats
from sw_model.config import ConfigError
from sw_model.registry import load_config

CFG = BitModConfig(lanes=4, group_size=16, max_groups=4, act="fp16")
CONFIGS = [BitModConfig(lanes=1, group_size=4, max_groups=4, act="fp16"), CFG,
           BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3, act="fp16")]


def h(x) -> int:
    return int(np.float16(x).view(np.uint16))


def test_fp16_fields_special_values():
    s, e, m, live, special = fp.fp16_fields([h(1.0), 0x0001, 0x8000, 0x7C00, 0xFE01, 0xFBFF, 0x03FF])
    assert s.tolist() == [0, 0, 1, 0, 1, 1, 0]
    assert e.tolist() == [15, 1, 1, 31, 31, 30, 1]                 # subnormals use exponent 1
    assert m.tolist() == [1024, 1, 0, 0, 0, 2047, 1023]            # Inf/NaN: mantissa forced to 0
    assert live.tolist() == [True, True, False, False, False, True, True]
    assert special.tolist() == [False, False, False, True, True, False, False]
    assert fp.fp16_value([0x0001])[0] == 2.0 ** -24


def test_hand_worked_cycle_truncation():
    """a = (1.0, 1025/1024 * 2^-4), weight terms (+1.0, -0.5) = half units (+2, -1): p = (15 + 1, 11 + 0),
    P = 16, delta = (0, 5); lanes 1024 * 8 = 8192 and floor(1025 * 8 / 32) = 256 -> S = 7936, E_s = 16:
    value 7936 * 2^(16 - 29) = 0.96875 vs exact 1 - 0.03128... = 0.96871948..."""
    a = np.array([[h(1.0), 0x2C01]])
    S, Es = fp.cycle_sum(CFG, a, np.array([[2, -1]]), np.array([0]))
    assert S.tolist() == [[7936]] and Es.tolist() == [[16]]
    assert 7936 * 2.0 ** (16 - 29) == 0.96875
    exact = 1.0 - 0.5 * fp.fp16_value([0x2C01])[0]
    assert 0 < 0.96875 - exact < 2.0 ** (16 - 29)                  # truncated magnitude of the negative lane
    # the same with bsig = 4 (Booth digit 2 of an INT8 weight): exponent + 4, mantissa unchanged
    S4, Es4 = fp.cycle_sum(CFG, a, np.array([[2, -1]]), np.array([4]))
    assert S4.tolist() == [[7936]] and Es4.tolist() == [[20]]
    # dead lanes (zero term, zero / Inf activation) take no part in the max: E_s from the live lane only
    S, Es = fp.cycle_sum(CFG, np.array([[h(2.0 ** -10), 0x7C00]]), np.array([[1, 16]]), np.array([0]))
    assert S.tolist() == [[1024 * 8]] and Es.tolist() == [[5]]
    S, Es = fp.cycle_sum(CFG, np.array([[0x8000, h(3.0)]]), np.array([[1, 0]]), np.array([2]))
    assert S.tolist() == [[0]] and Es.tolist() == [[0]]            # nothing live: a no-op cycle


def test_hand_worked_block_float_add():
    assert fp._align_add(np.array(5), np.array(3), np.array(-3), np.array(5)) == (-2, 5)    # 5 >> 2 = 1
    assert fp._align_add(np.array(-5), np.array(3), np.array(7), np.array(1)) == (-4, 3)    # 7 >> 2 = 1
    assert fp._align_add(np.array(-5), np.array(6), np.array(0), np.array(4)) == (-5, 6)
    assert fp._align_add(np.array(-5), np.array(2), np.array(1), np.array(4)) == (-1, 4)    # floor(-5/4) = -2


@pytest.mark.parametrize("cfg", CONFIGS, ids=["k1-g4", "k4-g16", "3x5-k3"])
def test_error_bound_vs_float64(cfg):
    beats = bm.concat_beats(random_beats(cfg, 25, seed=cfg.lanes + cfg.rows, sv_writes=0.5, nonfinite=0.05),
                            extreme_beats(cfg))
    out = fp.array_outputs(cfg, beats)
    ref, bound = fp.reference_and_bound(cfg, beats)
    v = fp.output_values(cfg, out)
    fin = ~np.isnan(v)
    assert fin.sum() > v.size // 2 and (~fin).any()
    err = np.abs(v - ref)[fin]
    assert (err <= bound[fin]).all()
    assert (err > 0).any()                                   # truncation really happens in these vectors
    # the bound is meaningful: relative to the magnitude sum it is ~2^-10 or smaller
    assert np.median(bound[fin] / (np.abs(ref[fin]) + bound[fin])) < 2 ** -6


def test_more_guard_bits_less_error():
    errs = []
    for g in (0, 3, 8):
        cfg = dataclasses.replace(CFG, guard_bits=g)
        beats = random_beats(cfg, 30, seed=4)
        v = fp.output_values(cfg, fp.array_outputs(cfg, beats))
        ref, bound = fp.reference_and_bound(cfg, beats)
        assert (np.abs(v - ref) <= bound).all()
        errs.append(np.mean(np.abs(v - ref) / (np.abs(ref) + 1e-30)))
    assert errs[0] > errs[1] > errs[2]


def test_exact_when_nothing_is_dropped_matches_int8_model():
    """Activations +-1.0 (mantissa 1024: 10 trailing zeros) lose no bit in any alignment, so the FP16 path must
    equal the exact INT8-activation model (half units / 2) on the same weights, datatypes, SVs and scales."""
    c16 = BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=3, act="fp16")
    c8 = dataclasses.replace(c16, act="int8")
    beats = random_beats(c8, 10, seed=9, sv_writes=0.5)
    sign = np.where(beats["a"] < 0, 1, 0)
    b16 = dict(beats, a=(sign << 15) | 0x3C00)                      # +-1.0 with the int8 sign
    b8 = dict(beats, a=np.where(sign == 1, -1, 1))
    v = fp.output_values(c16, fp.array_outputs(c16, b16))
    assert np.array_equal(v, bm.array_outputs(c8, b8) / 2)


def test_nonfinite_policy():
    """An Inf/NaN activation zeroes its lane and flags its row for the vector; other rows are untouched."""
    cfg = BitModConfig(rows=2, cols=2, lanes=4, group_size=16, max_groups=2, act="fp16")
    beats = random_beats(cfg, 3, seed=5)
    base = fp.array_outputs(cfg, beats)
    assert not base["nonfinite"].any()
    for bad in (0x7C00, 0xFC00, 0x7E00):
        b2 = {k: np.array(x) for k, x in beats.items()}
        zeroed = {k: np.array(x) for k, x in beats.items()}
        b2["a"][1, 3], zeroed["a"][1, 3] = bad, 0                  # beat 1 (vector 0), row 0 lane 3
        out, ref0 = fp.array_outputs(cfg, b2), fp.array_outputs(cfg, zeroed)
        assert out["nonfinite"].tolist() == [[1, 0]] + [[0, 0]] * (len(base["y"]) - 1)
        assert np.array_equal(out["y"], ref0["y"]) and np.array_equal(out["e"], ref0["e"])
        assert np.isnan(fp.output_values(cfg, out)[0, :2]).all()
        assert np.array_equal(out["y"][:, 2:], base["y"][:, 2:])   # row 1 of vector 0 and later vectors


def test_quantized_matrix_fp16_activations():
    """Quantize W (mixed datatypes), feed x as FP16: y * 2^(e - 29) * s_c ~ fp16(x) @ W_hat.T within the bound."""
    rng = np.random.default_rng(3)
    cfg = BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=4, act="fp16")
    w, x = rng.normal(size=(3, 64)), rng.normal(size=(2, 64)) * 3
    qw = bq.quantize(w, rng.choice(["int8", "int6", "fp4", "fp3"], size=(3, 4)), group_size=16)
    xb = x.astype(np.float16).view(np.uint16).astype(np.int64)
    beats = bm.make_beats(cfg, qw.codes, xb[None], qw.dtype, qw.sv, qw.scale)
    out = fp.array_outputs(cfg, beats)
    sc = qw.chan_scale.astype(np.float64)
    y = fp.output_values(cfg, out).reshape(2, 3) * sc
    ref, bound = fp.reference_and_bound(cfg, beats)
    want = x.astype(np.float16).astype(np.float64) @ qw.dequantize().T
    assert np.allclose(ref.reshape(2, 3) * sc, want, rtol=1e-12, atol=1e-12)
    assert (np.abs(y - want) <= bound.reshape(2, 3) * sc + 1e-12).all()
    x16, w_hat = x.astype(np.float16).astype(np.float64), qw.dequantize()
    q_bound = np.abs(x16) @ np.abs(w - w_hat).T + np.abs(x - x16) @ np.abs(w).T        # quantization error
    assert (np.abs(y - x @ w.T) <= q_bound + bound.reshape(2, 3) * sc + 1e-12).all()


def test_output_width_at_the_extremes():
    for cfg in CONFIGS:
        out = fp.array_outputs(cfg, extreme_beats(cfg))
        y = np.abs(out["y"])
        assert y.max() < 1 << (cfg.out_bits - 1) and y.max() >= 1 << (cfg.out_bits - 4)
        assert out["e"].max() < 64
    assert CFG.group_acc_bits == 14 + 3 + 4 and CFG.out_bits == 21 + 8 + 2
    assert BitModConfig().group_acc_bits == 25 and BitModConfig().out_bits == 37      # int8 unchanged


def test_bad_inputs_and_configs():
    beats = random_beats(CFG, 1, seed=0, max_groups=1)
    bad = dict(beats, a=np.where(np.arange(beats["a"].size).reshape(beats["a"].shape) == 0, 1 << 16, beats["a"]))
    with pytest.raises(ValueError, match=r"a: fp16 activations are 16-bit patterns \(0..65535\), got"):
        fp.array_outputs(CFG, bad)
    with pytest.raises(ValueError, match="act: got 'fp16'; this model is for act='int8'"):
        bm.array_outputs(CFG, beats)
    with pytest.raises(ValueError, match="act: got 'int8'; this model is for act='fp16'"):
        fp.array_outputs(BitModConfig(lanes=4, group_size=16), beats)
    with pytest.raises(ValueError, match="align: got 'row'; this model is for align='product'"):
        fp.array_outputs(BitModConfig(lanes=4, group_size=16, act="fp16", align="row"), beats)
    with pytest.raises(ConfigError, match="guard_bits: got 9, allowed: an integer from 0 to 8"):
        BitModConfig(act="fp16", guard_bits=9)
    with pytest.raises(ConfigError, match="pipeline: got 2, allowed: an integer from 0 to 1"):
        BitModConfig(pipeline=2)
    assert bm.latency(BitModConfig(pipeline=1)) == 10 and bm.latency(CFG) == 9
    with pytest.raises(ConfigError, match="act: got 'bf16', allowed: int8, fp16"):
        BitModConfig(act="bf16")
    assert load_config("bitmod-pe-fp16")[1].act == "fp16" and load_config("bitmod-array-4x4-fp16")[1].rows == 4
    assert load_config("bitmod-pe")[1].act == "int8"
