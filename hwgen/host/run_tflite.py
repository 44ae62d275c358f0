"""`hwgen run MODEL.tflite`: an int8 TFLite model on a data set, invoke by invoke, on the golden backend or with
its engine GEMMs on the simulated accelerator (rtl / board), optionally checked against the LiteRT interpreter.

Inputs: `--input X.npy` holds one row per invoke (shape (N, *input shape) or (N, *input shape without the batch
axis of 1), the input's integer type or values in its range); a model with several inputs takes one .npy per input
(`--input a.npy --input b.npy`). `--labels Y.npy` (N integers) adds the accuracy of argmax(output `--label-output`).
State (resource variables) is kept across the invokes, as a streaming model expects.

The golden backend always runs too: on rtl/board the first `rtl_samples` invokes also run on the device and every
engine accumulator and output is compared with the golden run (`mismatches`, must be 0). With `check_litert`
the LiteRT interpreter (ai-edge-litert, reference kernels `BUILTIN_REF`) runs every invoke too and
`litert_mismatches` counts the output values that differ from it (must be 0).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hwgen.host.runs import write_record
from hwgen.host.tflite_model import TFLiteModel
from hwgen.progress import progress


def load_inputs(paths, details) -> list[np.ndarray]:
    """One array per model input, each (N, *shape) in the input's integer range; clear errors otherwise."""
    if len(paths) != len(details):
        raise ValueError(f"--input: got {len(paths)} file(s), allowed: one .npy per model input ({len(details)}: "
                         f"{', '.join(d['name'] for d in details)})")
    arrays = []
    for p, d in zip(paths, details):
        if not str(p).endswith(".npy"):
            raise ValueError(f"--input: got {p}, allowed: a .npy file (numpy.save of an (N, ...) array)")
        x = np.load(p)
        shape = tuple(d["shape"])
        if x.shape[1:] == shape[1:] and shape[0] == 1:
            x = x.reshape((len(x),) + shape)
        elif x.shape[1:] == shape:
            x = x.reshape((len(x),) + shape)
        else:
            raise ValueError(f"--input {p}: got shape {list(x.shape)}, allowed: (N, {', '.join(map(str, shape))}) "
                             f"for input {d['name']!r}" + (f" or (N, {', '.join(map(str, shape[1:]))})"
                                                            if shape and shape[0] == 1 else ""))
        arrays.append(x)
    n = {len(a) for a in arrays}
    if len(n) != 1:
        raise ValueError(f"--input: got {sorted(n)} rows, allowed: the same number of rows in every file")
    return arrays


class LiteRTReference:
    """The LiteRT interpreter on its reference kernels, one invoke at a time (state kept like ours)."""

    def __init__(self, path):
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise RuntimeError("--check-litert needs the LiteRT interpreter: run `pip install ai-edge-litert`") \
                from None
        self.it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        self.it.allocate_tensors()
        self.inputs = [d["index"] for d in self.it.get_input_details()]
        self.outputs = [d["index"] for d in self.it.get_output_details()]

    def invoke(self, *xs):
        for i, x in zip(self.inputs, xs):
            self.it.set_tensor(i, x)
        self.it.invoke()
        return [self.it.get_tensor(o).copy() for o in self.outputs]


