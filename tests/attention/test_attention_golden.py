"""Golden model of the attention array: hand-worked example, error against float64 softmax attention, the
exponential and the reciprocal, numerical corner cases, the cycle model, bad inputs and bad configs."""
import math
import re

import numpy as np
import pytest

from sw_model.attention import golden as A
from sw_model.attention.config import AttentionConfig
from sw_model.attention.timing import cycle_model, unfused_cycles, useful_macs
from sw_model.config import ConfigError
from sw_model.registry import PRESETS, config_from_dict


def rand_qkv(cfg, n_q, n_k, seed):
    rng = np.random.default_rng(seed)
    hi = 1 << (cfg.data_bits - 1)
    return (rng.integers(-hi, hi, (n_q, cfg.head_dim)), rng.integers(-hi, hi, (n_k, cfg.head_dim)),
            rng.integers(-hi, hi, (n_k, cfg.head_dim)))


TINY = AttentionConfig(head_dim=1, m0=1, p0=1, data_bits=4, logit_frac=1, exp_bits=4, out_frac=0, max_keys_log2=2)


def test_hand_worked_example():
    # TABLE = [16, round(16 / sqrt 2) = 11]. Tile 0: t = 2, RM = 2, p = 16, RD = 16, RNV = 64.
    # Tile 1: t = 6, RM = 6, PRM = TABLE[0] >> 2 = 4, p = 16, RD = 16 + 64 >> 4 = 20, RNV = -32 + 256 >> 4 = -16.
    # R = 2 + 4 + 0 + 2 = 8, K = 4 + 8 - 1 = 11, r = 2048 // 20 = 102, out = (-16 * 102 + 1024) >> 11 = -1.
    assert TINY.exp_table() == [16, 11]
    trace = []
    out = A.attention(TINY, [[2]], [[1], [3]], [[4], [-2]], trace=trace)
    assert [int(t["rm"][0]) for t in trace] == [2, 6]
    assert [int(t["prm"][0]) for t in trace] == [0, 4]
    assert [int(t["rd"][0]) for t in trace] == [16, 20]
    assert out.tolist() == [[-1]]
    # float64: logits 1 and 3 (log2 units), weights 2 and 8: (2 * 4 + 8 * -2) / 10 = -0.8
    assert A.attention_reference(TINY, [[2]], [[1], [3]], [[4], [-2]])[0, 0] == pytest.approx(-0.8)


def test_exp_table_and_exponential():
    cfg = AttentionConfig(logit_frac=5, exp_bits=14)
    table = cfg.exp_table()
    ideal = [2 ** 14 * 2 ** (-j / 32) for j in range(32)]
    assert table[0] == 2 ** 14 and max(abs(t - i) for t, i in zip(table, ideal)) <= 0.5
    x = np.arange(0, 20 * 32)
    got = A.exp2_neg(cfg, x)
    assert np.all(np.abs(got - 2.0 ** 14 * np.exp2(-x / 32)) <= 1.5)
    assert got[15 * 32] == 0 or got[15 * 32] == 1 and got[-1] == 0


