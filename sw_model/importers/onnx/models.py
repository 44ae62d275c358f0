"""The repo's reference networks written as ONNX graphs with `onnx.helper` (float32 weights as initializers).

    digits_mlp_onnx(weights, biases)   input "pixels" (N, 64) raw 0..16 -> "logits" (N, 10); Gemm, Relu
    digits_cnn_onnx(params)            input "pixels" (N, 1, 8, 8) -> "logits"; Conv, Relu, MaxPool, Flatten, Gemm
    minilm_onnx(weights)               all-MiniLM-L6-v2, all six layers: inputs "input_ids", "position_ids"
                                       (1, T) int64 -> "last_hidden_state" (1, T, 384) and "sentence_embedding"
                                       (1, 384, the mean over tokens; L2 normalisation is left to the metric).
                                       Gather embeddings, MatMul + Add linears named after the weights
                                       (e.g. encoder.layer.0.attention.self.query), 12-head attention with
                                       Reshape/Transpose/MatMul/Softmax, GELU as its Erf form; LayerNorm as the
                                       LayerNormalization op in layers 0-2 and the embeddings, decomposed
                                       (ReduceMean/Sub/Pow/Sqrt/Div) in layers 3-5, so both forms are exercised.
Opset 17.
"""
from __future__ import annotations

import math

import numpy as np

OPSET = 17


def _f32(a):
    return np.ascontiguousarray(np.asarray(a, np.float32))


class _Builder:
    def __init__(self):
        from onnx import helper, numpy_helper
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, name, value):
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, name=None, **attrs):
        self.count += 1
        name = name or f"{op}_{self.count}"
        out = f"{name}:out"
        self.nodes.append(self.h.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def model(self, name, inputs, outputs):
        from onnx import checker
        graph = self.h.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = self.h.make_model(graph, opset_imports=[self.h.make_opsetid("", OPSET)], producer_name="hwgen")
        m.ir_version = 8                       # onnxruntime 1.x reads IR 8 models of opset 17
        checker.check_model(m)
        return m

    def rename(self, out, name):
        """Make the last node's output the graph output `name`."""
        self.nodes[-1].output[0] = name
        return name


def digits_mlp_onnx(weights, biases):
    """The float MLP (weights (out, in), ReLU between layers) as an ONNX model."""
    from onnx import TensorProto
    b = _Builder()
    x = "pixels"
    for i, (w, bias) in enumerate(zip(weights, biases)):
        x = b.node("Gemm", [x, b.const(f"fc{i}.weight", _f32(w)), b.const(f"fc{i}.bias", _f32(bias))], f"fc{i}",
                   transB=1)
        if i < len(weights) - 1:
            x = b.node("Relu", [x], f"relu{i}")
    b.rename(x, "logits")
    return b.model("digits_mlp", [b.h.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 64])],
                   [b.h.make_tensor_value_info("logits", TensorProto.FLOAT, [None, len(biases[-1])])])


def digits_cnn_onnx(p: dict):
    """The digits CNN (sw_model.networks.digits_cnn parameters c1, b1, c2, b2, fc, b3) as an ONNX model."""
    from onnx import TensorProto
    b = _Builder()
    x = "pixels"
    for i, (c, bias) in enumerate((("c1", "b1"), ("c2", "b2"))):
        x = b.node("Conv", [x, b.const(f"{c}.weight", _f32(p[c])), b.const(f"{c}.bias", _f32(p[bias]))],
                   f"conv{i + 1}", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        x = b.node("Relu", [x], f"relu{i + 1}")
        x = b.node("MaxPool", [x], f"pool{i + 1}", kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("Flatten", [x], "flatten", axis=1)
    x = b.node("Gemm", [x, b.const("fc.weight", _f32(p["fc"])), b.const("fc.bias", _f32(p["b3"]))], "fc", transB=1)
    b.rename(x, "logits")
    return b.model("digits_cnn", [b.h.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 1, 8, 8])],
                   [b.h.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 10])])