def run_tflite(path, inputs, labels=None, backend: str = "golden", system: str = "system-default",
               sim: str = "verilator", limit: int | None = None, rtl_samples: int | None = None,
               check_litert: bool = False, label_output: int = 0, out: Path | None = None,
               depthwise_group: int | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model: got {path}, allowed: an existing .tflite file")
    for flag, value in (("--limit", limit), ("--rtl-samples", rtl_samples)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{flag}: got {value!r}, allowed: a positive number of invokes")
    golden = TFLiteModel(path, system, "golden", depthwise_group=depthwise_group)
    xs = load_inputs(inputs, golden.input_details())
    outs = golden.output_details()
    if not 0 <= label_output < len(outs):
        raise ValueError(f"--label-output: got {label_output}, allowed: 0..{len(outs) - 1}")
    y = None
    if labels is not None:
        y = np.load(labels)
        if y.shape != (len(xs[0]),):
            raise ValueError(f"--labels: got shape {list(y.shape)}, allowed: ({len(xs[0])},) (one per input row)")
    n = len(xs[0]) if limit is None else min(limit, len(xs[0]))
    device = TFLiteModel(path, system, backend, sim, depthwise_group) if backend != "golden" else None
    n_dev = 0 if device is None else (n if rtl_samples is None else min(rtl_samples, n))
    ref = LiteRTReference(path) if check_litert else None
    engine_ops = golden.program.engine_ops()
    acc_mismatch = [0] * len(engine_ops)
    out_mismatch = litert_mismatch = 0
    cycles = model_cycles = sim_seconds = 0.0
    correct = 0
    t0 = time.time()
    bar = progress(total=n, desc=path.stem, unit="invoke")
    for k in range(n):
        row = [x[k] for x in xs]
        got = golden.invoke(*row)
        if k < n_dev:
            dev = device.invoke(*row)
            out_mismatch += sum(int(np.count_nonzero(a != b)) for a, b in zip(dev, got))
            for j, (rd, rg) in enumerate(zip(device.records, golden.records)):
                acc_mismatch[j] += int(np.count_nonzero(rd["acc"] != rg["acc"]))
                cycles += rd.get("cycles") or 0
                model_cycles += rd.get("model_cycles") or 0
                sim_seconds += rd.get("sim_seconds") or 0.0
            got = dev
        if ref is not None:
            want = ref.invoke(*[np.asarray(r).reshape(d["shape"]).astype(d["dtype"].lower())
                                for r, d in zip(row, golden.input_details())])
            litert_mismatch += sum(int(np.count_nonzero(a != b)) for a, b in zip(got, want))
        if y is not None:
            correct += int(np.asarray(got[label_output]).reshape(-1).argmax() == y[k])
        bar.update(1)
    bar.close()
    summary = {
        "network": path.stem, "model": str(path), "backend": backend, "samples": n,
        "system": golden.system_name, "config": "sparse_chain engine of " + golden.system_name,
        "samples_on_device": n_dev, "depthwise_group": depthwise_group,
        "engine_ops": [{"subgraph": s, "op_index": i, "op": e.op, "shape": list(e.shape),
                        "ran_on": backend if n_dev else "golden", "mismatches_vs_golden": acc_mismatch[j]}
                       for j, (s, i, e) in enumerate(engine_ops)],
        "host_ops": sorted({op.op for sub in golden.program.model.subgraphs for op in sub.operators} -
                           {e.op for _, _, e in engine_ops}),
        "mismatches": sum(acc_mismatch) + out_mismatch,
        "litert_mismatches": litert_mismatch if ref is not None else None,
        "accuracy": correct / n if y is not None and n else None,
        "wall_s": round(time.time() - t0, 2),
    }
    if n_dev:
        summary.update(cycles_total=cycles, cycles_model_total=model_cycles, cycles_per_inference=cycles / n_dev,
                       simulated_cycles_per_s=cycles / sim_seconds if sim_seconds else None)
    write_record(summary, out)
    return summary


def print_summary(s: dict):
    where = f", {s['samples_on_device']} of them on {s['backend']} ({s['system']})" if s["samples_on_device"] else ""
    print(f"model {s['model']}: {s['samples']} invokes{where}")
    for e in s["engine_ops"]:
        print(f"  op {e['op_index']} {e['op']} {e['shape'][0]}x{e['shape'][1]} GEMM on the sparse chain "
              f"[{e['ran_on']}], accumulator mismatches vs golden: {e['mismatches_vs_golden']}")
    print(f"  host ops: {', '.join(s['host_ops'])}")
    if s["accuracy"] is not None:
        print(f"  accuracy {s['accuracy']:.4f}")
    if s["litert_mismatches"] is not None:
        print(f"  output values differing from the LiteRT interpreter (reference kernels): {s['litert_mismatches']}")
    print(f"  mismatches vs golden: {s['mismatches']}")
    if "cycles_total" in s:
        print(f"  device cycles per invoke {s['cycles_per_inference']:.0f} (cycle model: "
              f"{s['cycles_model_total'] / s['samples_on_device']:.0f})")
    print(f"  wall time {s['wall_s']} s")
