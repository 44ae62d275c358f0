"""Loihi semantics of the spiking core's golden model, worked by hand from the update equations of Lava 0.10's
bit-accurate LIF (`PyLifModelBitAcc`, lava-nc/lava src/lava/proc/lif/models.py; Lava does not install here):

    u = wrap(sign(u (4096 - (du + 1))) * (|u (4096 - (du + 1))| >> 12) + (a_in << 6))   wrap: > 2^23 -> - 2^24,
                                                                                          <= -2^23 -> + 2^24
    v = clip(sign(v (4096 - dv)) * (|v (4096 - dv)| >> 12) + u + (bias_mant << bias_exp), +-(2^23 - 1))
    spike iff v > vth << 6; a spiking neuron's v = 0; refractory (Lava's LIFRefractory): v held, u still updated.

Every expected value below is computed by hand in the comment next to it; a restatement of those equations in plain
Python (`lava_naive`) is checked against the golden model over random configs with bias, refractory and initial
state. The RTL runs the spike-visible corners in rtl_tests/snn/test_snn_core.py."""
import numpy as np
import pytest

from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig

H = 1 << 23


def lava(**kw):
    """A Lava-like CUBA core: one neuron, one axon, 24-bit state, 16-bit weights, input << 6, v > vth << 6, hard
    reset (Lava's defaults for the fixed-width fields)."""
    base = dict(neurons=1, lanes=1, axons=1, weight_bits=16, state_bits=24, threshold=(H - 1), compare="gt",
                reset="hard", model="cuba", leak="mult", decay=0, du=0, input_shift=6, addr_bits=1)
    return SNNCoreConfig(**{**base, **kw})


def trace(cfg, weights, per_step):
    """(u, v, spikes) after every timestep of one run through the public golden API (LIFCore spike/tick)."""
    core = snn.LIFCore(cfg, np.asarray(weights).reshape(cfg.axons, cfg.neurons))
    us, vs, fired = [], [], []
    for t, axons in enumerate(per_step):
        for a in axons:
            core.spike(a)
        if len(core.tick()):
            fired.append(t)
        us.append(int(core.s["u"][0]))
        vs.append(int(core.s["v"][0]))
    return us, vs, fired


def test_bias_only():
    # no input, bias 4095 * 2^0, dv = 0 (no decay): v = 4095, 8190, 12285 (Lava's v = 4095 at step 0; the issue's
    # reference case). u stays 0.
    assert trace(lava(bias_mant=4095), [[0]], [[]] * 3) == ([0, 0, 0], [4095, 8190, 12285], [])
    # negative mantissa, exponent 3: bias = -5 * 8 = -40 per step
    assert trace(lava(bias_mant=-5, bias_exp=3), [[0]], [[]] * 3)[1] == [-40, -80, -120]
    # dv = 4095 keeps 1/4096 of v: v1 = trunc(4095 / 4096) + 4095 = 4095; the bias does not pass through u's decay
    # (the old always-on-axon substitute would have given u-decayed values unless du = 4095)
    assert trace(lava(bias_mant=4095, decay=4095, du=100), [[0]], [[]] * 3)[1] == [4095, 4095, 4095]


def test_du_dv_4095():
    # du = dv = 4095: u keeps nothing (factor 0) -> u = a << 6 = 6400; v keeps 1/4096: v1 = trunc(6400 / 4096) +
    # 6400 = 1 + 6400 = 6401, v2 = trunc(6401 / 4096) + 6400 = 6401
    cfg = lava(du=4095, decay=4095)
    assert trace(cfg, [[100]], [[0]] * 3) == ([6400] * 3, [6400, 6401, 6401], [])
    # negative: trunc toward zero, trunc(-6400 / 4096) = trunc(-1.5625) = -1 -> -6401 (a floor would give -6402)
    assert trace(cfg, [[-100]], [[0]] * 3) == ([-6400] * 3, [-6400, -6401, -6401], [])


def test_du_dv_0():
    # du = dv = 0: u keeps 4095/4096, v keeps everything. One input of 100 at t0:
    # u0 = 6400, u1 = trunc(6400 * 4095 / 4096) = trunc(6398.4375) = 6398, u2 = trunc(6398 * 4095 / 4096) =
    # trunc(6396.438) = 6396; v = 6400, 6400 + 6398 = 12798, 12798 + 6396 = 19194
    cfg = lava(du=0, decay=0)
    assert trace(cfg, [[100]], [[0], [], []]) == ([6400, 6398, 6396], [6400, 12798, 19194], [])
    assert trace(cfg, [[-100]], [[0], [], []]) == ([-6400, -6398, -6396], [-6400, -12798, -19194], [])


