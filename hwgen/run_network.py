"""`hwgen run NETWORK`: a network on the golden model or on simulated RTL, with a bit-exact comparison.

Networks (sklearn digits, MLP 64-32-10 trained by the project's numpy code with a fixed seed):
  digits-mlp       every Linear layer on the L-Mul dot-product engine (E4M3 operands, FP32 accumulation)
  digits-mlp-int8  TFLite-style int8 (per-channel weights, requantization on the host) on the sparse DSP chain
                   engine in dense mode
  digits-snn       the MLP converted to a rate-coded SNN on two spiking cores (hwgen/run_snn.py)
The golden backend always runs too: the summary counts RTL results that differ from it (must be 0).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sw_model.configs import load_config
from sw_model.digits import MLPWeights, load_digits, train_mlp
from sw_model.network import GoldenBackend, Linear, compile_lmul, run_program
from sw_model.network_int8 import Int8GoldenBackend, compile_int8, run_int8

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = {"digits-mlp": ("lmuldot", "lmuldot-e4m3x16"), "digits-mlp-int8": ("sparse_chain", "sparse-chain-8"),
            "digits-snn": ("snn_core", None)}


def _digits_mlp(seed: int = 0):
    """Data and trained weights (cached in build/models by seed; training takes a few seconds)."""
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    cache = ROOT / "build" / "models" / f"digits_mlp_seed{seed}.npz"
    if cache.exists():
        z = np.load(cache)
        mlp = MLPWeights([z["w0"], z["w1"]], [z["b0"], z["b1"]])
    else:
        mlp = train_mlp(x_train, y_train, seed=seed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, w0=mlp.weights[0], w1=mlp.weights[1], b0=mlp.biases[0], b1=mlp.biases[1])
    layers = [Linear(mlp.weights[0], mlp.biases[0], relu=True), Linear(mlp.weights[1], mlp.biases[1])]
    return layers, mlp, (x_train, y_train, x_test, y_test)


def parse_rtl_layers(text: str | None, n_layers: int, backend: str) -> list[int]:
    if text is None:
        return list(range(n_layers)) if backend == "rtl" else []
    try:
        chosen = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ValueError(f"--rtl-layers: got {text!r}, allowed: comma-separated layer indices 0..{n_layers - 1}") \
            from None
    bad = [i for i in chosen if not 0 <= i < n_layers]
    if bad:
        raise ValueError(f"--rtl-layers: got {bad}, allowed: layer indices 0..{n_layers - 1}")
    return chosen


def run_network(network: str, config_name: str | None = None, backend: str = "golden",
                rtl_layers: str | None = None, limit: int | None = None, sim: str = "verilator",
                batch: int = 256, out: Path | None = None) -> dict:
    if network not in NETWORKS:
        raise ValueError(f"network: got {network!r}, allowed: {', '.join(NETWORKS)}")
    if backend not in ("golden", "rtl"):
        raise ValueError(f"--backend: got {backend!r}, allowed: golden, rtl")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit: got {limit}, allowed: a positive number of test samples")
    engine, default_config = NETWORKS[network]
    if engine == "snn_core":
        return _run_snn(config_name, backend, rtl_layers, limit, sim, out)
    config_name = config_name or default_config
    _, config = load_config(config_name)
    if config.unit != engine:
        raise ValueError(f"--config: got unit {config.unit!r}, allowed: a {engine} config (the engine of {network})")
    layers, mlp, (x_train, _, x_test, y_test) = _digits_mlp()
    if limit:
        x_test, y_test = x_test[:limit], y_test[:limit]
    if engine == "lmuldot":
        program = compile_lmul(layers, config, x_train)
        compiled, golden = program.layers, GoldenBackend()

        def execute(xb, backends):
            return run_program(program, xb, backends)
    else:
        input_scale, compiled = compile_int8(layers, x_train)
        golden = Int8GoldenBackend()

        def execute(xb, backends):
            return run_int8(config, input_scale, compiled, xb, backends)
    on_rtl = parse_rtl_layers(rtl_layers, len(compiled), backend)
    rtl = None
    if on_rtl:
        from .rtl_backend import RtlBackend
        rtl = RtlBackend(sim=sim)
    chosen = [rtl if i in on_rtl else golden for i in range(len(compiled))]

    t0 = time.time()
    logits, mismatches, cycles, sim_seconds, beats = [], [0] * len(compiled), 0, 0.0, 0
    for start in range(0, len(y_test), batch):
        xb = x_test[start:start + batch]
        got, records = execute(xb, chosen)
        if on_rtl:
            ref, ref_records = execute(xb, [golden] * len(compiled))
            for i, (r, g) in enumerate(zip(records, ref_records)):
                mismatches[i] += int(np.count_nonzero(r["acc"] != g["acc"]))
            cycles += sum(r["cycles"] or 0 for r in records)
            sim_seconds += sum(r.get("sim_seconds", 0.0) for r in records)
            beats += sum(r.get("beats", 0) for r in records)
        logits.append(got)
        done = min(start + batch, len(y_test))
        bar = "#" * int(30 * done / len(y_test))
        print(f"\r[{bar:30s}] {done}/{len(y_test)} samples", end="", flush=True)
    print()
    wall = time.time() - t0
    logits = np.concatenate(logits)
    accuracy = float(np.mean(logits.argmax(axis=1) == y_test))
    float_accuracy = float(np.mean(mlp.forward(x_test).argmax(axis=1) == y_test))
    summary = {
        "network": network, "config": config_name, "backend": backend, "samples": int(len(y_test)),
        "layers": [{"layer": i, "shape": list(layer.shape), "engine": layer.engine,
                    "ran_on": "rtl" if i in on_rtl else "golden", "mismatches_vs_golden": mismatches[i]}
                   for i, layer in enumerate(compiled)],
        "host_ops": ("input scaling/encode, bias add, ReLU, dequantize (float32) on the host for every layer"
                     if engine == "lmuldot" else
                     "input quantization, int32 bias add, TFLite requantization with fused ReLU on the host"),
        "accuracy": accuracy, "float_accuracy": float_accuracy, "mismatches": sum(mismatches),
        "wall_s": round(wall, 2),
    }
    if on_rtl:
        summary.update(cycles_total=cycles, cycles_per_inference=cycles / len(y_test),
                       engine_utilization=beats / cycles if cycles else None,
                       simulated_cycles_per_s=cycles / sim_seconds if sim_seconds else None)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"run-{network}-{backend}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _run_snn(config_name, backend, rtl_layers, limit, sim, out) -> dict:
    from sw_model.snn_convert import load_digits
    from .run_snn import run_digits_snn
    if config_name:
        raise ValueError(f"--config: got {config_name!r}, allowed: none for digits-snn (its cores come from the "
                         "conversion)")
    _, _, x_test, y_test = load_digits()
    if limit:
        x_test, y_test = x_test[:limit], y_test[:limit]
    summary = run_digits_snn(backend, parse_rtl_layers(rtl_layers, 2, backend), x_test, y_test, sim)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"run-digits-snn-{backend}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_summary(s: dict):
    print(f"network {s['network']} on {s['backend']} ({s['config']}), {s['samples']} test samples")
    for layer in s["layers"]:
        print(f"  layer {layer['layer']}: {layer['shape'][0]}x{layer['shape'][1]} on {layer['engine']} "
              f"[{layer['ran_on']}], mismatches vs golden: {layer['mismatches_vs_golden']}")
    print(f"  host: {s['host_ops']}")
    print(f"  accuracy {s['accuracy']:.4f} (float64 network: {s['float_accuracy']:.4f}); "
          f"mismatches vs golden: {s['mismatches']}")
    if "cycles_total" in s:
        util = s.get("engine_utilization")
        print(f"  cycles per inference {s['cycles_per_inference']:.0f}"
              + (f", engine utilization {util:.3f} beats/cycle" if util is not None else "")
              + f", simulated {s['simulated_cycles_per_s']:.0f} cycles/s")
    if "spikes_per_inference" in s:
        print("  spikes per inference: " + ", ".join(f"{k} {v:.0f}" for k, v in s["spikes_per_inference"].items()))
    print(f"  wall time {s['wall_s']} s")
