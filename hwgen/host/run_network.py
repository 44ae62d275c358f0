"""`hwgen run NETWORK`: a network on the golden model or on simulated RTL, with a bit-exact comparison.

Networks (sklearn digits, MLP 64-32-10 trained by the project's numpy code with a fixed seed; run_mlp.py):
  digits-mlp       every Linear layer on the L-Mul dot-product engine (E4M3 operands, FP32 accumulation)
  digits-mlp-int8  TFLite-style int8 (per-channel weights, requantization on the host) on the sparse DSP chain
                   engine in dense mode
  digits-snn       the MLP converted to a rate-coded SNN on two spiking cores (run_snn.py)
  digits-cnn       a small int8 CNN (conv via im2col on the sparse chain, pooling on the host; run_cnn.py)
  minilm-layer     all-MiniLM-L6-v2 encoder layer 0 on a real sentence: int8 linear layers on the sparse chain,
                   the 12 heads on the attention array, LayerNorm/GELU on the host (run_minilm.py)
Backends: golden (numpy), rtl (the accelerator top `--system` simulated in bulk), board (the same behind the UART
bridge over a simulated serial line). The golden backend always runs too: the summary counts device results that
differ from it (must be 0).
"""
from __future__ import annotations

from pathlib import Path

from hwgen.host.run_cnn import run_digits_cnn
from hwgen.host.run_minilm import run_minilm_layer
from hwgen.host.run_mlp import run_digits_mlp
from hwgen.host.run_snn import run_digits_snn
from hwgen.host.runs import DEVICE_BACKENDS, layer_indices, parse_rtl_layers, write_record
from sw_model.networks.digits_snn import load_digits

NETWORKS = {"digits-mlp": ("lmuldot", "lmuldot-e4m3x16"), "digits-mlp-int8": ("sparse_chain", "sparse-chain-8"),
            "digits-snn": ("snn_core", None), "digits-cnn": ("sparse_chain", "sparse-chain-8"),
            "minilm-layer": ("sparse_chain+attention", None)}
SHARDED = ("digits-mlp", "digits-mlp-int8", "digits-cnn")


def run_network(network: str, config_name: str | None = None, backend: str = "golden",
                rtl_layers: str | None = None, limit: int | None = None, sim: str = "verilator",
                batch: int = 256, out: Path | None = None, system: str = "system-default",
                rtl_samples: int | None = None, scheduler=None, sparsity: str | None = None) -> dict:
    """Run `network` on the test split. backend rtl|board: the chosen layers (default all) of the first
    `rtl_samples` samples (default all) run on the accelerator top `system` (simulated Verilog, or the same
    behind the UART bridge); everything else, and a reference copy of everything, runs on the golden engines.
    `scheduler`: a Dask distributed scheduler address; the samples are sharded over its workers
    (`hwgen.host.runs.run_batches`) and the summary equals the one-machine run's (digits-mlp, digits-mlp-int8,
    digits-cnn). `sparsity`: digits-cnn pruned to that N:M mode and run in it (`run_digits_cnn`)."""
    if network not in NETWORKS:
        raise ValueError(f"network: got {network!r}, allowed: {', '.join(NETWORKS)}")
    if backend not in DEVICE_BACKENDS:
        raise ValueError(f"--backend: got {backend!r}, allowed: {', '.join(DEVICE_BACKENDS)}")
    for flag, value in (("--limit", limit), ("--rtl-samples", rtl_samples)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{flag}: got {value!r}, allowed: a positive number of test samples")
    engine, default_config = NETWORKS[network]
    if sparsity is not None and network != "digits-cnn":
        raise ValueError(f"--sparsity: got {sparsity!r} for {network}, allowed: only for digits-cnn (other networks: "
                         "the Python API, sw_model.host.netdesc.prune)")
    if scheduler is not None and network not in SHARDED:
        raise ValueError(f"--scheduler: got {scheduler!r} for {network}, allowed: only for {', '.join(SHARDED)} "
                         "(networks whose samples run in batches)")
    if network == "minilm-layer":
        if limit is not None or rtl_samples is not None or backend == "board":
            raise ValueError("minilm-layer: runs one sentence on the bare engines; allowed: --backend golden|rtl, "
                             "--config, --rtl-layers (no --limit, --rtl-samples or board)")
        return run_minilm_layer(config_name, backend, rtl_layers, sim, out=out)
    if network == "digits-cnn":
        layers = None if rtl_layers is None else layer_indices(rtl_layers, 6)
        return run_digits_cnn(config_name, backend, layers, limit, sim, out=out, rtl_samples=rtl_samples,
                              system=system, scheduler=scheduler, sparsity=sparsity)
    if engine == "snn_core":
        if system != "system-default" or rtl_samples is not None:
            raise ValueError("digits-snn: its system holds the two converted cores; allowed: --backend, "
                             "--rtl-layers, --limit (no --system or --rtl-samples)")
        return _run_snn(config_name, backend, rtl_layers, limit, sim, out)
    return run_digits_mlp(network, engine, config_name or default_config, backend, rtl_layers, limit, sim, batch,
                          out, system, rtl_samples, scheduler=scheduler)


def _run_snn(config_name, backend, rtl_layers, limit, sim, out) -> dict:
    if config_name:
        raise ValueError(f"--config: got {config_name!r}, allowed: none for digits-snn (its cores come from the "
                         "conversion)")
    _, _, x_test, y_test = load_digits()
    if limit:
        x_test, y_test = x_test[:limit], y_test[:limit]
    summary = run_digits_snn(backend, parse_rtl_layers(rtl_layers, 2, backend), x_test, y_test, sim)
    write_record(summary, out)
    return summary
