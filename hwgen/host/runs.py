"""What every network runner shares: batches with progress, the device-vs-golden tally, the layer choice, the
JSON record and the printed summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwgen.progress import progress

DEVICE_BACKENDS = ("golden", "rtl", "board")


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

    def merge(self, other: "DeviceTally"):
        """Add another tally (a shard's) into this one."""
        for key in ("cycles", "model_cycles", "busy", "beats", "sim_seconds"):
            setattr(self, key, getattr(self, key) + getattr(other, key))

    def fields(self, engine: str, samples: int) -> dict:
        return {"cycles_total": self.cycles, "cycles_model_total": self.model_cycles,
                "cycles_per_inference": self.cycles / samples,
                "engine_utilization": {engine: {
                    "busy_fraction": self.busy / self.cycles if self.cycles else None,
                    "beats_per_busy_cycle": self.beats / self.busy if self.busy else None}},
                "simulated_cycles_per_s": self.cycles / self.sim_seconds if self.sim_seconds else None}


def batch_ranges(n: int, batch: int, n_device: int) -> list[tuple[int, int]]:
    """The (start, end) sample ranges of a run: batches of `batch`, cut at `n_device` (device vs golden-only)."""
    out, start = [], 0
    while start < n:
        end = min(start + batch, n, n_device if start < n_device else n)
        out.append((start, end))
        start = end
    return out


def run_ranges(network: str, backend: str, x, ranges, device_layers: list[int], n_layers: int, n_device: int,
               run, on_batch=None, offset: int = 0):
    """Run the sample `ranges` (each one batch; sample numbers of the whole run) of `x`, which holds the samples
    from `offset` on; returns (outputs of each range, mismatches per layer, DeviceTally). The body of
    `run_batches`, also what one shard of a distributed run executes."""
    outputs, mismatches, tally = [], [0] * n_layers, DeviceTally()
    for start, end in ranges:
        xb = x[start - offset:end - offset]
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
        if on_batch:
            on_batch(end - start)
    return outputs, mismatches, tally


def _shard(network, backend, x_part, offset, ranges, device_layers, n_layers, n_device, run):
    """One shard on a worker: its samples arrive as `x_part` (starting at sample `offset`)."""
    return run_ranges(network, backend, x_part, ranges, device_layers, n_layers, n_device, run, offset=offset)


def run_batches(network: str, backend: str, x, device_layers: list[int], n_layers: int, n_device: int,
                batch: int, run, scheduler=None, shards: int | None = None, retries: int = 2):
    """The test split in batches, with a progress bar. The first `n_device` samples run with `device_layers` on
    the device and again all-golden as the reference; the rest run all-golden. `run(xb, device: bool)` returns
    (outputs, one record per layer with `acc` and the backend's stats). Returns (outputs, mismatches per layer,
    DeviceTally of the device layers). A device failure names the network, backend and samples.

    `scheduler`: a Dask distributed scheduler address: the batches are cut into `shards` contiguous shards
    (default: 2 per worker) that run as tasks on the cluster (`hwgen.host.shard.map_shards`, each retried up to
    `retries` times); the batches are the same as on one machine and the results merge in sample order, so
    the outputs, mismatches and tally are those of the local run."""
    ranges = batch_ranges(len(x), batch, n_device)
    bar = progress(total=len(x), desc=network, unit="sample")
    if scheduler is None:
        outputs, mismatches, tally = run_ranges(network, backend, x, ranges, device_layers, n_layers, n_device,
                                                run, bar.update)
    else:
        from hwgen.host.shard import map_shards, split, workers
        if shards is not None and (not isinstance(shards, int) or shards < 1):
            raise ValueError(f"shards: got {shards!r}, allowed: a positive number of shards")
        parts = split(ranges, shards or 2 * workers(scheduler))
        tasks = [(network, backend, x[p[0][0]:p[-1][1]], p[0][0], p, device_layers, n_layers, n_device, run)
                 for p in parts]
        done = map_shards(_shard, tasks, scheduler, retries,
                          on_done=lambda k, _: bar.update(parts[k][-1][1] - parts[k][0][0]))
        outputs, mismatches, tally = [], [0] * n_layers, DeviceTally()
        for out, mis, part_tally in done:
            outputs += out
            mismatches = [a + b for a, b in zip(mismatches, mis)]
            tally.merge(part_tally)
    bar.close()
    return np.concatenate(outputs), mismatches, tally


def write_record(summary: dict, out: Path | None):
    """The run's JSON record, out/run-NETWORK-BACKEND.json."""
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"run-{summary['network']}-{summary['backend']}.json").write_text(json.dumps(summary, indent=2) + "\n")


def layer_indices(text: str, n_layers: int) -> list[int]:
    try:
        return sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ValueError(f"--rtl-layers: got {text!r}, allowed: comma-separated layer indices 0..{n_layers - 1}") \
            from None


def parse_rtl_layers(text: str | None, n_layers: int, backend: str) -> list[int]:
    """Indices of the layers that run on the device backend (default: all of them unless golden)."""
    if text is None:
        return list(range(n_layers)) if backend != "golden" else []
    chosen = layer_indices(text, n_layers)
    bad = [i for i in chosen if not 0 <= i < n_layers]
    if bad:
        raise ValueError(f"--rtl-layers: got {bad}, allowed: layer indices 0..{n_layers - 1}")
    return chosen


def print_summary(s: dict):
    where = f", {s['samples_on_device']} of them on system {s['system']}" if s.get("system") else ""
    sparse = f", {s['sparsity']} sparse" if s.get("sparsity") else ""
    print(f"network {s['network']}{sparse} on {s['backend']} ({s['config']}), {s['samples']} test samples{where}")
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
