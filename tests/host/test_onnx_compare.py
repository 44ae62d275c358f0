"""`hwgen compare` / `hwgen run MODEL.onnx` on a tiny ONNX model and an .npz data set: the table, the cycle model
costs of engine layers, and clear errors before anything runs."""
import json

import numpy as np
import pytest
from onnx import helper

from hwgen.cli import main
from hwgen.host.onnx_compare import EngineCosts, compare
from sw_model.importers.onnx.numerics import get_numeric
from tests.importers.onnx_helpers import make

RNG = np.random.default_rng(11)


@pytest.fixture
def tiny(tmp_path):
    """A 2-layer MLP (12 -> 8 -> 3) and 40 labelled samples it classifies (labels = its own float argmax)."""
    w1, w2 = RNG.normal(size=(12, 8)).astype(np.float32), RNG.normal(size=(8, 3)).astype(np.float32)
    m = make([helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"), helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")],
             [("x", [None, 12])], [("y", [None, 3])], [("w1", w1), ("w2", w2)])
    path = tmp_path / "tiny.onnx"
    path.write_bytes(m.SerializeToString())
    x = RNG.normal(size=(40, 12)).astype(np.float32)
    labels = (np.maximum(x @ w1, 0) @ w2).argmax(axis=1)
    np.savez(tmp_path / "data.npz", x=x, labels=labels)
    return path, tmp_path / "data.npz"


def test_compare_table_rows_and_files(tiny, tmp_path):
    path, data = tiny
    cfg = tmp_path / "mixed.toml"
    cfg.write_text('default = "float"\n[layers]\n"fc2" = "int8"\n')
    s = compare(str(path), ["float", "lmul-e4m3", str(cfg)], str(data), out=tmp_path / "out", cycle_samples=4)
    rows = {r["numerics"]: r for r in s["rows"]}
    assert list(rows) == ["onnxruntime (float32)", "float", "lmul-e4m3", "mixed"]
    assert rows["float"]["accuracy"] == 1.0 and rows["float"]["rel_err_max"] < 1e-6
    assert rows["lmul-e4m3"]["rel_err_mean"] > 1e-3                    # a real numeric changes the output
    assert rows["mixed"]["layers"] == {"fc1": "float", "fc2": "int8"}
    assert rows["mixed"]["engines"] == ["sparse_chain"] and "lmuldot" not in rows["mixed"]["engine_occupancy"]
    assert "cycles_per_inference" not in rows["float"]
    for name in ("lmul-e4m3", "mixed"):
        r = rows[name]
        assert r["cycle_samples"] == 4 and 0 < max(r["engine_occupancy"].values()) < 1
        assert sum(r["layer_cycles_per_inference"].values()) == pytest.approx(r["cycles_per_inference"])
    saved = json.loads((tmp_path / "out" / "compare-tiny.json").read_text())
    assert saved["rows"][2]["numerics"] == "lmul-e4m3"
    md = (tmp_path / "out" / "compare-tiny.md").read_text()
    assert "| lmul-e4m3 | 1.0000 |" in md or "| lmul-e4m3 | 0." in md
    assert (tmp_path / "out" / "compare-tiny.png").stat().st_size > 1000


def test_cycle_model_cost_of_one_layer_call():
    """An L-Mul layer of 3 x 20 inputs and 6 outputs: 18 dot products of 2 beats = 36 input beats in one RUN;
    the engine is busy beats + latency + 1 cycles, all inside the program's cycles."""
    nm = get_numeric("lmul-e4m3")
    layer = nm.prepare(RNG.normal(size=(6, 20)), 1.0)
    ops = layer.encode(RNG.normal(size=(3, 20)))
    costs = EngineCosts()
    c = costs.cost(nm, layer, ops)
    program, e = costs.backend(nm.engine_config, "golden").program(nm.engine_config,
                                                                   costs.beats(nm, layer, ops))
    latency = program.engine(e)["latency"]
    assert c["busy"] == 36 + latency + 1
    assert c["cycles"] > c["busy"]


def test_compare_refuses_bad_input_before_running(tiny, tmp_path, capsys):
    path, data = tiny
    assert main(["compare", str(path), "--numerics", "float,lmul-e4m9", "--dataset", str(data),
                 "-o", str(tmp_path / "o")]) == 2
    assert "numerics: got 'lmul-e4m9', allowed: a numeric" in capsys.readouterr().err
    cfg = tmp_path / "typo.toml"
    cfg.write_text('[layers]\n"fc3" = "int8"\n')
    assert main(["compare", str(path), "--numerics", str(cfg), "--dataset", str(data), "-o", str(tmp_path)]) == 2
    assert "layers.'fc3': matches no layer" in capsys.readouterr().err
    assert main(["compare", str(path), "--numerics", "float", "-o", str(tmp_path)]) == 2
    assert "--dataset: tiny.onnx is not a built-in model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_run_onnx_model_from_the_command_line(tiny, tmp_path, capsys):
    path, data = tiny
    assert main(["run", str(path), "--numerics", "int8", "--dataset", str(data), "-o", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "| int8 | 1.0000 |" in out or "| int8 | 0.9" in out
    assert json.loads((tmp_path / "r" / "run-tiny-golden.json").read_text())["rows"][1]["numerics"] == "int8"


def test_published_iris_model_matches_onnxruntime():
    """The scikit-learn logistic regression shipped in the onnxruntime wheel (ai.onnx.ml LinearClassifier,
    Normalizer, ZipMap): labels equal, probabilities within float32 tolerance, on the 150 iris samples."""
    import onnxruntime as ort

    from hwgen.host.onnx_models import builtin_model, load_dataset
    from sw_model.importers.onnx.model import OnnxModel
    path = builtin_model("iris-logreg")
    m = OnnxModel(path)
    assert m.layer_names == ["LinearClassifier"]
    ds = load_dataset("iris", "float_input")
    x = ds.batches[0]["float_input"]
    label, probs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"float_input": x})
    got = m.run({"float_input": x})
    np.testing.assert_array_equal(got["label"], label)
    np.testing.assert_allclose(got["probabilities"], [[d[k] for k in sorted(d)] for d in probs], atol=1e-6)
    assert 0.9 < np.mean(label == ds.labels) < 1.0


def test_reference_failure_is_one_clear_line(tmp_path, capsys):
    """A model whose declared input shape the data set does not fit: onnxruntime's refusal, in one line."""
    m = make([helper.make_node("Relu", ["x"], ["y"])], [("x", [3, 2])], [("y", [3, 2])])
    (tmp_path / "fixed.onnx").write_bytes(m.SerializeToString())
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 4), np.float32))
    assert main(["compare", str(tmp_path / "fixed.onnx"), "--numerics", "float", "--dataset",
                 str(tmp_path / "d.npz"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "onnxruntime (the float reference) failed on fixed.onnx" in err and "Traceback" not in err
