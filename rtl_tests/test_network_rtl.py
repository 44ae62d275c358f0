"""A whole network on simulated RTL: the digits MLP with one layer and with all layers on the LMulDot RTL
agrees bit for bit with the golden backend (layer in the loop), with the documented cycle count."""
import pytest

from hwgen.run_network import run_network

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("layers", ["1", "0,1"])
def test_digits_mlp_on_rtl(layers, tmp_path):
    s = run_network("digits-mlp", backend="rtl", rtl_layers=layers, limit=24, out=tmp_path)
    assert s["mismatches"] == 0
    assert [lay["ran_on"] for lay in s["layers"]] == ["rtl" if str(i) in layers else "golden" for i in range(2)]
    # one beat per cycle: layer 0 = 32 dots x 4 beats, layer 1 = 10 dots x 2 beats (16 lanes), plus fill/drain
    beats = (128 if "0" in layers else 0) + 20
    assert beats <= s["cycles_per_inference"] <= beats + 1
    assert s["engine_utilization"] > 0.95


def test_digits_mlp_int8_on_sparse_chain_rtl(tmp_path):
    s = run_network("digits-mlp-int8", backend="rtl", limit=24, out=tmp_path)
    assert s["mismatches"] == 0
    # dense mode, 8 stages: 32 rows x 8 beats + 10 rows x 4 beats per image, one beat per cycle
    assert 296 <= s["cycles_per_inference"] <= 297


def test_digits_snn_on_spiking_core_rtl(tmp_path):
    s = run_network("digits-snn", backend="rtl", limit=8, out=tmp_path)
    assert s["mismatches"] == 0 and s["samples"] == 8
    assert s["spikes_per_inference"]["hidden"] > 50 and s["cycles_per_inference"] > 1000
