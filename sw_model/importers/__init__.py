"""Importers of models trained elsewhere: `tflite` reads an int8 TFLite flatbuffer and runs it with numpy integer
kernels that compute what TFLite's reference kernels compute, the GEMMs on an engine backend."""
