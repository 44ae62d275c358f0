"""`hwgen compare MODEL --numerics A,B,...` and `hwgen run MODEL.onnx`: an imported ONNX model run through
onnxruntime (the float reference) and through each numerics choice, side by side.

For every choice (a numeric name for all layers, or a TOML config; `sw_model.importers.onnx.config`) the whole
data set runs on the golden models (`sw_model.importers.onnx.numerics`): task metric (accuracy, or the cosine
similarity of each output to the reference), and the output error against onnxruntime per sample,
max|y - ref| / max|ref|, as its maximum and mean over the samples.

Layers whose numeric has an engine (L-Mul on `lmuldot`, int8 on `sparse_chain`) are also costed on the
accelerator top: for the first `cycle_samples` samples each such layer becomes the driver's command program
(`hwgen.host.system_backend.SystemBackend.program`: double-buffered WRITE/RUN/READ chunks) and the documented
cycle model (`sw_model.system.golden.program_cycles`) gives its cycles; engine occupancy is the engine's busy
cycles (n + latency + 1 per RUN) over those cycles. Host operators (everything that is not a layer) are not
costed. With backend "rtl", the first `rtl_samples` samples run those layers on the simulated RTL of the
system, compared accumulator by accumulator with the golden model (mismatches must be 0), and the simulated
cycles are reported next to the model's.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from hwgen.host.onnx_models import DEFAULT_DATASET, load_dataset, resolve_model
from sw_model.importers.onnx.config import load_config
from sw_model.importers.onnx.model import OnnxModel
from sw_model.importers.onnx.numerics import get_numeric

DEFAULT_SYSTEM = "system-default"


def _slice(feeds: dict, n: int) -> dict:
    return {k: v[:n] for k, v in feeds.items()}


def _batch_size(feeds: dict) -> int:
    return len(next(iter(feeds.values())))


class EngineCosts:
    """Engine layers on the accelerator top: the system for a numeric's engine config, the program of one layer
    call, its modelled cycles and engine busy cycles, and (target rtl) the call on the simulated RTL."""

    def __init__(self, target: str = "golden", sim: str = "verilator"):
        from hwgen.host.system_backend import SystemBackend
        self.target, self.sim, self._backends, self._cls = target, sim, {}, SystemBackend

    def backend(self, config, target: str):
        from sw_model.registry import PRESETS
        from sw_model.system.config import SystemConfig
        key = (config, target)
        if key not in self._backends:
            default = PRESETS[DEFAULT_SYSTEM]
            system = DEFAULT_SYSTEM if config in default.engine_configs else SystemConfig(engines=(config,))
            self._backends[key] = self._cls(system, target, self.sim)
        return self._backends[key]

    @staticmethod
    def beats(numeric, layer, ops) -> dict:
        cfg = numeric.engine_config
        if numeric.engine == "lmuldot":
            from sw_model.host.network import dot_beats
            return dot_beats(cfg, ops, layer.w_codes)
        from sw_model.sparse.golden import pack_gemm
        return pack_gemm(layer.w_q, np.asarray(ops).T, "dense", cfg.stages, cfg.x_width, weight_bits=cfg.weight_bits)

    def cost(self, numeric, layer, ops) -> dict:
        """{cycles, busy} of one layer call by the cycle model."""
        from sw_model.system.golden import program_cycles
        backend = self.backend(numeric.engine_config, "golden")
        beats = self.beats(numeric, layer, ops)       # the payload does not change the cycles: zero words
        program, e = backend.program(numeric.engine_config, {"last": beats["last"]}, payload=False)
        hdr = {f["name"]: f for f in program.sys["header"]}
        run_op, latency = program.sys["opcodes"]["RUN"], program.engine(e)["latency"]
        busy, k, words = 0, 0, program.words
        while k < len(words):               # walk the headers: payload words follow each WRITE header
            h = {n: (words[k] >> f["offset"]) & ((1 << f["width"]) - 1) for n, f in hdr.items()}
            k += 1
            if h["op"] == program.sys["opcodes"]["WRITE"]:
                k += h["count"] * program.engine(h["engine"])["in_words"]
            elif h["op"] == run_op:
                busy += h["count"] + latency + 1
        return {"cycles": program_cycles(program), "busy": busy}

    def run(self, numeric, layer, ops) -> tuple[np.ndarray, dict]:
        """The layer call on the target's engine -> (accumulators as the golden model gives them, stats)."""
        backend = self.backend(numeric.engine_config, self.target)
        if numeric.engine == "lmuldot":
            return backend.dot(numeric.engine_config, ops, layer.w_codes)
        acc, stats = backend.gemm(numeric.engine_config, layer.w_q, np.asarray(ops).T)
        return acc.T, stats


