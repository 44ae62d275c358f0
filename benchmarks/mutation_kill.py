"""Mutation testing of the gateware: how many small edits of a family's `elaborate` code its fast benches catch.

    python benchmarks/mutation_kill.py [--family system attention bitmod] [--mutants 20] [--seed 1]
                                       [--out docs/results]

A mutant changes one token inside an `elaborate` method (and the functions nested in it) of the family's gateware
files: a comparison (== / !=, < / <=, > / >=), an arithmetic or bit operator (+ / -, & / |) or an integer
constant (n -> n + 1). Up to `--mutants` of them per family are drawn at random (seeded) from all such sites. Each
runs the family's fast benches (FAMILIES below) in a scratch copy of the source tree, so the working tree is never
edited; a mutant is killed when the benches fail or time out (3x the clean run). Survivors are listed with
their file, line and edit for review: each is either a missing test or an equivalent mutant. Writes
mutation_kill.json and mutation_kill.md."""
import argparse
import ast
import io
import json
import random
import shutil
import subprocess
import sys
import time
import tokenize
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# family -> (gateware files, fast benches: Amaranth-simulator tests that need no Verilator build per mutant)
FAMILIES = {
    "system": (["hwgen/system/decoder.py", "hwgen/system/run_controller.py", "hwgen/system/counters.py",
                "hwgen/system/serializer.py"], ["tests/system/test_components.py"]),
    "attention": (["hwgen/attention/array.py", "hwgen/attention/pe.py", "hwgen/attention/lane.py",
                   "hwgen/attention/exp2.py"], ["tests/attention/test_components.py"]),
    "bitmod": (["hwgen/bitmod/array.py", "hwgen/bitmod/decode.py", "hwgen/bitmod/dequant.py", "hwgen/bitmod/pe.py",
                "hwgen/bitmod/fp16.py", "hwgen/bitmod/fp16_row.py"], ["tests/bitmod/test_components.py"]),
}
SWAPS = {"==": "!=", "!=": "==", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "+": "-", "-": "+", "&": "|",
         "|": "&"}


def elaborate_lines(text: str) -> set[int]:
    lines = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == "elaborate":
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def mutation_sites(path: Path) -> list[tuple]:
    """(line, column, old token, new token) of every mutable token inside an elaborate method."""
    text = path.read_text()
    inside = elaborate_lines(text)
    sites = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.start[0] not in inside:
            continue
        if tok.type == tokenize.OP and tok.string in SWAPS:
            sites.append((tok.start[0], tok.start[1], tok.string, SWAPS[tok.string]))
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            sites.append((tok.start[0], tok.start[1], tok.string, str(int(tok.string) + 1)))
    return sites


def apply(text: str, line: int, col: int, old: str, new: str) -> str:
    lines = text.splitlines(keepends=True)
    row = lines[line - 1]
    assert row[col:col + len(old)] == old, (line, col, old)
    lines[line - 1] = row[:col] + new + row[col + len(old):]
    return "".join(lines)


def run_benches(tree: Path, benches: list[str], timeout: float) -> tuple[bool, float]:
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *benches],
                              cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin",
                                             "HOME": str(Path.home())},
                              capture_output=True, text=True, timeout=timeout)
        passed = proc.returncode == 0
    except subprocess.TimeoutExpired:
        passed = False
    return passed, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--mutants", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args()
    tree = Path("/tmp") / f"hwgen-mutation-{int(time.time())}"
    for part in ("hwgen", "sw_model", "tests", "rtl_tests", "pyproject.toml"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tree / part)
    results = {}
    try:
        for family in args.family:
            files, benches = FAMILIES[family]
            ok, clean_s = run_benches(tree, benches, 1800)
            if not ok:
                raise SystemExit(f"{family}: the benches fail without a mutation; fix them first")
            sites = [(f, *s) for f in files for s in mutation_sites(tree / f)]
            chosen = random.Random(args.seed).sample(sites, min(args.mutants, len(sites)))
            rows = []
            for f, line, col, old, new in chosen:
                path = tree / f
                original = path.read_text()
                path.write_text(apply(original, line, col, old, new))
                try:
                    survived, seconds = run_benches(tree, benches, 3 * clean_s + 30)
                finally:
                    path.write_text(original)
                code = original.splitlines()[line - 1].strip()
                rows.append({"file": f, "line": line, "edit": f"{old} -> {new}", "code": code,
                             "killed": not survived, "seconds": round(seconds, 1)})
                print(f"{family} {f}:{line} {old}->{new}: {'survived' if survived else 'killed'}", flush=True)
            killed = sum(r["killed"] for r in rows)
            results[family] = {"benches": benches, "files": files, "sites": len(sites), "mutants": len(rows),
                               "killed": killed, "kill_rate": killed / max(1, len(rows)), "clean_seconds":
                               round(clean_s, 1), "mutants_detail": rows}
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    cmd = (f"python benchmarks/mutation_kill.py --family {' '.join(args.family)} --mutants {args.mutants} "
           f"--seed {args.seed}")
    out = {"command": cmd, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "families": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mutation_kill.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# Mutation kill rates of the gateware's fast benches", "", f"`{cmd}` ({out['date']}).", "",
             "| family | benches | mutation sites | mutants run | killed | kill rate |", "|---|---|---|---|---|---|"]
    for fam, r in results.items():
        lines.append(f"| {fam} | {', '.join(r['benches'])} | {r['sites']} | {r['mutants']} | {r['killed']} | "
                     f"{100 * r['kill_rate']:.0f} % |")
    lines += ["", "The benches are each family's Amaranth-simulator component tests (seconds per mutant); the "
              "Verilator benches in `rtl_tests/<family>/` need a fresh simulator build per mutant and are not run "
              "here, so a survivor is a site those fast benches do not see, not necessarily one the whole suite "
              "misses.", "", "Survivors (a missing test or an equivalent mutant):", ""]
    for fam, r in results.items():
        for m in r["mutants_detail"]:
            if not m["killed"]:
                lines.append(f"- {fam}: `{m['file']}:{m['line']}` `{m['edit']}` in `{m['code']}`")
    (args.out / "mutation_kill.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
