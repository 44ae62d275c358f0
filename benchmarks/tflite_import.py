"""TFLite import against the LiteRT interpreter -> docs/results/tflite_import.{json,md}.

For each model: every invoke of the data set on the golden backend with the LiteRT interpreter (reference kernels,
`OpResolverType.BUILTIN_REF`) alongside, counting output values that differ; the digits model's accuracy (ours
and the interpreter's); then the first `--rtl` invokes with every engine GEMM on the accelerator top's Verilog
(system-default, Verilator), accumulators compared with the golden backend, and the simulated cycles per invoke.
Inputs: the digits test split (360 uint8 images); for the wake-word models `--frames` invokes of features of
seeded synthetic audio (`sw_model.importers.tflite.models.wakeword.feature_stream`).

Depthwise mapping: the accelerator-top cycles per invoke (the system's documented cycle model, evaluated by the
golden system on the command programs, averaged over 2 invokes) when each depthwise layer is one block-diagonal
GEMM (default) or one GEMM per `group` input channels; with `--rtl`, the default and group 4 also run on the RTL
for one invoke, whose measured cycles must equal the model's.

Run: `python benchmarks/tflite_import.py [--frames 300] [--rtl 2]` (golden part ~10 s, RTL part minutes).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from hwgen.host.run_tflite import run_tflite  # noqa: E402
from sw_model.importers.tflite.models.digits_dwcnn import MODEL_PATH, load_test_set  # noqa: E402
from sw_model.importers.tflite.models.wakeword import feature_stream, model_path  # noqa: E402
from sw_model.importers.tflite.reader import read_model  # noqa: E402


def measure(frames: int, rtl: int) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        x, y = load_test_set()
        np.save(tmp / "digits_x.npy", x)
        np.save(tmp / "digits_y.npy", y)
        cases = [("digits_dwcnn", MODEL_PATH, tmp / "digits_x.npy", tmp / "digits_y.npy", 1)]
        for n in ("okay_nabu", "alexa"):
            t = read_model(model_path(n)).subgraphs[0]
            t = t.tensors[t.inputs[0]]
            np.save(tmp / f"{n}.npy", feature_stream(frames, t.scale[0], int(t.zero_point[0])))
            cases.append((n, model_path(n), tmp / f"{n}.npy", None, 0))
        for name, path, xs, ys, label_output in cases:
            g = run_tflite(path, [xs], ys, "golden", check_litert=True, label_output=label_output)
            row = {"model": name, "invokes": g["samples"], "litert_mismatches": g["litert_mismatches"],
                   "accuracy": g["accuracy"], "engine_gemms": len(g["engine_ops"]), "host_ops": g["host_ops"],
                   "golden_wall_s": g["wall_s"]}
            if ys is not None:
                row["litert_accuracy"] = litert_accuracy(path, np.load(xs), np.load(ys), label_output)
            if rtl:
                r = run_tflite(path, [xs], None, "rtl", limit=rtl, check_litert=True)
                row.update(rtl_invokes=r["samples_on_device"], rtl_mismatches_vs_golden=r["mismatches"],
                           rtl_litert_mismatches=r["litert_mismatches"],
                           rtl_cycles_per_invoke=r["cycles_per_inference"], rtl_wall_s=r["wall_s"])
            rows.append(row)
    return {"command": "python benchmarks/tflite_import.py " + " ".join(sys.argv[1:]), "rows": rows,
            "depthwise": depthwise_groups(rtl)}


def depthwise_groups(rtl: int) -> list[dict]:
    from hwgen.host.system_backend import SystemBackend
    from hwgen.host.tflite_model import TFLiteModel
    gold = SystemBackend("system-default", "golden")
    x_digits = load_test_set()[0][:2]
    out = []
    for name, path in (("digits_dwcnn", MODEL_PATH), ("okay_nabu", model_path("okay_nabu"))):
        t = read_model(path).subgraphs[0]
        t = t.tensors[t.inputs[0]]
        xs = x_digits if name == "digits_dwcnn" else feature_stream(2, t.scale[0], int(t.zero_point[0]))
        for group in (None, 8, 4, 1):
            m = TFLiteModel(path, depthwise_group=group)
            m.engine = gold
            cycles = calls = beats = 0
            for x in xs:
                m.invoke(x)
                cycles += sum(r["model_cycles"] for r in m.records)
                calls += sum(r["calls"] for r in m.records)
                beats += sum(r["beats"] for r in m.records)
            row = {"model": name, "group": group, "model_cycles_per_invoke": cycles / len(xs),
                   "engine_calls_per_invoke": calls / len(xs), "engine_beats_per_invoke": beats / len(xs)}
            if rtl and group in (None, 4):
                dev = TFLiteModel(path, backend="rtl", depthwise_group=group)
                dev.invoke(xs[0])
                row["rtl_cycles_first_invoke"] = sum(r["cycles"] for r in dev.records)
                m.reset()
                m.invoke(xs[0])
                row["model_cycles_first_invoke"] = sum(r["model_cycles"] for r in m.records)
            out.append(row)
    return out


def litert_accuracy(path, x, y, k) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[k]
    right = 0
    for xi, yi in zip(x, y):
        it.set_tensor(i["index"], xi.reshape(i["shape"]).astype(i["dtype"]))
        it.invoke()
        right += int(it.get_tensor(o["index"]).argmax() == yi)
    return right / len(y)


def markdown(res: dict) -> str:
    lines = ["# TFLite import against the LiteRT interpreter", "",
             f"Made by `{res['command']}` (benchmarks/tflite_import.py). Golden backend: every invoke; LiteRT on its "
             "reference kernels alongside. RTL: the first invokes with every GEMM on system-default's Verilog.", "",
             "| model | invokes | output values differing from LiteRT | accuracy (ours / LiteRT) | engine GEMMs "
             "| RTL invokes | RTL mismatches vs golden / vs LiteRT | RTL cycles per invoke |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        acc = f"{r['accuracy']:.4f} / {r['litert_accuracy']:.4f}" if r.get("accuracy") is not None else "-"
        rtl = (f"{r['rtl_invokes']} | {r['rtl_mismatches_vs_golden']} / {r['rtl_litert_mismatches']} | "
               f"{r['rtl_cycles_per_invoke']:.0f}") if "rtl_invokes" in r else "- | - | -"
        lines.append(f"| {r['model']} | {r['invokes']} | {r['litert_mismatches']} | {acc} | {r['engine_gemms']} "
                     f"| {rtl} |")
    lines += ["", "Host ops per model: " + "; ".join(f"{r['model']}: {', '.join(r['host_ops'])}" for r in res["rows"]),
              "", "## Depthwise layers: one block-diagonal GEMM or one per group of channels", "",
              "Accelerator-top cycles per invoke from the system's cycle model (golden system, 2 invokes); group "
              "'all' is the default. RTL: measured cycles of the first invoke next to the model's.", "",
              "| model | channels per depthwise GEMM | cycles per invoke (model) | engine calls | engine beats "
              "| RTL cycles, first invoke (measured / model) |", "|---|---|---|---|---|---|"]
    for r in res["depthwise"]:
        rtl = (f"{r['rtl_cycles_first_invoke']} / {r['model_cycles_first_invoke']}"
               if "rtl_cycles_first_invoke" in r else "-")
        lines.append(f"| {r['model']} | {r['group'] or 'all'} | {r['model_cycles_per_invoke']:.0f} | "
                     f"{r['engine_calls_per_invoke']:.0f} | {r['engine_beats_per_invoke']:.0f} | {rtl} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="invokes of the wake-word feature stream")
    ap.add_argument("--rtl", type=int, default=2, help="invokes per model on the RTL (0: none)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args(argv)
    res = measure(args.frames, args.rtl)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tflite_import.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "tflite_import.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
