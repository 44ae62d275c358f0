"""Attention and Spiking layers of the network description on the RTL: every engine step bit-exact with the golden
backends (random input gaps and output backpressure of 30 %), layer in the loop, and the simulated cycles against
the engines' cycle models (attention: sw_model.attention.timing.cycle_model; chain: beats + stages + 3 per call;
spiking core: the summed input-beat costs of sw_model.snn.golden.stream_model)."""
import numpy as np
import pytest
from hwgen.host.rtl_backend import SpikingRtlBackend
from sw_model.networks.digits_snn import digits_snn_network

from hwgen.host.rtl_backend import RtlBackend
from sw_model.attention.config import AttentionConfig
from sw_model.attention.timing import cycle_model
from sw_model.host.netdesc import Add, Attention, LayerNorm, Linear, Network, ReLU, compile_int8
from sw_model.networks import digits_snn as conv
from sw_model.sparse.config import SparseChainConfig

pytestmark = pytest.mark.rtl
CHAIN = SparseChainConfig(stages=3)
ATT = AttentionConfig()              # the attention-4x4-d8 preset: 2 heads of 8, 6 tokens = a full and a partial tile


def _attention_program():
    rng = np.random.default_rng(0)
    w = [rng.normal(0, 1.0, (16, 16)), rng.normal(0, 1.0, (16, 16)), rng.normal(0, 0.4, (16, 16)),
         rng.normal(0, 0.3, (16, 16))]
    b = [rng.normal(0, 0.1, 16) for _ in range(4)]
    net = Network((6, 16), [Attention(2, *w, *b), Add(-1), LayerNorm(rng.uniform(0.5, 1.5, 16)),
                            Linear(rng.normal(0, 0.3, (5, 16)), rng.normal(0, 0.1, 5)), ReLU()])
    x = rng.normal(0, 1, (8, 6, 16))
    return compile_int8(net, x, CHAIN, attention=ATT), x[:2]


def test_attention_network_all_engine_steps_on_rtl(sim_opts):
    prog, x = _attention_program()
    ref, golden = prog.run(x)
    rtl = RtlBackend(sim=sim_opts["sim"], gap=0.3, backpressure=0.3)
    got, recs = prog.run(x, {i: rtl for i in prog.engine_steps})
    assert [r["backend"] for r in recs] == ["rtl"] * 5 + ["host", "host", "rtl"]
    for r, g in zip(recs, golden):
        if r["engine"] != "host":
            assert np.array_equal(r["acc"], g["acc"]), r["op"]
    assert np.array_equal(got, ref)


def test_attention_heads_in_the_loop_with_the_cycle_model(sim_opts):
    """Only the heads step on the RTL (the rest golden), then one chain step: cycles equal the models."""
    prog, x = _attention_program()
    ref, golden = prog.run(x)
    got, recs = prog.run(x, {3: RtlBackend(sim=sim_opts["sim"])})
    assert [r["backend"] for r in recs] == ["golden"] * 3 + ["rtl", "golden", "host", "host", "golden"]
    assert np.array_equal(got, ref) and np.array_equal(recs[3]["acc"], golden[3]["acc"])
    tiles = [(4, 6), (2, 6)] * 4                        # 2 samples x 2 heads, query tiles of p0 = 4 rows
    model = cycle_model(ATT, tiles)["out_cycles"]
    assert recs[3]["cycles"] == model[-1] + 1
    assert recs[3]["head_cycles"] == [model[5] + 1] + np.diff([model[i] for i in (5, 11, 17, 23)]).tolist()
    _, recs = prog.run(x, {0: RtlBackend(sim=sim_opts["sim"])})
    beats = 16 * 12 * 6                                 # rows x (2 samples x 6 tokens) x ceil(16 / 3)
    assert recs[0]["cycles"] == beats + CHAIN.stages + 3 and recs[0]["beats"] == beats


def test_digits_snn_network_on_rtl(sim_opts):
    """The digits SNN as a netdesc network, both spiking steps on the core RTL for 3 test images: the spike trains
    equal the golden backend's bit for bit, and without gaps the cycles equal the core's cycle model."""
    x_train, y_train, x_test, _ = conv.load_digits()
    net = digits_snn_network(conv.train_mlp(x_train, y_train), x_train)
    prog = compile_int8(net, x_train / 16, CHAIN)
    x = x_test[:3] / 16
    ref, golden = prog.run(x)
    rtl = SpikingRtlBackend(sim=sim_opts["sim"], gap=0.3, backpressure=0.3, seed=7)
    got, recs = prog.run(x, {0: rtl, 1: rtl})
    assert golden[0]["acc"].sum() > 50 and golden[1]["acc"].sum() > 10
    assert all(np.array_equal(r["acc"], g["acc"]) for r, g in zip(recs, golden)) and np.array_equal(got, ref)
    free = SpikingRtlBackend(sim=sim_opts["sim"])
    _, recs = prog.run(x, {0: free})                    # layer in the loop: step 1 on the golden model
    assert recs[0]["cycles"] == recs[0]["model_cycles"] and recs[1]["backend"] == "golden"


@pytest.mark.slow
def test_odd_attention_config_on_rtl(sim_opts):
    """3 heads of 5 on a 3 x 2 array (odd, non-power-of-two tiles), 7 tokens: every engine step on the RTL."""
    rng = np.random.default_rng(4)
    att = AttentionConfig(head_dim=5, m0=3, p0=2, score_shift=5)
    w = [rng.normal(0, 0.25, (15, 11)) for _ in range(3)] + [rng.normal(0, 0.3, (11, 15))]
    net = Network((7, 11), [Attention(3, *w), Add(-1)])
    x = rng.normal(0, 1, (6, 7, 11))
    prog = compile_int8(net, x, CHAIN, attention=att)
    ref, golden = prog.run(x[:2])
    rtl = RtlBackend(sim=sim_opts["sim"], gap=0.3, backpressure=0.3)
    got, recs = prog.run(x[:2], {i: rtl for i in prog.engine_steps})
    assert all(np.array_equal(r["acc"], g["acc"]) for r, g in zip(recs, golden) if r["engine"] != "host")
    assert np.array_equal(got, ref)


@pytest.mark.slow
def test_spiking_knobs_on_rtl(sim_opts):
    """Shift leak, hard reset, refractory 1, 3 lanes over 7 neurons, behind a Linear (int8 -> levels)."""
    from sw_model.host.netdesc import Spiking

    from sw_model.snn.config import SNNCoreConfig
    rng = np.random.default_rng(5)
    core = SNNCoreConfig(lanes=3, leak="shift", leak_shift=2, reset="hard", refractory=1)
    net = Network((6,), [Linear(rng.normal(0, 0.5, (9, 6))), ReLU(),
                         Spiking(rng.normal(0.2, 0.4, (7, 9)), rng.normal(0, 0.1, 7), timesteps=20, core=core)])
    x = rng.normal(0, 1, (20, 6))
    prog = compile_int8(net, x, CHAIN)
    ref, golden = prog.run(x[:5])
    assert golden[-1]["acc"].sum() > 20
    got, recs = prog.run(x[:5], {1: SpikingRtlBackend(sim=sim_opts["sim"], gap=0.3, backpressure=0.3)})
    assert np.array_equal(recs[-1]["acc"], golden[-1]["acc"]) and np.array_equal(got, ref)
