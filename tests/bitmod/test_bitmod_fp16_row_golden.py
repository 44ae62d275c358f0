"""BitMoD FP16 golden model with row alignment (sw_model/bitmod/fp16_row.py): hand-worked pre-alignment,
exponent growth with a floor shift of the accumulator, the window term decomposition (exhaustive), the derived
error bound against float64 at 3 configs, guard bits, an exact cross-check with the INT8-activation model,
the Inf/NaN policy, quantized weights end to end, output width at the extremes, bad configs."""
import dataclasses

import numpy as np
import pytest

from sw_model.bitmod import fp16_row as fr
from sw_model.bitmod import golden as bm
from sw_model.bitmod import quant as bq
from sw_model.bitmod.config import DTYPE_BY_CODE, BitModConfig
from sw_model.bitmod.vectors import SV_MAGS, extreme_beats, random_beats
from sw_model.config import ConfigError
from sw_model.registry import load_config

CFG = BitModConfig(lanes=2, group_size=8, max_groups=2, act="fp16", align="row")
CONFIGS = [BitModConfig(lanes=1, group_size=4, max_groups=4, act="fp16", align="row"),
           BitModConfig(lanes=4, group_size=16, max_groups=4, act="fp16", align="row"),
           BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3, act="fp16", align="row")]


def h(x) -> int:
    return int(np.float16(x).view(np.uint16))


def one_group(a_rows, w_codes, scale=1):
    """CFG beats for one vector of one FP4 group: the given (a pair, w pair) beats first, zeros after."""
    a = np.zeros((1, 1, 8), dtype=np.int64)
    w = np.zeros((1, 8), dtype=np.int64)
    for b, (ab, wb) in enumerate(zip(a_rows, w_codes)):
        a[0, 0, 2 * b:2 * b + 2], w[0, 2 * b:2 * b + 2] = ab, wb
    return bm.make_beats(CFG, w, a, [[2]], [[0]], [[scale]])


def test_hand_worked_prealignment_truncation():
    """a = (1.0, 1025/1024 * 2^-4), FP4 weights (+1.0, -0.5) = half units (+2, -1): E' = 15, m'' = (1024 * 8,
    floor(1025 * 8 / 2^4) = 512, truncated from 512.5): A = 16384 - 512 = 15872, value 15872 * 2^(15 - 29)
    = 0.96875 vs exact 0.968719482421875 (the lost half unit of the second lane)."""
    beats = one_group([(h(1.0), 0x2C01)], [(0b0010, 0b1001)], scale=3)
    out = fr.array_outputs(CFG, beats)
    assert out["y"].tolist() == [[3 * 15872]] and out["e"].tolist() == [[15]]
    e_new, d_a, ma = fr.row_align(CFG, np.array([[h(1.0), 0x2C01]]), np.array([0]))
    assert e_new.tolist() == [15] and d_a.tolist() == [15] and ma.tolist() == [[8192, 512]]
    exact = 3 * (1.0 - 0.5 * (1 + 2 ** -10) * 2 ** -4)
    assert fr.output_values(CFG, out)[0, 0] == 3 * 0.96875
    assert 0 < 3 * 0.96875 - exact <= 3 * 2.0 ** -15


def test_hand_worked_exponent_growth_floor_shift():
    """Beat 0: a = -(1 + 2^-10) * 2^-11 (e = 4, m = 1025, m'' = 8200) x 0.5 (1 half unit): A = -8200 at E = 4.
    Beat 1: a = 1.0 (e = 15) x 0.5: E' = 15, dA = 11, A = floor(-8200 / 2048) = -5 (not -4), + 8192 = 8187."""
    neg = h(-(1 + 2 ** -10) * 2 ** -11)
    assert (neg >> 10) & 31 == 4
    beats = one_group([(neg, 0), (h(1.0), 0)], [(0b0001, 0), (0b0001, 0)])
    out = fr.array_outputs(CFG, beats)
    assert out["y"].tolist() == [[8187]] and out["e"].tolist() == [[15]]
    # an activation with a smaller exponent later is pre-aligned to E = 15 (the row exponent never decreases)
    beats = one_group([(h(1.0), 0), (h(2.0 ** -3), 0)], [(0b0001, 0), (0b0001, 0)])
    assert fr.array_outputs(CFG, beats)["y"].tolist() == [[8192 + 1024]]
    # dead lanes (zero, Inf/NaN) do not raise the exponent; an all-dead beat leaves it alone
    e_new, d_a, ma = fr.row_align(CFG, np.array([[0x7C00, h(2.0 ** -10)], [0, 0x8000]]), np.array([3, 7]))
    assert e_new.tolist() == [5, 7] and d_a.tolist() == [2, 0] and ma.tolist() == [[0, 8192], [0, 0]]


