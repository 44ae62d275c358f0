"""Golden model of the spiking core: hand-worked examples, a naive per-neuron reference (Python ints and exact
fractions, written independently of the numpy model), the stream-level model against the driver level, and the
errors for bad configs, weights and events."""
from fractions import Fraction

import numpy as np
import pytest

from sw_model.config import ConfigError
from sw_model.registry import load_config
from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig


def naive_run(cfg, w, per_step):
    """Reference: one neuron at a time, plain Python integers, exact fractions for the leaks."""
    lo, hi = -(2 ** (cfg.state_bits - 1)), 2 ** (cfg.state_bits - 1) - 1

    def fix(x):
        if cfg.saturate:
            return min(max(x, lo), hi)
        return (x - lo) % 2 ** cfg.state_bits + lo

    def leak(x):
        if cfg.leak == "shift":
            return x - int(np.floor(Fraction(x, 2 ** cfg.leak_shift)))
        if cfg.leak == "mult":
            return int(Fraction(x * (4096 - cfg.decay), 4096))         # int() truncates toward zero
        return x

    v, ref, out = [0] * cfg.neurons, [0] * cfg.neurons, []
    for t, axons in enumerate(per_step):
        for a in axons:
            for n in range(cfg.neurons):
                if ref[n] == 0:
                    v[n] = fix(v[n] + int(w[a][n]))
        for n in range(cfg.neurons):
            if ref[n] > 0:
                ref[n] -= 1
                continue
            fire = v[n] >= cfg.threshold if cfg.compare == "ge" else v[n] > cfg.threshold
            if fire:
                out.append((n, t))
                v[n] = 0 if cfg.reset == "hard" else v[n] - cfg.threshold
                ref[n] = cfg.refractory
            v[n] = leak(v[n])
    return out, v


def naive_cuba(cfg, w, per_step):
    """Reference for model='cuba', restating the Lava bit-accurate LIF (lava-nc/lava PyLifModelBitAcc) per neuron."""
    half = 2 ** (cfg.state_bits - 1)

    def trunc0(x, factor):
        return int(Fraction(x * factor, 4096))

    a, u, v, out = [0] * cfg.neurons, [0] * cfg.neurons, [0] * cfg.neurons, []
    for t, axons in enumerate(per_step):
        for ax in axons:
            for n in range(cfg.neurons):
                s = a[n] + int(w[ax][n])
                a[n] = min(max(s, -half), half - 1) if cfg.saturate else (s + half) % (2 * half) - half
        for n in range(cfg.neurons):
            u[n] = (trunc0(u[n], 4096 - (cfg.du + 1)) + a[n] * 2 ** cfg.input_shift + half) % (2 * half) - half
            x = trunc0(v[n], 4096 - cfg.decay) + u[n]
            v[n] = min(max(x, -half + 1), half - 1) if cfg.saturate else (x + half) % (2 * half) - half
            a[n] = 0
            if v[n] >= cfg.threshold if cfg.compare == "ge" else v[n] > cfg.threshold:
                out.append((n, t))
                v[n] = 0 if cfg.reset == "hard" else v[n] - cfg.threshold
    return out, v


@pytest.mark.parametrize("seed", range(8))
def test_cuba_matches_lava_restatement(seed):
    rng = np.random.default_rng(100 + seed)
    sb = int(rng.integers(10, 25))
    cfg = SNNCoreConfig(neurons=int(rng.integers(1, 9)), lanes=1, axons=int(rng.integers(1, 5)), weight_bits=8,
                        state_bits=sb, threshold=int(rng.integers(1, 2 ** (sb - 3))), model="cuba", leak="mult",
                        decay=int(rng.integers(0, 4097)), du=int(rng.integers(0, 4096)),
                        input_shift=int(rng.integers(0, 7)), compare=str(rng.choice(["ge", "gt"])),
                        reset=str(rng.choice(["hard", "soft"])), saturate=bool(rng.integers(0, 2)), addr_bits=2)
    w = rng.integers(-128, 128, size=(cfg.axons, cfg.neurons))
    per_step = [rng.integers(0, cfg.axons, rng.integers(0, 6)).tolist() for _ in range(40)]
    want_out, want_v = naive_cuba(cfg, w, per_step)
    out, v = snn.run_events(cfg, w, events_of(per_step), len(per_step))
    assert [tuple(x) for x in out.tolist()] == want_out and v.tolist() == want_v


