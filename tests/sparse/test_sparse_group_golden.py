"""Golden model of the grouped sparse chain (DSP groups + reduction nodes) and of the packed lanes' overflow
adjust: geometry, hand-worked beats, GEMMs through driver + model against float64 math in every mode, the
lane-width limit (exhaustive at the extreme values), bad input with exact messages."""
import numpy as np
import pytest

from sw_model.config import ConfigError
from sw_model.registry import load_config
from sw_model.sparse import golden as sp
from sw_model.sparse import group as sg
from sw_model.sparse.config import SparseChainConfig
from sw_model.sparse.workload import random_row, workload

C = SparseChainConfig


def test_geometry_table():
    """Rows per beat R, activation window and x_width of the presets the docs list."""
    g2, g4 = C(stages=8, groups=2), C(stages=16, groups=4)
    assert [g2.rows(md) for md in g2.modes] == [1, 2, 2, 2, 2]        # dense, 2:4, 1:4, 2:8, 4:8
    assert [sg.group_window(md, 8, 2) for md in g2.modes] == [8, 8, 16, 16, 8]
    assert [g4.rows(md) for md in g4.modes] == [1, 2, 4, 4, 2]
    assert [sg.group_window(md, 16, 4) for md in g4.modes] == [16] * 5   # the dense width in every mode
    assert g2.x_width == 16 and g4.x_width == 16 and C(stages=8).x_width == 32
    # a segment needs N stages: 4:8 on 6 stages in 2 groups falls back to one row of 6 stages (2 idle)
    assert C(stages=6, groups=2).rows("4:8") == 1 and sg.group_window("4:8", 6, 2) == 8
    assert sg.stage_candidates("4:8", 6, 2, 4) is None and sg.stage_candidates("4:8", 6, 2, 3) == list(range(8))
    assert [C(stages=2, groups=2).rows(md) for md in C(stages=2, groups=2).modes] == [1, 1, 2, 1]
    # stage 5 of an 8-stage 2-group chain in 2:4: row 1, local stage 1 -> the first group of 4 activations
    assert sg.stage_candidates("2:4", 8, 2, 5) == [0, 1, 2, 3]
    assert sg.stage_candidates("dense", 8, 2, 5) == [5]


def test_grouped_hand_example():
    """S = 4, G = 2, 2:4: one beat carries rows A (stages 0, 1) and B (stages 2, 3) over x[0:4]."""
    cfg = C(stages=4, groups=2, acc_bits=20)
    x = np.array([1, 2, 3, 4])
    beats = sg.pack_rows([[3, -5], [2, 7]], x, "2:4", cfg, indices=[[0, 1], [1, 3]])
    assert beats["w"].tolist() == [[3, -5, 2, 7]] and beats["idx"].tolist() == [[0, 1, 1, 3]]
    assert beats["x"].tolist() == [[1, 2, 3, 4, 0, 0, 0, 0]]         # x_width 8 (the 1:4 window)
    dense = sg.pack_rows([[1, 2, 3, 4]], x, "dense", cfg)             # both groups reduce into one row
    one = sg.pack_rows([[9, 0]], x, "2:4", cfg, indices=[[2, 0]])     # one row: row B is zero-padded
    out = sg.group_chain_model(sp.concat_beats([beats, dense, one]), cfg)
    assert out["y"].tolist() == [[3 - 10, 4 + 28], [1 + 4 + 9 + 16, 0], [27, 0]]
    # mode switching inside a vector: lane r accumulates row r of every beat; unknown modes add 0
    mixed = sp.concat_beats([beats, dense, one])
    mixed["last"][:] = [0, 0, 1]
    assert sg.group_chain_model(mixed, cfg)["y"].tolist() == [[-7 + 30 + 27, 32]]
    mixed["mode"][1] = 6
    assert sg.group_chain_model(mixed, cfg)["y"].tolist() == [[-7 + 27, 32]]


@pytest.mark.parametrize("cfg", [C(stages=2, groups=2), C(stages=6, groups=2), C(stages=8, groups=2),
                                 C(stages=16, groups=4), C(stages=8, groups=8),
                                 C(stages=8, groups=2, packed=True), C(stages=16, groups=2, packed=True),
                                 C(stages=8, groups=4, packed=True, lane_bits=16),
                                 C(stages=6, groups=2, weight_bits=4)],
                         ids=lambda c: f"s{c.stages}g{c.groups}{'p' if c.packed else ''}w{c.weight_bits}")
