"""Spiking core on RTL: bit-exact against sw_model.snn.golden over many timesteps (weight loading, silent steps, bursts,
every neuron firing, saturation both ways, refractory edges, CLEAR, out-of-range addresses, random activity) under
random gaps and backpressure, and the event-driven cycle model (cycles per input beat) without stalls."""
import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig

pytestmark = pytest.mark.rtl

CONFIGS = [
    # the smallest legal core: one neuron, one axon, 2-bit weights, 4-bit state
    SNNCoreConfig(neurons=1, lanes=1, axons=1, weight_bits=2, state_bits=4, threshold=1, addr_bits=1, time_bits=4),
    # odd sizes: 10 neurons in 4 lanes (3 groups, last one half full), 5 axons, wrap-around state, '>' compare;
    # pipeline 1 (read register only), a negative bias and a non-zero initial v
    SNNCoreConfig(neurons=10, lanes=4, axons=5, weight_bits=6, state_bits=10, threshold=40, compare="gt",
                  reset="soft", leak="shift", leak_shift=2, refractory=2, saturate=False, addr_bits=3, time_bits=5,
                  pipeline=1, bias_mant=-3, bias_exp=1, init_v=-17),
    # hard reset, shift leak, refractory 2 (the snn-core-lif-16x4 preset)
    SNNCoreConfig(neurons=16, lanes=4, axons=16, weight_bits=6, state_bits=12, threshold=100, leak="shift",
                  leak_shift=3, reset="hard", refractory=2, addr_bits=6),
    # Loihi-style multiplicative decay, 12 neurons in 3 lanes, refractory 1, saturating, pipeline 0 (no registers)
    SNNCoreConfig(neurons=12, lanes=3, axons=7, weight_bits=5, state_bits=9, threshold=60, leak="mult", decay=700,
                  reset="hard", refractory=1, addr_bits=4, pipeline=0, bias_mant=5),
    # Loihi/Lava CUBA: current and voltage decay, input << 2, 12-bit state (u wraps, a and v saturate), '>'
    SNNCoreConfig(neurons=6, lanes=2, axons=3, weight_bits=6, state_bits=12, threshold=300, compare="gt",
                  reset="hard", model="cuba", leak="mult", decay=600, du=1500, input_shift=2, addr_bits=2),
    # CUBA with Loihi's bias (-37 * 4), refractory 2, initial u = +2^11 (the top of Lava's u range) and v,
    # threshold 0, soft reset, '>=', 5 neurons in 2 lanes (3 groups), pipeline 3
    SNNCoreConfig(neurons=5, lanes=2, axons=3, weight_bits=6, state_bits=12, threshold=0, compare="ge",
                  reset="soft", model="cuba", leak="mult", decay=100, du=300, input_shift=3, bias_mant=-37,
                  bias_exp=2, refractory=2, init_u=2048, init_v=-200, addr_bits=2, pipeline=3),
]


def ids(cfg):
    return (f"{cfg.model}-n{cfg.neurons}x{cfg.lanes}-a{cfg.axons}-{cfg.leak}-{cfg.reset}-{cfg.compare}"
            f"-r{cfg.refractory}-{'sat' if cfg.saturate else 'wrap'}-p{cfg.pipeline}")


def scenario(cfg: SNNCoreConfig, seed: int, burst: int | None = None, rates=(0.05, 0.3, 1.0), tail: int = 3) -> dict:
    """Input beats: load weights (axon 0 all +max, axon 1 all -max), then segments of timesteps: silent, a
    positive burst (every neuron fires, the state saturates/wraps, refractory edges), a negative burst, random
    activity at several rates, out-of-range SPIKE/WRITE beats, a CLEAR, and more random activity. `burst` caps the
    events per burst timestep (default: enough to saturate), `tail` scales the last random segment."""
    rng = np.random.default_rng(seed)
    lo, hi = cfg.weight_range
    w = rng.integers(lo, hi + 1, size=(cfg.axons, cfg.neurons))
    w[0] = hi
    if cfg.axons > 1:
        w[1] = lo
    sat_events = burst or (1 << (cfg.state_bits - 1)) // max(1, hi) + 3     # enough to reach the rails
    parts = [snn.weight_beats(cfg, w)]

    def steps(per_step):
        ev = [(a, t) for t, axons in enumerate(per_step) for a in axons]
        parts.append(snn.event_beats(cfg, np.array(ev, dtype=np.int64).reshape(-1, 2), len(per_step)))

    steps([[]] * 3)                                                   # silent
    steps([[0] * sat_events] * 4 + [[0]] * 4 + [[]] * 3)              # burst: all fire, saturate, refractory
    steps([[min(1, cfg.axons - 1)] * sat_events] * 2 + [[]] * 2)      # negative burst
    for rate in rates:
        steps([rng.permutation(cfg.axons)[:rng.binomial(cfg.axons, rate)].tolist() for _ in range(6)])
    bad = 1 << cfg.addr_bits
    if bad > cfg.axons:                                               # out-of-range addresses, if representable
        parts.append(snn.beats(cfg, [snn.Op.SPIKE, snn.Op.WRITE], [bad - 1, rng.integers(cfg.axons, bad)]))
    if (1 << max(1, (cfg.groups - 1).bit_length())) > cfg.groups:     # a group past the last one
        parts.append(snn.beats(cfg, [snn.Op.WRITE], [0], [cfg.groups]))
    parts.append(snn.beats(cfg, [snn.Op.CLEAR]))
    steps([rng.integers(0, cfg.axons, rng.integers(0, tail * cfg.axons)).tolist() for _ in range(8)])
    return snn.concat(*parts)


