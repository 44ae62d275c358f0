"""Small ONNX graphs for the importer tests (one op or a short chain), built with onnx.helper."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper


def make(nodes, inputs, outputs, inits=(), opset=17):
    """inputs / outputs: [(name, shape)] float32 (or (name, shape, elem_type))."""
    def vi(spec):
        name, shape, *t = spec
        return helper.make_tensor_value_info(name, t[0] if t else TensorProto.FLOAT, shape)
    g = helper.make_graph(nodes, "t", [vi(i) for i in inputs], [vi(o) for o in outputs],
                          [numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8 if opset <= 17 else 9
    return m


def ort_run(model, feeds):
    import onnxruntime as ort
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)
