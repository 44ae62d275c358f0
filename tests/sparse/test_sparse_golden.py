"""Golden model of the sparse DSP chain family: N:M pruning, compressed layout, checks with exact messages,
integer dot products against float references and hand-worked examples, the chain's per-beat semantics."""
import itertools

import numpy as np
import pytest

from sw_model.config import ConfigError
from sw_model.registry import config_from_dict, load_config
from sw_model.sparse import golden as sp
from sw_model.sparse.config import SparseChainConfig
from sw_model.sparse.workload import random_acts, random_row, workload

NM = [(2, 4), (1, 4), (2, 8), (4, 8), (1, 2), (3, 8), (4, 4), (1, 1), (5, 16)]


@pytest.mark.parametrize("spec,msg", [
    ("3:6", "N:M: got 3:6, M must be a power of two from 1 to 256"),
    ("5:4", "N:M: got 5:4, N must be from 1 to M = 4"),
    ((0, 8), "N:M: got 0:8, N must be from 1 to M = 8"),
    ("a:b", "N:M: got 'a:b', allowed: 'N:M' with integers"),
    ("2:4:8", "allowed: 'N:M' with integers"),
])
def test_parse_nm_errors(spec, msg):
    with pytest.raises(sp.SparseFormatError) as e:
        sp.parse_nm(spec)
    assert msg in str(e.value)


def test_prune_and_compress_hand_example():
    w = np.array([3, -5, 1, 0, 2, 2, -2, 7, 0, 0, 4, 0])
    pruned = sp.prune_nm(w, 2, 4)                # ties (2, 2, -2) keep the lowest index
    assert pruned.tolist() == [3, -5, 0, 0, 2, 0, 0, 7, 0, 0, 4, 0]
    values, indices = sp.compress(pruned, 2, 4)
    assert values.tolist() == [3, -5, 2, 7, 0, 4]   # the short last group is topped up with position 0
    assert indices.tolist() == [0, 1, 0, 3, 0, 2]
    assert sp.decompress(values, indices, 2, 4).tolist() == pruned.tolist()
    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    assert sp.sparse_dot(values, indices, x, 2, 4) == 3 * 1 - 5 * 2 + 2 * 5 + 7 * 8 + 4 * 11


@pytest.mark.parametrize("n,m", NM)
def test_prune_matches_brute_force(n, m):
    rng = np.random.default_rng(n * 100 + m)
    w = rng.integers(-4, 5, (3, 4 * m))              # small range: many magnitude ties
    pruned = sp.prune_nm(w, n, m)
    for r, g in itertools.product(range(3), range(4)):
        grp = w[r, g * m:(g + 1) * m].tolist()
        keep = sorted(range(m), key=lambda j: (-abs(grp[j]), j))[:n]
        want = [grp[j] if j in keep else 0 for j in range(m)]
        assert pruned[r, g * m:(g + 1) * m].tolist() == want


@pytest.mark.parametrize("n,m", NM)
def test_roundtrip_and_dot_against_float(n, m):
    rng = np.random.default_rng(7 * m + n)
    w = sp.prune_nm(rng.integers(-128, 128, (5, 6 * m)), n, m)
    w[0, :m] = 0                                      # an all-zero group
    values, indices = sp.compress(w, n, m)
    assert values.shape == indices.shape == (5, 6 * n)
    sp.check_compressed(values, indices, n, m, value_bits=8)
    assert (sp.decompress(values, indices, n, m) == w).all()
    x = rng.integers(-128, 128, (6 * m, 3))
    want = w.astype(np.float64) @ x.astype(np.float64)      # float reference (exact at these magnitudes)
    assert (sp.sparse_dot(values, indices, x, n, m) == want).all()
    assert (sp.sparse_dot(values, indices, x[:, 0], n, m) == want[:, 0]).all()


