"""A TFLite int8 model as a program of engine GEMMs and host kernels, with the interpreter's state.

    prog = TFLiteProgram("model.tflite")                 # reads, checks every op, prepares (nothing runs yet)
    outputs = prog.invoke(x)                             # list of numpy arrays, one per model output
    prog.records                                         # the last invoke's engine ops: accumulators + stats
    prog.reset()                                         # resource variables and CALL_ONCE back to the start

CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED run on the engine backend (`engine_ops`); every other op runs on
the host with `kernels`. Resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE) keep their values
between invokes, as the interpreter does; CALL_ONCE runs its init subgraph on the first invoke after loading or
`reset()`. Anything the importer cannot compute exactly is refused when the program is made, naming the op, its
index and what is supported.
"""
from __future__ import annotations

import numpy as np

from sw_model.host.netdesc import MatmulChainBackend
from sw_model.importers.tflite import kernels as K
from sw_model.importers.tflite.engine_ops import make_engine_op
from sw_model.importers.tflite.reader import Model, TFLiteError, read_model
from sw_model.numerics.requant import quantize_multiplier
from sw_model.sparse.config import SparseChainConfig

ENGINE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
HOST_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "ADD", "MUL", "RESHAPE", "PAD", "PADV2", "CONCATENATION",
            "STRIDED_SLICE", "SPLIT", "SPLIT_V", "SOFTMAX", "LOGISTIC", "QUANTIZE", "DEQUANTIZE", "VAR_HANDLE",
            "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE")
SUPPORTED = ENGINE_OPS + HOST_OPS
QUANT8 = ("INT8", "UINT8")
F32 = np.float32


def _where(s, op) -> str:
    return f"operator {op.index} ({op.op}) of subgraph {s.index}"


