"""Grouped sparse DSP chain (DSP groups + reduction nodes) on RTL: bit-exact against
sw_model.sparse.group.group_chain_model in every mode at S = 2 (smallest legal grouped chain), 6 (odd group
length 3), 8 and 16 (slow), with 1..R rows per vector, mode switching between and inside vectors, invalid
indices and mode codes, the packed lanes at their overflow edges (exact within the limit, modelled wrap past
it), all under random gaps and backpressure; the cycle model (II = 1, latency = S/G + 4); a GEMM through the
driver equal to float64 math."""
import numpy as np
import pytest

from hwgen.sim.harness import design, run_vectors
from sw_model.sparse import golden as sp
from sw_model.sparse import group as sg
from sw_model.sparse.config import SparseChainConfig as C
from sw_model.sparse.workload import expected, workload

pytestmark = pytest.mark.rtl


def latency(cfg) -> int:
    """The documented cycle model: S/G - 1 skew + A/B + M + P + reduction node + accumulator/output."""
    return cfg.stages // cfg.groups + 3 + (cfg.groups > 1)


def run_and_check(cfg, beats, want, sim_opts, **kw):
    res = run_vectors(cfg, beats, want, **{"gap": 0.3, "backpressure": 0.3, "seed": cfg.stages, **kw}, **sim_opts)
    assert res["n_out"] == len(want["y"]) and not res["mismatches"] and not res["extra_output"]
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert (np.array(res["out_cycles"]) - last_in >= latency(cfg)).all()   # never earlier than the model
    return res


@pytest.mark.parametrize("cfg", [
    pytest.param(C(stages=2, groups=2), marks=pytest.mark.slow),
    C(stages=6, groups=2),
    pytest.param(C(stages=8, groups=2), marks=pytest.mark.slow),
    pytest.param(C(stages=16, groups=4), marks=pytest.mark.slow),
    pytest.param(C(stages=8, groups=8, weight_bits=4), marks=pytest.mark.slow),
], ids=lambda c: f"s{c.stages}g{c.groups}w{c.weight_bits}")
def test_every_mode_random(cfg, sim_opts):
    """Random pruned rows (20 % extreme values, 20 % all-zero groups), a random mode and 1..R rows per vector;
    the last 30 vectors switch modes inside the vector; then invalid indices (bits above log2 M, repeats) and
    mode codes 5..7 (documented: idx % M, unknown modes add 0)."""
    rng = np.random.default_rng(cfg.stages + cfg.groups)
    beats, _, info = workload(cfg, rng, 90, ks=(4, 8, 24, 40), extreme=0.2)
    assert set(info["modes"]) == {int(md) for md in cfg.modes}
    assert max(info["rows"]) == max(cfg.rows(md) for md in cfg.modes) > 1
    mixed, _, _ = workload(cfg, rng, 40)
    mixed["last"] = (rng.random(len(mixed["last"])) < 0.3).astype(np.int64)
    n = 60
    bad = {"w": rng.integers(-(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1), (n, cfg.stages)),
           "idx": rng.integers(0, 8, (n, cfg.stages)), "x": rng.integers(-128, 128, (n, cfg.x_width)),
           "mode": rng.integers(0, 8, n), "last": (rng.random(n) < 0.4).astype(np.int64)}
    bad["last"][-1] = 1
    assert (bad["mode"] >= 5).any() and (bad["idx"] >= 4).any()
    beats = sp.concat_beats([beats, mixed, bad])
    run_and_check(cfg, beats, expected(cfg, beats), sim_opts)


