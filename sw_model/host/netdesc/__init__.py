"""A small network description (Python API) and its int8 compiler onto the sparse DSP chain engine.

    net = Network((1, 8, 8), [Conv2d(w1, b1, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(w2, b2)])
    program = compile_int8(net, calibration_images, SparseChainConfig(stages=8))
    logits_q, records = program.run(images)               # golden backend; or backends={step: RtlBackend()}

Tensors are per image (C, H, W), (tokens, features) or (features,); a batch adds a leading axis. Quantization
follows TFLite's int8 reference kernels: per-output-channel symmetric int8 weights (scale max|w_c| / 127), int32 bias
round(b / (s_in s_w[c])), per-tensor symmetric int8 activations (zero point 0, scale max|a| / 127 over the
calibration set), requantization with `sw_model.numerics.requant` (MultiplyByQuantizedMultiplier per channel). Linear and
Conv2d run as a GEMM on the engine (`backend.gemm(config, w_q, x_q)` -> int32): Conv2d via im2col, the patch
matrix (C*kh*kw, B*H'*W') with columns in (image, row, column) order; a ReLU right after them is fused into the
requantization clamp [0, 127]; on a (tokens, features) input a Linear applies per token. Pooling, flatten, a
standalone ReLU, LayerNorm and the residual Add (TFLite's int8 ADD) run on the host. `Attention`
(`attention.py`: projections on the chain, softmax(QK^T/sqrt(d))V on the attention array) and
`Spiking` (`spiking.py`: a rate-coded LIF layer on the spiking core) live in their own modules of this package and
are importable from here. The program reports, per step, where it runs and why.
"""
from sw_model.host.netdesc.attention import Attention
from sw_model.host.netdesc.compiler import MatmulChainBackend, Program, compile_int8
from sw_model.host.netdesc.layers import (
                                          Add,
                                          AvgPool2d,
                                          Conv2d,
                                          Flatten,
                                          Layer,
                                          LayerNorm,
                                          Linear,
                                          MaxPool2d,
                                          Network,
                                          NetworkError,
                                          ReLU,
                                          Step,
                                          im2col,
)
from sw_model.host.netdesc.spiking import Spiking

__all__ = ["Add", "Attention", "AvgPool2d", "Conv2d", "Flatten", "Layer", "LayerNorm", "Linear", "MatmulChainBackend",
           "MaxPool2d", "Network", "NetworkError", "Program", "ReLU", "Spiking", "Step", "compile_int8", "im2col"]
