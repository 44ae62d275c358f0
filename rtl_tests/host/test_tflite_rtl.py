"""TFLite models with their engine GEMMs on the accelerator top's Verilog (system-default, bulk simulation): every
accumulator equal to the golden backend's and every output equal to the LiteRT interpreter's (reference kernels),
on a few invokes of the digits depthwise CNN and of a streaming wake-word model (state carried across invokes)."""
import numpy as np
import pytest

from hwgen.host.run_tflite import run_tflite
from sw_model.importers.tflite.models.digits_dwcnn import MODEL_PATH, load_test_set
from sw_model.importers.tflite.models.wakeword import feature_stream, model_path

pytestmark = pytest.mark.rtl


def test_digits_dwcnn_on_rtl_matches_golden_and_litert(tmp_path):
    x, y = load_test_set()
    np.save(tmp_path / "x.npy", x[:3])
    np.save(tmp_path / "y.npy", y[:3])
    s = run_tflite(MODEL_PATH, [tmp_path / "x.npy"], tmp_path / "y.npy", backend="rtl", rtl_samples=2,
                   check_litert=True, label_output=1, out=tmp_path)
    assert s["samples"] == 3 and s["samples_on_device"] == 2
    assert s["mismatches"] == 0 and s["litert_mismatches"] == 0
    assert [e["op"] for e in s["engine_ops"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                                                 "FULLY_CONNECTED"]
    assert all(e["ran_on"] == "rtl" for e in s["engine_ops"]) and s["cycles_total"] > 0
    assert s["cycles_total"] == s["cycles_model_total"]          # the system's documented cycle model
    assert (tmp_path / "run-digits_dwcnn-rtl.json").is_file()


def test_grouped_depthwise_on_rtl(tmp_path):
    """Depthwise layers as one GEMM per 4 channels: same outputs, fewer cycles than one GEMM per layer."""
    x, _ = load_test_set()
    np.save(tmp_path / "x.npy", x[:1])
    s = run_tflite(MODEL_PATH, [tmp_path / "x.npy"], backend="rtl", check_litert=True, depthwise_group=4,
                   out=tmp_path)
    assert s["mismatches"] == 0 and s["litert_mismatches"] == 0
    assert s["cycles_total"] == s["cycles_model_total"] and s["cycles_total"] < 0.7 * 21175


def test_streaming_wakeword_model_on_rtl(tmp_path):
    path = model_path("okay_nabu")
    np.save(tmp_path / "x.npy", feature_stream(104, 0.10196078568696976, -128)[102:])   # two frames of audio features
    s = run_tflite(path, [tmp_path / "x.npy"], backend="rtl", check_litert=True, out=tmp_path)
    assert s["samples_on_device"] == 2 and s["mismatches"] == 0 and s["litert_mismatches"] == 0
    assert len(s["engine_ops"]) == 15 and all(e["ran_on"] == "rtl" for e in s["engine_ops"])


@pytest.mark.slow
def test_digits_dwcnn_one_invoke_on_the_board(tmp_path):
    """The same GEMMs behind the UART bridge (simulated serial line): ~10 minutes for one image."""
    x, _ = load_test_set()
    np.save(tmp_path / "x.npy", x[:1])
    s = run_tflite(MODEL_PATH, [tmp_path / "x.npy"], backend="board", check_litert=True, out=tmp_path)
    assert s["samples_on_device"] == 1 and s["mismatches"] == 0 and s["litert_mismatches"] == 0
    assert all(e["ran_on"] == "board" for e in s["engine_ops"])