def test_cuba_hand_worked():
    # Lava defaults-like: du = 4095 (u keeps nothing) -> u = a << 6; dv = 0 (v integrates); vth = 10 << 6, '>'
    cfg = SNNCoreConfig(neurons=1, lanes=1, axons=1, state_bits=24, threshold=10 << 6, compare="gt", reset="hard",
                        model="cuba", leak="mult", decay=0, du=4095, input_shift=6, addr_bits=1)
    # a = 4 per step -> v = 256, 512, 768 > 640 fires at t2, then 256 again
    out, v = snn.run_events(cfg, [[4]], events_of([[0]] * 4), 4)
    assert out.tolist() == [[0, 2]] and v.tolist() == [256]
    # du = 2047 -> u decays by (4096 - 2048) / 4096 = 1/2 each step: u = 256, 128 + 0 ... ; v sums u
    half = SNNCoreConfig(**{**cfg.__dict__, "du": 2047, "threshold": 10 ** 6})
    assert snn.run_events(half, [[4]], events_of([[0], [], []]), 3)[1].tolist() == [256 + 128 + 64]


def events_of(per_step):
    return np.array([(a, t) for t, axons in enumerate(per_step) for a in axons], dtype=np.int64).reshape(-1, 2)


def cfg_small(**kw):
    base = dict(neurons=1, lanes=1, axons=1, weight_bits=4, state_bits=8, threshold=10, addr_bits=1)
    return SNNCoreConfig(**{**base, **kw})


@pytest.mark.parametrize("compare,fires", [("ge", [(0, 0), (0, 2)]), ("gt", [(0, 0)])])
def test_hand_worked_if_soft_reset(compare, fires):
    # w = 4: t0 three spikes -> 12 >= 10 fires, soft reset -> 2; t1 nothing -> 2; t2 two spikes -> 10 (fires iff >=)
    cfg = cfg_small(compare=compare, reset="soft")
    out, v = snn.run_events(cfg, [[4]], events_of([[0, 0, 0], [], [0, 0]]), 3)
    assert out.tolist() == [list(f) for f in fires]
    assert v.tolist() == [0 if compare == "ge" else 10]


def test_hand_worked_leaks():
    # shift k=1: 7 -> 7 - 3 = 4 and -7 -> -7 - (-4) = -3 (floor); mult decay 2048: 7 -> trunc(3.5) = 3, -7 -> -3
    assert snn.leak(cfg_small(leak="shift", leak_shift=1), [7, -7]).tolist() == [4, -3]
    assert snn.leak(cfg_small(leak="mult", decay=2048), [7, -7]).tolist() == [3, -3]
    # the Lava CUBA voltage decay with dv = 256: 1000 * 3840 / 4096 = 937.5 -> 937, toward zero for negatives
    big = SNNCoreConfig(neurons=1, lanes=1, axons=1, state_bits=24, threshold=100, leak="mult", decay=256)
    assert snn.leak(big, [1000, -1000, 1, -1]).tolist() == [937, -937, 0, 0]


def test_hand_worked_refractory_and_saturation():
    # hard reset, refractory 2: fires at t0; the inputs of t1 and t2 are discarded; t3 integrates 4 again
    cfg = cfg_small(reset="hard", refractory=2, threshold=4)
    out, v = snn.run_events(cfg, [[4]], events_of([[0], [0, 0], [0], [0]]), 4)
    assert out.tolist() == [[0, 0], [0, 3]]
    # 4-bit state saturates at 7 (weights 7, threshold 7 never exceeded with '>'); wrapping goes 7 + 7 -> -2
    sat = cfg_small(state_bits=4, threshold=7, compare="gt", weight_bits=4)
    assert snn.run_events(sat, [[7]], events_of([[0, 0, 0]]), 1)[1].tolist() == [7]
    wrap = cfg_small(state_bits=4, threshold=7, compare="gt", weight_bits=4, saturate=False)
    assert snn.run_events(wrap, [[7]], events_of([[0, 0]]), 1)[1].tolist() == [-2]