def _layer_norm(b, x, w, name, eps, decomposed):
    gamma, beta = b.const(f"{name}.weight", _f32(w[f"{name}.weight"])), b.const(f"{name}.bias", _f32(w[f"{name}.bias"]))
    if not decomposed:
        return b.node("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=eps)
    mu = b.node("ReduceMean", [x], f"{name}/mean", axes=[-1], keepdims=1)
    d = b.node("Sub", [x, mu], f"{name}/sub")
    var = b.node("ReduceMean", [b.node("Pow", [d, b.const(f"{name}/two", np.float32(2))], f"{name}/pow")],
                 f"{name}/var", axes=[-1], keepdims=1)
    std = b.node("Sqrt", [b.node("Add", [var, b.const(f"{name}/eps", np.float32(eps))], f"{name}/add_eps")],
                 f"{name}/sqrt")
    y = b.node("Div", [d, std], f"{name}/div")
    return b.node("Add", [b.node("Mul", [y, gamma], f"{name}/scale"), beta], f"{name}/shift")


def _dense(b, x, w, name):
    y = b.node("MatMul", [x, b.const(f"{name}.weight_t", _f32(w[f"{name}.weight"].T))], name)
    return b.node("Add", [y, b.const(f"{name}.bias", _f32(w[f"{name}.bias"]))], f"{name}/bias")


def minilm_onnx(w: dict, layers: int = 6, heads: int = 12, eps: float = 1e-12):
    """all-MiniLM-L6-v2 (safetensors tensor names -> arrays) as an ONNX model; see the module docstring."""
    from onnx import TensorProto
    b = _Builder()
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    hd = hidden // heads
    x = b.node("Gather", [b.const("embeddings.word_embeddings.weight", _f32(w["embeddings.word_embeddings.weight"])),
                          "input_ids"], "embeddings.word", axis=0)
    pos = b.node("Gather", [b.const("embeddings.position_embeddings.weight",
                                    _f32(w["embeddings.position_embeddings.weight"])), "position_ids"],
                 "embeddings.position", axis=0)
    x = b.node("Add", [x, pos], "embeddings.add_position")
    x = b.node("Add", [x, b.const("embeddings.token_type0", _f32(w["embeddings.token_type_embeddings.weight"][0]))],
               "embeddings.add_token_type")
    x = _layer_norm(b, x, w, "embeddings.LayerNorm", eps, False)
    split = b.const("shape.heads", np.array([0, -1, heads, hd], np.int64))
    merge = b.const("shape.hidden", np.array([0, -1, hidden], np.int64))
    scale = b.const("attention.scale", np.float32(math.sqrt(hd)))
    sqrt2, one, half = (b.const(n, np.float32(v)) for n, v in (("gelu.sqrt2", math.sqrt(2)), ("gelu.one", 1.0),
                                                                   ("gelu.half", 0.5)))
    for j in range(layers):
        p = f"encoder.layer.{j}"
        decomposed = j >= 3
        q, k, v = (b.node("Reshape", [_dense(b, x, w, f"{p}.attention.self.{n}"), split], f"{p}.attention.{n}_split")
                   for n in ("query", "key", "value"))
        q = b.node("Transpose", [q], f"{p}.attention.q_heads", perm=[0, 2, 1, 3])
        k = b.node("Transpose", [k], f"{p}.attention.k_heads", perm=[0, 2, 3, 1])
        v = b.node("Transpose", [v], f"{p}.attention.v_heads", perm=[0, 2, 1, 3])
        s = b.node("Div", [b.node("MatMul", [q, k], f"{p}.attention.scores"), scale], f"{p}.attention.scaled")
        a = b.node("Softmax", [s], f"{p}.attention.softmax", axis=-1)
        ctx = b.node("Transpose", [b.node("MatMul", [a, v], f"{p}.attention.context")], f"{p}.attention.ctx_t",
                     perm=[0, 2, 1, 3])
        ctx = b.node("Reshape", [ctx, merge], f"{p}.attention.merge")
        attn = _dense(b, ctx, w, f"{p}.attention.output.dense")
        h1 = _layer_norm(b, b.node("Add", [x, attn], f"{p}.attention.residual"), w,
                         f"{p}.attention.output.LayerNorm", eps, decomposed)
        f = _dense(b, h1, w, f"{p}.intermediate.dense")
        erf = b.node("Erf", [b.node("Div", [f, sqrt2], f"{p}.gelu.div")], f"{p}.gelu.erf")
        g = b.node("Mul", [b.node("Mul", [f, b.node("Add", [erf, one], f"{p}.gelu.add")], f"{p}.gelu.mul"), half],
                   f"{p}.gelu.half")
        out = b.node("Add", [h1, _dense(b, g, w, f"{p}.output.dense")], f"{p}.output.residual")
        x = _layer_norm(b, out, w, f"{p}.output.LayerNorm", eps, decomposed)
    b.nodes.append(b.h.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    b.nodes.append(b.h.make_node("ReduceMean", ["last_hidden_state"], ["sentence_embedding"], name="mean_pooling",
                                 axes=[1], keepdims=0))
    ids = [b.h.make_tensor_value_info(n, TensorProto.INT64, [1, None]) for n in ("input_ids", "position_ids")]
    return b.model("all_minilm_l6_v2", ids,
                   [b.h.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, None, hidden]),
                    b.h.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, [1, hidden])])
