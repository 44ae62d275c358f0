"""Golden model of the multi-core fabric: a network split over a 2x2 and a 4x2 mesh spikes exactly like the same
network run as one neuron array (`reference_network`); routing-table checks; hop counts of X-then-Y routing."""
import numpy as np
import pytest

from sw_model.config import ConfigError
from sw_model.snn import fabric as F
from sw_model.snn.config import SNNCoreConfig


def random_net(cfg, rng, p_route=0.3):
    lo, hi = cfg.core.weight_range
    weights = [rng.integers(lo, hi + 1, (cfg.core.axons, cfg.core.neurons)) for _ in range(cfg.cores)]
    table = F.RoutingTable(cfg)
    for c in range(cfg.cores):
        for n in range(cfg.core.neurons):
            for _ in range(int(rng.integers(0, cfg.fanout + 1)) if rng.random() < p_route else 0):
                table.add(c, n, int(rng.integers(0, cfg.cores)), int(rng.integers(0, cfg.core.axons)))
    return weights, table


@pytest.mark.parametrize("rows,cols,model", [(2, 2, "lif"), (4, 2, "lif"), (2, 2, "cuba"), (1, 3, "cuba")])
def test_split_network_equals_one_neuron_array(rows, cols, model):
    rng = np.random.default_rng(rows * 10 + cols)
    extra = dict(model="cuba", leak="mult", decay=300, du=1000, input_shift=2) if model == "cuba" else \
        dict(leak="shift", leak_shift=3, refractory=1, bias_mant=2)
    core = SNNCoreConfig(neurons=6, lanes=2, axons=5, weight_bits=6, state_bits=12, threshold=40,
                         saturate=False, addr_bits=3, **extra)   # wrapping sums: any arrival order, same result
    cfg = F.FabricConfig(rows=rows, cols=cols, core=core, fanout=3)
    weights, table = random_net(cfg, rng)
    steps = 30
    ev = sorted(((int(rng.integers(0, cfg.cores)), int(rng.integers(0, core.axons)), t)
                 for t in range(steps) for _ in range(int(rng.integers(0, 6)))), key=lambda e: e[2])
    res = F.run_fabric(cfg, weights, table, ev, steps)
    want = F.reference_network(cfg, weights, table, ev, steps)
    got = res["spikes"][np.lexsort((res["spikes"][:, 1], res["spikes"][:, 0], res["spikes"][:, 2]))]
    want = want[np.lexsort((want[:, 1], want[:, 0], want[:, 2]))]
    assert len(want) > 20 and res["packets"] > 10
    assert np.array_equal(got, want)


def test_hops_and_packets_hand_worked():
    # 2x2 mesh: core 0 at (0,0), core 3 at (1,1): 2 hops; core 1 -> core 2: (1,0) -> (0,1): 2 hops; 0 -> 0: 0
    cfg = F.FabricConfig(rows=2, cols=2, core=SNNCoreConfig(neurons=1, lanes=1, axons=1, threshold=1, addr_bits=1))
    assert (cfg.hops(0, 3), cfg.hops(1, 2), cfg.hops(0, 1), cfg.hops(2, 2)) == (2, 2, 1, 0)
    # neuron 0 of core 0 fires at t0 (one external event, weight 1 >= threshold 1, soft reset to 0) and multicasts
    # to core 3 and core 1: both fire at t1 (one packet each), 3 hops in all
    table = F.RoutingTable(cfg)
    table.add(0, 0, 3, 0)
    table.add(0, 0, 1, 0)
    res = F.run_fabric(cfg, [np.ones((1, 1), dtype=int)] * 4, table, [(0, 0, 0)], 3)
    assert res["spikes"].tolist() == [[0, 0, 0], [1, 0, 1], [3, 0, 1]]
    assert (res["packets"], res["hops"]) == (2, 3)


def test_routing_table_and_config_errors():
    cfg = F.FabricConfig(rows=1, cols=2, fanout=1)
    t = F.RoutingTable(cfg)
    t.add(0, 1, 1, 2)
    with pytest.raises(ValueError, match=r"already has 1 destinations \(fanout=1\)"):
        t.add(0, 1, 0, 0)
    with pytest.raises(ValueError, match=r"dst_core got 2, allowed 0..1"):
        t.add(0, 0, 2, 0)
    with pytest.raises(ValueError, match=r"dst_axon got 16, allowed 0..15"):
        t.add(0, 0, 1, 16)
    with pytest.raises(ConfigError, match="rows: got 0, allowed: an integer from 1 to 16"):
        F.FabricConfig(rows=0)
    with pytest.raises(ValueError, match=r"weights: got 1 matrices, allowed: one per core \(2\)"):
        F.run_fabric(cfg, [np.zeros((16, 16), dtype=int)], t, [], 1)
    with pytest.raises(ValueError, match=r"event 0 has core 5, allowed 0..1"):
        F.run_fabric(cfg, [np.zeros((16, 16), dtype=int)] * 2, t, [(5, 0, 0)], 1)
