"""A whole network on simulated RTL: the digits MLPs on the accelerator top (system-default: the LMulDot engine and
the sparse chain) and the SNN on the spiking cores agree bit for bit with the golden backend (layer in the loop);
the simulated cycles equal the system's documented cycle model (`sw_model.system.golden.program_cycles`)."""
import pytest

from hwgen.host.run_network import run_network
from sw_model.registry import PRESETS

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("layers", ["1", "0,1"])
def test_digits_mlp_on_rtl(layers, tmp_path):
    s = run_network("digits-mlp", backend="rtl", rtl_layers=layers, limit=24, out=tmp_path)
    assert s["mismatches"] == 0
    assert [lay["ran_on"] for lay in s["layers"]] == ["rtl" if str(i) in layers else "golden" for i in range(2)]
    assert s["cycles_total"] == s["cycles_model_total"]
    util = s["engine_utilization"]["lmuldot-e4m3x16"]
    # one beat per II busy cycles (II = the accumulator's acc_stages; layer 0 = 32 dots x 4 beats, layer 1 = 10 dots
    # x 2 beats) apart from fill/drain; WRITE (one host word per beat) and READ overlap the RUN of the previous chunk
    ii = PRESETS["lmuldot-e4m3x16"].acc_stages
    assert 0.95 / ii < util["beats_per_busy_cycle"] <= 1 / ii and 0.25 < util["busy_fraction"] < 0.95


def test_digits_mlp_int8_on_sparse_chain_rtl(tmp_path):
    s = run_network("digits-mlp-int8", backend="rtl", limit=24, out=tmp_path)
    assert s["mismatches"] == 0
    assert s["cycles_total"] == s["cycles_model_total"]
    # dense mode, 8 stages: 32 rows x 8 beats + 10 rows x 4 beats = 296 beats per image, one per busy cycle
    assert s["engine_utilization"]["sparse-chain-8"]["beats_per_busy_cycle"] > 0.95


def test_digits_snn_on_spiking_core_rtl(tmp_path):
    """Both layers on the two spiking-core engines of the network's accelerator top."""
    s = run_network("digits-snn", backend="rtl", limit=8, out=tmp_path)
    assert s["mismatches"] == 0 and s["samples"] == 8 and s["system"].startswith("system-")
    assert s["spikes_per_inference"]["hidden"] > 50 and s["cycles_per_inference"] > 1000
    for u in s["engine_utilization"].values():
        assert 0 < u["busy_fraction"] <= 1 and 0 < u["beats_per_busy_cycle"] <= 1


def test_digits_snn_over_the_board_link(tmp_path):
    s = run_network("digits-snn", backend="board", rtl_layers="1", limit=1, out=tmp_path)
    assert s["mismatches"] == 0 and [layer["ran_on"] for layer in s["layers"]] == ["golden", "board"]
