"""Networks on the golden backend: the compiled L-Mul digits MLP keeps the float network's accuracy, the layer
compiler scales operands into the normal range, and bad input is rejected clearly."""
import numpy as np
import pytest

from hwgen.host.run_network import parse_rtl_layers, run_network
from sw_model.host.network import GoldenBackend, Linear, compile_lmul, run_layer
from sw_model.lmul.config import LMulDotConfig
from sw_model.networks.digits import load_digits


def test_digits_data_is_real():
    x_train, y_train, x_test, y_test = load_digits()
    assert x_train.shape == (1437, 64) and x_test.shape == (360, 64)
    assert x_train.min() == 0 and x_train.max() == 16 and set(np.unique(y_test)) == set(range(10))


def test_digits_mlp_golden_accuracy(tmp_path):
    s = run_network("digits-mlp", out=tmp_path)
    assert s["samples"] == 360 and s["mismatches"] == 0
    assert s["float_accuracy"] > 0.95
    assert s["accuracy"] >= s["float_accuracy"] - 0.01, "E4M3 L-Mul may cost at most one point"
    assert (tmp_path / "run-digits-mlp-golden.json").exists()


def test_layer_matches_float_within_lmul_error():
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.3, (7, 20)), rng.normal(0, 0.1, 7)
    x = rng.uniform(0, 4, (50, 20))
    cfg = LMulDotConfig(lanes=8)
    prog = compile_lmul([Linear(w, b)], cfg, x)
    layer = prog.layers[0]
    assert layer.w_codes.shape == (7, 24)                       # K padded to a multiple of the lanes
    assert np.abs(layer.w_codes[:, :20]).max() > 0 and not layer.w_codes[:, 20:].any()
    y, acc, _ = run_layer(layer, cfg, x, GoldenBackend())
    exact = x @ w.T + b
    rel = np.abs(y - exact).mean() / np.abs(exact).mean()
    assert 0.005 < rel < 0.1, rel                               # L-Mul error, not garbage and not exact


def test_bad_inputs():
    with pytest.raises(ValueError, match="network: got .mnist., allowed: digits-mlp, digits-mlp-int8, digits-snn"):
        run_network("mnist")
    with pytest.raises(ValueError, match="--limit: got 0"):
        run_network("digits-mlp", limit=0)
    with pytest.raises(ValueError, match="--config: got unit 'lmul'"):
        run_network("digits-mlp", config_name="lmul-e4m3")
    with pytest.raises(ValueError, match=r"--rtl-layers: got \[2\], allowed: layer indices 0..1"):
        parse_rtl_layers("0,2", 2, "rtl")
    with pytest.raises(ValueError, match="--rtl-layers: got 'a'"):
        parse_rtl_layers("a", 2, "rtl")
    with pytest.raises(ValueError, match="layer 0: input width 5 does not match"):
        compile_lmul([Linear(np.ones((2, 4)), np.zeros(2))], LMulDotConfig(lanes=4), np.ones((3, 5)))


def test_digits_mlp_int8_golden(tmp_path):
    """TFLite-style int8 network on the sparse-chain model: accuracy within a point of float, and the chain's
    accumulators equal the exact integer products."""
    s = run_network("digits-mlp-int8", out=tmp_path)
    assert s["mismatches"] == 0 and s["samples"] == 360
    assert s["accuracy"] >= s["float_accuracy"] - 0.01


def test_int8_layer_is_exact_integer_gemm_then_tflite_requant():
    from sw_model.host.network_int8 import Int8GoldenBackend, compile_int8, run_int8
    from sw_model.numerics.requant import multiply_by_quantized_multiplier
    from sw_model.sparse.config import SparseChainConfig
    rng = np.random.default_rng(3)
    w, b = rng.normal(0, 0.5, (5, 19)), rng.normal(0, 0.2, 5)
    x = rng.uniform(-2, 2, (30, 19))
    scale, layers = compile_int8([Linear(w, b)], x)
    out, rec = run_int8(SparseChainConfig(stages=3), scale, layers, x, [Int8GoldenBackend()])
    x_q = np.clip(np.round(x / scale), -128, 127).astype(np.int64)
    acc = x_q @ layers[0].w_q.T + layers[0].bias_q
    assert np.array_equal(rec[0]["acc"], acc)
    want = np.clip(multiply_by_quantized_multiplier(acc, layers[0].multiplier, layers[0].shift), -128, 127)
    assert np.array_equal(out, want)
    # and the int8 result tracks the float layer (within a few output steps)
    s_out = np.abs(x @ w.T + b).max() / 127
    assert np.abs(out * s_out - (x @ w.T + b)).max() < 4 * s_out


def test_digits_snn_golden_and_its_errors(tmp_path):
    s = run_network("digits-snn", limit=60, out=tmp_path)
    assert s["mismatches"] == 0 and s["accuracy"] >= s["float_accuracy"] - 0.05
    with pytest.raises(ValueError, match="--config: got 'sparse-chain-8', allowed: none for digits-snn"):
        run_network("digits-snn", config_name="sparse-chain-8")


def test_device_errors_name_what_and_where(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="has no engine with this lmuldot config; it has sparse-chain-8"):
        run_network("digits-mlp", backend="rtl", system="system-int8", out=tmp_path)
    with pytest.raises(ValueError, match="digits-snn: its system holds the two converted cores; allowed: "):
        run_network("digits-snn", backend="rtl", system="system-int8")
    with pytest.raises(ValueError, match="--rtl-samples: got 0"):
        run_network("digits-mlp", backend="rtl", rtl_samples=0)

    from hwgen.host.system_backend import SystemBackend
    from hwgen.system.top import System
    from sw_model.registry import PRESETS
    system_map = {"name": "system-default", "unit": "system", **System(PRESETS["system-default"]).manifest_extra()}

    def dies(self, program):
        raise RuntimeError("bulk simulation failed (verilator): killed")
    monkeypatch.setattr(SystemBackend, "manifest", property(lambda self: system_map))   # no Verilog needed
    monkeypatch.setattr(SystemBackend, "execute", dies)
    with pytest.raises(RuntimeError, match=r"digits-mlp-int8: the rtl backend failed at samples 0\.\.9 "
                                           r"\(bulk simulation failed \(verilator\): killed\); no summary was written"):
        run_network("digits-mlp-int8", backend="rtl", limit=10, out=tmp_path)
    assert not list(tmp_path.glob("*.json")), "a partial run must not leave a summary"