@pytest.mark.parametrize("cfg", CONFIGS, ids=ids)
def test_snn_core_bit_exact(cfg, sim_opts):
    inp = scenario(cfg, seed=cfg.neurons)
    out, _, _ = snn.stream_model(cfg, inp)
    assert (out["kind"] == snn.Out.SPIKE).sum() > 20 and (out["kind"] == snn.Out.TICK).sum() > 40
    res = run_vectors(cfg, inp, out, gap=0.3, backpressure=0.3, seed=11, **sim_opts)
    assert res["n_out"] == len(out["kind"]) and not res["mismatches"] and not res["extra_output"]


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[1], CONFIGS[3], CONFIGS[5]], ids=ids)
def test_snn_core_cycle_model(cfg, sim_opts):
    """Without gaps or backpressure, input beat k is accepted exactly cost[k] cycles after beat k-1; pipeline 0, 1,
    2 (one group: 2-cycle events) and 3."""
    inp = scenario(cfg, seed=5)
    out, cost, _ = snn.stream_model(cfg, inp)
    res = run_vectors(cfg, inp, out, gap=0.0, backpressure=0.0, **sim_opts)
    assert not res["mismatches"]
    gaps = np.diff(res["in_cycles"])
    bad = np.nonzero(gaps != cost[1:])[0]
    assert not len(bad), f"beats {bad[:5] + 1}: cycles {gaps[bad[:5]]}, model {cost[1:][bad[:5]]}"


def test_snn_core_out_of_range_is_reported_and_ignored(sim_opts):
    """Out-of-range SPIKE and WRITE beats each produce one ERROR beat with the address and change nothing."""
    cfg = CONFIGS[1]
    w = np.full((cfg.axons, cfg.neurons), 20)
    good = snn.concat(snn.weight_beats(cfg, w), snn.event_beats(cfg, [[2, 0], [2, 0], [2, 1]], 2))
    bad = snn.beats(cfg, [snn.Op.SPIKE, snn.Op.WRITE, snn.Op.WRITE], [5, 7, 0], [0, 0, 3],
                    np.full((3, cfg.lanes), 31))
    inp = snn.concat(good, bad, snn.event_beats(cfg, [[2, 0]], 1))
    out, _, _ = snn.stream_model(cfg, inp)
    errors = out["kind"] == snn.Out.ERROR
    assert out["addr"][errors].tolist() == [5, 7, 0]
    ref, _, _ = snn.stream_model(cfg, snn.concat(good, snn.event_beats(cfg, [[2, 0]], 1)))
    assert np.array_equal(ref["addr"], out["addr"][~errors])           # the bad beats changed nothing
    res = run_vectors(cfg, inp, out, gap=0.3, backpressure=0.3, seed=2, **sim_opts)
    assert not res["mismatches"] and res["n_out"] == len(out["kind"])


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["snn-core-64x8", "snn-core-256", "snn-core-cuba-32x4"])
def test_snn_core_presets(preset, sim_opts):
    """The named presets (bigger builds: slow), a lighter scenario (bursts of 24 events: a 24-bit state would need
    66 k events to saturate); the timeout follows the cycle model (gaps and backpressure at 0.3 roughly double it)."""
    from sw_model.registry import PRESETS
    cfg = PRESETS[preset]
    inp = scenario(cfg, seed=1, burst=24, rates=(0.05, 0.3), tail=1)
    out, cost, _ = snn.stream_model(cfg, inp)
    res = run_vectors(cfg, inp, out, gap=0.3, backpressure=0.3, seed=3, timeout_cycles=4 * int(cost.sum()) + 1000,
                      **sim_opts)
    assert res["n_out"] == len(out["kind"]) and not res["mismatches"]


