"""`hwgen run digits-cnn`: the digits CNN (sw_model.networks.digits_cnn) compiled to int8 by
sw_model.host.netdesc and run with its conv and linear layers on the sparse DSP chain engine (golden chain model, or the sparse-chain engine of the
accelerator top `system` as simulated RTL or behind the UART bridge), pooling and flatten on the host.

The summary has the keys of `hwgen.host.run_network.run_network`'s; its `layers` are the compiled steps (a conv with
its fused ReLU is one step), each with `engine` "sparse_chain" or "host", `ran_on` "rtl"/"board", "golden" or
"host", and `op` / `why` saying what runs there and why. Device steps are
compared with the golden backend (`Int8GoldenBackend`) accumulator by accumulator: `mismatches` counts differing
int32 accumulators (must be 0).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hwgen.cache import build_root
from hwgen.host.runs import run_batches, write_record
from hwgen.host.system_backend import SystemBackend
from sw_model.host.netdesc import compile_int8
from sw_model.host.netdesc.layers import SPARSITY_MODES
from sw_model.networks.digits_cnn import digits_cnn, pruned_digits_cnn
from sw_model.registry import load_config

DEFAULT_CONFIG = "sparse-chain-8"


def run_digits_cnn(config_name: str | None = None, backend: str = "golden", rtl_layers: list[int] | None = None,
                   limit: int | None = None, sim: str = "verilator", batch: int = 16,
                   out: Path | None = None, rtl_samples: int | None = None,
                   system: str = "system-default", scheduler=None, sparsity: str | None = None) -> dict:
    """Run the test split (first `limit` images) in batches of `batch` images. `rtl_layers`: indices of engine
    steps to run on the RTL; None = every engine step when backend is "rtl", none otherwise. `rtl_samples`: only
    the first that many images use the RTL (default all), the rest run on the golden backend. `scheduler`: shard
    the images over a Dask cluster (`hwgen.host.runs.run_batches`). `sparsity` ("2:4", "1:4", ...): the CNN
    pruned to that N:M mode in every conv / linear layer and fine-tuned (`pruned_digits_cnn`, cached), run in
    that mode of the chain with compressed weights."""
    if backend not in ("golden", "rtl", "board"):
        raise ValueError(f"--backend: got {backend!r}, allowed: golden, rtl, board")
    for flag, value in (("--limit", limit), ("--rtl-samples", rtl_samples)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{flag}: got {value!r}, allowed: a positive number of test samples")
    if batch < 1:
        raise ValueError(f"batch: got {batch}, allowed: a positive number of images")
    config_name = config_name or DEFAULT_CONFIG
    _, config = load_config(config_name)
    if config.unit != "sparse_chain":
        raise ValueError(f"--config: got unit {config.unit!r}, allowed: a sparse_chain config (the engine of "
                         "digits-cnn)")
    if sparsity is None:
        net, (x_train, _, x_test, y_test) = digits_cnn(cache_dir=build_root() / "models")
    else:
        if sparsity not in SPARSITY_MODES:
            raise ValueError(f"--sparsity: got {sparsity!r}, allowed: {', '.join(SPARSITY_MODES)}")
        net, (x_train, _, x_test, y_test) = pruned_digits_cnn(sparsity, cache_dir=build_root() / "models")
    if limit:
        x_test, y_test = x_test[:limit], y_test[:limit]
    program = compile_int8(net, x_train, config)
    engine_steps = program.engine_steps
    if rtl_layers is None:
        on_rtl = engine_steps if backend != "golden" else []
    else:
        on_rtl = sorted(set(int(i) for i in rtl_layers))
        for i in on_rtl:
            if not 0 <= i < len(program.steps):
                raise ValueError(f"--rtl-layers: got {i}, allowed: layer indices 0..{len(program.steps) - 1} "
                                 f"(engine layers {engine_steps})")
            if i not in engine_steps:
                raise ValueError(f"--rtl-layers: layer {i} ({program.steps[i].op}) runs on the host, allowed: "
                                 f"engine layers {', '.join(map(str, engine_steps))}")
        if on_rtl and backend == "golden":
            raise ValueError(f"--rtl-layers: got {on_rtl} with --backend golden, allowed: --backend rtl or board")
    backends = {}
    if on_rtl:
        device = SystemBackend(system, backend, sim)
        device.engine_index(config)                  # the system must have this engine: fail before any work
        backends = {i: device for i in on_rtl}

    t0 = time.time()
    n_rtl = len(y_test) if rtl_samples is None else min(rtl_samples, len(y_test))

    def run(xb, on):
        return program.run(xb, backends if on else None)
    logits, mismatches, tally = run_batches("digits-cnn", backend, x_test, on_rtl, len(program.steps), n_rtl, batch,
                                            run, scheduler=scheduler)
    wall = time.time() - t0
    n = len(y_test)
    summary = {
        "network": "digits-cnn", "config": config_name, "backend": backend, "samples": int(n),
        "system": system if on_rtl else None, "samples_on_device": n_rtl if on_rtl else 0,
        "layers": [{"layer": st.index, "shape": list(st.shape), "engine": st.engine,
                    "ran_on": "host" if st.engine == "host" else (backend if st.index in on_rtl else "golden"),
                    "mismatches_vs_golden": mismatches[st.index], "op": st.op, "why": st.why}
                   for st in program.steps],
        "host_ops": ("input quantization, im2col, int32 bias add, TFLite requantization with fused ReLU, "
                     "max pooling, flatten on the host"),
        "accuracy": float(np.mean(logits.argmax(axis=1) == y_test)),
        "float_accuracy": float(np.mean(net.forward(x_test).argmax(axis=1) == y_test)),
        "mismatches": sum(mismatches), "wall_s": round(wall, 2),
    }
    if sparsity:
        summary["sparsity"] = sparsity
    if on_rtl:
        summary.update(tally.fields(config_name, n_rtl))
    write_record(summary, out)
    return summary

