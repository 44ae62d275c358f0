"""Spiking (LIF) layers in the network description (golden backend).

Checked: the digits SNN written as a netdesc Network reproduces `hwgen run digits-snn`'s golden path bit for bit
(configs, integer weights, input/hidden/output spike trains, predictions, accuracy); a hand-worked two-input neuron;
the rate coder against its closed form and digits_snn.encode; an int8 -> level requantization at an int8/spiking
boundary; the neuron-model knobs against the event-level core model (`snn.run_events`); the errors."""
import numpy as np
import pytest
from sw_model.host.netdesc.spiking import input_spikes, rate_encode
from sw_model.networks.digits_snn import digits_snn_network

from sw_model.host.netdesc import Linear, Network, NetworkError, Spiking, compile_int8
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.networks import digits_snn as conv
from sw_model.registry import load_config
from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig
from sw_model.sparse.config import SparseChainConfig

CHAIN = SparseChainConfig(stages=3)


def _msg(fn):
    with pytest.raises(NetworkError) as e:
        fn()
    return str(e.value)


@pytest.fixture(scope="module")
def digits():
    x_train, y_train, x_test, y_test = conv.load_digits()
    mlp = conv.train_mlp(x_train, y_train)
    return mlp, conv.convert(mlp, x_train), (x_train, y_train, x_test, y_test)


def test_digits_snn_as_netdesc_is_bit_exact_with_the_runner(digits, capsys):
    from hwgen.host.run_snn import TIMESTEPS, run_digits_snn
    mlp, ref_net, (x_train, _, x_test, y_test) = digits
    net = digits_snn_network(mlp, x_train, TIMESTEPS)
    prog = compile_int8(net, x_train / 16, CHAIN)
    assert [s.engine for s in prog.steps] == ["snn_core", "snn_core"] and prog.input_scale == 1 / 16
    assert prog.steps[0].extra["config"] == ref_net.cfg1 and prog.steps[1].extra["config"] == ref_net.cfg2
    assert np.array_equal(prog.steps[0].extra["weights"], ref_net.w1)
    assert np.array_equal(prog.steps[1].extra["weights"], ref_net.w2)
    assert not prog.steps[0].extra["trains"] and prog.steps[1].extra["trains"]
    counts, rec = prog.run(x_test / 16)
    pred, s_in, s_hid, s_out = conv.run_golden(ref_net, x_test, TIMESTEPS)
    assert np.array_equal(input_spikes(prog.steps[0], prog.quantize_input(x_test / 16), {}), s_in)
    assert np.array_equal(rec[0]["acc"], s_hid) and np.array_equal(rec[1]["acc"], s_out)
    assert np.array_equal(counts, s_out.sum(axis=1)) and np.array_equal(counts.argmax(axis=1), pred)
    summary = run_digits_snn("golden", [], x_test, y_test, "verilator")
    assert summary["accuracy"] == float(np.mean(counts.argmax(axis=1) == y_test)) > 0.95
    # the float64 meaning (rates) against the spike counts / T
    rates = net.forward(x_test / 16)
    assert np.mean(np.abs(counts / TIMESTEPS - rates)) < 0.03
    assert np.mean(rates.argmax(axis=1) == counts.argmax(axis=1)) > 0.95
    capsys.readouterr()


def test_hand_worked_neuron():
    """w = (0.5, 0.25), b = 0: [W; b] -> 127 levels of 0.5: theta = 254, weights (127, 64, 0) (63.5 rounds to
    even). Both inputs at full rate (level 127 of 127) add 191 per step; v = 191, 382 -> fire (128), 319 -> fire
    (65), 256 -> fire (2), 193, 384 -> fire (130), 321 -> fire (67), 258 -> fire (4): spikes at steps 1, 2, 3, 5,
    6, 7, count 6 of 8 = rate 0.75 = 0.5 + 0.25."""
    net = Network((2,), [Spiking([[0.5, 0.25]], timesteps=8)])
    prog = compile_int8(net, np.array([[1.0, 1.0]]), CHAIN)
    st = prog.steps[0]
    assert st.extra["config"].threshold == 254 and st.extra["weights"].ravel().tolist() == [127, 64, 0]
    counts, rec = prog.run(np.array([[1.0, 1.0], [0.0, 0.0], [2.0, -1.0]]))
    assert rec[0]["acc"][0, :, 0].tolist() == [0, 1, 1, 1, 0, 1, 1, 1]
    assert counts.ravel().tolist() == [6, 0, 4]            # (2, -1): rates clip to (1, 0): 127 per step, rate 0.5
    assert "threshold 254" in st.why and "int8 -> level 0..127" in st.why


