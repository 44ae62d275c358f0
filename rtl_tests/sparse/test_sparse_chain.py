"""Sparse DSP chain on RTL: bit-exact against sw_model.sparse.golden.chain_model in every mode at several chain lengths
(smallest legal 1, odd 3 and 5, 4, 8), INT4 weights, the packed 2-lane mode at its overflow edges, mode switching
between and within vectors, invalid indices and mode codes, accumulator wrap-around, all under random gaps and
backpressure; plus the cycle model (II = 1, latency = stages + 3)."""
import numpy as np
import pytest

from hwgen.sim.harness import design, run_vectors
from sw_model.sparse import golden as sp
from sw_model.sparse.config import SparseChainConfig
from sw_model.sparse.workload import expected, workload

pytestmark = pytest.mark.rtl


def run_and_check(cfg, beats, want, sim_opts, **kw):
    res = run_vectors(cfg, beats, want, **{"gap": 0.3, "backpressure": 0.3, "seed": cfg.stages, **kw}, **sim_opts)
    assert res["n_out"] == len(want["y"]) and not res["mismatches"] and not res["extra_output"]
    # cycle model under stalls: no output before `stages + 3` cycles after its vector's last beat
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert (np.array(res["out_cycles"]) - last_in >= cfg.stages + 3).all()
    return res


@pytest.mark.parametrize("cfg", [
    SparseChainConfig(stages=1),
    pytest.param(SparseChainConfig(stages=4), marks=pytest.mark.slow),
    SparseChainConfig(stages=5),
    SparseChainConfig(stages=8),
], ids=lambda c: f"s{c.stages}")
def test_every_mode_random(cfg, sim_opts):
    """Random pruned rows (10 % extreme values, 20 % all-zero groups), a random mode per vector."""
    rng = np.random.default_rng(cfg.stages)
    beats, want, info = workload(cfg, rng, 160, ks=(4, 8, 24, 40))
    assert set(info["modes"]) == {int(md) for md in cfg.modes}
    run_and_check(cfg, beats, want, sim_opts)


def test_modes_switch_within_a_vector(sim_opts):
    """The mode is a per-beat field: one vector may mix beats of different modes."""
    cfg = SparseChainConfig(stages=5)
    rng = np.random.default_rng(11)
    beats, _, _ = workload(cfg, rng, 120)
    beats["last"] = (rng.random(len(beats["last"])) < 0.3).astype(np.int64)
    beats["last"][-1] = 1
    run_and_check(cfg, beats, expected(cfg, beats), sim_opts)


def test_max_magnitude_and_zero_groups(sim_opts):
    """Every weight and activation at -128/127, and rows whose groups are all zero."""
    cfg = SparseChainConfig(stages=4)
    rng = np.random.default_rng(5)
    hot, _, _ = workload(cfg, rng, 60, extreme=1.0, zero_groups=0.0)
    cold, _, _ = workload(cfg, rng, 30, zero_groups=1.0)
    beats = sp.concat_beats([hot, cold])
    want = expected(cfg, beats)
    assert (want["y"][60:] == 0).all()
    run_and_check(cfg, beats, want, sim_opts)


@pytest.mark.slow
def test_int4_weights(sim_opts):
    cfg = SparseChainConfig(stages=3, weight_bits=4)
    beats, want, _ = workload(cfg, np.random.default_rng(4), 150, extreme=0.3)
    assert beats["w"].min() == -8 and beats["w"].max() == 7
    run_and_check(cfg, beats, want, sim_opts)


@pytest.mark.parametrize("cfg", [SparseChainConfig(stages=8, packed=True),
                                 SparseChainConfig(stages=3, packed=True, lane_bits=16)],
                         ids=lambda c: f"s{c.stages}-lane{c.lane_bits}")
def test_packed_lanes(cfg, sim_opts):
    """Two activations per weight at the lanes' edges: all (-128) x (-128) in the low lane. S = 8 in 18-bit
    lanes is exactly at the limit (the overflow adjust keeps it exact); S = 3 in 16-bit lanes is past it
    (wrap + carry, modelled bit for bit)."""
    rng = np.random.default_rng(cfg.lane_bits)
    beats, _, _ = workload(cfg, rng, 120, extreme=0.5)
    edge = {"w": np.full((2, cfg.stages), -128), "idx": np.zeros((2, cfg.stages), np.int64),
            "x": np.full((2, cfg.x_width), -128), "x2": np.full((2, cfg.x_width), 127),
            "mode": np.zeros(2, np.int64), "last": np.ones(2, np.int64)}
    beats = sp.concat_beats([beats, edge])
    assert sp.lane_overflows(beats, cfg.stages, cfg.lane_bits).any() == (not cfg.lane_exact)
    run_and_check(cfg, beats, expected(cfg, beats), sim_opts)


