"""Attention array on RTL: bit-exact against sw_model.attention.golden under random gaps and backpressure at four
configs (the smallest legal array, the 4x4 preset, an odd 3x5 array with head_dim 7, a tall 7x2 array), key
counts that are and are not multiples of M0, partial query tiles, large logits, all-equal scores, a query
tile without keys, the cycle model (also at several settings of the pipelining fields max_pipe, exp_pipe,
sum_pipe and lane_pipe, including none and the largest sum_pipe the smallest array allows), and one runtime-length-independent
design run at 64 and 4096 keys."""
import dataclasses

import numpy as np
import pytest

from hwgen.sim.harness import design, run_vectors
from rtl_tests.simulators import requires_icarus
from sw_model.attention import golden as A
from sw_model.attention.config import AttentionConfig
from sw_model.attention.timing import cycle_model
from sw_model.registry import PRESETS

pytestmark = pytest.mark.rtl

SMALLEST = AttentionConfig(head_dim=1, m0=1, p0=1, data_bits=2, score_shift=0, logit_frac=0, exp_bits=2,
                           out_frac=0, max_keys_log2=5)
PRESET = PRESETS["attention-4x4-d8"]
ODD = AttentionConfig(head_dim=7, m0=3, p0=5, data_bits=5, score_shift=3, logit_frac=3, exp_bits=11, out_frac=5,
                      max_keys_log2=12)
TALL = AttentionConfig(head_dim=2, m0=7, p0=2, data_bits=6, score_shift=1, logit_frac=2, exp_bits=9, out_frac=3,
                       max_keys_log2=12)


def rand_qkv(cfg, n_q, n_k, seed):
    rng = np.random.default_rng(seed)
    hi = 1 << (cfg.data_bits - 1)
    return (rng.integers(-hi, hi, (n_q, cfg.head_dim)), rng.integers(-hi, hi, (n_k, cfg.head_dim)),
            rng.integers(-hi, hi, (n_k, cfg.head_dim)))


def run(cfg, groups, sim_opts, gap=0.3, backpressure=0.3, seed=0):
    """groups: list of (q, k, v); each becomes query tiles against its own K/V stream. Returns the summary and
    the expected output rows (signed)."""
    beats, want = {}, []
    for q, k, v in groups:
        b = A.stream_beats(cfg, q, k, v)
        for key, val in b.items():
            beats.setdefault(key, []).append(val)
        want.append(A.attention(cfg, q, k, v))
    beats = {key: np.concatenate(val) for key, val in beats.items()}
    want = np.concatenate(want)
    # the harness's default timeout counts beats, not cycles: with M0 = 1 every K/V beat costs a key tile of
    # tile_cycles, so bound the run by the cycle model instead (x 3 for the gaps and the backpressure)
    tiles = [(min(cfg.p0, len(q) - q0), len(k)) for q, k, _ in groups for q0 in range(0, len(q), cfg.p0)]
    timeout = 200 + 3 * (cycle_model(cfg, tiles)["out_cycles"] or [0])[-1]
    res = run_vectors(cfg, beats, {"out": want & ((1 << cfg.out_width) - 1)}, gap=gap, backpressure=backpressure,
                      seed=seed, timeout_cycles=timeout, **sim_opts)
    assert res["n_out"] == len(want) and not res["mismatches"] and not res["extra_output"]
    return res, want


def tiles_of(cfg, groups):
    return [(min(cfg.p0, len(q) - q0), len(k)) for q, k, _ in groups for q0 in range(0, len(q), cfg.p0)]


@pytest.mark.parametrize("cfg,shapes", [
    (SMALLEST, [(1, 1), (2, 5), (1, 17)]),
    (PRESET, [(4, 16), (6, 37), (1, 1), (3, 5)]),
    (ODD, [(5, 9), (7, 13), (2, 2)]),
    (TALL, [(2, 14), (3, 20), (1, 6)]),
], ids=["smallest-1x1-d1", "preset-4x4-d8", "odd-3x5-d7", "tall-7x2-d2"])
def test_random_bit_exact(cfg, shapes, sim_opts):
    groups = [rand_qkv(cfg, n_q, n_k, seed=j) for j, (n_q, n_k) in enumerate(shapes)]
    res, want = run(cfg, groups, sim_opts, seed=len(shapes))
    assert res["n_out"] == sum(len(q) for q, _, _ in groups) == len(want) and not res["mismatches"]