# Spike-visible Loihi corners, worked by hand (the u/v values behind them: tests/snn/test_snn_loihi.py): Lava-like
# CUBA cores (24-bit state, 16-bit weights, input << 6, '>'), two neurons so that both lanes/rails run at once.
LAVA = dict(neurons=2, lanes=2, axons=2, weight_bits=16, state_bits=24, compare="gt", reset="hard", model="cuba",
            leak="mult", input_shift=6, addr_bits=1)
HAND = [
    # bias only (4095, no input, dv = 0): v = 4095 t -> crosses vth 20000 (> 20000) at t = 4 (v = 20475), reset,
    # then again 4 steps later; neuron 1 has the same bias and weight -1 on axon 1 (a = -1, u = -64 per step,
    # v += 4031): crosses at t = 4 (20155) too
    ("bias-only", dict(threshold=20000, bias_mant=4095, du=4095, decay=0), [[0, 0], [0, -1]], [[1]] * 10,
     [(0, 4), (1, 4), (0, 9), (1, 9)]),
    # v exactly at threshold: 100 << 6 = 6400 with u = a << 6 = 6400 (du = 4095) does not fire on t0 ('>'); v keeps
    # 6400 (dv = 0) and adds 6400 at t1 -> fires; neuron 1 gets 101 -> 6464 > 6400 fires at t0 and t1
    ("at-threshold", dict(threshold=6400, du=4095, decay=0), [[100, 101], [0, 0]], [[0], [0]], [(1, 0), (0, 1), (1, 1)]),
    # vth = 0 and v = 0 never fires; bias 1 fires every step (neuron 0 only: neuron 1 has an input of -1 ->
    # v = 1 - 64 < 0)
    ("vth-0", dict(threshold=0, bias_mant=1, du=4095, decay=4095), [[0, -1], [0, 0]], [[0]] * 3,
     [(0, 0), (0, 1), (0, 2)]),
    # both rails: a = +-131068 per step (4 x +-32767), u = a << 6 = +-8388352 (du = 4095), dv = 0: v clips at
    # +-(2^23 - 1) at t1; vth = 2^23 - 2: neuron 0 fires only at the clipped value (t1), then 8388352 at t2 is below
    ("rails", dict(threshold=(1 << 23) - 2, du=4095, decay=0), [[32767, -32767], [0, 0]], [[0] * 4] * 3, [(0, 1)]),
    # u at +2^23 (a = 131072, Lava keeps +2^23; v clips to 2^23 - 1 = vth: no spike) vs 131073 (u wraps to
    # -8388544): both observed through a later step with vth 2^23 - 2: neuron 0 fires at t0, neuron 1 never
    ("u-edge", dict(threshold=(1 << 23) - 2, du=4095, decay=4095), [[32767, 32767], [4, 5]], [[0, 0, 0, 0, 1]],
     [(0, 0)]),
    # refractory 2: u = 256 per step (a = 4), vth 640: v 256, 512, 768 fires at t2, held at t3, t4, fires at t7
    ("refractory", dict(threshold=640, du=4095, decay=0, refractory=2), [[4, 4], [0, 0]], [[0]] * 8,
     [(0, 2), (1, 2), (0, 7), (1, 7)]),
]


@pytest.mark.parametrize("case", HAND, ids=[c[0] for c in HAND])
def test_snn_core_loihi_hand_worked(case, sim_opts):
    """Golden spikes equal the hand-worked ones; the RTL (default pipeline 6, gaps and backpressure) equals the
    golden stream beat for beat."""
    _, kw, w, per_step, want = case
    cfg = SNNCoreConfig(**{**LAVA, **kw})
    ev = np.array([(a, t) for t, axons in enumerate(per_step) for a in axons], dtype=np.int64).reshape(-1, 2)
    inp = snn.concat(snn.weight_beats(cfg, np.array(w)), snn.event_beats(cfg, ev, len(per_step)))
    out, _, _ = snn.stream_model(cfg, inp)
    assert [tuple(x) for x in snn.decode_spikes(out).tolist()] == want
    res = run_vectors(cfg, inp, out, gap=0.3, backpressure=0.3, seed=5, **sim_opts)
    assert res["n_out"] == len(out["kind"]) and not res["mismatches"] and not res["extra_output"]
