"""BitMoD quantizer: hand-worked examples (ties to the lower value, special-value choice, first candidate wins
ties, second-level scales), a brute-force float reference, pack/unpack, baselines and bad input."""
import numpy as np
import pytest

from sw_model.bitmod import quant as bq
from sw_model.bitmod.config import DTYPES


def test_fp4_fp3_code_tables_with_special_value():
    t = bq.code_table("fp4", sv=-8.0)
    assert t.tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6, -8, -0.5, -1, -1.5, -2, -3, -4, -6]
    assert bq.code_table("fp3", sv=3.0).tolist() == [0, 1, 2, 4, 3, -1, -2, -4]
    assert bq.code_table("int6")[[0, 31, 32, 63]].tolist() == [0, 31, -32, -1]


def test_ties_go_to_the_lower_grid_value():
    table = bq.code_table("fp4", sv=5.0)          # grid ... 2, 3, 4, 5, 6
    x = np.array([2.5, 3.5, 4.5, 5.5, -2.5, -0.25, 0.25, 0.2500001, -5.5, 100.0, -100.0])
    codes, vals = bq.round_to_grid(x, table)
    assert vals.tolist() == [2, 3, 4, 5, -3, -0.5, 0, 0.5, -6, 6, -6]
    assert codes.tolist() == [4, 5, 6, 8, 13, 9, 0, 1, 15, 7, 15]
    # INT grids are symmetric: -128 is never produced
    _, v = bq.round_to_grid(np.array([-127.5, -200.0, 126.5]), bq.code_table("int8"), "int")
    assert v.tolist() == [-127, -127, 126]


def group(values, g=8):
    w = np.zeros((1, g))
    w[0, :len(values)] = values
    return w


@pytest.mark.parametrize("values,sv", [
    ([6, 5, 1], 0),           # ER+: 5 exact
    ([-6, -5, 1], 1),         # ER-: -5 exact
    ([8, 6, 4, 3, 2], 2),     # EA+: delta = 1, all exact; ER would put 6 * (6/8) = 4.5 on the 4|5 tie -> 4
    ([-8, 6, 4, 3, 2], 3),    # EA-
    ([6, 1, 0.5], 0),         # all four candidates with max 6 give the same error: ER+ (first) wins ER-
])
def test_special_value_choice(values, sv):
    qw = bq.quantize(group(values), "fp4", group_size=8)
    assert int(qw.sv[0, 0]) == sv


def test_hand_worked_group():
    # max|w| = 3 -> ER: delta = 0.5, w/delta = [6, 2.5, -1.25, 0.75]  -> [6, 2 (tie lower), -1 (nearest), 1 (tie... no:
    # 0.75 is the 0.5|1 midpoint -> 0.5)]; EA: delta = 3/8 -> w/delta = [8, 3.33, -1.67, 1] -> [8 (EA+), 3, -1.5, 1]
    w = group([3.0, 1.25, -0.625, 0.375], 4)
    qw = bq.quantize(w, "fp4", group_size=4)
    er = np.array([6, 2, -1, 0.5]) * 0.5
    ea = np.array([8, 3, -1.5, 1]) * 0.375
    assert np.mean((er - w) ** 2) > np.mean((ea - w) ** 2)
    assert int(qw.sv[0, 0]) == 2 and qw.delta[0, 0] == 0.375
    assert np.array_equal(qw.dequantize(first_level=True), ea[None])
    assert qw.codes[0].tolist() == [8, 5, 11, 2]


def test_all_zero_group_and_int_grids():
    w = np.zeros((2, 8))
    w[1] = [127, -127, 63.5, 0.5, 0, 1, -1, 2]
    qw = bq.quantize(w, "int8", group_size=8)
    assert qw.codes[0].tolist() == [0] * 8 and qw.scale[0, 0] == 0 and qw.chan_scale[0] == 0
    assert qw.values()[1].tolist() == [127, -127, 63, 0, 0, 1, -1, 2]      # 63.5 and 0.5: ties to lower
    assert np.array_equal(qw.dequantize(first_level=True)[0], w[0])


def brute_force(w, grids):
    """Independent reference: per group and candidate, every element against every grid value."""
    out_err, out_sel, out_hat = [], [], []
    for row in w:
        best = (np.inf, None, None)
        for k, grid in enumerate(grids):
            grid = sorted(set(grid))
            d = max(abs(x) for x in row) / max(abs(x) for x in grid)
            hat = []
            for x in row:
                y = x / d if d else 0.0
                dist = [abs(y - v) for v in grid]
                hat.append(grid[min(range(len(grid)), key=lambda i: (dist[i], grid[i]))] * d)
            err = np.mean((np.array(hat) - row) ** 2)
            if err < best[0]:
                best = (err, k, hat)
        out_err.append(best[0]), out_sel.append(best[1]), out_hat.append(best[2])
    return np.array(out_sel), np.array(out_hat)


