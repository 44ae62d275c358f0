"""Fmax and resources on ECP5 LFE5U-85F (speed 6, CABGA381) of the attention, SDSA and BitMoD presets with their
pipelining parameters at zero ("before") and at the defaults ("after"), and the throughput per LUT each way.

Each design sits in `hwgen.flow.report.synthesize`'s registered harness (the scan harness when its ports exceed the
package's pins), DSP inference on. Throughput per design, from the design's own cycle model:
- attention: useful MACs (Q.K and prob.V) per second of one query tile of P0 rows against 256 keys
  (`sw_model.attention.timing.cycle_model` and `useful_macs`);
- SDSA: Q rows per second (II = 1, one row per cycle);
so "per LUT" is that rate divided by the ECP5 LUT4 count, and `change` compares after with before.

    python benchmarks/pipeline_fmax.py [--designs attention-4x4-d8 sdsa-8x16 ...] [--out docs/results]
                                       [--stem pipeline_fmax_85f]
writes <out>/<stem>.json and .md after every design (a partial run still leaves results). Designs are preset names;
`name:field=value,...` overrides fields of the "after" config (e.g. `sdsa-16x32:pipeline=2`); `name@after` measures
only that setting of the design (`--settings` gives the default for all).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from hwgen.flow.report import synthesize
from hwgen.units import build_unit
from sw_model.attention import timing as attention_timing
from sw_model.config import config_to_dict
from sw_model.registry import PRESETS

ROOT = Path(__file__).resolve().parent.parent
PART = "LFE5U-85F"
ATTENTION_KEYS = 256
#: The pipelining fields of each family; "before" sets all of them to 0.
PIPELINE_FIELDS = {"attention": ("mul_pipe", "max_pipe", "exp_pipe", "sum_pipe", "lane_pipe"), "sdsa": ("pipeline",)}
DEFAULT_DESIGNS = ["attention-4x4-d8", "attention-8x8-d32", "attention-8x8-d32-lmul", "sdsa-8x16", "sdsa-16x32"]


def rate_per_cycle(cfg) -> tuple[float, str]:
    """(work items per cycle, unit name) of a config's reference workload."""
    if cfg.unit == "attention":
        tiles = [(cfg.p0, ATTENTION_KEYS)]
        cycles = attention_timing.cycle_model(cfg, tiles)["out_cycles"][-1] + 1
        return attention_timing.useful_macs(cfg, tiles) / cycles, "MAC"
    if cfg.unit == "sdsa":
        return 1.0, "Q row"
    raise ValueError(f"unit: got {cfg.unit!r}, allowed: {', '.join(PIPELINE_FIELDS)}")


def parse_design(text: str):
    text, _, only = text.partition("@")
    name, _, sets = text.partition(":")
    if name not in PRESETS:
        raise SystemExit(f"--designs: got {name!r}, allowed: preset names")
    after = PRESETS[name]
    if sets:
        after = dataclasses.replace(after, **{k: int(v) for k, v in (x.split("=") for x in sets.split(","))})
    fields = PIPELINE_FIELDS.get(after.unit)
    if fields is None:
        raise SystemExit(f"--designs: {name} is a {after.unit!r} unit, allowed: {', '.join(PIPELINE_FIELDS)}")
    before = dataclasses.replace(after, **{f: 0 for f in fields})
    if only not in ("", "before", "after"):
        raise SystemExit(f"--designs: got @{only!r} for {name}, allowed: @before or @after")
    return text, fields, before, after, only


def critical_path(workdir: str) -> dict:
    """Start and end cell, total delay (ns) and segment count of nextpnr's worst path of the sync clock."""
    paths = json.loads((Path(workdir) / "report.json").read_text()).get("critical_paths") or []
    if not paths or not paths[0].get("path"):
        return {}
    segs = paths[0]["path"]
    return {"from": segs[0]["from"]["cell"], "to": segs[-1]["to"]["cell"],
            "ns": round(sum(x["delay"] for x in segs), 2), "segments": len(segs)}