@pytest.mark.parametrize("args,msg", [
    (([1, 2], [0, 4], 2, 4), "indices: group 0 has index 4, allowed: 0..3"),
    (([1, 2, 3, 4], [0, 1, 2, 2], 2, 4),
     "indices: group 1 repeats index 2; the N = 2 indices of a group must be distinct"),
    (([[1, 2], [3, 4]], [[0, 1], [3, 3]], 2, 8), "indices: group 0 of row (1,) repeats index 3"),
    (([1, 2], [0, -1], 2, 4), "indices: group 0 has index -1, allowed: 0..3"),
    (([1, 2, 3], [0, 1], 2, 4), "values and indices: shapes (3,) and (2,) differ"),
    (([1, 2, 3], [0, 1, 2], 2, 4), "values: last axis 3 is not a multiple of N = 2"),
    (([1.0, 2.0], [0.0, 1.0], 2, 4), "indices: got dtype float64, allowed: integers"),
])
def test_check_compressed_errors(args, msg):
    with pytest.raises(sp.SparseFormatError) as e:
        sp.decompress(*args)
    assert msg in str(e.value)


def test_value_width_and_compress_errors():
    with pytest.raises(sp.SparseFormatError, match=r"values: 200 at flat position 1 does not fit in signed 8 "
                                                   r"bits \(-128..127\)"):
        sp.check_compressed([1, 200], [0, 1], 2, 4, value_bits=8)
    with pytest.raises(sp.SparseFormatError, match=r"values: -9 at flat position 0 does not fit in signed 4 bits"):
        sp.check_compressed([-9, 0], [0, 1], 2, 4, value_bits=4)
    with pytest.raises(sp.SparseFormatError, match="weights: group 1 has 3 nonzero values, allowed at most N = 2"):
        sp.compress([1, 0, 0, 0, 1, 1, 1, 0], 2, 4)
    with pytest.raises(sp.SparseFormatError, match="weights: K = 6 is not a multiple of M = 4"):
        sp.prune_nm(np.ones(6), 2, 4)
    with pytest.raises(sp.SparseFormatError, match="x: K = 4, but the weights cover K = 8"):
        sp.sparse_dot([1, 2, 3, 4], [0, 1, 0, 1], np.ones(4, int), 2, 4)


# ---------------------------------------------------------------------------------------------- the chain

def test_chain_hand_examples():
    cfg = SparseChainConfig(stages=2, acc_bits=20)
    # 2:4, one group per beat: 3*x0 - 5*x1 over x = 1, 2, 3, 4 -> -7; second vector dense 2*9 + 1*(-1)
    b1 = sp.pack_dot([3, -5], [1, 2, 3, 4], "2:4", 2, cfg.x_width, indices=[0, 1])
    b2 = sp.pack_dot([2, 1], [9, -1], "dense", 2, cfg.x_width)
    beats = sp.concat_beats([b1, b2])
    assert beats["x"].shape == (2, 8) and beats["mode"].tolist() == [1, 0] and beats["last"].tolist() == [1, 1]
    assert sp.chain_model(beats, 2, 20)["y"].tolist() == [-7, 17]
    # hardware index rule: in M = 4 modes only the low 2 bits count (5 -> 1, 6 -> 2)
    beats["idx"][0] = [5, 6]
    assert sp.chain_model(beats, 2, 20)["y"].tolist() == [3 * 2 - 5 * 3, 17]
    beats["mode"][0] = 7                              # unknown mode code: the beat adds 0
    assert sp.chain_model(beats, 2, 20)["y"].tolist() == [0, 17]


def test_chain_accumulator_wraps():
    beats = {"w": np.array([[127], [127], [127]]), "idx": np.zeros((3, 1), int), "x": np.full((3, 4), -128),
             "mode": np.zeros(3, int), "last": np.array([0, 0, 1])}
    # three beats of -16256 = -48768 wraps in 16 bits to 16768
    assert sp.chain_model(beats, 1, 16)["y"].tolist() == [-48768 + 65536]
    assert sp.chain_model(beats, 1, 17)["y"].tolist() == [-48768]       # fits in 17 bits: no wrap


