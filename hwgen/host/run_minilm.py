"""`hwgen run minilm-layer`: one all-MiniLM-L6-v2 encoder layer (layer 0) on the engines, one sentence.

The six linear ops run as int8 gemms on the sparse chain, the twelve heads on the attention array, the glue on
the host (sw_model/networks/minilm_int8.py). On the RTL both engines sit in one accelerator top (`minilm_system`), driven
by command programs like every network. Any op may be pinned to the RTL (`rtl_layers`: indices of the summary's
`layers` list, op names, or the groups `linear` / `heads`); the golden backend always runs too and the summary
counts RTL integer outputs that differ from it (must be 0). Instead of an accuracy the summary gives the
layer's cosine similarity per token against the float64 layer and the sentence embedding's cosine against
the float64 network (with the int8 layer in place of layer 0).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from hwgen.host.system_backend import SystemBackend
from sw_model.networks.minilm import REFERENCE_PAIR, cosine, load_model
from sw_model.networks.minilm_int8 import HOST_OPS, LINEAR_OPS, OPS, SENTENCE, compile_layer, layer_errors, run_layer
from sw_model.registry import load_config
from sw_model.system.config import SystemConfig

NETWORK = "minilm-layer"
DEFAULT_CONFIGS = {"sparse_chain": "sparse-chain-8", "attention": "attention-8x8-d32"}
# the summary's op list in execution order: (name, engine or "host", what the host does)
STEPS = ([("quantize_x", "host", "float -> int8 (s_x)")] + [(op, "sparse_chain", "") for op in LINEAR_OPS]
         + [(op, "attention", "") for op in OPS if op.startswith("head")]
         + [("requant_ctx", "host", "head outputs -> int8 (integer requantization)"), ("attn_out", "sparse_chain", ""),
            ("residual_ln1", "host", "dequantize, x + attn, LayerNorm (float64)"),
            ("quantize_h1", "host", "float -> int8 (s_h1)"), ("ffn_in", "sparse_chain", ""),
            ("gelu", "host", "dequantize, GELU erf (float64), float -> int8 (s_g)"), ("ffn_out", "sparse_chain", ""),
            ("residual_ln2", "host", "dequantize, h1 + ffn, LayerNorm (float64)")])


def parse_configs(config_name: str | None) -> tuple[str, dict]:
    """'chain[,attention]' in any order (presets or TOML files); missing units take the defaults."""
    chosen = {}
    for name in (config_name or "").replace("+", ",").split(","):
        if not name.strip():
            continue
        _, cfg = load_config(name.strip())
        if cfg.unit not in DEFAULT_CONFIGS:
            raise ValueError(f"--config: got {name.strip()!r} (unit {cfg.unit!r}), allowed: a sparse_chain config "
                             f"and/or an attention config, comma-separated (the engines of {NETWORK})")
        if cfg.unit in chosen:
            raise ValueError(f"--config: got two {cfg.unit} configs, allowed: one per engine")
        chosen[cfg.unit] = (name.strip(), cfg)
    for unit, name in DEFAULT_CONFIGS.items():
        chosen.setdefault(unit, (name, load_config(name)[1]))
    label = ",".join(chosen[u][0] for u in DEFAULT_CONFIGS)
    return label, {u: c for u, (_, c) in chosen.items()}


def minilm_system(chain, attention) -> SystemConfig:
    """The accelerator top of the layer: the sparse chain (engine 0) and the attention array (engine 1)."""
    return SystemConfig(engines=(chain, attention), host_width=256, spad_depth=2048)


def parse_rtl_ops(text: str | None, backend: str) -> list[str]:
    engine_ops = [name for name, eng, _ in STEPS if eng != "host"]
    if text is None:
        return engine_ops if backend == "rtl" else []
    chosen = set()
    for tok in (t.strip() for t in text.split(",")):
        if not tok:
            continue
        if tok in ("linear", "heads"):
            chosen |= {op for op in engine_ops if (op.startswith("head")) == (tok == "heads")}
            continue
        if tok.isdigit() and int(tok) < len(STEPS):
            tok = STEPS[int(tok)][0]
        names = [s[0] for s in STEPS]
        if tok not in names:
            raise ValueError(f"--rtl-layers: got {tok!r}, allowed: indices 0..{len(STEPS) - 1}, op names "
                             f"({', '.join(engine_ops)}) or the groups linear, heads")
        if STEPS[names.index(tok)][1] == "host":
            raise ValueError(f"--rtl-layers: {tok!r} (index {names.index(tok)}) runs on the host: no engine and "
                             "no RTL for it")
        chosen.add(tok)
    return [op for op in engine_ops if op in chosen]


def _progress(k: int, n: int):
    def show(rec):
        cyc = f"{rec['cycles']} cycles, {rec['sim_seconds']:.2f} s sim" if rec["cycles"] is not None else "model"
        print(f"  [{k[0]:2d}/{n}] {rec['layer']:9s} {rec['engine']:12s} [{rec['backend']}] {rec['shape']} {cyc}",
              flush=True)
        k[0] += 1
    return show


def run_minilm_layer(config_name: str | None = None, backend: str = "golden", rtl_layers: str | None = None,
                     sim: str = "verilator", sentence: str | None = None, out: Path | None = None,
                     quiet: bool = False) -> dict:
    """Run encoder layer 0 on `sentence` (default sw_model.networks.minilm_qkv.SENTENCE); returns the summary."""
    if backend not in ("golden", "rtl"):
        raise ValueError(f"--backend: got {backend!r}, allowed: golden, rtl")
    label, cfgs = parse_configs(config_name)
    on_rtl = parse_rtl_ops(rtl_layers, backend)
    model = load_model()
    sentence = SENTENCE if sentence is None else sentence
    ids = model.tokens(sentence)
    layer = compile_layer(model, cfgs["attention"], 0)
    chain = cfgs["sparse_chain"]
    backends = {}
    system = None
    if on_rtl:
        system = SystemBackend(minilm_system(chain, cfgs["attention"]), "rtl", sim)
        backends = {op: system for op in on_rtl}
    x = model.embeddings(ids)
    n_engine = len(OPS)
    if not quiet:
        print(f"{NETWORK}: \"{sentence}\" ({len(ids)} tokens), engine ops on {backend}"
              + (f" ({len(on_rtl)} on RTL)" if on_rtl else ""), flush=True)
    t0 = time.time()
    y, records = run_layer(layer, chain, x, backends, progress=None if quiet else _progress([1], n_engine))
    wall = time.time() - t0
    golden_y, golden = run_layer(layer, chain, x) if on_rtl else (y, records)
    by_op = {r["layer"]: r for r in records}
    mism = {op: int(np.count_nonzero(by_op[op]["acc"] != g["acc"])) for op, g in zip(OPS, golden)}

    ref = model.layer(0, x)
    err = layer_errors(y, ref)

    def int8_layer0(m, j, h):
        return run_layer(layer, chain, h)[0]
    emb_cos = cosine(model.embed(sentence, {0: int8_layer0}), model.embed(sentence))
    pair_f = cosine(*(model.embed(s) for s in REFERENCE_PAIR))
    pair_q = cosine(*(model.embed(s, {0: int8_layer0}) for s in REFERENCE_PAIR))

    steps = []
    for i, (name, engine, what) in enumerate(STEPS):
        if engine == "host":
            steps.append({"layer": i, "op": name, "shape": [len(ids), 384 * (4 if name == "gelu" else 1)],
                          "engine": "host", "ran_on": "host", "host": what, "mismatches_vs_golden": 0})
        else:
            r = by_op[name]
            steps.append({"layer": i, "op": name, "shape": r["shape"], "engine": engine,
                          "ran_on": "rtl" if name in on_rtl else "golden", "mismatches_vs_golden": mism[name],
                          "cycles": r["cycles"], "beats": r["beats"]})
    summary = {
        "network": NETWORK, "config": label, "backend": backend, "samples": 1, "sentence": sentence,
        "tokens": len(ids), "encoder_layer": 0, "layers": steps, "host_ops": HOST_OPS,
        "mismatches": sum(mism.values()),
        "cosine_vs_float": emb_cos,
        "layer_cosine_min": err["cosine_min"], "layer_cosine_mean": err["cosine_mean"],
        "layer_cosine_per_token": err["cosine_per_token"], "layer_max_abs_err": err["max_abs_err"],
        "layer_max_abs_float": err["max_abs_ref"],
        "reference_pair": {"sentences": list(REFERENCE_PAIR), "cos_float": pair_f, "cos_int8_layer0": pair_q},
        "q_k_saturating_heads": layer.stats["q_k_saturating_heads"],
        "wall_s": round(wall, 2),
    }
    if on_rtl:
        rtl_recs = [by_op[op] for op in on_rtl]
        cycles = sum(r["cycles"] for r in rtl_recs)
        sim_s = sum(r["sim_seconds"] for r in rtl_recs)
        per_engine = {}
        for r in rtl_recs:
            e = per_engine.setdefault(r["engine"], {"cycles": 0, "model_cycles": 0, "beats": 0})
            e["cycles"] += r["cycles"]
            e["beats"] += r["beats"]
            e["model_cycles"] = None if e["model_cycles"] is None or r["model_cycles"] is None else \
                e["model_cycles"] + r["model_cycles"]
        summary.update(system=system.system_name, cycles_total=cycles, cycles_per_inference=cycles,
                       cycles_per_engine=per_engine,
                       engine_utilization={e: v["beats"] / v["cycles"] for e, v in per_engine.items()},
                       sim_seconds=round(sim_s, 2), simulated_cycles_per_s=cycles / sim_s if sim_s else None)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"run-{NETWORK}-{backend}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_summary(s: dict):
    print(f"network {s['network']} on {s['backend']} ({s['config']}), 1 sentence, {s['tokens']} tokens")
    for st in s["layers"]:
        extra = f", {st['cycles']} cycles" if st.get("cycles") is not None else ""
        print(f"  {st['layer']:2d} {st['op']:12s} {st['engine']:12s} [{st['ran_on']}] "
              f"{'x'.join(map(str, st['shape']))}, mismatches vs golden: {st['mismatches_vs_golden']}{extra}")
    print(f"  layer vs float64: cosine per token min {s['layer_cosine_min']:.4f} mean {s['layer_cosine_mean']:.4f}, "
          f"max abs err {s['layer_max_abs_err']:.3f} (max |float| {s['layer_max_abs_float']:.2f})")
    rp = s["reference_pair"]
    print(f"  embedding cosine vs float64 network: {s['cosine_vs_float']:.5f}; reference pair cos "
          f"{rp['cos_float']:.4f} (float) / {rp['cos_int8_layer0']:.4f} (int8 layer 0); "
          f"mismatches vs golden: {s['mismatches']}")
    if "cycles_total" in s:
        print(f"  RTL cycles {s['cycles_total']} ("
              + ", ".join(f"{e} {v['cycles']}" for e, v in s["cycles_per_engine"].items())
              + f"), simulated {s['simulated_cycles_per_s'] or 0:.0f} cycles/s")
    print(f"  wall time {s['wall_s']} s")
