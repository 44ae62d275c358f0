"""The digits CNN on the sparse DSP chain RTL: through the accelerator top (system-default) every engine step is
bit-exact with the golden chain model, alone (layer in the loop) and all together, with the system's documented
cycle count (`sw_model.system.golden.program_cycles`); on the bare engine with random gaps and backpressure."""
import pytest

from hwgen.host.rtl_backend import RtlBackend
from hwgen.host.run_cnn import run_digits_cnn
from sw_model.host.netdesc import compile_int8
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.networks.digits_cnn import digits_cnn
from sw_model.sparse.config import SparseChainConfig

pytestmark = pytest.mark.rtl


def test_digits_cnn_all_engine_layers_on_rtl(tmp_path, capsys):
    s = run_digits_cnn("sparse-chain-8", "rtl", None, limit=4, out=tmp_path)
    assert s["mismatches"] == 0 and s["samples"] == 4
    assert [lay["ran_on"] for lay in s["layers"]] == ["rtl", "host", "rtl", "host", "host", "rtl"]
    assert s["cycles_total"] == s["cycles_model_total"]
    # the engine consumes 4 x 3408 beats; each RUN costs beats + S + 3 + 3 busy cycles (docs/system.md)
    util = s["engine_utilization"]["sparse-chain-8"]
    assert util["beats_per_busy_cycle"] > 0.98 and 0.25 < util["busy_fraction"] < 0.9
    assert s["accuracy"] == s["float_accuracy"] == 1.0
    assert capsys.readouterr().err == ""          # the progress bar stays quiet off a terminal


def test_digits_cnn_layer_in_the_loop(tmp_path):
    """Step 2 alone on the RTL, for the first 3 of 5 images (the rest on the golden backend)."""
    s = run_digits_cnn("sparse-chain-8", "rtl", [2], limit=5, out=tmp_path, rtl_samples=3)
    assert s["mismatches"] == 0 and s["samples"] == 5 and s["samples_on_device"] == 3
    assert [lay["ran_on"] for lay in s["layers"]] == ["golden", "host", "rtl", "host", "host", "golden"]
    assert s["cycles_total"] == s["cycles_model_total"]


@pytest.mark.parametrize("stages", [8, pytest.param(3, marks=pytest.mark.slow),
                                    pytest.param(1, marks=pytest.mark.slow)])
def test_digits_cnn_with_gaps_and_backpressure(stages):
    """Each engine step in turn on the RTL with random input gaps and output backpressure (30 %)."""
    net, (x_train, _, x_test, _) = digits_cnn()
    program = compile_int8(net, x_train, SparseChainConfig(stages=stages))
    golden, _ = program.run(x_test[:2])
    rtl = RtlBackend(gap=0.3, backpressure=0.3)
    ref = program.run(x_test[:2], {i: Int8GoldenBackend() for i in program.engine_steps})[1]
    for i in program.engine_steps:
        out, records = program.run(x_test[:2], {i: rtl})
        assert (records[i]["acc"] == ref[i]["acc"]).all() and (out == golden).all()
        beats = records[i]["beats"]
        assert beats < records[i]["cycles"] < 3 * beats        # gaps and backpressure really stalled the stream


@pytest.mark.slow
def test_digits_cnn_whole_test_split_on_rtl(tmp_path):
    """All 360 test images (~3 minutes on a loaded 2-core machine)."""
    s = run_digits_cnn("sparse-chain-8", "rtl", None, out=tmp_path)
    assert s["samples"] == 360 and s["mismatches"] == 0
    assert s["cycles_total"] == s["cycles_model_total"]
    assert s["accuracy"] >= 0.97