def test_packed_lane_overflow_hand_example():
    # 8 stages of -128 x -128 in the low lane: 131072 = 2^17 is one past the 18-bit lane's plain sign
    # extension; the overflow adjust (lane window -2^17 + 1 .. 2^17) returns it exactly, the high lane stays 0.
    s = 8
    beats = {"w": np.full((1, s), -128), "idx": np.zeros((1, s), int), "x": np.full((1, s), -128),
             "x2": np.zeros((1, s), int), "mode": np.zeros(1, int), "last": np.ones(1, int)}
    out = sp.chain_model(beats, s, 32, packed=True, lane_bits=18)
    assert out["y"].tolist() == [131072] and out["y2"].tolist() == [0]
    assert sp.lane_overflows(beats, s, 18).tolist() == [False]
    # 8 x 16384 does not fit a 17-bit lane (window -65535 .. 65536): lo wraps by 2^17, hi takes the carry +1
    out = sp.chain_model(beats, s, 32, packed=True, lane_bits=17)
    assert out["y"].tolist() == [131072 - 131072] and out["y2"].tolist() == [1]
    assert sp.lane_overflows(beats, s, 17).tolist() == [True]
    beats["w"][0, 0] = 127                       # 7 * 16384 - 16256 fits: both lanes exact
    out = sp.chain_model(beats, s, 32, packed=True, lane_bits=18)
    assert out["y"].tolist() == [7 * 16384 - 127 * 128] and out["y2"].tolist() == [0]