def _metric(kind: str, outs: np.ndarray, refs: np.ndarray, labels) -> dict:
    if kind == "accuracy":
        pred = outs.reshape(len(outs), -1).argmax(axis=1)
        return {"accuracy": float(np.mean(pred == np.asarray(labels)[:len(pred)]))}
    a, r = outs.reshape(len(outs), -1).astype(np.float64), refs.reshape(len(refs), -1).astype(np.float64)
    cos = (a * r).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(r, axis=1))
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}


def _errors(outs, refs) -> dict:
    o, r = outs.reshape(len(outs), -1).astype(np.float64), refs.reshape(len(refs), -1).astype(np.float64)
    rel = np.abs(o - r).max(axis=1) / np.maximum(np.abs(r).max(axis=1), 1e-30)
    return {"rel_err_max": float(rel.max()), "rel_err_mean": float(rel.mean())}


def _reference(path: Path, batches: list, output: str, types: dict) -> np.ndarray:
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeError("hwgen compare needs onnxruntime for the float reference: pip install onnxruntime") \
            from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = []
    for feeds in batches:
        feeds = {k: np.asarray(v).astype(types.get(k, np.asarray(v).dtype)) for k, v in feeds.items()}
        try:
            out = sess.run([output], feeds)[0]
        except Exception as e:                     # e.g. a fixed input shape the data set does not have
            raise RuntimeError(f"onnxruntime (the float reference) failed on {path.name}: {e}") from None
        if isinstance(out, list):                  # ZipMap: [{class: probability}] -> (N, classes) in class order
            out = np.array([[d[k] for k in sorted(d)] for d in out], np.float32)
        outs.append(out)
    return np.concatenate(outs)


def _output(m) -> str:
    """The output compared: the sentence embedding, else the first output that is not an integer label."""
    if "sentence_embedding" in m.graph.outputs:
        return "sentence_embedding"
    labels = {n.outputs[0] for n in m.graph.nodes if n.op == "LinearClassifier"}
    return next((o for o in m.graph.outputs if o not in labels), m.graph.outputs[0])


def _run_batches(m, prepared, batches: list, output: str) -> np.ndarray:
    """The compared output of `batches` (feed dicts) under `prepared` numerics, concatenated in order."""
    return np.concatenate([m.run(feeds, prepared)[output] for feeds in batches])


def compare(model: str, numerics: list[str], dataset: str | None = None, limit: int | None = None,
            backend: str = "golden", rtl_samples: int = 1, cycle_samples: int = 16, sim: str = "verilator",
            out: Path | None = None, plot: bool = True, scheduler=None) -> dict:
    """Run `model` (built-in name or .onnx) on the data set for onnxruntime and each numerics choice; returns the
    summary (and writes compare-NAME.json/.md/.png into `out`). With `scheduler` (a Dask scheduler address or
    client) every batch of the data set is one shard on the cluster (`hwgen.host.shard.map_shards`: failed shards
    retried, results merged in sample order), so the summary equals the local run's; the cycle-model and RTL
    checks of the first samples stay local."""
    if backend not in ("golden", "rtl"):
        raise ValueError(f"--backend: got {backend!r}, allowed: golden, rtl")
    for flag, v in (("--limit", limit), ("--rtl-samples", rtl_samples), ("--cycle-samples", cycle_samples)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if flag == "--cycle-samples"
                                                                                       else 1)):
            raise ValueError(f"{flag}: got {v!r}, allowed: a positive number of samples")
    if not numerics:
        raise ValueError("--numerics: got nothing, allowed: a comma-separated list of numerics or .toml configs")
    configs = [load_config(n) for n in numerics]                # every config checked before anything runs
    name, path = resolve_model(model)
    t0 = time.time()
    m = OnnxModel(path)
    if dataset is None and name not in DEFAULT_DATASET:
        raise ValueError(f"--dataset: {path.name} is not a built-in model, allowed: digits, digits-images, "
                         "iris, sentences or an .npz file")
    ds = load_dataset(dataset or DEFAULT_DATASET[name], m.graph.inputs[0], limit)
    for c in configs:
        c.assign(m.layer_names)                                 # a rule matching no layer fails here
    output = _output(m)
    refs = _reference(path, ds.batches, output, m.graph.input_types)
    calibration = m.calibrate(ds.calibration)
    costs = EngineCosts(backend, sim)
    rows = [{"numerics": "onnxruntime (float32)", **_metric(ds.metric, refs, refs, ds.labels),
             "rel_err_max": 0.0, "rel_err_mean": 0.0}]
    for cfg in configs:
        t1 = time.time()
        prepared = m.prepare(cfg, calibration)
        if scheduler is None:
            outs = _run_batches(m, prepared, ds.batches, output)
        else:
            from hwgen.host.shard import map_shards
            outs = np.concatenate(map_shards(_run_batches, [(m, prepared, [b], output) for b in ds.batches],
                                             scheduler))
        row = {"numerics": cfg.name, **_metric(ds.metric, outs, refs, ds.labels), **_errors(outs, refs),
               "layers": {k: nm.name for k, (nm, _) in prepared.layers.items()}}
        row.update(_engine_stats(m, prepared, ds, output, costs, backend, rtl_samples, cycle_samples))
        row["wall_s"] = round(time.time() - t1, 2)
        rows.append(row)
    summary = {"model": name, "path": str(path), "dataset": ds.name, "samples": ds.samples, "metric": ds.metric,
               "output": output, "backend": backend, "layers": m.layer_names, "rows": rows,
               "shards": len(ds.batches) if scheduler is not None else 0,
               "wall_s": round(time.time() - t0, 2)}
    if out:
        write_compare(summary, out, plot)
    return summary