def test_rate_encoder():
    lv = np.arange(17)[None, :]
    s = rate_encode(lv, 32, 16)
    assert np.array_equal(s.sum(axis=1), (32 * lv) // 16)
    pixels = np.random.default_rng(0).integers(0, 17, (5, 64))
    assert np.array_equal(conv.with_bias(rate_encode(pixels, 32, 16)), conv.encode(pixels, 32))
    t = np.arange(1, 21)
    s = rate_encode(np.array([[37]]), 20, 127)[0, :, 0]
    assert np.array_equal(np.cumsum(s), (t * 37) // 127)


def test_int8_into_spiking_requantizes_to_levels():
    """Linear -> Spiking: the Linear's int8 output (scale s) becomes levels round(v s L) clipped to 0..L."""
    rng = np.random.default_rng(2)
    net = Network((6,), [Linear(rng.normal(0, 0.5, (5, 6))), Spiking(rng.normal(0, 0.4, (4, 5)), timesteps=16,
                                                                      input_levels=100)])
    x = rng.normal(0, 1, (40, 6))
    prog = compile_int8(net, x, CHAIN)
    lin, sp = prog.steps
    assert sp.in_scale == lin.out_scale and "level 0..100" in sp.why and not sp.extra["trains"]
    h, recs = prog.run(x[:8])
    q = Network((6,), [net.layers[0]])
    lin_q = compile_int8(q, x, CHAIN).run(x[:8])[0]
    spikes = input_spikes(sp, lin_q, {})
    levels = np.clip(np.floor(lin_q * lin.out_scale * 100 + 0.5), 0, 100)      # exact except at .5 ties
    assert np.array_equal(spikes[:, :, :5].sum(axis=1), (16 * levels).astype(int) // 100)
    assert spikes[:, :, 5].all() and recs[0]["acc"].shape == (5, 8) and h.shape == (8, 4) and h.max() <= 16


@pytest.mark.parametrize("core", [SNNCoreConfig(lanes=1, leak="shift", leak_shift=2, reset="hard", refractory=1),
                                  SNNCoreConfig(lanes=3, leak="mult", decay=500, compare="gt", weight_bits=5,
                                                state_bits=10, saturate=False)])
def test_neuron_model_knobs_against_the_event_model(core):
    rng = np.random.default_rng(3)
    net = Network((7,), [Spiking(rng.normal(0.1, 0.4, (5, 7)), rng.normal(0, 0.1, 5), timesteps=12, core=core)])
    x = rng.uniform(0, 1, (6, 7))
    prog = compile_int8(net, x, CHAIN)
    cfg = prog.steps[0].extra["config"]
    assert (cfg.neurons, cfg.axons, cfg.lanes) == (5, 8, core.lanes)
    assert all(getattr(cfg, k) == getattr(core, k) for k in ("leak", "leak_shift", "decay", "reset", "refractory",
                                                              "compare", "weight_bits", "state_bits", "saturate"))
    counts, rec = prog.run(x)
    spikes = input_spikes(prog.steps[0], prog.quantize_input(x), {})
    assert rec[0]["acc"].sum() > 5
    for b in range(len(x)):
        out, _ = snn.run_events(cfg, prog.steps[0].extra["weights"], snn.spike_events(spikes[b]), 12)
        want = np.zeros((12, 5), np.uint8)
        want[out[:, 1], out[:, 0]] = 1
        assert np.array_equal(rec[0]["acc"][b], want)


def test_spiking_errors_name_layer_field_value_and_allowed():
    w = np.ones((3, 4)) * 0.1
    assert "layer 0 (Spiking): neurons: got 5000, allowed: at most 4096 (the spiking core's limit)" in \
        _msg(lambda: Network((4,), [Spiking(np.zeros((5000, 4)))]))
    assert "layer 0 (Spiking): axons: got 4097 (4096 inputs + the bias axon), allowed: at most 4096" in \
        _msg(lambda: Network((4096,), [Spiking(np.zeros((2, 4096)))]))
    assert "layer 0 (Spiking): input: got shape (2, 4), allowed: a flat vector of 4 (insert Flatten())" in \
        _msg(lambda: Network((2, 4), [Spiking(w)]))
    assert "layer 1 (Spiking): in_features: got 4, allowed: 3" in \
        _msg(lambda: Network((4,), [Spiking(w), Spiking(w)]))
    assert "layer (Spiking): timesteps: got 200, allowed: 1..127 (spike counts are int8)" in \
        _msg(lambda: Spiking(w, timesteps=200))
    assert "layer (Spiking): input_levels: got 0, allowed: 1..127" in _msg(lambda: Spiking(w, input_levels=0))
    assert "layer (Spiking): core: got AttentionConfig, allowed: an SNNCoreConfig" in \
        _msg(lambda: Spiking(w, core=load_config("attention-4x4-d8")[1]))
    assert "layer (Spiking): core: model: got 'cuba', allowed: 'lif'" in \
        _msg(lambda: Spiking(w, core=load_config("snn-core-cuba-32x4")[1]))
    assert "layer (Spiking): bias: got shape (4,), allowed: (3,)" in _msg(lambda: Spiking(w, np.zeros(4)))
    x = np.random.default_rng(0).uniform(0, 1, (4, 4))
    two = Network((4,), [Spiking(w, timesteps=8), Spiking(np.ones((2, 3)) * 0.3, timesteps=16)])
    assert "layer 1 (Spiking): timesteps: got 16, allowed: 8 (the spike trains of layer 0 pass straight in)" in \
        _msg(lambda: compile_int8(two, x, CHAIN))
    tiny = Network((4,), [Spiking(w * 1e-4)])
    assert "layer 0 (Spiking): core config: threshold: got" in _msg(lambda: compile_int8(tiny, x, CHAIN))
    p = compile_int8(Network((4,), [Spiking(w)]), x, CHAIN)
    assert "backends: step 0 (Spiking) runs on the snn_core engine: got a Int8GoldenBackend without spiking(), " \
        "allowed: a backend with spiking()" in _msg(lambda: p.run(x, {0: Int8GoldenBackend()}))