@pytest.mark.parametrize("stages", [1, 3, 5, 8])
def test_chain_matches_sparse_dot_in_every_mode(stages):
    rng = np.random.default_rng(stages)
    cfg = SparseChainConfig(stages=stages)
    for md in cfg.modes:
        n, m = sp.MODE_NM[md]
        for k in (m, 3 * m, 11 * m):
            dense, values, indices = random_row(rng, k, md, 8)
            x = random_acts(rng, k)
            beats = sp.pack_dot(values, x, md, stages, cfg.x_width, indices=indices)
            assert len(beats["mode"]) == -(-k // sp.window(md, stages))
            want = int(dense.astype(np.float64) @ x.astype(np.float64))
            assert sp.chain_model(beats, stages, cfg.acc_bits)["y"].tolist() == [want]


def test_packed_equals_two_unpacked_without_overflow():
    rng = np.random.default_rng(3)
    cfg = SparseChainConfig(stages=4, packed=True, lane_bits=18)
    beats, want, _ = workload(cfg, rng, 50, ks=(8, 16), extreme=0.0)
    beats["x"] //= 4                                   # small activations: the lanes never overflow
    beats["x2"] //= 4
    assert not sp.lane_overflows(beats, 4, 18).any()
    out = sp.chain_model(beats, 4, cfg.acc_bits, packed=True, lane_bits=18)
    lo = sp.chain_model({**beats}, 4, cfg.acc_bits)["y"]
    hi = sp.chain_model({**beats, "x": beats["x2"]}, 4, cfg.acc_bits)["y"]
    assert (out["y"] == lo).all() and (out["y2"] == hi).all()


def test_pack_dot_errors():
    with pytest.raises(sp.SparseFormatError, match="mode: S4_8 needs at least N = 4 stages, the chain has 3"):
        sp.pack_dot([1, 2, 3, 4], np.zeros(8, int), "4:8", 3, 12, indices=[0, 1, 2, 3])
    with pytest.raises(sp.SparseFormatError, match="indices: group 0 repeats index 1"):
        sp.pack_dot([1, 2], np.zeros(4, int), "2:4", 2, 8, indices=[1, 1])
    with pytest.raises(sp.SparseFormatError, match="indices: required in N:M modes"):
        sp.pack_dot([1, 2], np.zeros(4, int), "2:4", 2, 8)
    with pytest.raises(sp.SparseFormatError, match=r"x: shape \(5,\), the weights cover K = 4"):
        sp.pack_dot([1, 2], np.zeros(5, int), "2:4", 2, 8, indices=[0, 1])
    with pytest.raises(sp.SparseFormatError, match="mode: got '3:4', allowed: dense, 2:4, 1:4, 2:8, 4:8"):
        sp.mode_of("3:4")


# ---------------------------------------------------------------------------------------------- config

def test_config_derived_widths():
    assert SparseChainConfig(stages=8).x_width == 32
    assert SparseChainConfig(stages=3).x_width == 12
    assert [md.name for md in SparseChainConfig(stages=3).modes] == ["DENSE", "S2_4", "S1_4", "S2_8"]
    assert [md.name for md in SparseChainConfig(stages=1).modes] == ["DENSE", "S1_4"]
    assert SparseChainConfig(stages=8).beat_bits == 19
    assert SparseChainConfig(stages=8, weight_bits=4).beat_bits == 15


@pytest.mark.parametrize("kw,msg", [
    ({"stages": 0}, "stages: got 0, allowed: an integer from 1 to 64"),
    ({"weight_bits": 6}, "weight_bits: got 6, allowed: 4, 8"),
    ({"acc_bits": 18}, "acc_bits: got 18, allowed: an integer from 19 to 64"),
    ({"packed": "yes"}, "packed: got 'yes', allowed: true or false"),
    ({"lane_bits": 16}, "lane_bits: got 16, allowed: 18 (the default) unless packed = true"),
    ({"packed": True, "lane_bits": 15}, "lane_bits: got 15, allowed: an integer from 16 to 24"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        SparseChainConfig(**kw)
    assert msg in str(e.value)


def test_config_loading(tmp_path):
    assert load_config("sparse-chain-8")[1] == SparseChainConfig(stages=8)
    assert load_config("sparse-chain-8-packed")[1].packed
    p = tmp_path / "c.toml"
    p.write_text('unit = "sparse_chain"\nstages = 5\nweight_bits = 4\n')
    assert load_config(str(p)) == ("c", SparseChainConfig(stages=5, weight_bits=4))
    with pytest.raises(ConfigError, match="mode: unknown field for unit 'sparse_chain'"):
        config_from_dict({"unit": "sparse_chain", "mode": "2:4"})


def test_manifest_describes_the_beat():
    from hwgen.flow.generate import generate
    _, man = generate(SparseChainConfig(stages=3, packed=True, lane_bits=16), "sp3")
    fields = {f["name"]: f for f in man["streams"][0]["fields"]}
    assert fields["w"]["count"] == 3 and fields["idx"]["elem_width"] == 3 and fields["x"]["count"] == 12
    assert fields["x2"]["count"] == 12 and fields["mode"]["width"] == 3 and fields["last"]["width"] == 1
    assert [f["name"] for f in man["streams"][1]["fields"]] == ["y", "y2"]
    assert man["latency"] == 6 and man["ii"] == 1


def test_driver_rejects_too_wide_values():
    with pytest.raises(sp.SparseFormatError, match=r"w: 8 at flat position 1 does not fit in signed 4 bits \(-8..7\)"):
        sp.pack_dot([1, 8], np.zeros(4, int), "2:4", 2, 8, indices=[0, 1], weight_bits=4)
    with pytest.raises(sp.SparseFormatError, match=r"x: 128 at flat position 2 does not fit in signed 8 bits"):
        sp.pack_dot([1, 2], np.array([0, 0, 128, 0]), "2:4", 2, 8, indices=[0, 1])
    with pytest.raises(sp.SparseFormatError, match=r"x2: -129 at flat position 0 does not fit"):
        sp.pack_dot([1, 2], np.zeros(4, int), "2:4", 2, 8, indices=[0, 1], x2=np.array([-129, 0, 0, 0]))
    with pytest.raises(sp.SparseFormatError, match=r"w: 1.5 at flat position 0 does not fit"):
        sp.pack_dot([1.5, 2], np.zeros(2, int), "dense", 2, 8)


@pytest.mark.parametrize("mode,packed", [("dense", False), ("2:4", False), ("2:8", True), ("1:4", True)])
def test_gemm_through_the_chain_model(mode, packed):
    """Y = W X for a (6, K) weight matrix and 3 columns, via beats and the chain model, equals float math."""
    rng = np.random.default_rng(len(mode))
    cfg = SparseChainConfig(stages=5, packed=packed, acc_bits=40)
    n, m = sp.MODE_NM[sp.mode_of(mode)]
    w = np.stack([random_row(rng, 8 * m, mode, 8)[0] for _ in range(6)])
    x = rng.integers(-20, 20, (8 * m, 3))                     # small: the packed lanes do not overflow
    if mode == "dense":
        beats = sp.pack_gemm(w, x, mode, 5, cfg.x_width, packed=packed)
    else:
        values, indices = sp.compress(w, n, m)
        beats = sp.pack_gemm(values, x, mode, 5, cfg.x_width, indices=indices, packed=packed)
    out = sp.chain_model(beats, 5, 40, packed=packed, lane_bits=cfg.lane_bits)
    y = sp.unpack_gemm(out, 6, 3, packed=packed)
    assert (y == w.astype(np.float64) @ x.astype(np.float64)).all()
