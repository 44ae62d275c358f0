"""The LiteRT interpreter on its reference kernels, for the importer's comparisons (a dev dependency: a missing
package is an error with the fix, not a skip)."""
import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError as e:                                    # pragma: no cover - the message is the point
    raise ImportError("the TFLite tests compare with the LiteRT interpreter: run `pip install ai-edge-litert` "
                      "(in the dev extras)") from e


def interpreter(model, resolver=None, keep=False):
    """An allocated interpreter for a path or bytes; reference kernels unless `resolver` says otherwise."""
    kind = OpResolverType.BUILTIN_REF if resolver is None else resolver
    src = {"model_path": str(model)} if not isinstance(model, (bytes, bytearray)) else {"model_content": bytes(model)}
    it = Interpreter(**src, experimental_op_resolver_type=kind, experimental_preserve_all_tensors=keep)
    it.allocate_tensors()
    return it


def invoke(it, *xs):
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], np.asarray(x).reshape(d["shape"]).astype(d["dtype"]))
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]
