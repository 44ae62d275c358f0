"""`hwgen run NETWORK`: a network on the golden model or on simulated RTL, with a bit-exact comparison.

Networks (sklearn digits, MLP 64-32-10 trained by the project's numpy code with a fixed seed):
  digits-mlp       every Linear layer on the L-Mul dot-product engine (E4M3 operands, FP32 accumulation)
  digits-mlp-int8  TFLite-style int8 (per-channel weights, requantization on the host) on the sparse DSP chain
                   engine in dense mode
  digits-snn       the MLP converted to a rate-coded SNN on two spiking cores (hwgen/run_snn.py)
  digits-cnn       a small int8 CNN (conv via im2col on the sparse chain, pooling on the host; hwgen/run_cnn.py)
  minilm-layer     all-MiniLM-L6-v2 encoder layer 0 on a real sentence: int8 linear layers on the sparse chain,
                   the 12 heads on the attention array, LayerNorm/GELU on the host (hwgen/run_minilm.py)
Backends: golden (numpy), rtl (the accelerator top `--system` simulated in bulk), board (the same behind the UART
bridge over a simulated serial line). The golden backend always runs too: the summary counts device results that
differ from it (must be 0).
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
DEVICE_BACKENDS = ("golden", "rtl", "board")
NETWORKS = {"digits-mlp": ("lmuldot", "lmuldot-e4m3x16"), "digits-mlp-int8": ("sparse_chain", "sparse-chain-8"),
            "digits-snn": ("snn_core", None), "digits-cnn": ("sparse_chain", "sparse-chain-8"),
            "minilm-layer": ("sparse_chain+attention", None)}


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


class DeviceTally:
    """Sums the device backend's records of a run (simulated and modelled cycles, the engine's busy cycles and
    input beats from the hardware counters, simulator seconds) into the summary's device fields."""

    def __init__(self):
        self.cycles = self.model_cycles = self.busy = self.beats = 0
        self.sim_seconds = 0.0

    def add(self, record: dict):
        self.cycles += record["cycles"]
        self.model_cycles += record["model_cycles"]
        self.sim_seconds += record["sim_seconds"]
        self.busy += record["engine_busy"]
        self.beats += record["beats"]

    def fields(self, engine: str, samples: int) -> dict:
        return {"cycles_total": self.cycles, "cycles_model_total": self.model_cycles,
                "cycles_per_inference": self.cycles / samples,
                "engine_utilization": {engine: {
                    "busy_fraction": self.busy / self.cycles if self.cycles else None,
                    "beats_per_busy_cycle": self.beats / self.busy if self.busy else None}},
                "simulated_cycles_per_s": self.cycles / self.sim_seconds if self.sim_seconds else None}


def run_batches(network: str, backend: str, x, device_layers: list[int], n_layers: int, n_device: int,
                batch: int, run):
    """The test split in batches, with a progress bar. The first `n_device` samples run with `device_layers` on
    the device and again all-golden as the reference; the rest run all-golden. `run(xb, device: bool)` returns
    (outputs, one record per layer with `acc` and the backend's stats). Returns (outputs, mismatches per layer,
    DeviceTally of the device layers). A device failure names the network, backend and samples."""
    outputs, mismatches, tally = [], [0] * n_layers, DeviceTally()
    start = 0
    while start < len(x):
        end = min(start + batch, len(x), n_device if start < n_device else len(x))
        xb = x[start:end]
        if device_layers and start < n_device:
            try:
                got, records = run(xb, True)
            except Exception as e:
                raise RuntimeError(f"{network}: the {backend} backend failed at samples {start}..{end - 1} "
                                   f"({e}); no summary was written") from e
            _, ref = run(xb, False)
            for i in device_layers:
                mismatches[i] += int(np.count_nonzero(records[i]["acc"] != ref[i]["acc"]))
                tally.add(records[i])
        else:
            got, _ = run(xb, False)
        outputs.append(got)
        bar = "#" * int(30 * end / len(x))
        print(f"\r[{bar:30s}] {end}/{len(x)} samples", end="", flush=True)
        start = end
    print()
    return np.concatenate(outputs), mismatches, tally


def write_record(summary: dict, out: Path | None):
    """The run's JSON record, out/run-NETWORK-BACKEND.json."""
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"run-{summary['network']}-{summary['backend']}.json").write_text(json.dumps(summary, indent=2) + "\n")


def _layer_indices(text: str, n_layers: int) -> list[int]:
    try:
        return sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ValueError(f"--rtl-layers: got {text!r}, allowed: comma-separated layer indices 0..{n_layers - 1}") \
            from None


def parse_rtl_layers(text: str | None, n_layers: int, backend: str) -> list[int]:
    """Indices of the layers that run on the device backend (default: all of them unless golden)."""
    if text is None:
        return list(range(n_layers)) if backend != "golden" else []
    chosen = _layer_indices(text, n_layers)
    bad = [i for i in chosen if not 0 <= i < n_layers]
    if bad:
        raise ValueError(f"--rtl-layers: got {bad}, allowed: layer indices 0..{n_layers - 1}")
    return chosen