def test_reciprocal_is_floor_division():
    cfg = AttentionConfig()
    rd = np.array([2 ** 15, 2 ** 15 + 1, 12345678, 2 ** 31 - 1, 0], dtype=object)
    r = A.reciprocal(cfg, rd)
    k = cfg.recip_shift
    assert [int(x) for x in r[:4]] == [(1 << k) // int(x) for x in rd[:4]]
    assert r[4] == (1 << cfg.recip_bits) - 1
    assert all(int(x) < (1 << cfg.recip_bits) for x in r)


@pytest.mark.parametrize("cfg,n_k", [
    (AttentionConfig(score_shift=0, logit_frac=8), 300),
    (AttentionConfig(head_dim=7, m0=3, p0=5, data_bits=6, score_shift=0, logit_frac=8, exp_bits=16), 41),
    (AttentionConfig(head_dim=16, m0=8, p0=2, score_shift=0, logit_frac=8, exp_bits=20, out_frac=10), 64),
])
def test_error_against_float64(cfg, n_k):
    """With exact logits (no shift), the golden model's only errors are the table, the truncating shifts and
    the reciprocal: a few output LSBs."""
    q, k, v = rand_qkv(cfg, 9, n_k, seed=n_k)
    err = np.abs(A.attention(cfg, q, k, v) - A.attention_reference(cfg, q, k, v))
    assert err.max() <= 4, err.max()


def test_error_with_logit_floor_is_the_floor():
    """With score_shift > 0 the logit is floored; against a float reference on the floored logits the
    arithmetic error is again a few LSBs (the rest is the documented logit quantisation)."""
    cfg = AttentionConfig(score_shift=8, logit_frac=4)
    q, k, v = rand_qkv(cfg, 6, 50, seed=3)
    lg = ((q @ k.T) >> 8) / 16.0
    w = np.exp2(lg - lg.max(axis=1, keepdims=True))
    ref = (w @ v) / w.sum(axis=1, keepdims=True) * 2 ** cfg.out_frac
    assert np.abs(A.attention(cfg, q, k, v) - ref).max() <= 8       # measured 5.9 (of 2^15)
    assert np.abs(A.attention(cfg, q, k, v) - A.attention_reference(cfg, q, k, v)).max() > 50


def test_large_logits_pick_the_max_key():
    cfg = AttentionConfig(score_shift=0, logit_frac=4)
    q = np.full((3, 8), 127)
    k = np.full((11, 8), -128)
    k[7] = 127                                           # the winning key, logit margin ~ 2^12 log2 units
    v = np.arange(11 * 8).reshape(11, 8) - 40
    out = A.attention(cfg, q, k, v)
    assert np.array_equal(out, np.repeat(v[7:8] * 2 ** cfg.out_frac, 3, axis=0))


def test_all_equal_scores_give_the_mean():
    cfg = AttentionConfig(head_dim=8, m0=4, p0=4)
    rng = np.random.default_rng(5)
    v = rng.integers(-128, 128, (37, 8))
    out = A.attention(cfg, np.zeros((2, 8), np.int64), rng.integers(-128, 128, (37, 8)), v)
    mean = v.sum(axis=0) * 2 ** cfg.out_frac / 37
    assert np.all(np.abs(out - mean) <= 0.5 + 1e-9)
    assert np.array_equal(out[0], out[1])


def test_partial_tiles_and_query_tiles():
    cfg = AttentionConfig(m0=4, p0=4, score_shift=2)
    q, k, v = rand_qkv(cfg, 10, 13, seed=8)
    out = A.attention(cfg, q, k, v)
    assert out.shape == (10, 8)
    # each query row is independent of the others in its tile
    for r in (0, 5, 9):
        assert np.array_equal(out[r], A.attention(cfg, q[r:r + 1], k, v)[0])


def test_stream_beats():
    cfg = AttentionConfig(m0=4, p0=4)
    q, k, v = rand_qkv(cfg, 6, 5, seed=1)
    b = A.stream_beats(cfg, q, k, v)
    assert b["kind"].tolist() == [0] * 4 + [1] * 5 + [0] * 2 + [1] * 5
    assert b["last"].tolist() == [0] * 8 + [1] + [0] * 6 + [1]
    assert np.array_equal(b["x"][4:9], k) and np.array_equal(b["v"][11:], v)


def test_cycle_model_numbers():
    cfg = AttentionConfig(head_dim=4, m0=3, p0=2, mul_pipe=0, max_pipe=0, exp_pipe=0, sum_pipe=0, lane_pipe=0)
    model = cycle_model(cfg, [(2, 7)])
    # Q at 0,1; K rows 2,3,4 -> full at 5 = swap 0; tile 1 rows at 6,7,8, full 9 < free 5+10=15 -> swap 15
    assert model["in_cycles"] == [0, 1, 2, 3, 4, 6, 7, 8, 16]
    end = 25 + 10                                        # tile 2 swaps at 25, last PV cycle at 35
    # the reciprocal starts in the second PV cycle of the last tile (33) and is done at 33 + recip_bits + 1;
    # the lanes rotate for the last time at end + 3; normalisation takes head_dim + 1 = 5 cycles
    first = max(end + 3, 33 + cfg.recip_bits + 1) + 1 + 5
    assert model["out_cycles"] == [first, first + 1]
    assert useful_macs(cfg, [(2, 7)]) == 2 * 2 * 7 * 4
    assert unfused_cycles(cfg, 2, 7)["buffer_words"] == 14


def test_cycle_model_numbers_pipelined():
    """The same stream with mul_pipe 1, max_pipe 1, exp_pipe 2, sum_pipe 1, lane_pipe 2: key tiles of
    2 * 4 + 2 + 1 + 1 + 2 = 14 cycles, the reciprocal 1 + 2 cycles later in the last tile, the lanes two cycles
    further behind with two more bubble rotations, normalisation in 4 + 1 + 2 rotations."""
    cfg = AttentionConfig(head_dim=4, m0=3, p0=2, mul_pipe=1, max_pipe=1, exp_pipe=2, sum_pipe=1, lane_pipe=2)
    assert (cfg.tile_cycles, cfg.lane_delay, cfg.rd_delay, cfg.norm_cycles) == (14, 4, 3, 7)
    model = cycle_model(cfg, [(2, 7)])
    # swap 0 at 5, tile 1 full at 9 < free 5 + 14 = 19 -> swap 19; its last row at 20 -> swap 33, last PV at 47
    assert model["in_cycles"] == [0, 1, 2, 3, 4, 6, 7, 8, 20]
    end = 33 + 14
    # reciprocal from the first PV cycle (44) + rd_delay + 1; the last lane rotation at end + lane_delay + 1 + 2
    first = max(end + 4 + 1 + 2, 44 + 4 + cfg.recip_bits + 1) + 1 + 7
    assert model["out_cycles"] == [first, first + 1]
    # the unfused baseline's score pass pays the same G1/G2 cycles per key tile
    assert unfused_cycles(cfg, 2, 7)["cycles"] - unfused_cycles(
        AttentionConfig(head_dim=4, m0=3, p0=2, mul_pipe=0, max_pipe=0, exp_pipe=0, sum_pipe=0, lane_pipe=0), 2, 7
    )["cycles"] == 3 * 4


@pytest.mark.parametrize("call,message", [
    (lambda: A.attention(TINY, [[1]], np.zeros((0, 1)), np.zeros((0, 1))), "sequence length 0"),
    (lambda: A.attention(TINY, [[1, 2]], [[1]], [[1]]), "q: head dimension mismatch: got 2, config head_dim is 1"),
    (lambda: A.attention(TINY, [[1]], [[1]], [[1, 1]]), "v: head dimension mismatch"),
    (lambda: A.attention(TINY, [[1]], [[1], [2]], [[1]]), "K and V need the same sequence length"),
    (lambda: A.attention(TINY, [[np.nan]], [[1]], [[1]]), "q: contains NaN or Inf"),
    (lambda: A.attention(TINY, [[1]], [[np.inf]], [[1]]), "k: contains NaN or Inf"),
    (lambda: A.attention(TINY, [[8]], [[1]], [[1]]), "q: got 8, allowed: -8..7"),
    (lambda: A.attention(TINY, [[1.5]], [[1]], [[1]]), "non-integer"),
    (lambda: A.attention(TINY, [[1]], np.ones((5, 1)), np.ones((5, 1))), "sequence length 5: allowed at most"),
    (lambda: A.quantize_head(TINY, [[math.nan]], [[1.0]], [[1.0]]), "q: contains NaN or Inf"),
    (lambda: A.quantize_head(TINY, [[1.0]], [[1.0]], [[1.0, 2.0]]), "v: head dimension mismatch"),
    (lambda: A.exp2_neg(TINY, [-1]), "negative argument"),
])
def test_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        call()


@pytest.mark.parametrize("fields,message", [
    ({"head_dim": 0}, "head_dim: got 0, allowed: an integer from 1 to 256"),
    ({"m0": 65}, "m0: got 65, allowed: an integer from 1 to 64"),
    ({"data_bits": 1}, "data_bits: got 1"),
    ({"exp_bits": 30}, "exp_bits: got 30"),
    ({"score_shift": 16, "data_bits": 4, "head_dim": 1}, "score_shift: got 16, allowed: at most 6"),
    ({"causal": 1}, "causal: got 1, allowed: true or false"),
    ({"mask": True}, "mask: unknown field for unit 'attention'"),
    ({"exp_pipe": 3}, "exp_pipe: got 3, allowed: an integer from 0 to 2"),
    ({"max_pipe": -1}, "max_pipe: got -1, allowed: an integer from 0 to 8"),
    ({"head_dim": 1, "max_pipe": 0, "exp_pipe": 1, "sum_pipe": 4},
     r"sum_pipe: got 4, allowed: at most head_dim \+ 1 \+ max_pipe \+ exp_pipe \(3\)"),
    ({"head_dim": 1, "max_pipe": 0, "exp_pipe": 0, "sum_pipe": 2, "lane_pipe": 2},
     r"lane_pipe: got 2, allowed: at most 2 \* head_dim \+ 1 \+ max_pipe \+ exp_pipe - sum_pipe \(1\)"),
])
def test_bad_configs(fields, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"unit": "attention", **fields})


