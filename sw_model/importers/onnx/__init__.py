"""ONNX import: `graph` (load + check + numpy float32 executor), `numerics` (per-layer number formats of the
matmul/conv layers), `config` (the TOML that picks them), `models` (the repo's networks written as ONNX)."""
