"""`hwgen run MODEL.tflite` on the golden backend: the CLI path, the summary, the JSON record, and the one-line
errors for bad inputs (wrong .npy shape, no --input, labels of the wrong length, a file that is not a model)."""
import json

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.host.run_tflite import run_tflite
from hwgen.host.tflite_model import TFLiteModel
from sw_model.importers.tflite.models.digits_dwcnn import MODEL_PATH, load_test_set


@pytest.fixture
def digits(tmp_path):
    x, y = load_test_set()
    np.save(tmp_path / "x.npy", x[:20])
    np.save(tmp_path / "y.npy", y[:20])
    np.save(tmp_path / "x_batched.npy", x[:20].reshape(20, 1, 8, 8, 1))
    return tmp_path


def test_cli_runs_a_tflite_model_and_writes_the_record(digits, capsys):
    rc = main(["run", str(MODEL_PATH), "--input", str(digits / "x.npy"), "--labels", str(digits / "y.npy"),
               "--label-output", "1", "--check-litert", "-o", str(digits / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "output values differing from the LiteRT interpreter (reference kernels): 0" in out
    record = json.loads((digits / "out" / "run-digits_dwcnn-golden.json").read_text())
    assert record["samples"] == 20 and record["mismatches"] == 0 and record["litert_mismatches"] == 0
    assert record["accuracy"] == 1.0
    assert [e["op"] for e in record["engine_ops"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                                      "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]
    assert record["host_ops"] == ["AVERAGE_POOL_2D", "QUANTIZE", "RESHAPE", "SOFTMAX"]


def test_inputs_with_or_without_the_batch_axis_give_the_same_outputs(digits):
    a = run_tflite(MODEL_PATH, [digits / "x.npy"], digits / "y.npy", label_output=1, limit=5)
    b = run_tflite(MODEL_PATH, [digits / "x_batched.npy"], digits / "y.npy", label_output=1, limit=5)
    assert a["accuracy"] == b["accuracy"] and a["samples"] == b["samples"] == 5


def test_api_matches_the_program_and_resets(digits):
    m = TFLiteModel(MODEL_PATH)
    x = np.load(digits / "x.npy")
    logits, probs = m.invoke(x[0])
    assert logits.dtype == probs.dtype == np.int8 and probs.shape == (1, 10)
    assert [r["op"] for r in m.records][-1] == "FULLY_CONNECTED" and m.records[-1]["acc"].shape == (10, 1)
    assert m.input_details()[0]["dtype"] == "UINT8" and m.input_details()[0]["scale"] == [0.0625]


def test_bad_inputs_are_one_line_errors(digits, capsys, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8), np.uint8))
    assert main(["run", str(MODEL_PATH), "--input", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "o")]) == 2
    assert "hwgen: error: --input" in capsys.readouterr().err
    assert main(["run", str(MODEL_PATH), "-o", str(tmp_path / "o")]) == 2
    assert "--input: missing, allowed: one .npy per model input" in capsys.readouterr().err
    np.save(tmp_path / "y3.npy", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"--labels: got shape \[3\], allowed: \(20,\)"):
        run_tflite(MODEL_PATH, [digits / "x.npy"], tmp_path / "y3.npy")
    (tmp_path / "junk.tflite").write_bytes(b"not a model at all")
    assert main(["run", str(tmp_path / "junk.tflite"), "--input", str(digits / "x.npy"), "-o",
                 str(tmp_path / "o")]) == 2
    assert "without the TFLite identifier 'TFL3'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="backend: got 'fpga', allowed: golden, rtl, board"):
        TFLiteModel(MODEL_PATH, backend="fpga")


def test_depthwise_groups_give_the_same_outputs(digits):
    s = run_tflite(MODEL_PATH, [digits / "x.npy"], digits / "y.npy", label_output=1, limit=4, check_litert=True,
                   depthwise_group=4)
    assert s["depthwise_group"] == 4 and s["litert_mismatches"] == 0 and s["accuracy"] == 1.0