class TFLiteProgram:
    """An int8 TFLite model prepared for the host + engine. `config`: the sparse chain engine's config (default
    8 stages, dense mode); `max_beats`: the largest single engine job; `max_k`: the longest dot product of one
    engine call (longer ones are summed on the host); `depthwise_group`: input channels per block-diagonal GEMM of
    a depthwise layer (None: the whole layer in one GEMM). invoke(*inputs, backend=None) runs one
    inference (the default backend is the exact matmul model of the chain, `MatmulChainBackend`)."""

    def __init__(self, source, config=None, max_beats: int = 1 << 16, max_k: int | None = None,
                 depthwise_group: int | None = None):
        self.model = source if isinstance(source, Model) else read_model(source)
        self.config = config or SparseChainConfig(stages=8)
        if self.config.weight_bits != 8 or self.config.packed:
            raise TFLiteError(f"config: got weight_bits {self.config.weight_bits}, packed {self.config.packed}; "
                              "allowed: an int8 dense sparse_chain config (weight_bits 8, packed false)")
        if depthwise_group is not None and (not isinstance(depthwise_group, int) or depthwise_group < 1):
            raise TFLiteError(f"depthwise_group: got {depthwise_group!r}, allowed: None (all channels in one GEMM) "
                              "or a positive number of channels")
        self.max_beats, self.max_k, self.depthwise_group = max_beats, max_k, depthwise_group
        self.plans = {}                                    # (subgraph, op index) -> prepared parameters
        self._subgraphs_to_check = [0]
        checked = set()
        while self._subgraphs_to_check:
            s = self._subgraphs_to_check.pop()
            if s in checked:
                continue
            if not 0 <= s < len(self.model.subgraphs):
                raise TFLiteError(f"CALL_ONCE: init subgraph {s} does not exist (the model has "
                                  f"{len(self.model.subgraphs)})")
            checked.add(s)
            self._prepare_subgraph(self.model.subgraphs[s])
        self.records, self.tensors = [], {}
        self.reset()

    # ---- interface -----------------------------------------------------------------------------------------
    @property
    def main(self):
        return self.model.subgraphs[0]

    def input_details(self) -> list[dict]:
        return [self._details(self.main.tensors[i]) for i in self.main.inputs]

    def output_details(self) -> list[dict]:
        return [self._details(self.main.tensors[i]) for i in self.main.outputs]

    @staticmethod
    def _details(t) -> dict:
        return {"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.type_name,
                "scale": [float(v) for v in t.scale], "zero_point": [int(v) for v in t.zero_point]}

    def reset(self):
        """Forget the resource variables and the CALL_ONCE flags (the state of a freshly loaded interpreter)."""
        self.variables = {}
        self.called_once = set()

    def engine_ops(self) -> list:
        """(subgraph, op index, EngineOp) of every engine GEMM, in execution order."""
        return [(s, i, p["engine"]) for (s, i), p in self.plans.items() if "engine" in p]

    def invoke(self, *inputs, backend=None, keep: bool = False) -> list[np.ndarray]:
        """One inference on the model's input tensors (numpy arrays of the input types and shapes; a single-input
        model also takes the array without the batch axis). Returns the outputs as numpy arrays of the output
        types. `backend`: the engine for CONV/DEPTHWISE/FC (an object with gemm(config, w_q, x_q)). `keep`: also
        keep every tensor value of the main subgraph in `self.tensors` (index -> array), to compare op by op."""
        main = self.main
        if len(inputs) != len(main.inputs):
            raise TFLiteError(f"invoke: got {len(inputs)} input(s), allowed: {len(main.inputs)} (the model's inputs "
                              f"{[self.main.tensors[i].name for i in main.inputs]})")
        values = {}
        for i, x in zip(main.inputs, inputs):
            t = main.tensors[i]
            x = np.asarray(x)
            if x.shape != tuple(t.shape) and x.size == int(np.prod(t.shape)) and x.shape == tuple(t.shape[1:]):
                x = x.reshape(t.shape)
            if x.shape != tuple(t.shape):
                raise TFLiteError(f"input {t.name!r}: got shape {list(x.shape)}, allowed: {list(t.shape)}")
            if t.type_name in K.TYPE_RANGE:
                lo, hi = K.TYPE_RANGE[t.type_name]
                if x.dtype.kind not in "iu" or x.size and (x.min() < lo or x.max() > hi):
                    raise TFLiteError(f"input {t.name!r}: got {x.dtype} values "
                                      f"{x.min() if x.size else ''}..{x.max() if x.size else ''}, allowed: "
                                      f"{t.type_name} codes {lo}..{hi}")
                values[i] = x.astype(np.int64)
            else:
                values[i] = x.astype(np.float32)
        self.records = []
        self._run(main, values, backend or MatmulChainBackend())
        self.tensors = values if keep else {}
        return [self._typed(main.tensors[i], values[i]) for i in main.outputs]

    @staticmethod
    def _typed(t, v):
        return np.asarray(v).astype(t.dtype)

    # ---- preparation (checks + parameters) ------------------------------------------------------------------
    def _prepare_subgraph(self, s):
        for op in s.operators:
            if op.op not in SUPPORTED:
                raise TFLiteError(f"{_where(s, op)}: not supported; supported ops: engine {', '.join(ENGINE_OPS)}; "
                                  f"host {', '.join(HOST_OPS)}")
            self.plans[(s.index, op.index)] = self._prepare(s, op)

    def _q(self, s, op, t, types=QUANT8, what="tensor"):
        """Check that tensor t is quantized per tensor with one of `types`."""
        if t.type_name not in types:
            raise TFLiteError(f"{_where(s, op)}: {what} {t.describe()}: type {t.type_name} not supported, allowed: "
                              f"{', '.join(types)}")
        if t.type_name in QUANT8 and len(t.scale) != 1:
            raise TFLiteError(f"{_where(s, op)}: {what} {t.describe()}: needs one (per-tensor) scale, got "
                              f"{len(t.scale)}")
        return t

    def _const(self, s, op, t, what):
        if t.buffer is None:
            raise TFLiteError(f"{_where(s, op)}: {what} {t.describe()} must be a constant in the model")
        return t.buffer.astype(np.int64)

    def _prepare(self, s, op):
        T = s.tensors
        ins = [T[i] if i >= 0 else None for i in op.inputs]
        outs = [T[i] for i in op.outputs]
        o = op.options
        act = o.get("FusedActivationFunction", 0)
        if act not in K.ACTIVATIONS:
            raise TFLiteError(f"{_where(s, op)}: fused activation code {act} not supported, allowed: "
                              f"{', '.join(K.ACTIVATIONS.values())}")
        if op.op in ENGINE_OPS:
            x, w = ins[0], ins[1]
            b = ins[2] if len(ins) > 2 else None
            y = outs[0]
            self._q(s, op, x, ("INT8",), "input")
            self._q(s, op, y, ("INT8",), "output")
            if w.type_name != "INT8" or w.buffer is None:
                raise TFLiteError(f"{_where(s, op)}: weights {w.describe()}: allowed: constant INT8 weights")
            if np.any(w.zero_point != 0):
                raise TFLiteError(f"{_where(s, op)}: weights {w.describe()}: zero points must be 0 (TFLite int8 "
                                  "weights are symmetric)")
            if b is not None and (b.type_name != "INT32" or b.buffer is None):
                raise TFLiteError(f"{_where(s, op)}: bias {b.describe()}: allowed: a constant INT32 bias")
            if w.per_channel and w.quantized_dimension != (3 if op.op == "DEPTHWISE_CONV_2D" else 0):
                raise TFLiteError(f"{_where(s, op)}: weights {w.describe()}: per-channel scales along dimension "
                                  f"{w.quantized_dimension}, allowed: the output-channel dimension")
            if op.op == "FULLY_CONNECTED" and o.get("WeightsFormat", 0) != 0:
                raise TFLiteError(f"{_where(s, op)}: weights format {o['WeightsFormat']}, allowed: 0 (DEFAULT)")
            if op.op == "DEPTHWISE_CONV_2D" and w.shape[3] % x.shape[3]:
                raise TFLiteError(f"{_where(s, op)}: {w.shape[3]} output channels for {x.shape[3]} input channels, "
                                  "allowed: a multiple (the depth multiplier)")
            return {"engine": make_engine_op(op, x, w, b, y, o)}
        if op.op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            x, y = self._q(s, op, ins[0]), self._q(s, op, outs[0])
            if (x.scale[0], x.zero_point[0]) != (y.scale[0], y.zero_point[0]) or x.type_name != y.type_name:
                raise TFLiteError(f"{_where(s, op)}: input and output quantization differ; allowed: equal (as "
                                  "TFLite requires)")
            return {"lo_hi": K.activation_range(act, y.scale[0], int(y.zero_point[0]), y.type_name)}
        if op.op == "MEAN":
            x, y = self._q(s, op, ins[0]), self._q(s, op, outs[0])
            axes = sorted({int(a) % len(x.shape) for a in self._const(s, op, ins[1], "axis").reshape(-1)})
            if not axes:
                raise TFLiteError(f"{_where(s, op)}: an empty axis list, allowed: at least one axis")
            n = int(np.prod([x.shape[a] for a in axes]))
            return {"axes": axes, "keep": bool(o.get("KeepDims", False)),
                    "q": K.prepare_mean(x.scale[0], y.scale[0], n), "lo_hi": K.TYPE_RANGE[y.type_name]}
        if op.op in ("ADD", "MUL"):
            a, b, y = (self._q(s, op, t) for t in (ins[0], ins[1], outs[0]))
            plan = {"lo_hi": K.activation_range(act, y.scale[0], int(y.zero_point[0]), y.type_name)}
            if op.op == "ADD":
                plan["params"] = K.prepare_add(a.scale[0], b.scale[0], y.scale[0])
            else:
                plan["q"] = quantize_multiplier(float(a.scale[0]) * float(b.scale[0]) / float(y.scale[0]))
            return plan
        if op.op == "CONCATENATION":
            if act != 0:
                raise TFLiteError(f"{_where(s, op)}: fused activation {K.ACTIVATIONS[act]}, allowed: NONE")
            for t in ins + outs:
                self._q(s, op, t)
            y = outs[0]
            for t in ins:
                if t.type_name != y.type_name:
                    raise TFLiteError(f"{_where(s, op)}: {t.describe()} is {t.type_name}, the output {y.type_name}; "
                                      "allowed: one type")
                if t.type_name == "INT8" and (F32(t.scale[0]) != F32(y.scale[0]) or t.zero_point[0] != y.zero_point[0]):
                    raise TFLiteError(f"{_where(s, op)}: INT8 input {t.describe()} has another scale/zero point than "
                                      "the output; allowed: the same (TFLite rescales only UINT8)")
            return {}
        if op.op == "STRIDED_SLICE":
            if o.get("EllipsisMask", 0) or o.get("NewAxisMask", 0):
                raise TFLiteError(f"{_where(s, op)}: ellipsis/new-axis masks {o.get('EllipsisMask')}/"
                                  f"{o.get('NewAxisMask')}, allowed: 0")
            return {"args": [self._const(s, op, t, n) for t, n in zip(ins[1:4], ("begin", "end", "strides"))]}
        if op.op in ("SPLIT", "SPLIT_V"):
            if op.op == "SPLIT":
                axis = int(self._const(s, op, ins[0], "axis").reshape(-1)[0])
                return {"axis": axis, "data": 1}
            axis = int(self._const(s, op, ins[2], "axis").reshape(-1)[0])
            return {"axis": axis, "data": 0, "sizes": self._const(s, op, ins[1], "size_splits").reshape(-1)}
        if op.op in ("PAD", "PADV2"):
            y = self._q(s, op, outs[0])
            pads = self._const(s, op, ins[1], "paddings").reshape(-1, 2)
            value = int(y.zero_point[0]) if op.op == "PAD" or len(ins) < 3 else \
                int(self._const(s, op, ins[2], "constant_values").reshape(-1)[0])
            return {"pads": pads, "value": value}
        if op.op == "RESHAPE":
            return {"shape": tuple(outs[0].shape)}
        if op.op == "LOGISTIC":
            x, y = self._q(s, op, ins[0]), self._q(s, op, outs[0])
            return {"table": K.logistic_table(x.scale[0], int(x.zero_point[0]), y.scale[0], int(y.zero_point[0]),
                                              x.type_name)}
        if op.op == "SOFTMAX":
            x, y = self._q(s, op, ins[0]), self._q(s, op, outs[0])
            if x.type_name != y.type_name:
                raise TFLiteError(f"{_where(s, op)}: {x.type_name} input with {y.type_name} output, allowed: "
                                  "the same 8-bit type")
            return {"table": K.softmax_table(x.scale[0], o.get("Beta", 1.0))}
        if op.op == "QUANTIZE":
            x, y = ins[0], self._q(s, op, outs[0], QUANT8 + ("INT16",), "output")
            if x.type_name == "FLOAT32":
                return {"from_float": True}
            self._q(s, op, x, QUANT8 + ("INT16",), "input")
            return {"q": quantize_multiplier(float(x.scale[0]) / float(y.scale[0]))}
        if op.op == "DEQUANTIZE":
            self._q(s, op, ins[0], QUANT8 + ("INT16",), "input")
            if outs[0].type_name != "FLOAT32":
                raise TFLiteError(f"{_where(s, op)}: output {outs[0].describe()}, allowed: FLOAT32")
            return {}
        if op.op == "VAR_HANDLE":
            return {"key": (o.get("Container", ""), o.get("SharedName", ""))}
        if op.op == "CALL_ONCE":
            sub = int(o.get("InitSubgraphIndex", 0))
            self._subgraphs_to_check.append(sub)
            return {"subgraph": sub}
        return {}

    # ---- execution ---------------------------------------------------------------------------------------------
    def _run(self, s, values, backend):
        T = s.tensors

        def val(i):
            if i in values:
                return values[i]
            t = T[i]
            if t.buffer is not None:
                return t.buffer.astype(np.int64) if t.type_name != "FLOAT32" else t.buffer
            raise TFLiteError(f"subgraph {s.index}: {t.describe()} is read before any op wrote it")
        for op in s.operators:
            plan = self.plans[(s.index, op.index)]
            ins = [T[i] if i >= 0 else None for i in op.inputs]
            y = T[op.outputs[0]] if op.outputs else None
            name = op.op
            if "engine" in plan:
                out, rec = plan["engine"].run(val(op.inputs[0]), backend, self.config, self.max_beats, self.max_k,
                                              self.depthwise_group)
                self.records.append({"subgraph": s.index, "op_index": op.index, "op": name,
                                     "shape": list(plan["engine"].shape), "backend": getattr(backend, "name", ""),
                                     **rec})
                values[op.outputs[0]] = out
            elif name == "AVERAGE_POOL_2D" or name == "MAX_POOL_2D":
                o = op.options
                f = K.average_pool if name == "AVERAGE_POOL_2D" else K.max_pool
                values[op.outputs[0]] = f(val(op.inputs[0]), o["FilterHeight"], o["FilterWidth"], o["StrideH"],
                                          o["StrideW"], o["Padding"], *plan["lo_hi"])
            elif name == "MEAN":
                out = K.mean(val(op.inputs[0]), plan["axes"], plan["keep"], int(ins[0].zero_point[0]),
                             int(y.zero_point[0]), plan["q"], *plan["lo_hi"])
                values[op.outputs[0]] = out.reshape(y.shape)
            elif name == "ADD":
                a, b = ins[0], ins[1]
                values[op.outputs[0]] = K.add(val(op.inputs[0]), val(op.inputs[1]), int(a.zero_point[0]),
                                              int(b.zero_point[0]), int(y.zero_point[0]), plan["params"],
                                              *plan["lo_hi"])
            elif name == "MUL":
                a, b = ins[0], ins[1]
                values[op.outputs[0]] = K.mul(val(op.inputs[0]), val(op.inputs[1]), int(a.zero_point[0]),
                                              int(b.zero_point[0]), int(y.zero_point[0]), plan["q"], *plan["lo_hi"])
            elif name == "RESHAPE":
                values[op.outputs[0]] = np.reshape(val(op.inputs[0]), plan["shape"])
            elif name in ("PAD", "PADV2"):
                values[op.outputs[0]] = np.pad(val(op.inputs[0]), plan["pads"], constant_values=plan["value"])
            elif name == "CONCATENATION":
                xs = [val(i) for i in op.inputs]
                axis = op.options.get("Axis", 0)
                axis = axis + xs[0].ndim if axis < 0 else axis
                lo, hi = K.TYPE_RANGE[y.type_name]
                values[op.outputs[0]] = K.concatenation(xs, [t.scale[0] for t in ins], [int(t.zero_point[0])
                                                                                         for t in ins],
                                                        y.scale[0], int(y.zero_point[0]), axis, lo, hi)
            elif name == "STRIDED_SLICE":
                o = op.options
                values[op.outputs[0]] = K.strided_slice(val(op.inputs[0]), *plan["args"], o.get("BeginMask", 0),
                                                        o.get("EndMask", 0), o.get("ShrinkAxisMask", 0),
                                                        o.get("Offset", False))
            elif name in ("SPLIT", "SPLIT_V"):
                x = val(op.inputs[plan["data"]])
                axis = plan["axis"] + x.ndim if plan["axis"] < 0 else plan["axis"]
                if name == "SPLIT":
                    parts = np.split(x, len(op.outputs), axis=axis)
                else:
                    sizes = plan["sizes"].copy()
                    if (sizes == -1).any():
                        sizes[sizes == -1] = x.shape[axis] - sizes[sizes != -1].sum()
                    parts = np.split(x, np.cumsum(sizes)[:-1], axis=axis)
                for i, p in zip(op.outputs, parts):
                    values[i] = p
            elif name == "LOGISTIC":
                values[op.outputs[0]] = K.lookup(val(op.inputs[0]), plan["table"], ins[0].type_name)
            elif name == "SOFTMAX":
                values[op.outputs[0]] = K.softmax(val(op.inputs[0]), plan["table"], y.scale[0], int(y.zero_point[0]),
                                                  y.type_name)
            elif name == "QUANTIZE":
                lo, hi = K.TYPE_RANGE[y.type_name]
                if plan.get("from_float"):
                    values[op.outputs[0]] = K.quantize_float(val(op.inputs[0]), y.scale[0], int(y.zero_point[0]),
                                                             lo, hi)
                else:
                    values[op.outputs[0]] = K.requantize_tensor(val(op.inputs[0]), int(ins[0].zero_point[0]),
                                                                int(y.zero_point[0]), plan["q"], lo, hi)
            elif name == "DEQUANTIZE":
                values[op.outputs[0]] = K.dequantize(val(op.inputs[0]), ins[0].scale[0], int(ins[0].zero_point[0]))
            elif name == "VAR_HANDLE":
                values[op.outputs[0]] = plan["key"]
            elif name == "READ_VARIABLE":
                key = val(op.inputs[0])
                if key not in self.variables:
                    raise TFLiteError(f"{_where(s, op)}: variable {key[1]!r} is read before it was assigned")
                values[op.outputs[0]] = self.variables[key]
            elif name == "ASSIGN_VARIABLE":
                self.variables[val(op.inputs[0])] = np.array(val(op.inputs[1]))
            elif name == "CALL_ONCE":
                if plan["subgraph"] not in self.called_once:
                    self.called_once.add(plan["subgraph"])
                    self._run(self.model.subgraphs[plan["subgraph"]], {}, backend)
        return values
