"""Each per-layer numeric of the importer against its golden model: the L-Mul dot engine (`lmul_dot`), exact
FP8 products summed the same way, the sparse chain's beat-level model (int8), the BitMoD array (INT8
activations), MX blocks; and the numerics TOML config with its errors."""
import numpy as np
import pytest

from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import array_outputs, make_beats
from sw_model.bitmod.quant import quantize
from sw_model.host.network import GoldenBackend
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.importers.onnx.config import NumericsConfigError, load_config, parse_config
from sw_model.importers.onnx.numerics import dot_codes, get_numeric, numeric_names
from sw_model.lmul.golden import float_add, fmul, lmul_dot, tree_sum, widen
from sw_model.numerics.formats import get_format
from sw_model.numerics.mx import get_mx_format, mx_dequantize, mx_quantize

RNG = np.random.default_rng(3)


def _codes(fmt, shape):
    """Random codes with the special ones (zero, subnormal, max, NaN/Inf) mixed in."""
    f = get_format(fmt)
    c = RNG.integers(0, 1 << f.bits, shape)
    c.flat[:4] = [0, 1, f.max_finite_code, f.nan_code if f.has_nan else 0]
    return c


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "bf16"])
@pytest.mark.parametrize("mode", ["adder", "formula"])
def test_lmul_dot_codes_equal_the_lmul_dot_golden(fmt, mode):
    x, w = _codes(fmt, (4, 48)), _codes(fmt, (5, 48))
    ref = lmul_dot(x[:, None, :].reshape(4, 1, 3, 16), w[None].reshape(1, 5, 3, 16), fmt, "fp32", mode)
    np.testing.assert_array_equal(dot_codes("lmul", fmt, mode, 16, x, w), ref)


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_fmul_dot_codes_equal_exact_products_summed_as_the_engine(fmt):
    x, w = _codes(fmt, (3, 32)), _codes(fmt, (2, 32))
    prods = widen(fmul(x[:, None, :], w[None], fmt), fmt, "fp32").reshape(3, 2, 2, 16)
    beats = tree_sum(prods, "fp32")
    ref = float_add(beats[..., 0], beats[..., 1], "fp32")
    np.testing.assert_array_equal(dot_codes("fmul", fmt, "adder", 16, x, w), ref)


@pytest.mark.parametrize("name", ["lmul-e4m3", "lmul-e5m2-formula", "lmul-bf16"])
def test_lmul_layer_is_the_engines_golden_dot(name):
    """The layer's engine step equals the project's lmuldot golden backend; K pads to the 16 lanes; scales are
    powers of two that keep every product inside the format (<= 16 per factor for E4M3)."""
    nm = get_numeric(name)
    w, x = RNG.normal(size=(6, 20)), RNG.normal(size=(3, 20))
    layer = nm.prepare(w, np.abs(x).max())
    ops = layer.encode(x)
    assert ops.shape == (3, 32) and layer.w_codes.shape == (6, 32) and not ops[:, 20:].any()
    acc, _ = GoldenBackend().dot(nm.engine_config, ops, layer.w_codes)
    np.testing.assert_array_equal(layer.golden(ops), acc)
    if name == "lmul-e4m3":
        assert np.abs(w).max() * 2.0 ** layer.w_shift <= 16 < np.abs(w).max() * 2.0 ** (layer.w_shift + 1)
    y = layer(x)
    assert np.abs(y - x @ w.T).max() < 0.25 * np.abs(x @ w.T).max()


def test_int8_layer_is_the_sparse_chain_golden():
    nm = get_numeric("int8")
    w, x = RNG.normal(size=(9, 24)), RNG.normal(size=(4, 24))
    layer = nm.prepare(w, np.abs(x).max())
    assert (np.abs(layer.w_q).max(axis=1) == 127).all()              # per-channel scales
    ops = layer.encode(x)
    assert np.abs(ops).max() == 127                                   # the calibration max maps to 127
    acc, _ = Int8GoldenBackend().gemm(nm.engine_config, layer.w_q, ops.T)
    np.testing.assert_array_equal(layer.golden(ops), acc.T)
    np.testing.assert_allclose(layer(x), x @ w.T, atol=0.05 * np.abs(x @ w.T).max())
    # inputs beyond the calibrated range saturate instead of wrapping
    assert layer.encode(np.full((1, 24), 10 * np.abs(x).max())).max() == 127