def test_presets_and_quantizer():
    assert PRESETS["attention-8x8-d32"].m0 == 8 and PRESETS["attention-8x8-d32"].score_shift == 8
    cfg = PRESETS["attention-4x4-d8"]
    rng = np.random.default_rng(0)
    qf, kf, vf = rng.normal(size=(3, 8)), rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    cfg = AttentionConfig(**{**cfg.__dict__, "score_shift": A.best_score_shift(cfg, qf, kf)})
    assert cfg.score_shift == 8
    qz = A.quantize_head(cfg, qf, kf, vf)
    assert 64 <= np.abs(qz["q"]).max() <= 127
    assert np.abs(qz["k"]).max() == 127 and np.abs(qz["v"]).max() == 127 and qz["q_clipped"] == 0
    out = A.attention(cfg, qz["q"], qz["k"], qz["v"]) / qz["out_scale"]
    s = qf @ kf.T / math.sqrt(8)
    w = np.exp(s - s.max(axis=1, keepdims=True))
    ref = (w / w.sum(axis=1, keepdims=True)) @ vf
    assert np.abs(out - ref).max() < 0.02 * np.abs(vf).max()


def test_manifest_describes_the_streams():
    from hwgen.flow.generate import generate
    cfg = AttentionConfig(head_dim=3, m0=2, p0=1, data_bits=5, out_frac=2, max_keys_log2=4)
    text, man = generate(cfg, "att")
    streams = {s["name"]: {f["name"]: f for f in s["fields"]} for s in man["streams"]}
    assert {k: (f["width"], f.get("count")) for k, f in streams["i"].items()} == {
        "x": (15, 3), "v": (15, 3), "kind": (1, None), "last": (1, None)}
    assert streams["o"]["out"]["elem_width"] == cfg.out_width == 8 and streams["o"]["out"]["count"] == 3
    assert man["pe_2d"] == 2 and man["lanes_1d"] == 1
    # 2 * head_dim + 2 plus the default mul_pipe, max_pipe and exp_pipe 1; lanes 2 + mul_pipe + sum_pipe behind; the ring
    # head_dim + 1 + lane_pipe 1 long; RD x PRM sum_pipe + lane_pipe cycles into PV
    assert (man["tile_cycles"], man["lane_delay"], man["norm_cycles"], man["rd_delay"]) == (11, 4, 5, 2)
    assert (man["mul_pipe"], man["max_pipe"], man["exp_pipe"], man["sum_pipe"], man["lane_pipe"]) == (1, 1, 1, 1, 1)
    # no memory arrays at all (a Verilog memory is `reg [w:0] name [0:depth]`): the state is registers whose
    # number follows from the config only, never from the runtime sequence length
    assert not re.search(r"reg\s+(signed\s+)?\[[^\]]+\]\s+\S+\s*\[", text)
    assert re.search(r"reg\s+(signed\s+)?\[[^\]]+\]\s+\S+", text)