def test_v_exactly_at_threshold_and_vth_0():
    # v = 6400 = 100 << 6 exactly: Lava's '>' does not fire, '>=' does; one more input (v = 12800) fires '>'
    at = lava(du=4095, decay=0, threshold=100 << 6)
    assert trace(at, [[100]], [[0], []])[1:] == ([6400, 6400], [])
    assert trace(at, [[100]], [[0], [0]])[2] == [1]
    assert trace(lava(du=4095, decay=0, threshold=100 << 6, compare="ge"), [[100]], [[0]])[2] == [0]
    # vth = 0 (Loihi allows it): v = 0 does not fire, bias 1 makes v = 1 > 0 fire every step (reset to 0)
    assert trace(lava(threshold=0), [[0]], [[]] * 3)[2] == []
    assert trace(lava(threshold=0, bias_mant=1), [[0]], [[]] * 3) == ([0] * 3, [0] * 3, [0, 1, 2])


def test_v_saturates_on_both_rails():
    # bias 4095 << 7 = 524160 per step, no decay: 16 steps = 8386560, the 17th would be 8910720 -> clip 2^23 - 1
    up = trace(lava(bias_mant=4095, bias_exp=7), [[0]], [[]] * 18)[1]
    assert up[15] == 8386560 and up[16:] == [H - 1, H - 1]
    # bias -4096 << 7 = -524288: 16 steps reach exactly -2^23, which Lava clips to -(2^23 - 1) (symmetric range)
    down = trace(lava(bias_mant=-4096, bias_exp=7), [[0]], [[]] * 17)[1]
    assert down[14] == -15 * 524288 and down[15:] == [-(H - 1), -(H - 1)]


def test_u_at_plus_minus_2_23_wraps_like_lava():
    # du = 4095: u = a << 6. a = 4 * 32767 + 4 = 131072 -> u = 2^23: Lava keeps 2^23 ('> 2^23' is false);
    # v = clip(2^23) = 2^23 - 1
    cfg = lava(du=4095, axons=2, addr_bits=1)
    us, vs, _ = trace(cfg, [[32767], [4]], [[0, 0, 0, 0, 1]])
    assert (us, vs) == ([H], [H - 1])
    # a = 131073: u = 2^23 + 64 -> wraps to 2^23 + 64 - 2^24 = -8388544
    assert trace(cfg, [[32767], [5]], [[0, 0, 0, 0, 1]])[0] == [-8388544]
    # a = 4 * -32768 = -131072: u = -2^23 -> Lava's '<= -2^23' adds 2^24: +2^23
    assert trace(lava(du=4095), [[-32768]], [[0] * 4])[0] == [H]


def test_refractory_in_cuba():
    # du = 4095 (u = a << 6 = 256), no v decay, vth = 10 << 6 = 640: v = 256, 512, 768 > 640 fires at t2 -> 0;
    # refractory 2 holds v = 0 at t3, t4 although input arrives; t5..t7: 256, 512, 768 fires at t7
    cfg = lava(du=4095, threshold=640, refractory=2)
    us, vs, fired = trace(cfg, [[4]], [[0]] * 8)
    assert fired == [2, 7] and vs == [256, 512, 0, 0, 0, 256, 512, 0]
    # u keeps integrating while v is held: du = 2047 halves u. t0: u = 768 > 640 fires; t1 (refractory):
    # u = 384 + 256 = 640, v held 0; t2: u = 320, v = 320
    half = lava(du=2047, threshold=640, refractory=1)
    assert trace(half, [[4]], [[0, 0, 0], [0], []]) == ([768, 640, 320], [0, 0, 320], [0])


def test_initial_state_and_clear():
    # init_u = 640, init_v = 1000, du = 2047 (u halves), dv = 0: u0 = 320, v0 = 1000 + 320 = 1320
    cfg = lava(du=2047, init_u=640, init_v=1000)
    assert trace(cfg, [[0]], [[]]) == ([320], [1320], [])
    # init_u may be +2^23 (Lava's range is (-2^23, 2^23]); CLEAR returns to the initial state
    core = snn.LIFCore(lava(du=4095, init_u=H, init_v=-5))
    assert (int(core.s["u"][0]), int(core.v[0])) == (H, -5)
    core.tick()
    core.clear()
    assert (int(core.s["u"][0]), int(core.v[0])) == (H, -5)