@pytest.mark.parametrize("dtype", ["fp4", "fp3", "int6"])
def test_quantizer_matches_brute_force_reference(dtype):
    rng = np.random.default_rng(5)
    w = rng.standard_t(3, size=(40, 16))
    w[3] = np.round(w[3] * 4) / 4                  # many exact ties
    d = DTYPES[dtype]
    grids = [list(t) for _, t in bq.candidates(dtype)]
    if d.kind == "int":
        grids = [[v for v in g if v > -(1 << (d.bits - 1))] for g in grids]
    sel, hat = brute_force(w, grids)
    qw = bq.quantize(w, dtype, group_size=16)
    assert np.array_equal(qw.sv[:, 0], sel)
    assert np.allclose(qw.dequantize(first_level=True), hat, rtol=0, atol=1e-12)


def test_second_level_scales_hand_worked():
    delta = np.array([[1.0, 0.5, 0.0, 1 / 3]])
    codes, chan = bq.second_level(delta)
    s = float(np.float16(1 / 127))
    assert chan.dtype == np.float16 and float(chan[0]) == s
    assert codes[0].tolist() == [min(127, round(1 / s)), round(0.5 / s), 0, round(1 / 3 / s)]
    assert codes[0, 0] == 127


def test_two_level_error_close_to_one_level():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(16, 256))
    qw = bq.quantize(w, "fp4", group_size=128)
    e1 = np.mean((qw.dequantize(first_level=True) - w) ** 2)
    e2 = np.mean((qw.dequantize() - w) ** 2)
    assert abs(e2 - e1) < 0.02 * e1          # INT8 scale codes lose almost nothing (paper Tab. V)


def test_mixed_dtypes_pack_unpack_roundtrip():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(5, 48))
    dts = rng.choice(["int8", "int6", "fp4", "fp3"], size=(5, 4))
    qw = bq.quantize(w, dts, group_size=12)
    rows = bq.pack(qw)
    bits = {"int8": 8, "int6": 6, "fp4": 4, "fp3": 3}
    for r in range(5):
        assert len(rows[r]) == -(-(16 + sum(12 + 12 * bits[d] for d in dts[r])) // 8)
    u = bq.unpack(rows, 48, 12)
    for f in ("codes", "dtype", "sv", "scale", "chan_scale"):
        assert np.array_equal(getattr(u, f), getattr(qw, f)), f
    assert np.array_equal(u.dequantize(), qw.dequantize())


def test_baselines():
    w = np.array([[-1.0, 0.0, 0.5, 2.0]])
    # scale = 3 / 15 = 0.2, zero = 5: q = rint(w / 0.2) + 5 = [0, 5, 8 (2.5 -> 2, RNE), 15]
    assert np.allclose(bq.int_asym_fake_quant(w, 4, group_size=4), [[-1.0, 0.0, 0.4, 2.0]])
    assert np.array_equal(bq.int_asym_fake_quant(np.full((1, 4), 3.0), 3, group_size=4), np.full((1, 4), 3.0))
    # MXFP4: max 2 -> shared exp 1 - 2 = -1; elements w / 0.5 = [-2, 0, 1, 4]: exact
    assert np.array_equal(bq.mxfp4_fake_quant(w, block_size=4), w)


@pytest.mark.parametrize("w,kwargs,msg", [
    (np.ones((2, 10)), {"group_size": 4}, "group_size: 4 does not divide the input channels (10)"),
    (np.array([[1.0, np.nan, 0, 0]]), {"group_size": 4}, "weights: contain NaN or Inf"),
    (np.array([[1.0, np.inf, 0, 0]]), {"group_size": 4}, "weights: contain NaN or Inf"),
    (np.ones((1, 4)), {"group_size": 4, "dtypes": "fp5"}, "dtype: got 'fp5', allowed: int8, int6, fp4, fp3"),
    (np.ones((1, 4)), {"group_size": 4, "dtypes": [["fp4", "int8"]]}, "dtypes: got shape (1, 2)"),
    (np.full((1, 4), 1e12), {"group_size": 4}, "scale overflow: channel 0"),
    (np.full((1, 4), 1e-12), {"group_size": 4}, "scale underflow: channel 0"),
    (np.ones(4), {"group_size": 4}, "weights: got shape (4,)"),
])
def test_bad_input(w, kwargs, msg):
    with pytest.raises(ValueError) as e:
        bq.quantize(w, **kwargs)
    assert msg in str(e.value)