def run_network(network: str, config_name: str | None = None, backend: str = "golden",
                rtl_layers: str | None = None, limit: int | None = None, sim: str = "verilator",
                batch: int = 256, out: Path | None = None, system: str = "system-default",
                rtl_samples: int | None = None) -> dict:
    """Run `network` on the test split. backend rtl|board: the chosen layers (default all) of the first
    `rtl_samples` samples (default all) run on the accelerator top `system` (simulated Verilog, or the same
    behind the UART bridge); everything else, and a reference copy of everything, runs on the golden engines."""
    if network not in NETWORKS:
        raise ValueError(f"network: got {network!r}, allowed: {', '.join(NETWORKS)}")
    if backend not in DEVICE_BACKENDS:
        raise ValueError(f"--backend: got {backend!r}, allowed: {', '.join(DEVICE_BACKENDS)}")
    for flag, value in (("--limit", limit), ("--rtl-samples", rtl_samples)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{flag}: got {value!r}, allowed: a positive number of test samples")
    engine, default_config = NETWORKS[network]
    if network == "minilm-layer":
        from .run_minilm import run_minilm_layer
        if limit is not None or rtl_samples is not None or backend == "board":
            raise ValueError("minilm-layer: runs one sentence on the bare engines; allowed: --backend golden|rtl, "
                             "--config, --rtl-layers (no --limit, --rtl-samples or board)")
        return run_minilm_layer(config_name, backend, rtl_layers, sim, out=out)
    if network == "digits-cnn":
        from .run_cnn import run_digits_cnn
        layers = None if rtl_layers is None else _layer_indices(rtl_layers, 6)
        return run_digits_cnn(config_name, backend, layers, limit, sim, out=out, rtl_samples=rtl_samples,
                              system=system)
    if engine == "snn_core":
        if system != "system-default" or rtl_samples is not None:
            raise ValueError("digits-snn: its system holds the two converted cores; allowed: --backend, "
                             "--rtl-layers, --limit (no --system or --rtl-samples)")
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
    on_device = parse_rtl_layers(rtl_layers, len(compiled), backend)
    device = None
    if on_device:
        from .system_backend import SystemBackend
        device = SystemBackend(system, backend, sim)
        device.engine_index(config)                  # the system must have this engine: fail before any work
    n_device = len(y_test) if rtl_samples is None else min(rtl_samples, len(y_test))
    if backend == "board":
        batch = min(batch, 16)                       # a serial link: keep each program short

    t0 = time.time()

    def run(xb, on):
        return execute(xb, [device if on and i in on_device else golden for i in range(len(compiled))])
    logits, mismatches, tally = run_batches(network, backend, x_test, on_device, len(compiled), n_device, batch, run)
    wall = time.time() - t0
    accuracy = float(np.mean(logits.argmax(axis=1) == y_test))
    float_accuracy = float(np.mean(mlp.forward(x_test).argmax(axis=1) == y_test))
    summary = {
        "network": network, "config": config_name, "backend": backend, "samples": int(len(y_test)),
        "system": system if on_device else None, "samples_on_device": n_device if on_device else 0,
        "layers": [{"layer": i, "shape": list(layer.shape), "engine": layer.engine,
                    "ran_on": backend if i in on_device else "golden", "mismatches_vs_golden": mismatches[i]}
                   for i, layer in enumerate(compiled)],
        "host_ops": ("input scaling/encode, bias add, ReLU, dequantize (float32) on the host for every layer"
                     if engine == "lmuldot" else
                     "input quantization, int32 bias add, TFLite requantization with fused ReLU on the host"),
        "accuracy": accuracy, "float_accuracy": float_accuracy, "mismatches": sum(mismatches),
        "wall_s": round(wall, 2),
    }
    if on_device:
        summary.update(tally.fields(config_name, n_device))
    write_record(summary, out)
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
    write_record(summary, out)
    return summary


def print_summary(s: dict):
    where = f", {s['samples_on_device']} of them on system {s['system']}" if s.get("system") else ""
    print(f"network {s['network']} on {s['backend']} ({s['config']}), {s['samples']} test samples{where}")
    for layer in s["layers"]:
        print(f"  layer {layer['layer']}: {layer['shape'][0]}x{layer['shape'][1]} on {layer['engine']} "
              f"[{layer['ran_on']}], mismatches vs golden: {layer['mismatches_vs_golden']}")
    print(f"  host: {s['host_ops']}")
    print(f"  accuracy {s['accuracy']:.4f} (float64 network: {s['float_accuracy']:.4f}); "
          f"mismatches vs golden: {s['mismatches']}")
    if "cycles_total" in s:
        print(f"  cycles per inference {s['cycles_per_inference']:.0f}, simulated "
              f"{s['simulated_cycles_per_s']:.0f} cycles/s")
        for name, u in (s.get("engine_utilization") or {}).items():
            if u.get("busy_fraction") is not None:
                print(f"  engine {name}: busy {100 * u['busy_fraction']:.1f} % of the cycles (the rest is host "
                      f"transfers), {u['beats_per_busy_cycle']:.3f} beats per busy cycle")
    if "spikes_per_inference" in s:
        print("  spikes per inference: " + ", ".join(f"{k} {v:.0f}" for k, v in s["spikes_per_inference"].items()))
    print(f"  wall time {s['wall_s']} s")