def test_lif_mode_bias_and_refractory():
    # LIF mode (no current): bias 1 << 2 = 4 added at each tick before the compare; '>=' 10, soft reset,
    # refractory 1: v = 4, 8, 12 fires -> 2, held at t3 (no bias, no fire), t4: 6, t5: 10 fires -> 0
    cfg = SNNCoreConfig(neurons=1, lanes=1, axons=1, weight_bits=4, state_bits=8, threshold=10, reset="soft",
                        bias_mant=1, bias_exp=2, refractory=1, addr_bits=1)
    _, vs, fired = trace(cfg, [[0]], [[]] * 6)
    assert fired == [2, 5] and vs == [4, 8, 2, 2, 6, 0]


def lava_naive(cfg, w, per_step):
    """Per-neuron restatement of the equations in this file's docstring (Lava's two-step wrap literally; general
    state width, input shift, compare and reset, refractory as Lava's LIFRefractory)."""
    half = 2 ** (cfg.state_bits - 1)

    def decay(x, factor):
        p = x * factor
        return (1 if p > 0 else -1 if p < 0 else 0) * (abs(p) >> 12)

    def fix(x, lo):
        return min(max(x, lo), half - 1) if cfg.saturate else (x + half) % (2 * half) - half

    n = cfg.neurons
    a, u, v, ref, out = [0] * n, [cfg.init_u] * n, [cfg.init_v] * n, [0] * n, []
    for t, axons in enumerate(per_step):
        for ax in axons:
            for i in range(n):
                a[i] = fix(a[i] + int(w[ax][i]), -half)
        for i in range(n):
            x = decay(u[i], 4096 - (cfg.du + 1)) + a[i] * 2 ** cfg.input_shift
            while x > half:            # Lava corrects once; its 16-bit a_in never needs more, ours may
                x -= 2 * half
            while x <= -half:
                x += 2 * half
            u[i], a[i] = x, 0
            if ref[i]:
                ref[i] -= 1
                continue
            v[i] = fix(decay(v[i], 4096 - cfg.decay) + u[i] + cfg.bias_mant * 2 ** cfg.bias_exp, -half + 1)
            if v[i] >= cfg.threshold if cfg.compare == "ge" else v[i] > cfg.threshold:
                out.append((i, t))
                v[i] = 0 if cfg.reset == "hard" else v[i] - cfg.threshold
                ref[i] = cfg.refractory
    return out, v, u


@pytest.mark.parametrize("seed", range(10))
def test_cuba_matches_lava_restatement_with_bias_refractory_init(seed):
    rng = np.random.default_rng(300 + seed)
    sb = int(rng.integers(10, 25))
    h = 2 ** (sb - 1)
    exp = int(rng.integers(0, 8))
    lim = min(4095, (h - 1) >> exp) // int(rng.choice([1, 16]))     # a bias inside the state range, often small
    cfg = SNNCoreConfig(neurons=int(rng.integers(1, 7)), lanes=1, axons=int(rng.integers(1, 4)), weight_bits=8,
                        state_bits=sb, threshold=int(rng.integers(0, 2 ** (sb - 3))), model="cuba", leak="mult",
                        decay=int(rng.integers(0, 4097)), du=int(rng.integers(0, 4096)),
                        input_shift=int(rng.integers(0, 7)), compare=str(rng.choice(["ge", "gt"])),
                        reset=str(rng.choice(["hard", "soft"])), saturate=bool(rng.integers(0, 2)),
                        bias_mant=int(rng.integers(-lim, lim + 1)), bias_exp=exp, refractory=int(rng.integers(0, 4)),
                        init_v=int(rng.integers(-h, h)), init_u=int(rng.integers(-h + 1, h + 1)), addr_bits=2)
    w = rng.integers(-128, 128, size=(cfg.axons, cfg.neurons))
    per_step = [rng.integers(0, cfg.axons, rng.integers(0, 6)).tolist() for _ in range(40)]
    want_out, want_v, want_u = lava_naive(cfg, w, per_step)
    core = snn.LIFCore(cfg, w)
    out = []
    for t, axons in enumerate(per_step):
        for a in axons:
            core.spike(a)
        out += [(int(i), t) for i in core.tick()]
    assert out == want_out and core.v.tolist() == want_v and core.s["u"].tolist() == want_u