def _engine_stats(m, prepared, ds, output, costs, backend, rtl_samples, cycle_samples) -> dict:
    """The engines used, cycle-model costs of the engine layers on the first samples, the RTL check if asked."""
    engine_layers = {k for k, (nm, _) in prepared.layers.items() if nm.engine}
    stats = {"engines": sorted({nm.engine for nm, _ in prepared.layers.values() if nm.engine})}
    if engine_layers and cycle_samples:
        stats.update(_cycle_model(m, prepared, ds, costs, engine_layers, cycle_samples))
    if engine_layers and backend == "rtl":
        stats.update(_rtl_check(m, prepared, ds, costs, engine_layers, rtl_samples))
    return stats


def _cycle_model(m, prepared, ds, costs, engine_layers, cycle_samples) -> dict:
    feeds_list, n = _first_samples(ds, cycle_samples)
    per_layer, busy = {}, {}

    def costed(layer, x, w):
        nm, prep = prepared.layers[layer.name]
        if layer.name not in engine_layers:
            return prep(x)
        ops = prep.encode(x)
        c = costs.cost(nm, prep, ops)
        rec = per_layer.setdefault(layer.name, {"engine": nm.engine, "cycles": 0, "busy": 0})
        rec["cycles"] += c["cycles"]
        rec["busy"] += c["busy"]
        return prep.decode(prep.golden(ops))
    for feeds in feeds_list:
        m.run(feeds, linear=costed)
    total = sum(r["cycles"] for r in per_layer.values())
    for r in per_layer.values():
        busy[r["engine"]] = busy.get(r["engine"], 0) + r["busy"]
    return {"cycle_samples": n, "cycles_per_inference": total / n,
            "engine_occupancy": {e: b / total for e, b in busy.items()},
            "layer_cycles_per_inference": {k: r["cycles"] / n for k, r in per_layer.items()}}


def _first_samples(ds, n: int) -> tuple[list, int]:
    out, got = [], 0
    for feeds in ds.batches:
        if got >= n:
            break
        take = min(n - got, _batch_size(feeds))
        out.append(_slice(feeds, take))
        got += take
    return out, got


def _rtl_check(m, prepared, ds, costs, engine_layers, rtl_samples) -> dict:
    """The first `rtl_samples` samples with every engine layer on the RTL; the device's accumulators are compared
    with the golden model's and the device's result feeds the next layer (as on the real system)."""
    feeds_list, n = _first_samples(ds, rtl_samples)
    mismatches = cycles = model_cycles = 0
    checked = 0

    def on_rtl(layer, x, w):
        nonlocal mismatches, cycles, model_cycles, checked
        nm, prep = prepared.layers[layer.name]
        if layer.name not in engine_layers:
            return prep(x)
        ops = prep.encode(x)
        acc, st = costs.run(nm, prep, ops)
        gold = prep.golden(ops)
        mismatches += int(np.count_nonzero(np.asarray(acc, np.int64) != np.asarray(gold, np.int64)))
        checked += int(np.size(gold))
        cycles += st["cycles"] or 0
        model_cycles += st.get("model_cycles") or 0
        return prep.decode(acc)
    for feeds in feeds_list:
        m.run(feeds, linear=on_rtl)
    return {"rtl_samples": n, "rtl_results_checked": checked, "rtl_mismatches": mismatches,
            "rtl_cycles_per_inference": cycles / n, "rtl_model_cycles_per_inference": model_cycles / n}


