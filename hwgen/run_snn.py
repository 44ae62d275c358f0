"""`hwgen run digits-snn`: the digits MLP converted to a rate-coded SNN on two spiking cores.

The converted network and its core configs come from `sw_model.snn_convert` (the configs are derived from the
conversion, so there is no `--config`). Per layer, the golden backend is the batched model
`sw_model.snn.run_batch`; the rtl backend streams the weight-load beats and every image's spike events through
the `SNNCore` RTL in one bulk simulation and decodes its output spike events. The number of output beats to wait
for comes from the beat-level model (`snn.stream_model`); the spikes themselves are compared with the golden
backend (mismatches = differing spike bits)."""
from __future__ import annotations

import sys
import time

import numpy as np

from sw_model import snn
from sw_model import snn_convert as conv

from .run_network import ROOT

TIMESTEPS = 32


def _layer_rtl(cfg, weights, spikes, sim: str) -> tuple[np.ndarray, dict]:
    if str(ROOT / "rtl_tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "rtl_tests"))
    from bulk import run_bulk
    inp = snn.concat(snn.weight_beats(cfg, weights), snn.batch_beats(cfg, spikes))
    expected_out, _, _ = snn.stream_model(cfg, inp)
    res = run_bulk(cfg, inp, len(expected_out["kind"]), sim=sim)
    out = snn.batch_spikes(cfg, res["outputs"], len(spikes), spikes.shape[1])
    return out, {"cycles": res["cycles"], "sim_seconds": res["sim_seconds"], "beats": len(next(iter(inp.values())))}


def run_digits_snn(backend: str, rtl_layers: list[int], x_test, y_test, sim: str, batch: int = 100) -> dict:
    x_train, y_train, _, _ = conv.load_digits()
    mlp = conv.train_mlp(x_train, y_train)
    net = conv.convert(mlp, x_train)
    layers = [(net.cfg1, net.w1), (net.cfg2, net.w2)]
    t0 = time.time()
    preds, mismatches, cycles, sim_seconds, spikes_total = [], [0, 0], 0, 0.0, [0, 0, 0]
    for start in range(0, len(y_test), batch):
        xb = x_test[start:start + batch]
        s = conv.encode(xb, TIMESTEPS)
        spikes_total[0] += int(s[:, :, :64].sum())
        for i, (cfg, w) in enumerate(layers):
            inp = s if i == 0 else conv.with_bias(s)
            golden, _ = snn.run_batch(cfg, w, inp)
            if i in rtl_layers:
                got, stats = _layer_rtl(cfg, w, inp, sim)
                mismatches[i] += int(np.count_nonzero(got != golden))
                cycles += stats["cycles"]
                sim_seconds += stats["sim_seconds"]
                s = got
            else:
                s = golden
            spikes_total[i + 1] += int(s.sum())
        preds.append(s.sum(axis=1).argmax(axis=1))
        print(f"\r{min(start + batch, len(y_test))}/{len(y_test)} samples", end="", flush=True)
    print()
    pred = np.concatenate(preds)
    n = len(y_test)
    summary = {
        "network": "digits-snn", "config": "converted (snn_convert)", "backend": backend, "samples": int(n),
        "layers": [{"layer": i, "shape": [cfg.neurons, cfg.axons], "engine": "snn_core",
                    "ran_on": "rtl" if i in rtl_layers else "golden", "mismatches_vs_golden": mismatches[i]}
                   for i, (cfg, _) in enumerate(layers)],
        "host_ops": f"rate coding of the pixels ({TIMESTEPS} timesteps), bias axon, output spike counting",
        "accuracy": float(np.mean(pred == y_test)), "float_accuracy": mlp.accuracy(x_test / 16, y_test),   # the ANN takes pixels / 16
        "mismatches": sum(mismatches), "wall_s": round(time.time() - t0, 2),
        "spikes_per_inference": {"input": spikes_total[0] / n, "hidden": spikes_total[1] / n,
                                 "output": spikes_total[2] / n},
    }
    if rtl_layers:
        summary.update(cycles_total=cycles, cycles_per_inference=cycles / n, engine_utilization=None,
                       simulated_cycles_per_s=cycles / sim_seconds if sim_seconds else None)
    return summary