def test_group_end_keeps_the_row_exponent_and_shifts_the_output():
    """Two FP4 groups: group 0 at E = 10 (a = 2^-5), group 1 at E = 15: group 1 starts at E = 10 (the
    exponent is not reset at a group end), Y = floor(Y0 / 2^5) + P1."""
    cfg = CFG
    a = np.zeros((1, 1, 16), dtype=np.int64)
    w = np.zeros((1, 16), dtype=np.int64)
    a[0, 0, 0], w[0, 0] = h(-3 * 2.0 ** -6), 0b0011            # -1.5 * 2^-5 (e = 10, m = 1536) x 1.5
    a[0, 0, 8], w[0, 8] = h(1.0), 0b0010                        # 1.0 x 1.0 in group 1
    beats = bm.make_beats(cfg, w, a, [[2, 2]], [[0, 0]], [[5, 7]])
    out = fr.array_outputs(cfg, beats)
    y0 = -1536 * 8 * 3 * 5                                      # m'' = 12288, w = 3 half units, scale 5
    assert out["y"].tolist() == [[(y0 >> 5) + 8192 * 2 * 7]] and out["e"].tolist() == [[15]]


def test_window_terms_exhaustive():
    """Every code of every datatype and SV selector, and every SV magnitude the register file accepts: lane
    values are signed powers of two up to 2^3 and the terms sum to the weight's half-unit value."""
    cfg = CONFIGS[1]
    for dt in range(4):
        codes = np.arange(1 << DTYPE_BY_CODE[dt].bits)
        for sel in range(4):
            lane, bsig = fr.window_terms(codes, dt, np.full(codes.shape, sel), cfg)
            mag = np.abs(lane)
            assert ((mag & (mag - 1)) == 0).all() and mag.max() <= 8
            assert np.array_equal((lane << bsig).sum(-1), bm.half_units(codes, dt, np.full(codes.shape, sel), cfg))
    for m in SV_MAGS[1:]:
        for sgn in (1, -1):
            lane, bsig = fr.window_terms(np.array([8]), 2, np.array([0]), cfg, sv_table=(sgn * m / 2, 1, 1, 1))
            assert (lane << bsig).sum() == sgn * m and np.abs(lane).max() <= 8
    lane, bsig = fr.window_terms(np.array([0b0111, 0b0001, 0b0011]), 2, np.zeros(3, int), cfg)   # 6, 0.5, 1.5
    assert lane[:, :2].tolist() == [[4, 4], [0, 1], [1, 1]] and bsig.tolist() == [1, 0, 0, 0]
    lane, bsig = fr.window_terms(np.array([0x7F]), 0, np.array([0]), cfg)   # 127: Booth digits -1, 0, 0, +2
    assert lane.tolist() == [[-1, 0, 0, 8]] and bsig.tolist() == [1, 1, 5, 5]  # -1 << 1 + (2 << 2) << 5 = 254


@pytest.mark.parametrize("cfg", CONFIGS, ids=["k1-g4", "k4-g16", "3x5-k3"])
def test_error_bound_vs_float64(cfg):
    beats = bm.concat_beats(random_beats(cfg, 25, seed=cfg.lanes + cfg.rows, sv_writes=0.5, nonfinite=0.05),
                            extreme_beats(cfg))
    out = fr.array_outputs(cfg, beats)
    ref, bound = fr.reference_and_bound(cfg, beats)
    v = fr.output_values(cfg, out)
    fin = ~np.isnan(v)
    assert fin.sum() > v.size // 2 and (~fin).any()
    err = np.abs(v - ref)[fin]
    assert (err <= bound[fin]).all()
    assert (err > 0).any()                                   # truncation really happens in these vectors
    assert np.median(bound[fin] / (np.abs(ref[fin]) + bound[fin])) < 2 ** -5


def test_more_guard_bits_less_error():
    errs = []
    for g in (0, 3, 8):
        cfg = dataclasses.replace(CONFIGS[1], guard_bits=g)
        beats = random_beats(cfg, 30, seed=4)
        v = fr.output_values(cfg, fr.array_outputs(cfg, beats))
        ref, bound = fr.reference_and_bound(cfg, beats)
        assert (np.abs(v - ref) <= bound).all()
        errs.append(np.mean(np.abs(v - ref) / (np.abs(ref) + 1e-30)))
    assert errs[0] > errs[1] > errs[2]


def test_exact_when_nothing_is_dropped_matches_int8_model():
    c16 = BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=3, act="fp16", align="row")
    c8 = dataclasses.replace(c16, act="int8", align="product")
    beats = random_beats(c8, 10, seed=9, sv_writes=0.5)
    sign = np.where(beats["a"] < 0, 1, 0)
    v = fr.output_values(c16, fr.array_outputs(c16, dict(beats, a=(sign << 15) | 0x3C00)))
    assert np.array_equal(v, bm.array_outputs(c8, dict(beats, a=np.where(sign == 1, -1, 1))) / 2)