@pytest.mark.parametrize("cfg", [
    C(stages=8, groups=4, packed=True, lane_bits=16),                 # 2-stage groups: at the 16-bit limit
    pytest.param(C(stages=6, groups=2, packed=True, lane_bits=16), marks=pytest.mark.slow),  # 3-stage: wraps
    pytest.param(C(stages=16, groups=2, packed=True), marks=pytest.mark.slow),   # 8-stage groups, 18 bits
], ids=lambda c: f"s{c.stages}g{c.groups}-lane{c.lane_bits}")
def test_packed_lanes_at_the_edges(cfg, sim_opts):
    """Two activation columns per weight; all-extreme beats put every group's low lane at its maximum
    (+k x 16384) and minimum (-k x 16256); exact where cfg.lane_exact, a modelled wrap + carry elsewhere."""
    rng = np.random.default_rng(cfg.lane_bits + cfg.stages)
    beats, _, _ = workload(cfg, rng, 80, extreme=0.5)
    edges = []
    for w, x, x2 in ((-128, -128, 127), (-128, 127, -128), (127, -128, -128), (-128, 0, -128)):
        for md in cfg.modes:                       # every mode: each mux path sees the extremes
            idx = np.arange(cfg.stages) % sp.MODE_NM[md][1]
            edges.append({"w": np.full((1, cfg.stages), w), "idx": idx[None, :], "x": np.full((1, cfg.x_width), x),
                          "x2": np.full((1, cfg.x_width), x2), "mode": np.array([int(md)]),
                          "last": np.ones(1, np.int64)})
    beats = sp.concat_beats([beats] + edges)
    for name in ("x", "x2"):
        sp.check_range(name, beats[name], 8)
    over = sg.group_lane_overflows(beats, cfg)
    assert over.any() == (not cfg.lane_exact)
    want = expected(cfg, beats)
    if cfg.lane_exact:    # then the lanes equal two independent unpacked chains (the exact products)
        lo = sg.group_chain_model(beats, C(stages=cfg.stages, groups=cfg.groups, weight_bits=cfg.weight_bits))
        hi = sg.group_chain_model({**beats, "x": beats["x2"]}, C(stages=cfg.stages, groups=cfg.groups,
                                                                  weight_bits=cfg.weight_bits))
        assert (want["y"] == lo["y"] % 2 ** 32).all() and (want["y2"] == hi["y"] % 2 ** 32).all()
    run_and_check(cfg, beats, want, sim_opts)


@pytest.mark.parametrize("cfg", [pytest.param(C(stages=2, groups=2), marks=pytest.mark.slow), C(stages=6, groups=2),
                                 pytest.param(C(stages=8, groups=2), marks=pytest.mark.slow)],
                         ids=["s2g2", "s6g2", "s8g2"])
def test_cycle_model(cfg, sim_opts):
    """No gaps, no backpressure: one beat per cycle, every output exactly S/G + 4 cycles after its vector's
    last beat, the run = beats + latency cycles; every mode, full rows."""
    beats, want, info = workload(cfg, np.random.default_rng(2), 50, rows="full")
    res = run_and_check(cfg, beats, want, sim_opts, gap=0.0, backpressure=0.0)
    _, manifest = design(cfg)
    assert manifest["latency"] == latency(cfg)
    ins, outs = np.array(res["in_cycles"]), np.array(res["out_cycles"])
    assert (np.diff(ins) == 1).all(), "II must be 1"
    last_in = ins[np.nonzero(beats["last"])[0]]
    assert (outs - last_in == latency(cfg)).all(), f"latencies: {sorted(set((outs - last_in).tolist()))}"
    assert outs[-1] - ins[0] + 1 == sum(info["beats"]) + latency(cfg)


@pytest.mark.parametrize("cfg,mode", [(C(stages=6, groups=2), "2:4"),
                                      (C(stages=8, groups=4, packed=True, lane_bits=16), "1:4")],
                         ids=["s6g2-2:4", "s8g4-packed-1:4"])
def test_gemm_through_the_driver(cfg, mode, sim_opts):
    """Y = W X (7 rows, 3 columns, full int8 range) packed by pack_gemm_grouped, on RTL, equals float64 math."""
    rng = np.random.default_rng(8)
    n, m = sp.MODE_NM[sp.mode_of(mode)]
    w = sp.prune_nm(rng.integers(-128, 128, (7, 6 * m)), n, m)
    x = rng.integers(-128, 128, (6 * m, 3))
    values, indices = sp.compress(w, n, m)
    beats = sg.pack_gemm_grouped(values, x, mode, cfg, indices=indices)
    want = expected(cfg, beats)
    res = run_and_check(cfg, beats, want, sim_opts)
    got = {k: np.where(v >= 1 << 31, v - (1 << 32), v) for k, v in want.items()}   # RTL == want, bit for bit
    assert res["n_out"] == -(-7 // cfg.rows(mode)) * (2 if cfg.packed else 3)
    assert (sg.unpack_gemm_grouped(got, 7, 3, mode, cfg) == w.astype(np.float64) @ x.astype(np.float64)).all()