@pytest.mark.parametrize("cfg", [SMALLEST, PRESET, ODD], ids=["smallest", "preset", "odd"])
def test_cycle_model(cfg, sim_opts):
    """No gaps, no backpressure: every input and output handshake at the cycle the model predicts."""
    groups = [rand_qkv(cfg, cfg.p0, 2 * cfg.m0 + 1, seed=1), rand_qkv(cfg, 1, cfg.m0, seed=2)]
    res, _ = run(cfg, groups, sim_opts, gap=0.0, backpressure=0.0)
    model = cycle_model(cfg, tiles_of(cfg, groups))
    assert res["in_cycles"] == model["in_cycles"]
    assert res["out_cycles"] == model["out_cycles"]


@pytest.mark.parametrize("cfg", [
    dataclasses.replace(SMALLEST, mul_pipe=0, max_pipe=0, exp_pipe=0, sum_pipe=0, lane_pipe=0),   # none at all
    # the largest sum_pipe and then lane_pipe head_dim 1 allows
    dataclasses.replace(SMALLEST, mul_pipe=0, max_pipe=0, exp_pipe=0, sum_pipe=2, lane_pipe=1),
    dataclasses.replace(ODD, mul_pipe=0, max_pipe=3, exp_pipe=2, sum_pipe=0, lane_pipe=2),   # slices > tree levels
    dataclasses.replace(TALL, max_pipe=2, exp_pipe=0, sum_pipe=3, lane_pipe=3),
], ids=["smallest-p0000", "smallest-p0021", "odd-p3202", "tall-p2033"])
def test_pipelining_cycle_model(cfg, sim_opts):
    """Each pipelining setting: bit-exact under gaps and backpressure, and every handshake where the cycle model
    puts it (tile_cycles and lane_delay in the manifest follow the fields)."""
    from hwgen.attention.array import AttentionArray
    t = AttentionArray(cfg).timing()
    assert t["tile_cycles"] == 2 * cfg.head_dim + 2 + cfg.mul_pipe + cfg.max_pipe + cfg.exp_pipe
    assert t["lane_delay"] == 2 + cfg.mul_pipe + cfg.sum_pipe and t["norm_cycles"] == cfg.head_dim + 1 + cfg.lane_pipe
    groups = [rand_qkv(cfg, cfg.p0, 3 * cfg.m0 + 1, seed=3), rand_qkv(cfg, 1, cfg.m0, seed=4)]
    run(cfg, groups, sim_opts, gap=0.3, backpressure=0.3, seed=5)
    res, _ = run(cfg, groups, sim_opts, gap=0.0, backpressure=0.0)
    model = cycle_model(cfg, tiles_of(cfg, groups))
    assert res["in_cycles"] == model["in_cycles"]
    assert res["out_cycles"] == model["out_cycles"]


def test_numerical_corners(sim_opts):
    """Large-magnitude logits (one key dominates by ~2^12 log2 units; the running max must change mid-stream and
    the old sums vanish), all-equal scores (the output is the mean of V), extreme codes everywhere."""
    cfg = PRESET
    q_big = np.full((4, 8), 127)
    q_big[1] = -128
    k_big = np.full((23, 8), -128)
    k_big[[3, 13, 22]] = 127
    v_big = np.arange(23 * 8).reshape(23, 8) % 256 - 128
    q_eq = np.zeros((3, 8), np.int64)
    rng = np.random.default_rng(4)
    k_eq, v_eq = rng.integers(-128, 128, (19, 8)), rng.integers(-128, 128, (19, 8))
    ext = [np.array([[-128, 127] * 4] * 4)] + [np.where(rng.random((9, 8)) < 0.5, -128, 127) for _ in range(2)]
    _, want = run(cfg, [(q_big, k_big, v_big), (q_eq, k_eq, v_eq), tuple(ext)], sim_opts, seed=5)
    assert np.all(np.abs(want[4:7] - v_eq.sum(axis=0) * 2 ** cfg.out_frac / 19) <= 0.5)