@pytest.mark.parametrize("seed", range(12))
def test_golden_matches_naive_reference(seed):
    rng = np.random.default_rng(seed)
    sb = int(rng.integers(6, 14))
    cfg = SNNCoreConfig(neurons=int(rng.integers(1, 12)), lanes=1, axons=int(rng.integers(1, 6)),
                        weight_bits=int(rng.integers(2, sb)), state_bits=sb,
                        threshold=int(rng.integers(1, 2 ** (sb - 2))), compare=str(rng.choice(["ge", "gt"])),
                        reset=str(rng.choice(["hard", "soft"])), leak=str(rng.choice(["none", "shift", "mult"])),
                        leak_shift=int(rng.integers(1, 5)), decay=int(rng.integers(0, 4097)),
                        refractory=int(rng.integers(0, 4)), saturate=bool(rng.integers(0, 2)), addr_bits=3)
    lo, hi = cfg.weight_range
    w = rng.integers(lo, hi + 1, size=(cfg.axons, cfg.neurons))
    per_step = [rng.integers(0, cfg.axons, rng.integers(0, 4 * cfg.axons)).tolist() for _ in range(30)]
    want_out, want_v = naive_run(cfg, w, per_step)
    out, v = snn.run_events(cfg, w, events_of(per_step), len(per_step))
    assert [tuple(x) for x in out.tolist()] == want_out
    assert v.tolist() == want_v


def test_stream_model_matches_driver_level_and_counts_cycles():
    cfg = SNNCoreConfig(neurons=10, lanes=4, axons=5, weight_bits=6, state_bits=10, threshold=40, leak="shift",
                        leak_shift=2, refractory=1, addr_bits=3)
    rng = np.random.default_rng(1)
    w = rng.integers(-32, 32, size=(5, 10))
    ev = events_of([rng.integers(0, 5, 6).tolist() for _ in range(20)])
    inp = snn.concat(snn.weight_beats(cfg, w), snn.event_beats(cfg, ev, 20))
    out, cost, core = snn.stream_model(cfg, inp)
    want, v = snn.run_events(cfg, w, ev, 20)
    assert np.array_equal(snn.decode_spikes(out), want) and np.array_equal(core.v, v)
    n_spk = (out["kind"] == snn.Out.SPIKE).sum()
    # G = 3 groups, pipeline 2 (the LIF default): WRITE 1, SPIKE 3, TICK (2 + 2) * 3 + spikes + 1
    assert cfg.pipeline == 2
    assert cost.sum() == 5 * 3 * 1 + len(ev) * 3 + 20 * 13 + n_spk
    assert ((out["kind"] == snn.Out.TICK).sum(), out["t"][-1]) == (20, 19)


def test_stream_model_reports_out_of_range_beats():
    cfg = SNNCoreConfig(neurons=10, lanes=4, axons=5, addr_bits=3)
    out, cost, _ = snn.stream_model(cfg, snn.beats(cfg, [0, 2, 2, 0], [6, 5, 1, 4], [0, 0, 3, 0]))
    assert out["kind"].tolist() == [snn.Out.ERROR] * 3 and out["addr"].tolist() == [6, 5, 1]
    assert cost.tolist() == [1, 1, 1, 3]
    with pytest.raises(ValueError, match=r"op: got 7, allowed: 0 \(SPIKE\)"):
        snn.stream_model(cfg, snn.beats(cfg, [7]))


def test_bad_events_and_weights():
    cfg = SNNCoreConfig(neurons=4, lanes=2, axons=3, weight_bits=4, state_bits=8, threshold=5, addr_bits=2)
    w = np.zeros((3, 4), dtype=int)
    with pytest.raises(ValueError, match=r"event 1 has axon address 3, outside the core \(allowed 0..2\)"):
        snn.run_events(cfg, w, [[0, 0], [3, 0]], 2)
    with pytest.raises(ValueError, match=r"event 2 has timestep 0 after timestep 1; timesteps must be non-decreasing"):
        snn.run_events(cfg, w, [[0, 0], [1, 1], [1, 0]], 2)
    with pytest.raises(ValueError, match=r"event 0 has timestep 2, allowed 0..1"):
        snn.event_beats(cfg, [[0, 2]], 2)
    w[2, 1] = 8
    with pytest.raises(ValueError, match=r"value 8 at \(axon 2, neuron 1\) does not fit weight_bits=4 \(allowed -8..7\)"):
        snn.weight_beats(cfg, w)
    with pytest.raises(ValueError, match=r"weights: got shape \(4, 3\), allowed: \(axons, neurons\) = \(3, 4\)"):
        snn.LIFCore(cfg, np.zeros((4, 3), dtype=int))
    with pytest.raises(ValueError, match="spike: axon address 5 is outside the core"):
        snn.LIFCore(cfg).spike(5)


