"""SDSA block on RTL: bit-exact against sw_model.snn.sdsa for several heads per stream (random densities, the
all-zero and all-one tiles, counter saturation) under random gaps and backpressure, at read-out pipelines 0 to 3;
II = 1 and latency 1 + pipeline."""
import dataclasses

import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from hwgen.snn.sdsa import SDSA
from sw_model.snn import sdsa as golden
from sw_model.snn.sdsa import SDSAConfig

pytestmark = pytest.mark.rtl

CONFIGS = [SDSAConfig(dim=2, tokens=1, scale_shift=0, vth=1, pipeline=0),      # smallest legal, unpipelined
           SDSAConfig(dim=5, tokens=3, scale_shift=1, vth=2, pipeline=3),      # odd; 2-bit counters saturate
           SDSAConfig(dim=8, tokens=16)]                           # SDSA-3: spike iff S >= 8 (default pipeline)


def heads(cfg, seed, n=12):
    rng = np.random.default_rng(seed)
    out = []
    for h in range(n):
        nk, nq = int(rng.integers(1, 2 * cfg.tokens + 2)), int(rng.integers(1, 6))
        p = [0.0, 1.0, 0.2, 0.5, 0.8][h % 5]
        tiles = [(rng.random((nq if x == 0 else nk, cfg.dim)) < p).astype(int) for x in range(3)]
        out.append(tuple(tiles))
    return out


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"d{c.dim}-t{c.tokens}-s{c.scale_shift}-v{c.vth}-p{c.pipeline}")
def test_sdsa_bit_exact(cfg, sim_opts):
    inp, want = golden.stream(cfg, heads(cfg, seed=cfg.dim))
    assert 0 < np.count_nonzero(want["s"]) < len(want["s"])
    res = run_vectors(cfg, inp, want, gap=0.3, backpressure=0.3, seed=4, **sim_opts)
    assert res["n_out"] == len(want["s"]) and not res["mismatches"] and not res["extra_output"]


@pytest.mark.parametrize("pipeline", [0, 2, 5])
def test_sdsa_cycle_model(pipeline, sim_opts):
    """II = 1 and every Q row's output exactly latency(cfg) = 1 + pipeline cycles after its handshake (5 slices
    is more than the 5 read-out stages of dim 8: the extra ones sit at the end); the manifest says the same."""
    cfg = dataclasses.replace(CONFIGS[2], pipeline=pipeline)
    assert SDSA(cfg).timing()["latency"] == golden.latency(cfg) == 1 + pipeline
    inp, want = golden.stream(cfg, heads(cfg, seed=1))
    res = run_vectors(cfg, inp, want, gap=0.0, backpressure=0.0, **sim_opts)
    assert res["n_out"] == len(want["s"]) and not res["mismatches"]
    q_beats = np.nonzero(inp["op"] == 1)[0]
    assert np.all(np.diff(res["in_cycles"]) == 1)                              # II = 1
    assert (np.array(res["out_cycles"]) - np.array(res["in_cycles"])[q_beats] == golden.latency(cfg)).all()


def test_sdsa_threshold_boundary_paper_config(sim_opts):
    """The paper configuration (dim 8, 16 tokens, fire iff S >= 8) with outputs exactly at, one below and one above
    the threshold: catches '>=' turned into '>' (or '>= 9') in the gateware and the golden model.
    Nine K/V tokens: token t has k = channel 0 on, and v channel c on iff t < 9 - (c % 3) -> KV[0][c] = 9, 8, 7 for
    c % 3 = 0, 1, 2. A second head splits the sum over two K channels: tokens 0..3 have k = channel 1, tokens 4..7
    k = channel 2, all v on -> KV[1][c] = KV[2][c] = 4; Q = channels 1 and 2 -> S = 8 everywhere."""
    cfg = CONFIGS[2]
    assert (cfg.dim, cfg.tokens, cfg.vth << cfg.scale_shift) == (8, 16, 8)
    k1 = np.zeros((9, 8), dtype=int)
    k1[:, 0] = 1
    v1 = np.array([[int(t < 9 - c % 3) for c in range(8)] for t in range(9)])
    q1 = np.eye(8, dtype=int)[[0, 1]]                         # row 0 reads KV[0] (9/8/7), row 1 reads KV[1] = 0
    k2 = np.zeros((8, 8), dtype=int)
    k2[:4, 1] = 1
    k2[4:, 2] = 1
    v2 = np.ones((8, 8), dtype=int)
    q2 = np.zeros((2, 8), dtype=int)
    q2[0, [1, 2]] = 1                                         # S = 4 + 4 = 8 on every channel
    q2[1, 1] = 1                                              # S = 4: silent
    inp, want = golden.stream(cfg, [(q1, k1, v1), (q2, k2, v2)])
    pack = lambda bits: sum(b << c for c, b in enumerate(bits))   # noqa: E731
    hand = [pack([1 if c % 3 < 2 else 0 for c in range(8)]), 0, pack([1] * 8), 0]
    assert want["s"].tolist() == hand
    res = run_vectors(cfg, inp, want, gap=0.3, backpressure=0.3, seed=6, **sim_opts)
    assert res["n_out"] == len(want["s"]) and not res["mismatches"] and not res["extra_output"]