def test_query_tile_without_keys(sim_opts):
    """A QUERY beat with last = 1 closes the tile with zero keys (the golden model rejects sequence length 0);
    the documented hardware behaviour: one all-zero row per query row, then normal operation continues."""
    cfg = ODD
    q, k, v = rand_qkv(cfg, 3, 4, seed=9)
    empty = {"x": q[:2], "v": np.zeros((2, 7), np.int64), "kind": np.zeros(2, np.int64), "last": np.array([0, 1])}
    normal = A.stream_beats(cfg, q, k, v)
    beats = {key: np.concatenate([empty[key], normal[key]]) for key in normal}
    want = np.concatenate([np.zeros((2, 7), np.int64), A.attention(cfg, q, k, v)])
    res = run_vectors(cfg, beats, {"out": want & ((1 << cfg.out_width) - 1)}, gap=0.3, backpressure=0.3, seed=2,
                      **sim_opts)
    assert res["n_out"] == 5 and not res["mismatches"]
    with pytest.raises(ValueError, match="sequence length 0"):
        A.attention(cfg, q, k[:0], v[:0])


@pytest.mark.parametrize("n_keys", [64, 4096])
def test_runtime_length_same_design(n_keys, sim_opts):
    """The sequence length is runtime only: one design (same Verilog file) serves 64 and 4096 keys."""
    cfg = TALL
    verilog, _ = design(cfg)
    q, k, v = rand_qkv(cfg, 2, n_keys, seed=n_keys)
    res, _ = run(cfg, [(q, k, v)], sim_opts, gap=0.1, backpressure=0.1, seed=7)
    assert design(cfg)[0] == verilog


CAUSAL = AttentionConfig(head_dim=3, m0=2, p0=3, data_bits=6, score_shift=1, logit_frac=3, exp_bits=10, out_frac=4,
                         max_keys_log2=6, causal=True)


def test_causal_mask(sim_opts):
    """Causal config: each QUERY beat carries its position; keys after it are masked (whole tiles, row 0 of a
    tile, partial tiles), bit-exact with the golden model; the cycle model is unchanged by the mask."""
    cfg = CAUSAL
    q, k, v = rand_qkv(cfg, 7, 9, seed=21)
    pos_sets = [None, [8, 0, 3, 5, 1, 2, 7]]
    beats, want = {}, []
    for q_pos in pos_sets:
        b = A.stream_beats(cfg, q, k, v, q_pos=q_pos)
        for key, val in b.items():
            beats.setdefault(key, []).append(val)
        want.append(A.attention(cfg, q, k, v, q_pos=q_pos))
    beats = {key: np.concatenate(val) for key, val in beats.items()}
    want = np.concatenate(want)
    assert np.array_equal(want[0], v[0] * 2 ** cfg.out_frac)     # position 0 sees key 0 only
    res = run_vectors(cfg, beats, {"out": want & ((1 << cfg.out_width) - 1)}, gap=0.3, backpressure=0.3, seed=3,
                      **sim_opts)
    assert res["n_out"] == 14 and not res["mismatches"]
    res = run_vectors(cfg, beats, {"out": want & ((1 << cfg.out_width) - 1)}, gap=0.0, backpressure=0.0, **sim_opts)
    model = cycle_model(cfg, [(3, 9), (3, 9), (1, 9)] * 2)
    assert res["in_cycles"] == model["in_cycles"] and res["out_cycles"] == model["out_cycles"]


@pytest.mark.parametrize("cfg", [SMALLEST, AttentionConfig(**{**SMALLEST.__dict__, "mult": "lmul", "lmul_man": 1})],
                         ids=["smallest", "smallest-lmul"])
@requires_icarus
def test_icarus_zero_kv(cfg):
    """Regression, always on Icarus (whatever --sim says): the smallest config with all-zero K/V. The output row
    mux used to be an If chain, i.e. an `always @*` process in the Verilog; Icarus runs such a process only when
    an input changes, and with K = V = 0 nothing it reads (oq, RNV) left its reset value before the first output,
    so the output stayed X. It is now a Mux chain (continuous assigns)."""
    zero = np.zeros((3, 1), np.int64)
    groups = [(np.array([[1]]), zero, zero), (np.array([[-2]]), zero[:1], zero[:1])] + \
        [rand_qkv(cfg, 1, 5, seed=s) for s in range(2)]
    _, want = run(cfg, groups, {"sim": "icarus", "waves": False}, seed=1)
    assert want[:2].tolist() == [[0], [0]]
