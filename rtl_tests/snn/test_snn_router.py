"""Multicast routing-table unit on RTL: bit-exact against sw_model.snn.fabric.route_stream (table writes, rewrites,
invalidations, spikes from sources with 0..fanout valid entries) under random gaps and backpressure, and the cycle
model without stalls."""
import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from sw_model.snn import fabric as F

pytestmark = pytest.mark.rtl

CONFIGS = [F.RouterConfig(src_bits=1, fanout=1, core_bits=1, axon_bits=1),     # smallest
           F.RouterConfig(src_bits=3, fanout=3, core_bits=2, axon_bits=5),     # odd fanout
           F.RouterConfig()]                                                    # 64 sources x 4, 2x2 mesh


def beats(cfg, seed, n=200):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        if rng.random() < 0.4:
            rows.append((F.ROUTE_WRITE, rng.integers(0, 1 << cfg.src_bits), rng.integers(0, cfg.fanout),
                         int(rng.random() < 0.7), rng.integers(0, 1 << cfg.core_bits),
                         rng.integers(0, 1 << cfg.axon_bits)))
        else:
            rows.append((F.ROUTE_SPIKE, rng.integers(0, 1 << cfg.src_bits), 0, 0, 0, 0))
    arr = np.array(rows, dtype=np.int64)
    return {k: arr[:, j] for j, k in enumerate(("op", "src", "entry", "valid", "core", "axon"))}


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"s{c.src_bits}-f{c.fanout}")
def test_router_bit_exact(cfg, sim_opts):
    inp = beats(cfg, seed=cfg.fanout)
    out, cost, _ = F.route_stream(cfg, inp)
    assert len(out["core"]) > 30
    res = run_vectors(cfg, inp, out, gap=0.3, backpressure=0.3, seed=2, timeout_cycles=4 * int(cost.sum()) + 500,
                      **sim_opts)
    assert res["n_out"] == len(out["core"]) and not res["mismatches"] and not res["extra_output"]


def test_router_cycle_model(sim_opts):
    cfg = CONFIGS[1]
    inp = beats(cfg, seed=9)
    out, cost, _ = F.route_stream(cfg, inp)
    res = run_vectors(cfg, inp, out, gap=0.0, backpressure=0.0, **sim_opts)
    assert not res["mismatches"]
    assert np.array_equal(np.diff(res["in_cycles"]), cost[1:])
