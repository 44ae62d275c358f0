"""Sparse DSP chain: effective throughput from RTL cycle counts and resources from Yosys, in one run.

Throughput: a GEMV of `rows` x K int8 rows per mode, run on the Verilator model of each preset with no gaps and
no backpressure; cycles = last output handshake - first input handshake + 1. Effective MACs are the
dense-equivalent multiply-adds the GEMV stands for (rows * K, x2 lanes when packed), so pruned weights skipped
by the sparse mux count as done work; useful MACs are the multiplies by kept weights (rows * K * N/M, x2 when
packed), i.e. useful MACs/cycle/DSP is the DSP utilization; DSP slot use = stage-slots the beats fill /
(cycles * stages). Grouped presets (groups > 1) put R = config.rows(mode) rows into every beat.
Resources: `hwgen.flow.report.synthesize` on the registered harness (xc7 and ECP5, synthesis only: the beat is wider
than any package's pins), the xc7 DSP cascade check of `hwgen.flow.sparse_synth`, and nextpnr-ecp5 Fmax of a
2-stage chain whose ports fit the CABGA256 pins.

    python benchmarks/sparse_bench.py [--rows 32] [--k 512] [--presets sparse-chain-8,...] [--out docs/results]
        [--tag sparse_bench] [--no-synth] [--no-fmax]
writes docs/results/<tag>.json and docs/results/<tag>.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from hwgen.flow.report import synthesize  # noqa: E402
from hwgen.flow.sparse_synth import synth_chain  # noqa: E402
from hwgen.sim.harness import design, run_vectors  # noqa: E402
from hwgen.sparse.chain import SparseChain  # noqa: E402
from sw_model.registry import load_config  # noqa: E402
from sw_model.sparse import golden as sp  # noqa: E402
from sw_model.sparse import group as sg  # noqa: E402
from sw_model.sparse.config import SparseChainConfig  # noqa: E402
from sw_model.sparse.group import pack_rows  # noqa: E402
from sw_model.sparse.workload import expected, random_acts, random_row  # noqa: E402

PRESETS = ["sparse-chain-8", "sparse-chain-16", "sparse-chain-8-int4", "sparse-chain-8-packed",
           "sparse-chain-8-packed-lane16", "sparse-chain-8-g2", "sparse-chain-16-g2", "sparse-chain-16-g4",
           "sparse-chain-16-packed", "sparse-chain-8-packed-lane16-g4"]


def gemv_beats(cfg, mode, rows: int, k: int, rng):
    """Beats of a GEMV (one activation column; packed: two) over `rows` random pruned rows; grouped chains
    take cfg.rows(mode) rows per vector. Returns (beats, vectors)."""
    parts = []
    per = cfg.rows(mode)
    x = random_acts(rng, k)
    x2 = random_acts(rng, k) if cfg.packed else None
    for r0 in range(0, rows, per):
        drawn = [random_row(rng, k, mode, cfg.weight_bits) for _ in range(min(per, rows - r0))]
        idx = None if drawn[0][2] is None else [d[2] for d in drawn]
        if cfg.groups > 1:
            parts.append(pack_rows([d[1] for d in drawn], x, mode, cfg, indices=idx, x2=x2))
        else:
            parts.append(sp.pack_dot(drawn[0][1], x, mode, cfg.stages, cfg.x_width, indices=drawn[0][2], x2=x2,
                                     weight_bits=cfg.weight_bits))
    return sp.concat_beats(parts), len(parts)


def throughput(name: str, cfg, rows: int, k: int) -> list[dict]:
    rng = np.random.default_rng(0)
    _, manifest = design(cfg, name.replace("-", "_"))
    out = []
    for mode in cfg.modes:
        n, m = sp.MODE_NM[mode]
        beats, vectors = gemv_beats(cfg, mode, rows, k, rng)
        res = run_vectors(cfg, beats, expected(cfg, beats), gap=0.0, backpressure=0.0,
                          name=name.replace("-", "_"))
        assert not res["mismatches"] and res["n_out"] == vectors
        cycles = res["out_cycles"][-1] - res["in_cycles"][0] + 1
        model = len(beats["mode"]) + manifest["latency"]
        assert cycles == model, (name, mode.name, cycles, model)
        lanes = 2 if cfg.packed else 1
        dense_macs = rows * k * lanes
        useful = rows * k * n // m * lanes
        busy = sum(s is not None for s in (sg.stage_candidates(mode, cfg.stages, cfg.groups, i)
                                           for i in range(cfg.stages)))
        slots = len(beats["mode"]) * busy
        out.append({"preset": name, "groups": cfg.groups, "mode": "dense" if m == 1 else f"{n}:{m}",
                    "rows": rows, "k": k, "rows_per_beat": cfg.rows(mode), "vectors": vectors,
                    "beats": len(beats["mode"]), "cycles": cycles, "cycles_model": model,
                    "effective_macs_per_cycle_per_dsp": dense_macs / cycles / cfg.stages,
                    "useful_macs_per_cycle_per_dsp": useful / cycles / cfg.stages,
                    "dsp_slot_use": slots / cycles / cfg.stages})
    dense = out[0]["effective_macs_per_cycle_per_dsp"]
    for row in out:
        row["speedup_vs_dense"] = row["effective_macs_per_cycle_per_dsp"] / dense
    return out


def resources(name: str, cfg) -> list[dict]:
    rows = []
    for target in ("xc7", "ecp5"):
        r = synth_chain(cfg, target, name=name)
        rows.append({"preset": name, "target": target, "stages": cfg.stages, **{k: r[k] for k in
                     ("lut", "ff", "carry", "dsp", "lutram")}, "cells": r["cells"], "cascade": r.get("cascade"),
                     "yosys": r["yosys_version"]})
    return rows


def fmax_probe() -> dict:
    cfg = SparseChainConfig(stages=2)
    r = synthesize(SparseChain(cfg), "ecp5", name="sparse_s2_fmax")
    return {"config": "stages=2 (int8)", "target": "ecp5 LFE5U-25F CABGA256 speed 6", "fmax_mhz": r["fmax_mhz"],
            "lut": r["lut"], "ff": r["ff"], "dsp": r["dsp"], "nextpnr": r["nextpnr_version"]}


def markdown(thr, res, fmax, args) -> str:
    lines = ["# Sparse DSP chain: throughput and resources", "",
             f"Measured by `python benchmarks/sparse_bench.py --rows {args.rows} --k {args.k} "
             f"--presets {args.presets} --tag {args.tag}{' --no-synth' if args.no_synth else ''}"
             f"{' --no-fmax' if args.no_fmax else ''}` "
             f"({time.strftime('%Y-%m-%d')}). Throughput from Verilator cycle counts (no gaps, no backpressure); "
             "effective MACs = dense-equivalent MACs of the GEMV (rows x K, x2 lanes when packed).", "",
             "## Throughput", "",
             "| preset | groups | mode | rows/beat | beats | cycles | model (beats + latency) |"
             " effective MACs/cycle/DSP | vs dense | useful MACs/cycle/DSP | DSP slot use |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in thr:
        lines.append(f"| {t['preset']} | {t['groups']} | {t['mode']} | {t['rows_per_beat']} | {t['beats']} | "
                     f"{t['cycles']} | {t['cycles_model']} | {t['effective_macs_per_cycle_per_dsp']:.3f} | "
                     f"{t['speedup_vs_dense']:.3f}x | {t['useful_macs_per_cycle_per_dsp']:.3f} | "
                     f"{100 * t['dsp_slot_use']:.1f} % |")
    lines += ["", "## Resources (Yosys, registered harness: FF includes the harness's port registers)", "",
              "| preset | target | stages | DSP | LUT | LUT/stage | FF | carry | LUTRAM | xc7 cascade links |"
              " xc7 A/B/M/P regs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res:
        c = r["cascade"] or {}
        lines.append(f"| {r['preset']} | {r['target']} | {r['stages']} | {r['dsp']} | {r['lut']} | "
                     f"{r['lut'] / r['stages']:.0f} | {r['ff']} | {r['carry']} | {r['lutram']} | "
                     f"{c.get('pcin_links', '—')} | {c.get('areg_breg_mreg_preg', '—')} |")
    if fmax:
        lines += ["", f"Fmax probe ({fmax['config']}, {fmax['target']}, registered harness): "
                      f"**{fmax['fmax_mhz']:.1f} MHz** ({fmax['lut']} LUT, {fmax['ff']} FF, {fmax['dsp']} MULT18X18D; "
                      f"{fmax['nextpnr']})."]
    lines += ["", f"Tools: {res[0]['yosys'] if res else ''}.", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--k", type=int, default=512)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--no-fmax", action="store_true")
    ap.add_argument("--tag", default="sparse_bench", help="output file stem")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = ap.parse_args()
    thr, res = [], []
    for name in args.presets.split(","):
        _, cfg = load_config(name)
        thr += throughput(name, cfg, args.rows, args.k)
        print(json.dumps(thr[-len(cfg.modes):]), flush=True)
        if not args.no_synth:
            res += resources(name, cfg)
            print(json.dumps([{k: v for k, v in r.items() if k != "cells"} for r in res[-2:]]), flush=True)
    fmax = None if args.no_synth or args.no_fmax else fmax_probe()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.tag}.json").write_text(json.dumps({"throughput": thr, "resources": res, "fmax": fmax,
                                                      "rows": args.rows, "k": args.k}, indent=2) + "\n")
    (out / f"{args.tag}.md").write_text(markdown(thr, res, fmax, args))
    print((out / f"{args.tag}.md").read_text())


if __name__ == "__main__":
    main()
