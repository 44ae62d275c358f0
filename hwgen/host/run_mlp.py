"""`hwgen run digits-mlp` / `digits-mlp-int8`: the digits MLP (64-32-10) on the L-Mul dot engine or, quantized to
int8 as TFLite does, on the sparse DSP chain; golden engines or the accelerator top (rtl/board), bit-exact check."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hwgen.cache import build_root
from hwgen.host.runs import parse_rtl_layers, run_batches, write_record
from hwgen.host.system_backend import SystemBackend
from sw_model.host.network import GoldenBackend, Linear, compile_lmul, run_program
from sw_model.host.network_int8 import Int8GoldenBackend, compile_int8, run_int8
from sw_model.networks.digits import MLPWeights, load_digits, train_mlp
from sw_model.registry import load_config


def _digits_mlp(seed: int = 0):
    """Data and trained weights (cached in the build folder's models/ by seed; training takes a few seconds)."""
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    cache = build_root() / "models" / f"digits_mlp_seed{seed}.npz"
    if cache.exists():
        z = np.load(cache)
        mlp = MLPWeights([z["w0"], z["w1"]], [z["b0"], z["b1"]])
    else:
        mlp = train_mlp(x_train, y_train, seed=seed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")     # parallel workers never read half a file
        np.savez(tmp, w0=mlp.weights[0], w1=mlp.weights[1], b0=mlp.biases[0], b1=mlp.biases[1])
        os.replace(tmp, cache)
    layers = [Linear(mlp.weights[0], mlp.biases[0], relu=True), Linear(mlp.weights[1], mlp.biases[1])]
    return layers, mlp, (x_train, y_train, x_test, y_test)


def run_digits_mlp(network: str, engine: str, config_name: str, backend: str, rtl_layers: str | None,
                   limit: int | None, sim: str, batch: int, out: Path | None, system: str,
                   rtl_samples: int | None, scheduler=None) -> dict:
    """The MLP with every Linear layer on `engine` (`lmuldot` or `sparse_chain`); see `run_network`."""
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
        device = SystemBackend(system, backend, sim)
        device.engine_index(config)                  # the system must have this engine: fail before any work
    n_device = len(y_test) if rtl_samples is None else min(rtl_samples, len(y_test))
    if backend == "board":
        batch = min(batch, 16)                       # a serial link: keep each program short

    t0 = time.time()

    def run(xb, on):
        return execute(xb, [device if on and i in on_device else golden for i in range(len(compiled))])
    logits, mismatches, tally = run_batches(network, backend, x_test, on_device, len(compiled), n_device, batch, run,
                                            scheduler=scheduler)
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