def test_gemm_every_mode_equals_float(cfg):
    """Y = W X (7 rows, 3 columns, full-range int8, 30 % extreme values) via pack_gemm_grouped + the model."""
    rng = np.random.default_rng(cfg.stages * 10 + cfg.groups)
    for md in cfg.modes:
        n, m = sp.MODE_NM[md]
        w = np.stack([random_row(rng, 5 * m, md, cfg.weight_bits, extreme=0.3)[0] for _ in range(7)])
        x = np.where(rng.random((5 * m, 3)) < 0.3, -128, rng.integers(-128, 128, (5 * m, 3)))
        if md == sp.SparseMode.DENSE:
            beats = sg.pack_gemm_grouped(w, x, md, cfg)
        else:
            values, indices = sp.compress(w, n, m)
            beats = sg.pack_gemm_grouped(values, x, md, cfg, indices=indices)
        blocks = -(-7 // cfg.rows(md))
        assert len(beats["mode"]) == blocks * -(-3 // (2 if cfg.packed else 1)) * -(-5 * m // sg.group_window(
            md, cfg.stages, cfg.groups))
        y = sg.unpack_gemm_grouped(sg.group_chain_model(beats, cfg), 7, 3, md, cfg)
        assert (y == w.astype(np.float64) @ x.astype(np.float64)).all(), md.name


@pytest.mark.parametrize("cfg", [C(stages=5), C(stages=8, packed=True), C(stages=3, packed=True, lane_bits=16)])
def test_one_group_is_the_ungrouped_chain(cfg):
    """groups = 1: the grouped model, driver and geometry equal the original chain's (also when lanes wrap)."""
    beats, _, _ = workload(cfg, np.random.default_rng(4), 60, extreme=0.6)
    a = sp.chain_model(beats, cfg.stages, cfg.acc_bits, cfg.packed, cfg.lane_bits)
    b = sg.group_chain_model(beats, cfg)
    assert all((a[k] == b[k]).all() for k in a)
    assert all(sg.group_window(md, cfg.stages, 1) == sp.window(md, cfg.stages) for md in cfg.modes)
    rng = np.random.default_rng(1)
    w, x = rng.integers(-128, 128, (3, 16)), rng.integers(-128, 128, (16, 2))
    old = sp.pack_gemm(w, x, "dense", cfg.stages, cfg.x_width, packed=cfg.packed)
    new = sg.pack_gemm_grouped(w, x, "dense", cfg)
    assert all((old[k] == new[k]).all() for k in old)


# ------------------------------------------------------------------------------- packed lanes: overflow adjust

@pytest.mark.parametrize("wb,lane", [(8, 16), (8, 17), (8, 18), (4, 12), (4, 16), (4, 18)])
def test_lane_limit_is_exact(wb, lane):
    """k = lane_exact_products products always split exactly -- checked at every combination of extreme
    values (the sums' extremes) -- and k + 1 products of (-2^(wb-1)) x (-128) wrap by 2^L with a +1 carry."""
    k = sp.lane_exact_products(wb, lane)
    assert k == 2 ** (lane - wb - 7)
    lo_w, hi_w = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    extremes = sorted({a * b for a in (lo_w, hi_w, 0) for b in (-128, 127, 0)})
    for up in (-(1 << (wb + 6)), 0, 5, (1 << (wb + 6))):          # some upper-lane sums
        for lo_sum in (k * extremes[0], k * extremes[-1], k * extremes[0] + 1, 0, -1, 1):
            assert sp.lane_split(up * (1 << lane) + lo_sum, lane) == (lo_sum, up)
    over = (k + 1) * (1 << (wb + 6))
    assert sp.lane_split(over, lane) == (over - (1 << lane), 1)
    assert sp.lane_out_of_window([k * (1 << (wb + 6)), over], lane).tolist() == [False, True]


def test_lane_split_hand_examples():
    # 18-bit lane: +2^17 is returned exactly (the plain sign extension would give -2^17 and a +1 carry)
    assert sp.lane_split(131072, 18) == (131072, 0)
    assert sp.lane_split(5 * 2 ** 18 - 131071, 18) == (-131071, 5)
    assert sp.lane_split(-131072, 18) == (131072, -1)                # outside the window: wraps
    assert sp.lane_split(0, 18) == (0, 0) and sp.lane_split(-1, 18) == (-1, 0)


def test_config_lane_exactness():
    assert load_config("sparse-chain-8-packed")[1].lane_exact                  # 8 products in 18 bits
    assert load_config("sparse-chain-16-packed")[1].lane_exact                 # 2 groups of 8
    assert load_config("sparse-chain-8-packed-lane16-g4")[1].lane_exact        # 4 groups of 2 in 16 bits
    assert not load_config("sparse-chain-8-packed-lane16")[1].lane_exact       # 8 products in 16 bits wrap
    assert not C(stages=16, packed=True).lane_exact


