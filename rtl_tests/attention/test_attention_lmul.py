"""The attention array's L-Mul option on RTL: bit-exact with the golden model under random gaps and
backpressure at three configs (all multiplications as L-Muls with 2 mantissa bits on an odd 2x3 array; L-Mul
products only with 4 mantissa bits on a 3x2 array; a 1x1 array with 1 mantissa bit whose running sums
saturate), partial key tiles, several query tiles, and the unchanged cycle model."""
import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from sw_model.attention import golden as A
from sw_model.attention.config import AttentionConfig
from sw_model.attention.timing import cycle_model

pytestmark = pytest.mark.rtl

LMUL_ODD = AttentionConfig(head_dim=3, m0=2, p0=3, data_bits=5, score_shift=1, logit_frac=2, exp_bits=8, out_frac=3,
                           max_keys_log2=8, mult="lmul", lmul_man=2)
LMUL_PRODUCTS = AttentionConfig(head_dim=5, m0=3, p0=2, data_bits=6, score_shift=2, logit_frac=3, exp_bits=10,
                                out_frac=4, max_keys_log2=10, mult="lmul-products", lmul_man=4)
LMUL_SAT = AttentionConfig(head_dim=2, m0=1, p0=1, data_bits=4, logit_frac=1, exp_bits=4, out_frac=2,
                           max_keys_log2=5, mult="lmul", lmul_man=1)


def rand_qkv(cfg, n_q, n_k, seed):
    rng = np.random.default_rng(seed)
    hi = 1 << (cfg.data_bits - 1)
    return (rng.integers(-hi, hi, (n_q, cfg.head_dim)), rng.integers(-hi, hi, (n_k, cfg.head_dim)),
            rng.integers(-hi, hi, (n_k, cfg.head_dim)))


def run(cfg, groups, sim_opts, gap=0.3, backpressure=0.3, seed=0):
    beats, want = {}, []
    for q, k, v in groups:
        for key, val in A.stream_beats(cfg, q, k, v).items():
            beats.setdefault(key, []).append(val)
        want.append(A.attention(cfg, q, k, v))
    beats = {key: np.concatenate(val) for key, val in beats.items()}
    want = np.concatenate(want)
    # bound the run by the cycle model (the harness's default counts beats; with M0 = 1 each K/V beat is a tile)
    tiles = [(min(cfg.p0, len(q) - q0), len(k)) for q, k, _ in groups for q0 in range(0, len(q), cfg.p0)]
    res = run_vectors(cfg, beats, {"out": want & ((1 << cfg.out_width) - 1)}, gap=gap, backpressure=backpressure,
                      seed=seed, timeout_cycles=200 + 3 * cycle_model(cfg, tiles)["out_cycles"][-1], **sim_opts)
    assert res["n_out"] == len(want) and not res["mismatches"] and not res["extra_output"]
    return res, want


@pytest.mark.parametrize("cfg,shapes", [
    (LMUL_ODD, [(3, 7), (5, 12), (1, 1), (2, 2)]),
    (LMUL_PRODUCTS, [(2, 9), (3, 10), (1, 4)]),
], ids=["lmul-2x3-d3-m2", "lmul-products-3x2-d5-m4"])
def test_lmul_bit_exact(cfg, shapes, sim_opts):
    groups = [rand_qkv(cfg, n_q, n_k, seed=10 + j) for j, (n_q, n_k) in enumerate(shapes)]
    # extreme codes: the most negative operand (|x| = 2^(b-1), a lone leading one) in every position
    lo = -(1 << (cfg.data_bits - 1))
    groups.append((np.full((2, cfg.head_dim), lo), np.full((5, cfg.head_dim), lo), np.full((5, cfg.head_dim), lo)))
    _, want = run(cfg, groups, sim_opts, seed=len(shapes))
    exact = AttentionConfig(**{**cfg.__dict__, "mult": "exact"})
    assert not np.array_equal(want, np.concatenate([A.attention(exact, *g) for g in groups]))


def test_lmul_saturating_sums(sim_opts):
    """1 mantissa bit (offset 1/2): 32 one-key tiles with a constant running max grow RD and RNV until they
    saturate (the golden trace shows both at their limits); the RTL saturates identically, then random streams."""
    cfg = LMUL_SAT
    k, v = np.ones((32, 2), np.int64), np.full((32, 2), -8)
    trace = []
    A.attention(cfg, [[0, 0]], k, v, trace=trace)
    assert int(trace[-1]["rd"][0]) == (1 << cfg.rd_width) - 1
    assert int(trace[-1]["rnv"][0, 0]) == -(1 << (cfg.rnv_width - 1))
    run(cfg, [(np.zeros((1, 2), np.int64), k, v), rand_qkv(cfg, 1, 32, seed=3), rand_qkv(cfg, 2, 9, seed=4)],
        sim_opts, seed=6)


def test_lmul_cycle_model(sim_opts):
    """The L-Mul replaces each multiplier by combinational logic: the cycle model is unchanged."""
    cfg = LMUL_ODD
    groups = [rand_qkv(cfg, cfg.p0, 2 * cfg.m0 + 1, seed=1), rand_qkv(cfg, 1, cfg.m0, seed=2)]
    res, _ = run(cfg, groups, sim_opts, gap=0.0, backpressure=0.0)
    model = cycle_model(cfg, [(cfg.p0, 2 * cfg.m0 + 1), (1, cfg.m0)])
    assert res["in_cycles"] == model["in_cycles"] and res["out_cycles"] == model["out_cycles"]
