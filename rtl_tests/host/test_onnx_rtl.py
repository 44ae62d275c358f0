"""An imported ONNX model with its layers on the accelerator top's RTL (system-default): L-Mul E4M3 on the
lmuldot engine and int8 PTQ on the sparse chain are bit-exact with the golden numerics, and the simulated cycles
equal the system cycle model's."""
import numpy as np
import pytest
from onnx import helper

from hwgen.host.onnx_compare import compare
from tests.importers.onnx_helpers import make

pytestmark = pytest.mark.rtl


def test_onnx_layers_on_rtl_are_bit_exact(tmp_path):
    rng = np.random.default_rng(5)
    w1, w2 = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)
    m = make([helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"), helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")],
             [("x", [None, 20])], [("y", [None, 3])], [("w1", w1), ("w2", w2)])
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    x = rng.normal(size=(6, 20)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, labels=np.zeros(6, np.int64))
    s = compare(str(tmp_path / "m.onnx"), ["lmul-e4m3", "int8"], str(tmp_path / "d.npz"), backend="rtl",
                rtl_samples=3, cycle_samples=3)
    for r in s["rows"][1:]:
        assert r["rtl_samples"] == 3 and r["rtl_results_checked"] == 3 * (8 + 3)
        assert r["rtl_mismatches"] == 0
        assert r["rtl_cycles_per_inference"] == r["rtl_model_cycles_per_inference"] == r["cycles_per_inference"]