def test_grouped_packed_extremes_exact_and_wrap():
    """All (-128) x (-128): 16 stages in 2 groups of 8 stay exact (lo = 16 x 16384 over two 18-bit groups);
    one 16-stage group in an 18-bit lane wraps, exactly as group_lane_overflows reports."""
    beats = {"w": np.full((1, 16), -128), "idx": np.zeros((1, 16), int), "x": np.full((1, 32), -128),
             "x2": np.full((1, 32), 127), "mode": np.zeros(1, int), "last": np.ones(1, int)}
    g2 = C(stages=16, groups=2, packed=True)
    out = sg.group_chain_model(beats, g2)
    assert out["y"].tolist() == [[16 * 16384, 0]] and out["y2"].tolist() == [[-16 * 16256, 0]]
    assert not sg.group_lane_overflows(beats, g2).any()
    g1 = C(stages=16, packed=True)
    b1 = {**beats, "x": beats["x"][:, :16], "x2": beats["x2"][:, :16]}
    b1["x"] = np.pad(b1["x"], ((0, 0), (0, g1.x_width - 16)))
    b1["x2"] = np.pad(b1["x2"], ((0, 0), (0, g1.x_width - 16)))
    out = sg.group_chain_model(b1, g1)
    assert out["y"].tolist() == [16 * 16384 - 2 ** 18] and out["y2"].tolist() == [-16 * 16256 + 1]
    assert sg.group_lane_overflows(b1, g1).tolist() == [[True]]


# ---------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kw,msg", [
    ({"groups": 3}, "groups: got 3, allowed: 1, 2, 4, 8"),
    ({"stages": 6, "groups": 4}, "groups: got 4, allowed: a divisor of stages = 6 (1, 2, 4 or 8)"),
    ({"stages": 5, "groups": 2}, "groups: got 2, allowed: a divisor of stages = 5"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        C(**kw)
    assert msg in str(e.value)


def test_driver_errors():
    cfg = C(stages=4, groups=2)
    x = np.zeros(4, int)
    with pytest.raises(sp.SparseFormatError, match="rows: got 3, a S2_4 beat of this chain carries 1 to R = 2 rows"):
        sg.pack_rows([[1, 2]] * 3, x, "2:4", cfg, indices=[[0, 1]] * 3)
    with pytest.raises(sp.SparseFormatError, match="rows: got 2, a DENSE beat of this chain carries 1 to R = 1"):
        sg.pack_rows([[1, 2, 3, 4]] * 2, x, "dense", cfg)
    with pytest.raises(sp.SparseFormatError, match="indices: 1 rows for 2 rows of values"):
        sg.pack_rows([[1, 2], [3, 4]], x, "2:4", cfg, indices=[[0, 1]])
    with pytest.raises(sp.SparseFormatError, match="indices: group 0 repeats index 1"):
        sg.pack_rows([[1, 2], [3, 4]], x, "2:4", cfg, indices=[[0, 1], [1, 1]])
    with pytest.raises(sp.SparseFormatError, match="mode: S4_8 needs at least N = 4 stages, the chain has 2"):
        sg.pack_rows([[1, 2, 3, 4]], np.zeros(8, int), "4:8", C(stages=2, groups=2), indices=[[0, 1, 2, 3]])
    with pytest.raises(sp.SparseFormatError, match=r"w: 9 at flat position 0 does not fit in signed 4 bits"):
        sg.pack_rows([[9, 0]], x, "2:4", C(stages=4, groups=2, weight_bits=4), indices=[[0, 1]])


def test_manifest_and_presets():
    from hwgen.flow.generate import generate
    _, man = generate(C(stages=6, groups=2, packed=True), "spg")
    outs = {f["name"]: f for f in man["streams"][1]["fields"]}
    assert outs["y"]["count"] == 2 and outs["y2"]["count"] == 2 and outs["y"]["elem_width"] == 32
    assert man["latency"] == 6 // 2 + 4 and man["ii"] == 1
    assert man["rows_per_beat"] == {"DENSE": 1, "S2_4": 2, "S1_4": 2, "S2_8": 2, "S4_8": 1}
    assert load_config("sparse-chain-8-g2")[1] == C(stages=8, groups=2)
    assert load_config("sparse-chain-8")[1].groups == 1          # the original presets are unchanged
