"""The converted digits SNN on two RTL cores (layer by layer; the host feeds layer 1's output spikes plus the bias
axon to layer 2), bit-exact with the batched golden model, under random gaps and backpressure."""
import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from sw_model.networks import digits_snn as conv
from sw_model.snn import golden as snn

pytestmark = pytest.mark.rtl


def test_digits_snn_on_rtl(sim_opts):
    x_tr, y_tr, x_te, _ = conv.load_digits()
    net = conv.convert(conv.train_mlp(x_tr, y_tr), x_tr)
    steps, n = 12, 3
    pred, s_in, s_hid, s_out = conv.run_golden(net, x_te[:n], steps)
    assert s_hid.sum() > 50 and s_out.sum() > 5
    for cfg, w, spikes, want in ((net.cfg1, net.w1, s_in, s_hid), (net.cfg2, net.w2, conv.with_bias(s_hid), s_out)):
        inp = snn.concat(snn.weight_beats(cfg, w), snn.batch_beats(cfg, spikes))
        out, _, _ = snn.stream_model(cfg, inp)
        assert np.array_equal(snn.batch_spikes(cfg, out, n, steps), want)
        res = run_vectors(cfg, inp, out, gap=0.3, backpressure=0.3, seed=5, **sim_opts)
        assert not res["mismatches"] and res["n_out"] == len(out["kind"])
