"""An ONNX model as a plain graph, checked against the supported operators and executed in numpy float32.

`load_graph(path | bytes | ModelProto)` reads the model with the `onnx` package (only here) into `Graph`: nodes
in topological order, initializers as numpy arrays, graph inputs/outputs. `check_supported` refuses a graph with
an operator outside `SUPPORTED_OPS` before anything runs, naming the first such node and its op.

`run_graph(graph, feeds, linear=None)` executes it. Every MatMul/Gemm/Conv whose weight is a constant is a
*layer* (`graph.layers()`): the executor lowers it to y = x2d @ W.T (Conv through im2col, Gemm with transA/transB
folded) and calls `linear(layer, x2d, w)` for that product, so a numerics choice replaces the product only; the
bias, and every other operator, stays float32 on the host. MatMuls of two activations (attention scores) always
run in float32 on the host.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

try:                                            # scipy's erf is vectorised; math.erf is the fallback
    from scipy.special import erf as _erf
except ImportError:                             # pragma: no cover - scipy is installed in CI
    _erf = np.vectorize(math.erf, otypes=[np.float64])

LAYER_OPS = ("MatMul", "Gemm", "Conv", "LinearClassifier")
ML_DOMAIN = "ai.onnx.ml"


class UnsupportedModel(ValueError):
    """The model uses something the importer does not run; the message names the node and the op."""


@dataclass
class Node:
    name: str
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    domain: str = ""


@dataclass
class Layer:
    """A MatMul/Gemm/Conv with a constant weight: `w` (out, K) as the executor multiplies it, `kind` the op."""
    name: str
    kind: str
    w: np.ndarray


@dataclass
class Graph:
    """A loaded model: `nodes` in execution order, `constants` (initializers and Constant outputs), the names of
    the graph `inputs` (those without an initializer) and `outputs`; `input_shapes` as declared (None: dynamic)."""
    name: str
    nodes: list
    constants: dict
    inputs: list
    outputs: list
    input_shapes: dict = field(default_factory=dict)
    input_types: dict = field(default_factory=dict)
    opset: int = 17

    def layers(self) -> list[Layer]:
        """The layers whose product a numerics choice can replace, in execution order."""
        out = []
        for n in self.nodes:
            if n.op == "LinearClassifier":
                k = len(n.attrs["intercepts"])
                out.append(Layer(n.name, n.op, np.asarray(n.attrs["coefficients"], np.float32).reshape(k, -1)))
            elif n.op in LAYER_OPS and n.inputs[1] in self.constants:
                out.append(Layer(n.name, n.op, _layer_weight(n, self.constants[n.inputs[1]])))
        return out


def _layer_weight(node: Node, w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, np.float32)
    if node.op == "Conv":
        return w.reshape(w.shape[0], -1)
    if node.op == "Gemm":
        return w if node.attrs.get("transB", 0) else w.T
    if w.ndim != 2:
        raise UnsupportedModel(f"node {node.name!r} (MatMul): constant weight of shape {w.shape}, allowed: 2-D")
    return w.T


def _attr(a):
    from onnx import helper, numpy_helper
    v = helper.get_attribute_value(a)
    if hasattr(v, "dims") and hasattr(v, "data_type"):          # a TensorProto
        return numpy_helper.to_array(v)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def load_graph(model) -> Graph:
    """A Graph from a path, serialized bytes or an onnx.ModelProto; unsupported operators are refused."""
    import onnx
    from onnx import numpy_helper
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        try:
            model = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
        except FileNotFoundError:
            raise ValueError(f"model: {model!r} does not exist, allowed: an .onnx file") from None
        except Exception as e:
            raise ValueError(f"model: cannot read {model!r} as ONNX ({e})") from None
    g = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for k, n in enumerate(g.node):
        node = Node(n.name or f"{n.op_type}_{k}", n.op_type, list(n.input), list(n.output),
                    {a.name: _attr(a) for a in n.attribute}, n.domain)
        nodes.append(node)
    shapes, types = {}, {}
    for i in g.input:
        if i.name in constants:
            continue
        t = i.type.tensor_type
        shapes[i.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        types[i.name] = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type) if t.elem_type else np.float32
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    graph = Graph(g.name or "model", nodes, constants, [i.name for i in g.input if i.name not in constants],
                  [o.name for o in g.output], shapes, types, opset)
    check_supported(graph)
    for n in graph.nodes:                        # fold Constant nodes once
        if n.op == "Constant":
            graph.constants[n.outputs[0]] = _constant(n)
    for n in graph.nodes:
        if n.op in ("Gemm", "Conv") and n.inputs[1] not in graph.constants:
            raise UnsupportedModel(f"node {n.name!r}: op {n.op} with a computed weight ({n.inputs[1]}) is not "
                                   "supported; allowed: weights as initializers or Constant nodes")
    return graph


def check_supported(graph: Graph):
    """Raise UnsupportedModel naming the first node whose operator (or attribute) this executor does not run."""
    for n in graph.nodes:
        known = ML_OPS if n.domain == ML_DOMAIN else OPS if n.domain in ("", "ai.onnx") else {}
        if n.op not in known:
            dom = f" (domain {n.domain})" if n.domain not in ("", "ai.onnx") else ""
            raise UnsupportedModel(f"node {n.name!r}: op {n.op}{dom} is not supported; allowed: "
                                   f"{', '.join(sorted(OPS))}")
        check = _CHECKS.get(n.op)
        if check:
            problem = check(n)
            if problem:
                raise UnsupportedModel(f"node {n.name!r}: op {n.op} {problem}")


# ---------------------------------------------------------------------------------------------- operators
def _constant(n: Node) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in n.attrs:
            v = n.attrs[key]
            return np.asarray(v, dtype=np.float32 if "float" in key else np.int64 if "int" in key else None)
    raise UnsupportedModel(f"node {n.name!r}: op Constant without a value/value_float(s)/value_int(s) attribute")


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_op(n, v, opset):
    """Opset >= 13: along `axis` (default -1); before: over the input coerced to 2-D at `axis` (default 1)."""
    x = v[0]
    if opset >= 13:
        return _softmax(x, n.attrs.get("axis", -1))
    axis = n.attrs.get("axis", 1) % max(x.ndim, 1)
    return _softmax(x.reshape(int(np.prod(x.shape[:axis])), -1), 1).reshape(x.shape)


def _layer_norm(x, gamma, beta, axis, eps):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + np.float32(eps))
    y = y * gamma
    return y + beta if beta is not None else y


def _pads(n: Node, spatial: int) -> list[int]:
    if n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise UnsupportedModel(f"node {n.name!r}: op {n.op} auto_pad {n.attrs['auto_pad']} is not supported; "
                               "allowed: NOTSET or VALID (explicit pads)")
    return list(n.attrs.get("pads", [0] * (2 * spatial)))


def im2col(x, kh, kw, sh, sw, pads, dh=1, dw=1, fill=0.0):
    """(B, C, H, W) -> (B, OH, OW, C*kh*kw) patches (C-major, then kh, kw as a Conv weight flattens)."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=fill)
    oh = (h + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((b, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(b, oh, ow, c * kh * kw), (oh, ow)


def _pool(n: Node, x, kind):
    if x.ndim != 4:
        raise UnsupportedModel(f"node {n.name!r}: op {n.op} on a {x.ndim}-D input, allowed: 4-D (N, C, H, W)")
    kh, kw = n.attrs["kernel_shape"]
    sh, sw = n.attrs.get("strides", [1, 1])
    pads = _pads(n, 2)
    fill = -np.inf if kind == "max" else 0.0
    b, c = x.shape[:2]
    cols, (oh, ow) = im2col(x.reshape(b * c, 1, *x.shape[2:]), kh, kw, sh, sw, pads, fill=fill)
    if kind == "max":
        y = cols.max(axis=-1)
    elif n.attrs.get("count_include_pad", 0) or not any(pads):
        y = cols.mean(axis=-1)
    else:
        ones = np.ones((1, 1) + x.shape[2:], x.dtype)
        cnt, _ = im2col(ones, kh, kw, sh, sw, pads)
        y = cols.sum(axis=-1) / cnt.sum(axis=-1)
    return y.reshape(b, c, oh, ow).astype(np.float32)


def _axes(n: Node, vals, pos=1):
    if len(vals) > pos and vals[pos] is not None:
        return [int(a) for a in np.ravel(vals[pos])]
    return n.attrs.get("axes")


def _reduce_mean(n, v):
    axes = _axes(n, v)
    if axes is None and n.attrs.get("noop_with_empty_axes", 0):
        return v[0]
    return v[0].mean(axis=None if axes is None else tuple(axes), keepdims=bool(n.attrs.get("keepdims", 1)))


def _reshape(n, v):
    shape = [int(s) for s in v[1]]
    if not n.attrs.get("allowzero", 0):
        shape = [v[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return v[0].reshape(shape)


def _unsqueeze(n, v):
    x = v[0]
    axes = sorted(a % (x.ndim + len(_axes(n, v))) for a in _axes(n, v))
    for a in axes:
        x = np.expand_dims(x, a)
    return x


def _squeeze(n, v):
    axes = _axes(n, v)
    return np.squeeze(v[0], axis=None if axes is None else tuple(axes))


def _flatten(n, v):
    axis = n.attrs.get("axis", 1)
    axis = axis + v[0].ndim if axis < 0 else axis
    return v[0].reshape(int(np.prod(v[0].shape[:axis])), -1)


def _gather(n, v):
    return np.take(v[0], np.asarray(v[1], np.int64), axis=n.attrs.get("axis", 0))


def _cast(n, v):
    from onnx import helper
    return v[0].astype(helper.tensor_dtype_to_np_dtype(n.attrs["to"]))


def _binary(f):
    return lambda n, v: f(v[0], v[1])


def _f32(a):
    return a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a


OPS: dict[str, Callable] = {
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply),
    "Div": lambda n, v: v[0] / v[1] if v[0].dtype.kind == "f" else
    (np.sign(v[0]) * np.sign(v[1]) * (np.abs(v[0]) // np.abs(v[1]))).astype(v[0].dtype),   # truncates as C does
    "Pow": lambda n, v: np.power(v[0], v[1].astype(v[0].dtype)), "Sqrt": lambda n, v: np.sqrt(v[0]),
    "Relu": lambda n, v: np.maximum(v[0], np.float32(0)).astype(v[0].dtype),
    "Erf": lambda n, v: _erf(v[0].astype(np.float64)).astype(v[0].dtype),
    "Gelu": lambda n, v: (0.5 * v[0] * (1 + np.tanh(np.sqrt(2 / np.pi) * (v[0] + 0.044715 * v[0] ** 3)))
                          if n.attrs.get("approximate", "none") == "tanh"
                          else 0.5 * v[0] * (1 + _erf(v[0].astype(np.float64) / math.sqrt(2)))).astype(v[0].dtype),
    "Tanh": lambda n, v: np.tanh(v[0]), "Sigmoid": lambda n, v: (1 / (1 + np.exp(-v[0]))).astype(v[0].dtype),
    "Softmax": None,                                    # run_graph: depends on the opset
    "LayerNormalization": lambda n, v: _layer_norm(v[0], v[1], v[2] if len(v) > 2 else None,
                                                   n.attrs.get("axis", -1), n.attrs.get("epsilon", 1e-5)),
    "ReduceMean": _reduce_mean, "Reshape": _reshape,
    "Transpose": lambda n, v: np.transpose(v[0], n.attrs.get("perm")),
    "Flatten": _flatten, "Concat": lambda n, v: np.concatenate(v, axis=n.attrs["axis"]),
    "Gather": _gather, "Shape": lambda n, v: np.array(v[0].shape[n.attrs.get("start", 0):n.attrs.get("end")],
                                                      np.int64),
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Identity": lambda n, v: v[0], "Cast": _cast,
    "Constant": lambda n, v: _constant(n),
    "MaxPool": lambda n, v: _pool(n, v[0], "max"), "AveragePool": lambda n, v: _pool(n, v[0], "avg"),
    "GlobalAveragePool": lambda n, v: v[0].mean(axis=tuple(range(2, v[0].ndim)), keepdims=True),
    "MatMul": None, "Gemm": None, "Conv": None,           # the layers: run_graph handles them
}


def _check_gemm(n):
    if n.attrs.get("transA", 0):
        return "with transA=1 is not supported; allowed: transA=0"
    return None


def _check_auto_pad(n):
    if n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return f"with auto_pad {n.attrs['auto_pad']} is not supported; allowed: NOTSET or VALID (explicit pads)"
    return None


def _check_conv(n):
    if _check_auto_pad(n):
        return _check_auto_pad(n)
    if n.attrs.get("group", 1) != 1:
        return f"with group={n.attrs['group']} is not supported; allowed: group=1"
    if len(n.attrs.get("kernel_shape", [0, 0])) != 2:
        return "is not 2-D; allowed: 2-D convolutions"
    return None


def _check_pool(n):
    if _check_auto_pad(n):
        return _check_auto_pad(n)
    if n.attrs.get("ceil_mode", 0):
        return "with ceil_mode=1 is not supported; allowed: ceil_mode=0"
    if list(n.attrs.get("dilations", [1, 1])) != [1, 1] or len(n.attrs.get("kernel_shape", [])) != 2:
        return "with dilations or a non-2-D kernel is not supported; allowed: 2-D, dilation 1"
    if len(n.outputs) > 1 and n.outputs[1]:
        return "with an Indices output is not supported"
    return None


def _check_linear_classifier(n):
    if "classlabels_ints" not in n.attrs:
        return "without classlabels_ints is not supported; allowed: integer class labels"
    if n.attrs.get("multi_class", 0) != 0 or len(n.attrs["intercepts"]) < 2:
        return "with multi_class=1 or a single (binary) score is not supported; allowed: one score per class"
    if n.attrs.get("post_transform", "NONE") not in ("NONE", "LOGISTIC", "SOFTMAX"):
        return f"post_transform {n.attrs['post_transform']} is not supported; allowed: NONE, LOGISTIC, SOFTMAX"
    return None


def _normalizer(n, v):
    x = v[0].astype(np.float32)
    norm = n.attrs.get("norm", "MAX")
    d = np.abs(x).sum(1, keepdims=True) if norm == "L1" else np.sqrt((x * x).sum(1, keepdims=True)) \
        if norm == "L2" else np.abs(x).max(1, keepdims=True)
    return x / np.where(d == 0, np.float32(1), d)


# ai.onnx.ml operators (scikit-learn exports): a linear classifier is a layer; ZipMap keeps the (N, classes)
# probabilities as an array in class order (onnxruntime returns the same numbers as a list of {class: p} maps)
ML_OPS: dict[str, Callable] = {"LinearClassifier": None, "Normalizer": _normalizer, "ZipMap": lambda n, v: v[0]}

_CHECKS = {"LinearClassifier": _check_linear_classifier, "Gemm": _check_gemm, "Conv": _check_conv, "MaxPool": _check_pool, "AveragePool": _check_pool}


# ---------------------------------------------------------------------------------------------- executor
def float_linear(layer: Layer, x2d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The reference product: float32 x2d (M, K) @ w (N, K).T."""
    return np.asarray(x2d, np.float32) @ np.asarray(w, np.float32).T


def _run_layer(n: Node, v: list, layer: Layer, linear) -> np.ndarray:
    x = np.asarray(v[0], np.float32)
    bias = np.asarray(v[2], np.float32) if len(v) > 2 and v[2] is not None else None
    if n.op == "LinearClassifier":
        scores = linear(layer, x.reshape(len(x), -1), layer.w) + np.asarray(n.attrs["intercepts"], np.float32)
        label = np.asarray(n.attrs["classlabels_ints"], np.int64)[scores.argmax(axis=1)]
        post = n.attrs.get("post_transform", "NONE")
        if post == "LOGISTIC":
            scores = 1 / (1 + np.exp(-scores))
        elif post == "SOFTMAX":
            scores = _softmax(scores, 1)
        return label, scores.astype(np.float32)
    if n.op == "MatMul":
        y = linear(layer, x.reshape(-1, x.shape[-1]), layer.w).reshape(x.shape[:-1] + (layer.w.shape[0],))
    elif n.op == "Gemm":
        y = linear(layer, x, layer.w) * np.float32(n.attrs.get("alpha", 1.0))
        if bias is not None:
            y = y + np.float32(n.attrs.get("beta", 1.0)) * bias
        return y.astype(np.float32)
    else:                                               # Conv (N, C, H, W)
        kh, kw = n.attrs.get("kernel_shape") or v[1].shape[2:]
        sh, sw = n.attrs.get("strides", [1, 1])
        dh, dw = n.attrs.get("dilations", [1, 1])
        cols, (oh, ow) = im2col(x, kh, kw, sh, sw, _pads(n, 2), dh, dw)
        y = linear(layer, cols.reshape(-1, cols.shape[-1]), layer.w)
        y = y.reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2)
        if bias is not None:
            y = y + bias[:, None, None]
        return np.ascontiguousarray(y, dtype=np.float32)
    return (y + bias if bias is not None else y).astype(np.float32)


def run_graph(graph: Graph, feeds: dict, linear: Callable | None = None, keep: bool = False) -> dict:
    """Execute the graph on `feeds` (input name -> array); returns {output name: array} (with keep=True every
    intermediate value too). `linear(layer, x2d, w)` computes each layer's product (default float32)."""
    linear = linear or float_linear
    missing = [i for i in graph.inputs if i not in feeds]
    if missing:
        raise ValueError(f"feeds: missing graph input(s) {', '.join(missing)}; the model takes "
                         f"{', '.join(graph.inputs)}")
    env = dict(graph.constants)
    for k, a in feeds.items():
        a = np.asarray(a)
        env[k] = a.astype(np.float32) if a.dtype.kind == "f" else a
    layers = {l.name: l for l in graph.layers()}
    for n in graph.nodes:
        if n.op == "Constant":
            continue
        v = [env[i] if i else None for i in n.inputs]
        if n.name in layers:
            out = _run_layer(n, v, layers[n.name], linear)
        elif n.op in LAYER_OPS:
            if n.op != "MatMul":
                raise UnsupportedModel(f"node {n.name!r}: op {n.op} with a non-constant weight is not supported; "
                                       "allowed: weights as initializers")
            out = np.matmul(v[0], v[1])
        elif n.op == "Softmax":
            out = _softmax_op(n, v, graph.opset)
        else:
            out = (ML_OPS if n.domain == ML_DOMAIN else OPS)[n.op](n, v)
        for name, value in zip(n.outputs, out if isinstance(out, tuple) else (out,)):
            env[name] = _f32(np.asarray(value))
    return env if keep else {o: env[o] for o in graph.outputs}
