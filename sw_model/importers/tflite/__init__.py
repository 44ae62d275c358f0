"""Int8 TFLite models on the host + the sparse chain engine, bit-exact with TFLite's reference kernels.

    from sw_model.importers.tflite import TFLiteProgram
    prog = TFLiteProgram("model.tflite")          # refuses unsupported ops/types here, naming op and index
    outputs = prog.invoke(x)                      # state (resource variables) kept; prog.reset() clears it

`reader` parses the flatbuffer with the `tflite` schema package, `kernels` holds the host kernels, `engine_ops`
maps CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED to engine GEMMs, `program` runs a model, `writer` writes small
models (tests, the digits model in `models/`). See docs/import.md."""
from sw_model.importers.tflite.program import ENGINE_OPS, HOST_OPS, TFLiteProgram
from sw_model.importers.tflite.reader import TFLiteError, read_model

__all__ = ["ENGINE_OPS", "HOST_OPS", "TFLiteError", "TFLiteProgram", "read_model"]
