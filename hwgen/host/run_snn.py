"""`hwgen run digits-snn`: the digits MLP converted to a rate-coded SNN on two spiking cores.

The converted network and its core configs come from `sw_model.networks.digits_snn` (the configs are derived from the
conversion, so there is no `--config` or `--system`). Per layer, the golden backend is the batched model
`sw_model.snn.golden.run_batch`. The rtl and board backends run an accelerator top whose two engines are the two cores
(`snn_system`): per batch, a command program loads the layer's weights and streams every image's spike events
through its core (`SystemBackend.spiking`), simulated in bulk or behind the UART bridge. The number of output
beats each RUN waits for comes from the beat-level model (`snn.stream_model`); the spikes themselves are compared
with the golden backend (mismatches = differing spike bits)."""
from __future__ import annotations

import time

import numpy as np

from hwgen.host.system_backend import SystemBackend
from hwgen.progress import progress
from sw_model.networks import digits_snn as conv
from sw_model.snn import golden as snn
from sw_model.system.config import SystemConfig

TIMESTEPS = 32


def snn_system(net) -> SystemConfig:
    """The accelerator top of the converted network: its two cores as engines 0 and 1, a 128-bit host port (one
    word per input beat)."""
    return SystemConfig(engines=(net.cfg1, net.cfg2), host_width=128, spad_depth=2048)


def run_digits_snn(backend: str, rtl_layers: list[int], x_test, y_test, sim: str, batch: int = 100) -> dict:
    x_train, y_train, _, _ = conv.load_digits()
    mlp = conv.train_mlp(x_train, y_train)
    net = conv.convert(mlp, x_train)
    layers = [(net.cfg1, net.w1), (net.cfg2, net.w2)]
    device = None
    if rtl_layers:
        device = SystemBackend(snn_system(net), backend, sim)
        if backend == "board":
            batch = min(batch, 10)                       # a serial link: keep each program short
    t0 = time.time()
    preds, mismatches, cycles, sim_seconds, spikes_total = [], [0, 0], 0, 0.0, [0, 0, 0]
    busy, beats, layer_cycles = [0, 0], [0, 0], [0, 0]
    bar = progress(total=len(y_test), desc="digits-snn", unit="sample")
    for start in range(0, len(y_test), batch):
        xb = x_test[start:start + batch]
        s = conv.encode(xb, TIMESTEPS)
        spikes_total[0] += int(s[:, :, :64].sum())
        for i, (cfg, w) in enumerate(layers):
            inp = s if i == 0 else conv.with_bias(s)
            golden, _ = snn.run_batch(cfg, w, inp)
            if i in rtl_layers:
                try:
                    got, stats = device.spiking(cfg, w, inp)
                except Exception as e:
                    raise RuntimeError(f"digits-snn: the {backend} backend failed at samples {start}.."
                                       f"{start + len(xb) - 1}, layer {i} ({e}); no summary was written") from e
                mismatches[i] += int(np.count_nonzero(got != golden))
                cycles += stats["cycles"]
                sim_seconds += stats["sim_seconds"]
                busy[i] += stats["engine_busy"]
                layer_cycles[i] += stats["cycles"]
                beats[i] += stats["beats"]
                s = got
            else:
                s = golden
            spikes_total[i + 1] += int(s.sum())
        preds.append(s.sum(axis=1).argmax(axis=1))
        bar.update(len(xb))
    bar.close()
    pred = np.concatenate(preds)
    n = len(y_test)
    summary = {
        "network": "digits-snn", "config": "converted (snn_convert)", "backend": backend, "samples": int(n),
        "layers": [{"layer": i, "shape": [cfg.neurons, cfg.axons], "engine": "snn_core",
                    "ran_on": backend if i in rtl_layers else "golden", "mismatches_vs_golden": mismatches[i]}
                   for i, (cfg, _) in enumerate(layers)],
        "host_ops": f"rate coding of the pixels ({TIMESTEPS} timesteps), bias axon, output spike counting",
        "accuracy": float(np.mean(pred == y_test)), "float_accuracy": mlp.accuracy(x_test / 16, y_test),   # the ANN takes pixels / 16
        "mismatches": sum(mismatches), "wall_s": round(time.time() - t0, 2),
        "spikes_per_inference": {"input": spikes_total[0] / n, "hidden": spikes_total[1] / n,
                                 "output": spikes_total[2] / n},
    }
    if rtl_layers:
        summary.update(system=device.system_name, samples_on_device=int(n), cycles_total=cycles,
                       cycles_per_inference=cycles / n,
                       engine_utilization={f"layer {i} core": {"busy_fraction": busy[i] / layer_cycles[i],
                                                               "beats_per_busy_cycle": beats[i] / busy[i]}
                                           for i in rtl_layers},
                       simulated_cycles_per_s=cycles / sim_seconds if sim_seconds else None)
    return summary
