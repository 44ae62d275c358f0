"""Importers of models trained elsewhere. `tflite` reads an int8 TFLite flatbuffer and runs it with numpy integer
kernels that compute what TFLite's reference kernels compute, the GEMMs on an engine backend; `onnx` reads a float
ONNX model and runs it in numpy float32 with per-layer numerics."""