@pytest.mark.parametrize("wdtype", ["fp4", "fp3"])
def test_bitmod_int8_layer_is_the_bitmod_array_golden(wdtype):
    """Integer sums of the INT8 activations and the BitMoD weights (half units x group scale code) equal the
    array's golden outputs for the same codes, datatypes, SV selectors and scales."""
    w, x = RNG.normal(size=(2, 64)), RNG.normal(size=(3, 64))
    layer = get_numeric(f"bitmod-{wdtype}-int8").prepare(w, np.abs(x).max())
    a = layer.encode(x)
    qw = quantize(w, wdtype, 64)
    cfg = BitModConfig(rows=1, cols=2, lanes=4, group_size=64)
    beats = make_beats(cfg, qw.codes, a[:, None, :], qw.dtype, qw.sv, qw.scale)
    np.testing.assert_array_equal(layer.golden(a), array_outputs(cfg, beats).reshape(3, 2))
    np.testing.assert_allclose(layer(x), (a * layer.x_scale) @ qw.dequantize().T, rtol=1e-6)


def test_bitmod_fp16_layer_uses_fp16_activations_and_dequantized_weights():
    w, x = RNG.normal(size=(3, 256)), RNG.normal(size=(2, 256))
    layer = get_numeric("bitmod-fp4-fp16").prepare(w, 1.0)
    ref = x.astype(np.float16).astype(np.float64) @ quantize(w, "fp4", 128).dequantize().T
    np.testing.assert_allclose(layer(x), ref, rtol=1e-6)


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4", "mxint8"])
def test_mx_layer_quantizes_both_operands_in_blocks_along_k(name):
    fmt = get_mx_format(name)
    w, x = RNG.normal(size=(4, 70)), RNG.normal(size=(3, 70)) * np.geomspace(1e-3, 10, 70)
    got = get_numeric(name).prepare(w, 1.0)(x)
    deq = [mx_dequantize(*mx_quantize(a, fmt, axis=1), fmt, axis=1) for a in (x, w)]
    np.testing.assert_allclose(got, deq[0] @ deq[1].T, rtol=1e-6)
    wrong_axis = mx_dequantize(*mx_quantize(x, fmt, axis=0), fmt, axis=0)
    assert not np.allclose(wrong_axis @ deq[1].T, got)             # the blocks run along K, not the batch


def test_every_numeric_name_resolves_and_a_bad_one_is_refused():
    for n in numeric_names():
        assert get_numeric(n).name == n
    with pytest.raises(ValueError, match=r"numeric: got 'lmul-e9m9', allowed: float, lmul-e4m3"):
        get_numeric("lmul-e9m9")


LAYERS = ["fc1", "fc2", "encoder.layer.0.q", "encoder.layer.1.q"]


def test_config_exact_name_beats_patterns_and_first_pattern_wins():
    cfg = parse_config({"default": "int8", "layers": {"encoder.*": "mxfp4", "encoder.layer.1.*": "float",
                                                      "encoder.layer.0.q": "lmul-e4m3"}})
    assert cfg.assign(LAYERS) == {"fc1": "int8", "fc2": "int8", "encoder.layer.0.q": "lmul-e4m3",
                                  "encoder.layer.1.q": "mxfp4"}


@pytest.mark.parametrize("data, message", [
    ({"layers": {"fc1": "lmul-e4m4"}}, r"cfg: layers.'fc1': got 'lmul-e4m4', allowed: float, "),
    ({"default": 3}, r"cfg: default: got 3, allowed: float"),
    ({"layer": {}}, r"cfg: key 'layer' is not known; allowed: default, layers, name"),
    ({"layers": "int8"}, r"cfg: layers: got 'int8', allowed: a table"),
])
def test_config_errors_name_the_key_value_and_allowed(data, message):
    with pytest.raises(NumericsConfigError, match=message):
        parse_config(data, "cfg")


def test_config_rule_matching_no_layer_is_an_error(tmp_path):
    p = tmp_path / "mix.toml"
    p.write_text('default = "float"\n[layers]\n"fc*" = "int8"\n"conv*" = "lmul-e4m3"\n')
    cfg = load_config(p)
    assert cfg.name == "mix"
    with pytest.raises(NumericsConfigError, match=r"mix: layers.'conv\*': matches no layer; allowed: .*fc1"):
        cfg.assign(LAYERS)


def test_config_file_errors(tmp_path):
    with pytest.raises(NumericsConfigError, match=r"--numerics: got 'int9', allowed: a numeric"):
        load_config("int9")
    with pytest.raises(NumericsConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("default = \n")
    with pytest.raises(NumericsConfigError, match="not valid TOML"):
        load_config(bad)


def test_example_configs_assign_the_documented_numerics():
    from pathlib import Path
    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    cnn = load_config(examples / "onnx_numerics_cnn.toml")
    assert cnn.assign(["conv1", "conv2", "fc"]) == {"conv1": "int8", "conv2": "int8", "fc": "lmul-e4m3"}
    names = [f"encoder.layer.{j}.{n}" for j in range(6) for n in (
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense")]
    got = load_config(examples / "onnx_numerics_minilm.toml").assign(names)
    assert got["encoder.layer.3.attention.self.key"] == got["encoder.layer.0.attention.output.dense"] == "lmul-e4m3"
    assert got["encoder.layer.5.intermediate.dense"] == got["encoder.layer.5.output.dense"] == "int8"
