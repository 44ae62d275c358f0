"""The ONNX importer's float path against onnxruntime (equal within float32 tolerance), operator by operator
and on the repo's networks written as ONNX; unsupported models are refused before anything runs."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from sw_model.importers.onnx.graph import UnsupportedModel, load_graph, run_graph
from sw_model.importers.onnx.models import digits_cnn_onnx, digits_mlp_onnx, minilm_onnx
from tests.importers.onnx_helpers import make, ort_run

RNG = np.random.default_rng(7)


def _r(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def _check(model, feeds, rtol=1e-5, atol=1e-5):
    ref = ort_run(model, feeds)
    got = run_graph(load_graph(model), feeds)
    for name, r in zip([o.name for o in model.graph.output], ref):
        assert got[name].shape == r.shape, name
        np.testing.assert_allclose(got[name], r, rtol=rtol, atol=atol, err_msg=name)


N = helper.make_node
CASES = {
    "matmul_add": ([N("MatMul", ["x", "w"], ["m"], name="mm"), N("Add", ["m", "b"], ["y"])],
                   [("x", [2, 3, 5])], [("y", [2, 3, 4])], [("w", _r(5, 4)), ("b", _r(4))]),
    "gemm_transB_alpha_beta": ([N("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
                               [("x", [3, 5])], [("y", [3, 4])], [("w", _r(4, 5)), ("b", _r(4))]),
    "gemm_plain": ([N("Gemm", ["x", "w"], ["y"])], [("x", [3, 5])], [("y", [3, 4])], [("w", _r(5, 4))]),
    "conv_stride_pad": ([N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 0, 2, 1], strides=[2, 1])],
                        [("x", [2, 3, 7, 6])], [("y", None)], [("w", _r(4, 3, 3, 3)), ("b", _r(4))]),
    "conv_dilated": ([N("Conv", ["x", "w"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])],
                     [("x", [1, 2, 6, 6])], [("y", None)], [("w", _r(3, 2, 2, 2))]),
    "activations": ([N("Relu", ["x"], ["a"]), N("Tanh", ["x"], ["b"]), N("Sigmoid", ["x"], ["c"]),
                     N("Erf", ["x"], ["d"]), N("Concat", ["a", "b", "c", "d"], ["y"], axis=1)],
                    [("x", [3, 4])], [("y", [3, 16])], []),
    "softmax_axis1": ([N("Softmax", ["x"], ["y"], axis=1)], [("x", [2, 5, 3])], [("y", [2, 5, 3])], []),
    "layernorm": ([N("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-3)],
                  [("x", [2, 3, 8])], [("y", [2, 3, 8])], [("g", _r(8)), ("b", _r(8))]),
    "layernorm_decomposed": ([N("ReduceMean", ["x"], ["mu"], axes=[-1]), N("Sub", ["x", "mu"], ["d"]),
                              N("Pow", ["d", "two"], ["d2"]), N("ReduceMean", ["d2"], ["var"], axes=[-1]),
                              N("Add", ["var", "eps"], ["ve"]), N("Sqrt", ["ve"], ["s"]), N("Div", ["d", "s"], ["n"]),
                              N("Mul", ["n", "g"], ["ng"]), N("Add", ["ng", "b"], ["y"])],
                             [("x", [3, 8])], [("y", [3, 8])],
                             [("two", np.float32(2)), ("eps", np.float32(1e-5)), ("g", _r(8)), ("b", _r(8))]),
    "reshape_transpose_flatten": ([N("Reshape", ["x", "s"], ["r"]), N("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),
                                   N("Flatten", ["t"], ["y"], axis=2)],
                                  [("x", [2, 6, 4])], [("y", None)], [("s", np.array([0, 6, 2, -1], np.int64))]),
    "gather_embeddings": ([N("Gather", ["e", "ids"], ["y"], axis=0)], [("ids", [1, 5], TensorProto.INT64)],
                          [("y", [1, 5, 3])], [("e", _r(10, 3))]),
    "pools": ([N("MaxPool", ["x"], ["a"], kernel_shape=[2, 2], strides=[2, 2]),
               N("AveragePool", ["x"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
               N("AveragePool", ["x"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                 count_include_pad=1),
               N("GlobalAveragePool", ["x"], ["d"])],
              [("x", [2, 3, 6, 6])], [("a", None), ("b", None), ("c", None), ("d", None)], []),
    "shape_unsqueeze_constant": ([N("Shape", ["x"], ["s"]), N("Constant", [], ["k"], value_ints=[0]),
                                  N("Gather", ["s", "k"], ["s0"]), N("Unsqueeze", ["x", "ax"], ["u"]),
                                  N("Squeeze", ["u", "ax"], ["q"]), N("Cast", ["s0"], ["f"], to=TensorProto.FLOAT),
                                  N("Mul", ["q", "f"], ["y"])],
                                 [("x", [4, 3])], [("y", [4, 3])], [("ax", np.array([1], np.int64))]),
}


@pytest.mark.parametrize("case", CASES)
def test_operators_match_onnxruntime(case):
    nodes, inputs, outputs, inits = CASES[case]
    feeds = {}
    for name, shape, *t in inputs:
        feeds[name] = RNG.integers(0, 10, shape).astype(np.int64) if t else _r(*shape)
    _check(make(nodes, inputs, outputs, inits), feeds)


@pytest.mark.parametrize("opset, axis", [(11, 1), (11, -1), (13, 1)])
def test_softmax_follows_the_models_opset(opset, axis):
    """Before opset 13 Softmax normalises over the input flattened at `axis`; from 13 along `axis` only."""
    m = make([N("Softmax", ["x"], ["y"], axis=axis)], [("x", [2, 3, 4])], [("y", [2, 3, 4])], opset=opset)
    _check(m, {"x": _r(2, 3, 4)})


def test_flatten_at_the_last_axis_and_integer_division():
    m = make([N("Flatten", ["x"], ["y"], axis=2)], [("x", [2, 3])], [("y", [6, 1])])
    _check(m, {"x": _r(2, 3)})
    m = make([N("Div", ["a", "b"], ["y"])], [("a", [4], TensorProto.INT64), ("b", [4], TensorProto.INT64)],
             [("y", [4], TensorProto.INT64)])
    feeds = {"a": np.array([7, -7, 7, -7]), "b": np.array([2, 2, -2, -2])}
    np.testing.assert_array_equal(run_graph(load_graph(m), feeds)["y"], ort_run(m, feeds)[0])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_op_matches_onnxruntime(approximate):
    m = make([N("Gelu", ["x"], ["y"], approximate=approximate)], [("x", [4, 5])], [("y", [4, 5])], opset=20)
    _check(m, {"x": _r(4, 5) * 3})


def test_digits_networks_as_onnx_match_onnxruntime():
    mlp = digits_mlp_onnx([_r(32, 64), _r(10, 32)], [_r(32), _r(10)])
    _check(mlp, {"pixels": RNG.integers(0, 17, (5, 64)).astype(np.float32)}, rtol=1e-4, atol=1e-4)
    p = {"c1": _r(8, 1, 3, 3), "b1": _r(8), "c2": _r(16, 8, 3, 3), "b2": _r(16), "fc": _r(10, 64), "b3": _r(10)}
    cnn = digits_cnn_onnx(p)
    _check(cnn, {"pixels": RNG.integers(0, 17, (3, 1, 8, 8)).astype(np.float32)}, rtol=1e-4, atol=1e-3)
    assert [l.name for l in load_graph(cnn).layers()] == ["conv1", "conv2", "fc"]


def test_minilm_writer_matches_onnxruntime_on_tiny_weights():
    """The encoder writer (both LayerNorm forms: layers 3+ are decomposed) on random tiny weights."""
    h, f, v = 8, 16, 20
    w = {"embeddings.word_embeddings.weight": _r(v, h), "embeddings.position_embeddings.weight": _r(12, h),
         "embeddings.token_type_embeddings.weight": _r(2, h), "embeddings.LayerNorm.weight": _r(h),
         "embeddings.LayerNorm.bias": _r(h)}
    for j in range(4):
        p = f"encoder.layer.{j}"
        for n, shape in ((".attention.self.query", (h, h)), (".attention.self.key", (h, h)),
                         (".attention.self.value", (h, h)), (".attention.output.dense", (h, h)),
                         (".intermediate.dense", (f, h)), (".output.dense", (h, f))):
            w[p + n + ".weight"], w[p + n + ".bias"] = _r(*shape) * 0.3, _r(shape[0])
        for n in (".attention.output.LayerNorm", ".output.LayerNorm"):
            w[p + n + ".weight"], w[p + n + ".bias"] = _r(h), _r(h)
    m = minilm_onnx(w, layers=4, heads=2)
    ops = {n.op_type for n in m.graph.node}
    assert {"LayerNormalization", "ReduceMean", "Erf", "Softmax", "Gather"} <= ops
    ids = RNG.integers(0, v, (1, 7)).astype(np.int64)
    _check(m, {"input_ids": ids, "position_ids": np.arange(7, dtype=np.int64)[None]}, rtol=1e-4, atol=1e-4)


def test_unsupported_op_is_refused_at_load_naming_node_and_op():
    m = make([N("Relu", ["x"], ["a"], name="r"), N("Resize", ["a"], ["y"], name="upsample1")],
             [("x", [1, 1, 2, 2])], [("y", None)])
    with pytest.raises(UnsupportedModel, match=r"node 'upsample1': op Resize is not supported; allowed: .*Relu"):
        load_graph(m)


def test_unsupported_attribute_and_domain_are_refused():
    conv = make([N("Conv", ["x", "w"], ["y"], name="dw", kernel_shape=[3, 3], group=2)], [("x", [1, 2, 5, 5])],
                [("y", None)], [("w", _r(2, 1, 3, 3))])
    with pytest.raises(UnsupportedModel, match=r"node 'dw': op Conv with group=2 is not supported"):
        load_graph(conv)
    custom = make([N("Relu", ["x"], ["y"], name="myrelu", domain="com.example")], [("x", [2])], [("y", [2])])
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedModel, match=r"node 'myrelu': op Relu \(domain com.example\)"):
        load_graph(custom)


def test_auto_pad_and_computed_weights_are_refused_at_load():
    pool = make([N("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2], auto_pad="SAME_UPPER")],
                [("x", [1, 1, 4, 4])], [("y", None)])
    with pytest.raises(UnsupportedModel, match=r"node 'p': op MaxPool with auto_pad SAME_UPPER is not supported"):
        load_graph(pool)
    gemm = make([N("Transpose", ["w"], ["wt"]), N("Gemm", ["x", "wt"], ["y"], name="g")],
                [("x", [2, 3]), ("w", [4, 3])], [("y", [2, 4])])
    with pytest.raises(UnsupportedModel, match=r"node 'g': op Gemm with a computed weight \(wt\)"):
        load_graph(gemm)


def test_missing_feed_and_bad_file_are_clear_errors(tmp_path):
    m = make([N("Relu", ["x"], ["y"])], [("x", [2])], [("y", [2])])
    with pytest.raises(ValueError, match="missing graph input"):
        run_graph(load_graph(m), {})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot read"):
        load_graph(str(bad))
    with pytest.raises(ValueError, match="does not exist"):
        load_graph(str(tmp_path / "missing.onnx"))


def test_layer_hook_sees_every_weight_layer_with_its_weight():
    """Numerics replace exactly the MatMul/Gemm/Conv products with constant weights, in (out, K) layout."""
    w1, w2 = _r(5, 4), _r(3, 4)
    m = make([N("MatMul", ["x", "w1"], ["a"], name="mm"), N("Gemm", ["a", "w2"], ["b"], name="g", transB=1),
              N("MatMul", ["b", "bt"], ["y"], name="act_act")],
             [("x", [2, 5]), ("bt", [3, 2])], [("y", [2, 2])], [("w1", w1), ("w2", w2)])
    seen = {}

    def hook(layer, x, w):
        seen[layer.name] = w.shape
        return x @ w.T
    run_graph(load_graph(m), {"x": _r(2, 5), "bt": _r(3, 2)}, hook)
    assert seen == {"mm": (4, 5), "g": (3, 4)}