def test_invalid_indices_and_modes(sim_opts):
    """Documented gateware behaviour on bad input: N:M stages use idx % M (duplicates simply repeat an
    activation), unknown mode codes (5..7) add 0 -- the golden model states the same rule."""
    cfg = SparseChainConfig(stages=5)
    rng = np.random.default_rng(2)
    n = 300
    beats = {"w": rng.integers(-128, 128, (n, 5)), "idx": rng.integers(0, 8, (n, 5)),
             "x": rng.integers(-128, 128, (n, cfg.x_width)), "mode": rng.integers(0, 8, n),
             "last": (rng.random(n) < 0.4).astype(np.int64)}
    beats["last"][-1] = 1
    assert (beats["mode"] >= 5).any() and (beats["idx"] >= 4).any()
    run_and_check(cfg, beats, expected(cfg, beats), sim_opts)


def test_accumulator_wraps(sim_opts):
    cfg = SparseChainConfig(stages=3, acc_bits=18)
    beats, _, _ = workload(cfg, np.random.default_rng(9), 40, modes=["dense", "1:4"], ks=(96,), extreme=1.0)
    want = expected(cfg, beats)
    exact = sp.chain_model(beats, 3, 64)["y"]
    assert (exact % (1 << 18) == want["y"]).all() and (np.abs(exact) >= 1 << 17).any()
    run_and_check(cfg, beats, want, sim_opts)


@pytest.mark.parametrize("stages", [1, 8])
def test_cycle_model(stages, sim_opts):
    """No gaps, no backpressure: one beat per cycle, and each output `stages + 3` cycles after the
    handshake of its vector's last beat; the whole run takes beats + latency cycles."""
    cfg = SparseChainConfig(stages=stages)
    beats, want, info = workload(cfg, np.random.default_rng(1), 60)
    res = run_and_check(cfg, beats, want, sim_opts, gap=0.0, backpressure=0.0)
    _, manifest = design(cfg)
    assert manifest["latency"] == stages + 3
    ins, outs = np.array(res["in_cycles"]), np.array(res["out_cycles"])
    assert (np.diff(ins) == 1).all(), "II must be 1"
    last_in = ins[np.nonzero(beats["last"])[0]]
    assert (outs - last_in == manifest["latency"]).all(), f"latencies: {sorted(set((outs - last_in).tolist()))}"
    assert outs[-1] - ins[0] + 1 == sum(info["beats"]) + manifest["latency"]


@pytest.mark.parametrize("cfg,mode", [(SparseChainConfig(stages=5), "2:4"),
                                      (SparseChainConfig(stages=8, packed=True), "2:8")],
                         ids=["s5-2:4", "s8-packed-2:8"])
def test_gemm_through_the_driver(cfg, mode, sim_opts):
    """Y = W X (7 rows, 3 columns) packed by the driver, computed on RTL, equals float64 math."""
    rng = np.random.default_rng(8)
    n, m = sp.MODE_NM[sp.mode_of(mode)]
    w = sp.prune_nm(rng.integers(-128, 128, (7, 12 * m)), n, m)
    x = rng.integers(-60, 60, (12 * m, 3))               # moderate: the packed lanes do not overflow
    values, indices = sp.compress(w, n, m)
    beats = sp.pack_gemm(values, x, mode, cfg.stages, cfg.x_width, indices=indices, packed=cfg.packed)
    want = expected(cfg, beats)
    res = run_and_check(cfg, beats, want, sim_opts)
    got = {k: v.astype(np.int64) for k, v in want.items()}   # bench compared RTL == want bit for bit
    got = {k: np.where(v >= 1 << (cfg.acc_bits - 1), v - (1 << cfg.acc_bits), v) for k, v in got.items()}
    assert res["n_out"] == 7 * (2 if cfg.packed else 3)
    assert (sp.unpack_gemm(got, 7, 3, packed=cfg.packed) == w.astype(np.float64) @ x.astype(np.float64)).all()