def test_nonfinite_policy():
    cfg = BitModConfig(rows=2, cols=2, lanes=4, group_size=16, max_groups=2, act="fp16", align="row")
    beats = random_beats(cfg, 3, seed=5)
    base = fr.array_outputs(cfg, beats)
    assert not base["nonfinite"].any()
    for bad in (0x7C00, 0xFC00, 0x7E00):
        b2 = {k: np.array(x) for k, x in beats.items()}
        zeroed = {k: np.array(x) for k, x in beats.items()}
        b2["a"][1, 3], zeroed["a"][1, 3] = bad, 0
        out, ref0 = fr.array_outputs(cfg, b2), fr.array_outputs(cfg, zeroed)
        assert out["nonfinite"].tolist() == [[1, 0]] + [[0, 0]] * (len(base["y"]) - 1)
        assert np.array_equal(out["y"], ref0["y"]) and np.array_equal(out["e"], ref0["e"])
        assert np.isnan(fr.output_values(cfg, out)[0, :2]).all()
        assert np.array_equal(out["y"][:, 2:], base["y"][:, 2:])


def test_quantized_matrix_fp16_activations():
    rng = np.random.default_rng(3)
    cfg = BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=4, act="fp16", align="row")
    w, x = rng.normal(size=(3, 64)), rng.normal(size=(2, 64)) * 3
    qw = bq.quantize(w, rng.choice(["int8", "int6", "fp4", "fp3"], size=(3, 4)), group_size=16)
    beats = bm.make_beats(cfg, qw.codes, x.astype(np.float16).view(np.uint16).astype(np.int64)[None], qw.dtype,
                          qw.sv, qw.scale)
    sc = qw.chan_scale.astype(np.float64)
    y = fr.output_values(cfg, fr.array_outputs(cfg, beats)).reshape(2, 3) * sc
    ref, bound = fr.reference_and_bound(cfg, beats)
    want = x.astype(np.float16).astype(np.float64) @ qw.dequantize().T
    assert np.allclose(ref.reshape(2, 3) * sc, want, rtol=1e-12, atol=1e-12)
    assert (np.abs(y - want) <= bound.reshape(2, 3) * sc + 1e-12).all()
    assert np.abs(y - want).max() < 1e-3 * np.abs(want).max()


def test_output_width_at_the_extremes():
    for cfg in CONFIGS:
        out = fr.array_outputs(cfg, extreme_beats(cfg))
        y = np.abs(out["y"])
        assert y.max() < 1 << (cfg.out_bits - 1) and y.max() >= 1 << (cfg.out_bits - 4)
        assert out["e"].max() == 30
    assert CONFIGS[1].group_acc_bits == 21 + 3 + 4 and CONFIGS[1].out_bits == 28 + 8 + 2
    assert BitModConfig(act="fp16", align="row").out_bits == 42


def test_bad_configs():
    with pytest.raises(ConfigError, match="align: got 'diag', allowed: product, row"):
        BitModConfig(act="fp16", align="diag")
    with pytest.raises(ConfigError, match="align: got 'row' with act='int8', allowed: 'row' only with act='fp16'"):
        BitModConfig(align="row")
    with pytest.raises(ValueError, match="this model is for act='fp16', align='row'"):
        fr.array_outputs(BitModConfig(act="fp16", lanes=4, group_size=16), random_beats(CONFIGS[1], 1, seed=0))
    assert load_config("bitmod-array-4x4-fp16-row")[1].align == "row"
    assert load_config("bitmod-pe-fp16-row")[1].act == "fp16"


def test_shift_step_stalls_hand_worked():
    """shift_step = 3, one row, one lane, G = 4: exponents 1, 15, 15, 16 | 30, 30 (+ two more beats). The group's
    first beat never waits; 1 -> 15 is a growth of 14 = 5 steps of <= 3 bits, 4 extra cycles; 15 -> 16 fits one
    step. The values equal those of the one-cycle barrel shifter."""
    cfg = BitModConfig(lanes=1, group_size=4, max_groups=2, act="fp16", align="row", shift_step=3)
    a = np.array([0x0400, 0x3C00, 0xBC00, 0x4000, 0x7800, 0x7800, 0x3C00, 0x0400]).reshape(1, 1, 8)
    beats = bm.make_beats(cfg, np.array([[1, 2, 3, 4, 5, 6, 7, 8]]), a, np.zeros((1, 2), int),
                          np.zeros((1, 2), int), np.ones((1, 2), int))
    assert fr.cycles_per_beat(cfg, beats).tolist() == [4, 4 + 4, 4, 4, 4, 4, 4, 4]
    no_step = dataclasses.replace(cfg, shift_step=0)
    assert fr.cycles_per_beat(no_step, beats).tolist() == [4] * 8
    assert all(np.array_equal(x, y) for x, y in zip(fr.array_outputs(cfg, beats).values(),
                                                    fr.array_outputs(no_step, beats).values()))
    assert fr.cycles_per_beat(dataclasses.replace(cfg, shift_step=1), beats).tolist()[1] == 4 + 13


def test_shift_step_bad_configs():
    with pytest.raises(ConfigError, match="shift_step: got 2 with align='product', allowed: 0"):
        BitModConfig(act="fp16", shift_step=2)
    with pytest.raises(ConfigError, match="shift_step: got 3 with pipeline=1, allowed: 0"):
        BitModConfig(act="fp16", align="row", shift_step=3, pipeline=1)
    with pytest.raises(ConfigError, match="shift_step: got 31, allowed: an integer from 0 to 30"):
        BitModConfig(act="fp16", align="row", shift_step=31)
