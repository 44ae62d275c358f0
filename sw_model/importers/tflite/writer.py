"""Write small .tflite flatbuffers with the `tflite` schema package's builder functions (no TensorFlow needed):
the digits model script and the per-op tests build their models with it.

    b = ModelBuilder()
    x = b.tensor("x", (1, 8, 8, 1), "INT8", scale=0.1, zero_point=-3)
    w = b.tensor("w", (4, 3, 3, 1), "INT8", data=w_q, scale=s_w, zero_point=0)       # per-channel: arrays
    y = b.tensor("y", (1, 8, 8, 4), "INT8", scale=0.05, zero_point=-128)
    b.op("CONV_2D", [x, w, bias], [y], Padding=0, StrideH=1, StrideW=1, FusedActivationFunction=1)
    data = b.build(inputs=[x], outputs=[y])
"""
from __future__ import annotations

import numpy as np

from sw_model.importers.tflite.reader import TENSOR_TYPES, _schema

OPTIONS = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
           "FULLY_CONNECTED": "FullyConnectedOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
           "MAX_POOL_2D": "Pool2DOptions", "SOFTMAX": "SoftmaxOptions", "RESHAPE": "ReshapeOptions",
           "ADD": "AddOptions", "MUL": "MulOptions", "CONCATENATION": "ConcatenationOptions", "PAD": "PadOptions", "PADV2": "PadV2Options",
           "STRIDED_SLICE": "StridedSliceOptions", "SPLIT": "SplitOptions", "SPLIT_V": "SplitVOptions",
           "QUANTIZE": "QuantizeOptions", "DEQUANTIZE": "DequantizeOptions", "MEAN": "ReducerOptions"}
TYPE_CODES = {name: code for code, (name, _) in TENSOR_TYPES.items()}


class ModelBuilder:
    """Collects tensors and operators of one subgraph and serializes them as a TFLite model (schema version 3)."""

    def __init__(self):
        self.tensors, self.buffers, self.ops, self.opcodes = [], [b""], [], []

    def tensor(self, name, shape, type_name, data=None, scale=None, zero_point=None, quantized_dimension=0) -> int:
        buffer = 0
        if data is not None:
            dtype = TENSOR_TYPES[TYPE_CODES[type_name]][1]
            self.buffers.append(np.ascontiguousarray(np.asarray(data).astype(dtype)).tobytes())
            buffer = len(self.buffers) - 1
        self.tensors.append((name, tuple(int(d) for d in shape), TYPE_CODES[type_name], buffer,
                             None if scale is None else np.atleast_1d(np.asarray(scale, np.float32)),
                             None if zero_point is None else np.atleast_1d(np.asarray(zero_point, np.int64)),
                             quantized_dimension))
        return len(self.tensors) - 1

    def op(self, name, inputs, outputs, **options):
        if name not in self.opcodes:
            self.opcodes.append(name)
        self.ops.append((self.opcodes.index(name), list(inputs), list(outputs), name, options))

    def build(self, inputs, outputs) -> bytes:
        tfl = _schema()
        import flatbuffers
        b = flatbuffers.Builder(1024)

        def ivec(start, values, kind="Int32"):
            start(b, len(values))
            for v in reversed(values):
                getattr(b, "Prepend" + kind)(v)
            return b.EndVector()

        buffers = []
        for raw in self.buffers:
            data = b.CreateByteVector(raw) if raw else None
            tfl.BufferStart(b)
            if data is not None:
                tfl.BufferAddData(b, data)
            buffers.append(tfl.BufferEnd(b))
        tensors = []
        for name, shape, code, buf, scale, zp, qdim in self.tensors:
            n = b.CreateString(name)
            shp = ivec(tfl.TensorStartShapeVector, list(shape))
            q = None
            if scale is not None:
                sv = ivec(tfl.QuantizationParametersStartScaleVector, [float(v) for v in scale], "Float32")
                zv = ivec(tfl.QuantizationParametersStartZeroPointVector,
                          [int(v) for v in (zp if zp is not None else np.zeros(len(scale)))], "Int64")
                tfl.QuantizationParametersStart(b)
                tfl.QuantizationParametersAddScale(b, sv)
                tfl.QuantizationParametersAddZeroPoint(b, zv)
                tfl.QuantizationParametersAddQuantizedDimension(b, qdim)
                q = tfl.QuantizationParametersEnd(b)
            tfl.TensorStart(b)
            tfl.TensorAddShape(b, shp)
            tfl.TensorAddType(b, code)
            tfl.TensorAddBuffer(b, buf)
            tfl.TensorAddName(b, n)
            if q is not None:
                tfl.TensorAddQuantization(b, q)
            tensors.append(tfl.TensorEnd(b))
        ops = []
        for opcode, ins, outs, name, options in self.ops:
            iv = ivec(tfl.OperatorStartInputsVector, ins)
            ov = ivec(tfl.OperatorStartOutputsVector, outs)
            opt_name = OPTIONS.get(name)
            opt = None
            if opt_name:
                getattr(tfl, opt_name + "Start")(b)
                for key, value in options.items():
                    getattr(tfl, f"{opt_name}Add{key}")(b, value)
                opt = getattr(tfl, opt_name + "End")(b)
            tfl.OperatorStart(b)
            tfl.OperatorAddOpcodeIndex(b, opcode)
            tfl.OperatorAddInputs(b, iv)
            tfl.OperatorAddOutputs(b, ov)
            if opt is not None:
                tfl.OperatorAddBuiltinOptionsType(b, getattr(tfl.BuiltinOptions, opt_name))
                tfl.OperatorAddBuiltinOptions(b, opt)
            ops.append(tfl.OperatorEnd(b))

        def table_vec(start, items):
            start(b, len(items))
            for item in reversed(items):
                b.PrependUOffsetTRelative(item)
            return b.EndVector()
        tv = table_vec(tfl.SubGraphStartTensorsVector, tensors)
        ov = table_vec(tfl.SubGraphStartOperatorsVector, ops)
        inv = ivec(tfl.SubGraphStartInputsVector, list(inputs))
        outv = ivec(tfl.SubGraphStartOutputsVector, list(outputs))
        sname = b.CreateString("main")
        tfl.SubGraphStart(b)
        tfl.SubGraphAddTensors(b, tv)
        tfl.SubGraphAddOperators(b, ov)
        tfl.SubGraphAddInputs(b, inv)
        tfl.SubGraphAddOutputs(b, outv)
        tfl.SubGraphAddName(b, sname)
        sub = tfl.SubGraphEnd(b)
        codes = []
        for name in self.opcodes:
            code = getattr(tfl.BuiltinOperator, name)
            tfl.OperatorCodeStart(b)
            tfl.OperatorCodeAddBuiltinCode(b, code)
            tfl.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tfl.OperatorCodeAddVersion(b, 1)
            codes.append(tfl.OperatorCodeEnd(b))
        cv = table_vec(tfl.ModelStartOperatorCodesVector, codes)
        sv = table_vec(tfl.ModelStartSubgraphsVector, [sub])
        bv = table_vec(tfl.ModelStartBuffersVector, buffers)
        desc = b.CreateString("written by sw_model.importers.tflite.writer")
        tfl.ModelStart(b)
        tfl.ModelAddVersion(b, 3)
        tfl.ModelAddOperatorCodes(b, cv)
        tfl.ModelAddSubgraphs(b, sv)
        tfl.ModelAddBuffers(b, bv)
        tfl.ModelAddDescription(b, desc)
        b.Finish(tfl.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())