@pytest.mark.parametrize("kw,msg", [
    (dict(lanes=9, neurons=8), "lanes: got 9, allowed: at most neurons (8)"),
    (dict(weight_bits=17), "weight_bits: got 17, allowed: an integer from 2 to 16"),
    (dict(weight_bits=12, state_bits=10), "weight_bits: got 12, allowed: at most state_bits (10)"),
    (dict(threshold=32768), "threshold: got 32768, allowed: an integer from 0 to 32767"),
    (dict(threshold=-1), "threshold: got -1, allowed: an integer from 0 to 32767"),
    (dict(bias_mant=4096), "bias_mant: got 4096, allowed: an integer from -4096 to 4095"),
    (dict(bias_exp=8), "bias_exp: got 8, allowed: an integer from 0 to 7"),
    (dict(bias_mant=-4096, bias_exp=4), "bias_mant: got -4096 (bias_mant << bias_exp = -65536), allowed: a bias "
                                        "within the state range -32768..32767"),
    (dict(bias_mant=4095, bias_exp=4), "bias_mant: got 4095 (bias_mant << bias_exp = 65520), allowed: a bias "
                                       "within the state range -32768..32767"),
    (dict(init_v=32768), "init_v: got 32768, allowed: an integer from -32768 to 32767"),
    (dict(init_u=5), "init_u: got 5, allowed with model 'lif': 0"),
    (dict(model="cuba", leak="mult", init_u=-32768), "init_u: got -32768, allowed: an integer from -32767 to 32768"),
    (dict(pipeline=8), "pipeline: got 8, allowed: an integer from -1 to 7"),
    (dict(reset="zero"), "reset: got 'zero', allowed: hard, soft"),
    (dict(leak="exp"), "leak: got 'exp', allowed: none, shift, mult"),
    (dict(leak="shift", leak_shift=16), "leak_shift: got 16, allowed: below state_bits (16)"),
    (dict(axons=100, addr_bits=6), "addr_bits: got 6, allowed: enough bits for axons (100)"),
    (dict(saturate=1), "saturate: got 1, allowed: true, false"),
    (dict(decay=4097), "decay: got 4097, allowed: an integer from 0 to 4096"),
    (dict(model="cuba"), "leak: got 'none', allowed with model 'cuba': mult"),
    (dict(model="izh"), "model: got 'izh', allowed: lif, cuba"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        SNNCoreConfig(**kw)
    assert msg in str(e.value)


def test_presets_load():
    for name in ("snn-core-256", "snn-core-64x8", "snn-core-lif-16x4", "snn-core-cuba-32x4"):
        _, cfg = load_config(name)
        assert cfg.unit == "snn_core" and cfg.groups * cfg.lanes >= cfg.neurons


def test_ilif_against_float_formula_and_slots():
    rng = np.random.default_rng(5)
    th, levels = 64, 4
    v = rng.integers(-300, 600, 2000)
    x = rng.integers(-200, 400, 2000)
    c, v_new = snn.ilif_step(v, x, th, levels)
    h = np.floor(v * 0.25) + x                                   # beta = 0.25, exact in float64
    want_c = np.round(np.clip(h / th, 0, levels))                # numpy rounds half to even, as torch.round
    assert np.array_equal(c, want_c) and np.array_equal(v_new, h - want_c * th)
    # hand-worked: H = 96 -> 1.5 -> 2 (tie to even); H = 160 -> 2.5 -> 2; H = 400 -> clip 4; H = -5 -> 0
    assert snn.ilif_step([0, 0, 0, 0], [96, 160, 400, -5], th, levels)[0].tolist() == [2, 2, 4, 0]
    w = rng.integers(-8, 8, (3, 5))
    slots = snn.expand_levels(c[:5], levels)
    assert np.array_equal(w @ c[:5], sum(w @ slots[d] for d in range(levels)))


def test_manifest_declares_streams_and_cycle_model():
    from hwgen.flow.generate import generate
    cfg = SNNCoreConfig(neurons=10, lanes=4, axons=5, weight_bits=6, state_bits=10, threshold=40, addr_bits=3)
    _, man = generate(cfg, "snn_small")
    fields = {s["name"]: {f["name"]: f["width"] for f in s["fields"]} for s in man["streams"]}
    assert fields == {"i": {"op": 2, "addr": 3, "group": 2, "w": 24}, "o": {"kind": 2, "addr": 4, "t": 16}}
    assert man["cycles"] == {"spike": 3, "write": 1, "clear": 3, "tick": "12 + spikes + 1", "error": 1}
    assert man["pipeline"] == 2
