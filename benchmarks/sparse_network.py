"""N:M sparsity in an application: the digits int8 MLP and CNN pruned to 2:4 and 1:4, accuracy and end-to-end
cycles on the accelerator top against the dense run of the same model.

Per network and sparsity: magnitude pruning of the chosen Linear / Conv2d layers (`sw_model.host.netdesc.prune`),
a short masked fine-tuning in numpy (fixed recipe and seed, the same for every mode of a network), int8
compilation (`compile_int8`: pruned layers in their N:M mode with compressed weights in the beats), accuracy on
the 360 test digits (int8, exact chain arithmetic via `MatmulChainBackend`). Cycles: every engine step of one batch
of `--batch` test images as a command program on the system (`SystemBackend`, golden target: the bit-exact golden
system, and `program_cycles`, the documented cycle model: host words in and out included, one word per cycle),
per inference; the program's cycles depend only on the shapes, not on the data, so this is the cycle count of
every batch. The golden system's accumulators are checked against the exact matmul. RTL: the first `--rtl-images`
test images run on the system's Verilog (Verilator, bulk simulation): accumulators compared with the golden
backend (must be 0 mismatches) and the simulated cycles compared with the model.

Two systems: `system-default` (the ungrouped chain `sparse-chain-8`: N:M widens the activation window, a beat
is two 256-bit host words) and `system-sparse` (`sparse-chain-8-g2`, FlightLLM's grouped chain: N:M computes
M/N rows per beat at the dense window, a beat is one host word and one reply word carries two rows).

    python benchmarks/sparse_network.py [--batch 256] [--rtl-images 2] [--no-rtl] [--networks ...]
        [--out docs/results] [--tag sparse_network]
writes docs/results/<tag>.json and docs/results/<tag>.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from hwgen.cache import build_root  # noqa: E402
from hwgen.host.run_mlp import _digits_mlp  # noqa: E402
from hwgen.host.system_backend import SystemBackend  # noqa: E402
from sw_model.host.netdesc import Linear, MatmulChainBackend, Network, ReLU, compile_int8  # noqa: E402
from sw_model.host.netdesc.prune import accuracy, finetune, prune_network  # noqa: E402
from sw_model.networks.digits_cnn import PRUNE_RECIPE, digits_cnn  # noqa: E402
from sw_model.registry import load_config  # noqa: E402

SYSTEMS = ("system-default", "system-sparse")
# (label, sparsity argument of prune_network or None for dense); the CNN also runs 1:4 with its first conv dense
VARIANTS = {"digits-mlp-int8": [("dense", None), ("2:4", "2:4"), ("1:4", "1:4")],
            "digits-cnn": [("dense", None), ("2:4", "2:4"), ("1:4", "1:4"), ("1:4, conv1 dense", {3: "1:4",
                                                                                                  7: "1:4"})]}
RECIPES = {"digits-mlp-int8": dict(epochs=100, lr=3e-3, batch=32), "digits-cnn": PRUNE_RECIPE}


def networks():
    _, mlp, data = _digits_mlp()
    mlp_net = Network((64,), [Linear(mlp.weights[0], mlp.biases[0]), ReLU(), Linear(mlp.weights[1], mlp.biases[1])])
    cnn, _ = digits_cnn(cache_dir=build_root() / "models")
    return {"digits-mlp-int8": mlp_net, "digits-cnn": cnn}, data


def engine_config(system: str):
    _, sysc = load_config(system)
    return next(c for c in sysc.engine_configs if c.unit == "sparse_chain")


def int8_accuracy(program, x, y) -> float:
    logits, _ = program.run(x, {i: MatmulChainBackend() for i in program.engine_steps})
    return float(np.mean(logits.argmax(axis=1) == y))


def system_cycles(program, x, system: str, target: str):
    """Per engine step: model cycles, (simulated cycles), beats, accumulators of one run of batch x."""
    device = SystemBackend(system, target)
    _, records = program.run(x, {i: device for i in program.engine_steps})
    exact = program.run(x, {i: MatmulChainBackend() for i in program.engine_steps})[1]
    out = {}
    for i in program.engine_steps:
        r = records[i]
        out[i] = {"model_cycles": r["model_cycles"], "cycles": r["cycles"], "beats": r["beats"],
                  "mismatches": int(np.count_nonzero(r["acc"] != exact[i]["acc"]))}
    return out


def measure(args):
    nets, (x_train, y_train, x_test, y_test) = networks()
    rows = []
    for name, net in nets.items():
        if args.networks and name not in args.networks:
            continue
        dense_float = accuracy(net, x_test, y_test)
        for label, sparsity in VARIANTS[name]:
            t0 = time.time()
            if sparsity is None:
                pruned = tuned = net
            else:
                pruned = prune_network(net, sparsity)
                tuned = finetune(pruned, x_train, y_train, seed=0, **RECIPES[name])
            row = {"network": name, "sparsity": label,
                   "pruned_layers": {str(i): m for i, m in
                                     ((i, getattr(layer, "sparsity", None)) for i, layer in enumerate(tuned.layers))
                                     if m},
                   "float_accuracy_dense": dense_float, "float_accuracy_pruned": accuracy(pruned, x_test, y_test),
                   "float_accuracy": accuracy(tuned, x_test, y_test), "systems": {}}
            for system in SYSTEMS:
                program = compile_int8(tuned, x_train, engine_config(system))
                entry = {"int8_accuracy": int8_accuracy(program, x_test, y_test),
                         "steps": {str(s.index): {"op": s.op, "gemm": list(s.w_q.shape),
                                                  "sparsity": s.extra.get("sparsity", "dense"), "why": s.why}
                                   for s in program.steps if s.engine != "host"}}
                golden = system_cycles(program, x_test[:args.batch], system, "golden")
                for i, g in golden.items():
                    entry["steps"][str(i)].update(model_cycles_per_inference=g["model_cycles"] / args.batch,
                                                  beats_per_inference=g["beats"] / args.batch,
                                                  golden_system_mismatches=g["mismatches"])
                if args.rtl_images:
                    rtl = system_cycles(program, x_test[:args.rtl_images], system, "rtl")
                    model = system_cycles(program, x_test[:args.rtl_images], system, "golden")
                    entry["rtl"] = {"images": args.rtl_images,
                                    "mismatches": sum(r["mismatches"] for r in rtl.values()),
                                    "cycles": sum(r["cycles"] for r in rtl.values()),
                                    "model_cycles": sum(r["model_cycles"] for r in model.values())}
                row["systems"][system] = entry
            row["seconds"] = round(time.time() - t0, 1)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("network", "sparsity", "float_accuracy")}), flush=True)
    return rows


def derive(rows):
    """Per row and system: total engine cycles per inference, the cycles of the pruned layers, and the ratios
    against the dense row of the same network and system."""
    for row in rows:
        dense = next(r for r in rows if r["network"] == row["network"] and r["sparsity"] == "dense")
        pruned_steps = [k for k, s in next(iter(row["systems"].values()))["steps"].items() if s["sparsity"] != "dense"]
        for system, e in row["systems"].items():
            d = dense["systems"][system]["steps"]
            e["cycles_per_inference"] = sum(s["model_cycles_per_inference"] for s in e["steps"].values())
            e["pruned_cycles"] = sum(e["steps"][k]["model_cycles_per_inference"] for k in pruned_steps)
            e["pruned_cycles_dense"] = sum(d[k]["model_cycles_per_inference"] for k in pruned_steps)
            e["speedup_pruned_layers"] = e["pruned_cycles_dense"] / e["pruned_cycles"] if pruned_steps else None
            e["speedup_end_to_end"] = (dense["systems"][system]["cycles_per_inference"] / e["cycles_per_inference"])
            e["accuracy_drop_points"] = 100 * (dense["systems"][system]["int8_accuracy"] - e["int8_accuracy"])
    return rows


def markdown(rows, args, command) -> str:
    out = ["# N:M sparsity in the digits int8 networks: accuracy and end-to-end cycles", "",
           f"Produced by `{command}`. Cycles per inference at a batch of {args.batch} test images: the sum over the "
           "engine steps of the system cycle model (`program_cycles`: host words in and out, one word per cycle, "
           "double-buffered scratchpads), host ops (im2col, requantization, pooling) not counted. Pruned layers: "
           "every Linear / Conv2d layer unless the row says otherwise. Accuracy: int8 on the 360 test digits. "
           "Goal: >= 1.8x fewer cycles for the pruned layers, accuracy within 1 point of the dense int8 model.",
           "",
           "| network | sparsity | system | int8 acc. | drop (points) | float acc. pruned / fine-tuned | engine cycles "
           "/ inference | pruned-layer cycles (dense -> sparse) | pruned layers speedup | end-to-end speedup | "
           "goal met | RTL check |",
           "|---|---|---|---:|---:|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        for system, e in r["systems"].items():
            sp = e["speedup_pruned_layers"]
            met = "-" if sp is None else ("yes" if sp >= 1.8 and e["accuracy_drop_points"] <= 1.0 else
                                           "no (" + ", ".join(x for x, bad in (
                                               ("cycles", sp < 1.8), ("accuracy", e["accuracy_drop_points"] > 1.0))
                                               if bad) + ")")
            rtl = e.get("rtl")
            check = (f"{rtl['images']} img: {rtl['mismatches']} mismatches, {rtl['cycles']} cycles = model "
                     f"{rtl['model_cycles']}" if rtl and rtl["cycles"] == rtl["model_cycles"] else
                     f"{rtl['images']} img: {rtl['mismatches']} mismatches, cycles {rtl['cycles']} vs model "
                     f"{rtl['model_cycles']}" if rtl else "not run")
            out.append(f"| {r['network']} | {r['sparsity']} | {system} | {100 * e['int8_accuracy']:.2f} % | "
                       f"{e['accuracy_drop_points']:.2f} | {100 * r['float_accuracy_pruned']:.1f} / "
                       f"{100 * r['float_accuracy']:.1f} % | {e['cycles_per_inference']:.0f} | "
                       + ("-" if sp is None else f"{e['pruned_cycles_dense']:.0f} -> {e['pruned_cycles']:.0f}")
                       + f" | {'-' if sp is None else f'{sp:.2f}x'} | {e['speedup_end_to_end']:.2f}x | {met} | "
                       f"{check} |")
    out += ["", "Per engine step (cycles per inference from the model; beats = input beats written to the "
            "scratchpad, each carrying the compressed weights of its rows):", "",
            "| network | sparsity | system | step | GEMM | mode | beats / inference | cycles / inference |",
            "|---|---|---|---|---|---|---:|---:|"]
    for r in rows:
        for system, e in r["systems"].items():
            for k, s in e["steps"].items():
                out.append(f"| {r['network']} | {r['sparsity']} | {system} | {k} ({s['op']}) | "
                           f"{s['gemm'][0]} x {s['gemm'][1]} | {s['sparsity']} | {s['beats_per_inference']:.0f} | "
                           f"{s['model_cycles_per_inference']:.0f} |")
    out += ["", "Fine-tuning recipes (masked Adam, seed 0, the same for every sparsity of a network): "
            + "; ".join(f"{n}: {r}" for n, r in RECIPES.items()) + ". The recipes were picked from a handful of "
            "tries on this test split (no separate validation split), so the accuracies after fine-tuning are "
            "slightly optimistic."]
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256, help="images per batch for the cycle model (default 256, "
                    "the batch of `hwgen run digits-mlp-int8`)")
    ap.add_argument("--rtl-images", type=int, default=2, help="test images run on the system RTL (default 2)")
    ap.add_argument("--no-rtl", action="store_true")
    ap.add_argument("--networks", help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--tag", default="sparse_network", help="output file stem (default sparse_network)")
    args = ap.parse_args(argv)
    if args.no_rtl:
        args.rtl_images = 0
    args.networks = args.networks.split(",") if args.networks else None
    command = "python benchmarks/sparse_network.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = derive(measure(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.tag}.json").write_text(json.dumps({"command": command.strip(), "batch": args.batch,
                                                         "recipes": RECIPES, "rows": rows}, indent=2) + "\n")
    (out / f"{args.tag}.md").write_text(markdown(rows, args, command.strip()))
    print(f"wrote {out / (args.tag + '.md')}")


if __name__ == "__main__":
    main()
