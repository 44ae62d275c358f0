"""Digits MLP -> rate-coded SNN: the batched golden run equals the event-by-event core, the stream-level batch
helpers round-trip, and the converted network stays within 1 point of the ANN on the 360 test images."""
import numpy as np
import pytest

from sw_model.networks import digits_snn as conv
from sw_model.snn import golden as snn


@pytest.fixture(scope="module")
def trained():
    x_tr, y_tr, x_te, y_te = conv.load_digits()
    mlp = conv.train_mlp(x_tr, y_tr)
    return mlp, conv.convert(mlp, x_tr), x_tr, y_tr, x_te, y_te


def test_digits_data():
    x_tr, y_tr, x_te, y_te = conv.load_digits()
    assert x_tr.shape == (1437, 64) and x_te.shape == (360, 64)
    assert x_tr.min() == 0 and x_tr.max() == 16 and set(np.unique(y_te)) == set(range(10))


def test_encoder_rate():
    s = conv.encode(np.array([[0, 4, 8, 16] + [0] * 60]), 32)
    assert s[0, :, :4].sum(0).tolist() == [0, 8, 16, 32] and s[0, :, 64].sum() == 32


def test_snn_accuracy_close_to_ann(trained):
    mlp, net, _, _, x_te, y_te = trained
    ann = mlp.accuracy(x_te / 16, y_te)
    pred = conv.run_golden(net, x_te, 32)[0]
    snn_acc = float((pred == y_te).mean())
    assert ann > 0.96 and snn_acc >= ann - 0.01, (ann, snn_acc)


def test_batched_golden_equals_event_core(trained):
    _, net, _, _, x_te, _ = trained
    _, s_in, s_hid, _ = conv.run_golden(net, x_te[:5], 12)
    for k in range(5):
        out, v = snn.run_events(net.cfg1, net.w1, snn.spike_events(s_in[k]), 12)
        want = np.zeros((12, net.cfg1.neurons), dtype=np.uint8)
        want[out[:, 1], out[:, 0]] = 1
        assert np.array_equal(want, s_hid[k])
    # a saturating, leaky, refractory config as well
    cfg = snn.SNNCoreConfig(neurons=6, lanes=2, axons=4, weight_bits=6, state_bits=7, threshold=40, leak="mult",
                            decay=900, refractory=2, reset="hard", compare="gt", addr_bits=2)
    rng = np.random.default_rng(3)
    w = rng.integers(-32, 32, (4, 6))
    spikes = rng.random((3, 25, 4)) < 0.6
    got, v = snn.run_batch(cfg, w, spikes)
    inp = snn.concat(snn.weight_beats(cfg, w), snn.batch_beats(cfg, spikes))
    out, _, _ = snn.stream_model(cfg, inp)
    assert np.array_equal(snn.batch_spikes(cfg, out, 3, 25), got) and got.sum() > 10