def test_causal_mask():
    cfg = AttentionConfig(m0=3, p0=4, causal=True, score_shift=0, logit_frac=8)
    q, k, v = rand_qkv(cfg, 6, 8, seed=12)
    out = A.attention(cfg, q, k, v)
    assert np.abs(out - A.attention_reference(cfg, q, k, v)).max() <= 4
    assert np.array_equal(out[0], v[0] * 2 ** cfg.out_frac)            # query 0 sees key 0 only
    for r in (2, 5):                                                    # = non-causal over the visible prefix
        plain = AttentionConfig(m0=3, p0=4, score_shift=0, logit_frac=8)
        assert np.array_equal(out[r], A.attention(plain, q[r:r + 1], k[:r + 1], v[:r + 1])[0])
    late = A.attention(cfg, q[:2], k, v, q_pos=[7, 3])
    assert np.array_equal(late[1], A.attention(cfg, q[1:2], k[:4], v[:4], q_pos=[3])[0])
    assert A.stream_beats(cfg, q[:2], k, v, q_pos=[7, 3])["pos"].tolist()[:3] == [7, 3, 0]
    with pytest.raises(ValueError, match="q_pos: given, but the config is not causal"):
        A.attention(AttentionConfig(), q[:, :8], k, v, q_pos=[0] * 6)