def _fmt(v, spec=".4f"):
    return "" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _no_engine(row: dict, reference: bool) -> str:
    if reference:
        return ""
    return "host" if set(row.get("layers", {}).values()) <= {"float"} else "none (golden only)"


def markdown(summary: dict) -> str:
    acc = summary["metric"] == "accuracy"
    head = ["numerics", "accuracy" if acc else "cosine mean", *([] if acc else ["cosine min"]), "rel err max",
            "rel err mean", "engines", "cycles / inference (model)", "engine occupancy", "RTL samples",
            "RTL mismatches"]
    lines = [f"# {summary['model']} on {summary['dataset']} ({summary['samples']} samples)", "",
             f"Output `{summary['output']}`; error per sample = max|y - ref| / max|ref| against onnxruntime float32. "
             "Cycles: engine layers only, by the system cycle model (host operators not costed).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rows"]:
        occ = ", ".join(f"{e} {100 * v:.1f} %" for e, v in (r.get("engine_occupancy") or {}).items())
        cells = [r["numerics"], _fmt(r.get("accuracy") if acc else r.get("cosine_mean")),
                 *([] if acc else [_fmt(r.get("cosine_min"))]), _fmt(r["rel_err_max"], ".3e"),
                 _fmt(r["rel_err_mean"], ".3e"),
                 ", ".join(r.get("engines", [])) or _no_engine(r, r is summary["rows"][0]),
                 _fmt(r.get("cycles_per_inference"), ".0f"), occ, _fmt(r.get("rtl_samples")),
                 _fmt(r.get("rtl_mismatches"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_compare(summary: dict, out: Path, plot: bool = True):
    """out/compare-MODEL.json, .md and (plot) .png."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"compare-{summary['model']}"
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(summary))
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rows = summary["rows"]
        key = "accuracy" if summary["metric"] == "accuracy" else "cosine_mean"
        names = [r["numerics"] for r in rows]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.4 * len(rows) + 1.5))
        a1.barh(names, [r[key] for r in rows])
        a1.set_xlabel(key.replace("_", " "))
        a1.set_xlim(min(r[key] for r in rows) * 0.98, 1.0)
        a2.barh(names, [r["rel_err_mean"] if r["rel_err_mean"] > 0 else np.nan for r in rows])   # ref: no bar
        a2.set_xscale("log")
        a2.set_xlabel("mean relative output error vs onnxruntime")
        a2.set_yticks([])
        for a in (a1, a2):
            a.invert_yaxis()
        fig.suptitle(f"{summary['model']} on {summary['dataset']}")
        fig.tight_layout()
        fig.savefig(stem.with_suffix(".png"), dpi=100)
        plt.close(fig)


def print_compare(summary: dict):
    print(markdown(summary), end="")
    for r in summary["rows"]:
        if r.get("rtl_samples"):
            print(f"{r['numerics']}: {r['rtl_samples']} samples on RTL, {r['rtl_results_checked']} accumulators, "
                  f"{r['rtl_mismatches']} mismatches vs golden; RTL {r['rtl_cycles_per_inference']:.0f} cycles per "
                  f"inference (model {r['rtl_model_cycles_per_inference']:.0f})")
    print(f"wall time {summary['wall_s']} s")


def run_onnx(model: str, numerics: str = "float", dataset: str | None = None, limit: int | None = None,
             backend: str = "golden", rtl_samples: int = 1, sim: str = "verilator", out: Path | None = None,
             scheduler=None) -> dict:
    """`hwgen run MODEL.onnx`: one numerics choice against onnxruntime (compare with one choice, no plot)."""
    s = compare(model, [numerics], dataset, limit, backend, rtl_samples, sim=sim, out=None, scheduler=scheduler)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"run-{s['model']}-{backend}.json").write_text(json.dumps(s, indent=2) + "\n")
    return s