def measure(name: str, tag: str, cfg, fields) -> dict:
    t0 = time.time()
    r = synthesize(build_unit(cfg), "ecp5", part=PART, name=f"pipe85-{name}-{tag}", timeout=3600)
    per_cycle, unit = rate_per_cycle(cfg)
    per_s = per_cycle * r["fmax_mhz"] * 1e6
    return {"design": name, "setting": tag, **{f: getattr(cfg, f) for f in fields},
            "lut": r["lut"], "ff": r["ff"], "dsp": r["dsp"], "bram": r["bram"], "fmax_mhz": r["fmax_mhz"],
            "work_per_cycle": per_cycle, "work_unit": unit, "work_per_s_per_lut": per_s / r["lut"],
            "critical_path": critical_path(r["workdir"]), "config": config_to_dict(cfg), "notes": r["notes"],
            "seconds": round(time.time() - t0)}


def write(out: Path, stem: str, command: str, rows: list[dict]):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"command": command, "part": PART, "results": rows},
                                                 indent=2, default=str) + "\n")
    lines = [f"# Pipelining parameters: Fmax and resources on ECP5 {PART} (speed 6)", "",
             f"Command: `{command}`", "",
             "Registered harness, DSP inference on; nextpnr-ecp5 seed 1. `before`: every pipelining field of the "
             "family at 0; `after`: the preset (its defaults). Throughput: attention = useful MACs/s of one query "
             f"tile of P0 rows against {ATTENTION_KEYS} keys (cycle model), SDSA = Q rows/s (II = 1).", "",
             "| design | setting | pipelining | LUT | FF | DSP | Fmax MHz | work/cycle | work/s/LUT | change |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    base = {}
    for x in rows:
        pipe = ", ".join(f"{k}={x[k]}" for k in PIPELINE_FIELDS[x["config"]["unit"]])
        per_lut = x["work_per_s_per_lut"]
        change = ""
        if x["setting"] == "before":
            base[x["design"]] = per_lut
        elif x["design"] in base:
            change = f"{100 * (per_lut / base[x['design']] - 1):+.1f} %"
        lines.append(f"| {x['design']} | {x['setting']} | {pipe} | {x['lut']} | {x['ff']} | {x['dsp']} | "
                     f"{x['fmax_mhz']:.1f} | {x['work_per_cycle']:.3f} {x['work_unit']} | "
                     f"{per_lut:,.0f} | {change} |")
    lines += ["", "Critical paths (nextpnr, start -> end cell, ns, segments):", ""]
    for x in rows:
        cp = x.get("critical_path") or {}
        lines.append(f"- {x['design']} {x['setting']}: `{cp.get('from')}` -> `{cp.get('to')}`, {cp.get('ns')} ns, "
                     f"{cp.get('segments')} segments")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", nargs="+", default=DEFAULT_DESIGNS)
    ap.add_argument("--settings", default="before,after")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--stem", default="pipeline_fmax_85f")
    ap.add_argument("--resume", action="store_true",
                    help="keep the rows already in <stem>.json and measure only the missing design/settings")
    args = ap.parse_args(argv)
    plan = [parse_design(d) for d in args.designs]      # every name checked before any synthesis
    command = f"python benchmarks/pipeline_fmax.py --designs {' '.join(args.designs)}"
    command += (f" --settings {args.settings}" if args.settings != "before,after" else "")
    command += (f" --stem {args.stem}" if args.stem != "pipeline_fmax_85f" else "")
    rows, old = [], Path(args.out) / f"{args.stem}.json"
    if args.resume and old.exists():
        rows = json.loads(old.read_text())["results"]
        command = json.loads(old.read_text())["command"] + f"; then {command} --resume"
    for name, fields, before, after, only in plan:
        for tag in ([only] if only else args.settings.split(",")):
            if any(r["design"] == name and r["setting"] == tag for r in rows):
                continue
            rows.append(measure(name, tag, before if tag == "before" else after, fields))
            write(Path(args.out), args.stem, command, rows)


if __name__ == "__main__":
    main()
