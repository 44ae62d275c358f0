"""Boards as data: one TOML file per FPGA target in the package's `boards/` folder (`hwgen/boards/`, also
reachable as `boards/` at the top of a checkout), loaded into a frozen `Board`.

Each file names the part, package, speed grade, toolchain, the amaranth-boards platform class, the clock (the
oscillator `hz` and, on ECP5, an optional `core_hz` that the PLL makes from it), the UART of the host bridge (resource, pins, baud), an optional heartbeat LED and the part's capacity. `check_platform()`
confirms that the file agrees with the amaranth-boards definition it names.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from sw_model.config import read_toml

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"      # package data: hwgen/boards/*.toml
FAMILIES = ("ice40", "ecp5", "xc7")
BITSTREAMS = {"ice40": "bin", "ecp5": "bit", "xc7": ""}
CAPACITY_KEYS = ("lut", "ff", "carry", "dsp", "bram", "io")
_KEYS = {"name", "description", "family", "part", "package", "speed", "toolchain", "platform", "bitstream",
         "clock", "uart", "led", "capacity"}


class BoardError(ValueError):
    """A board file is missing, malformed, or disagrees with its amaranth-boards platform."""


@dataclass(frozen=True)
class Board:
    """One FPGA board: where the tools, the clock and the host UART are."""
    name: str
    description: str
    family: str
    part: str
    package: str
    speed: str
    toolchain: str
    platform: str                      # "module:Class" in amaranth-boards
    bitstream: str                     # "bin" / "bit", or "" for resources-only targets
    clock: str
    clock_hz: int                      # the board oscillator
    uart_resource: str
    uart_number: int
    uart_rx: str
    uart_tx: str
    baud: int
    led: tuple | None                  # (resource, number) or None
    capacity: dict = field(hash=False, compare=False)
    path: str = ""
    core_hz: int = 0                   # the design's clock: from the PLL when it differs from clock_hz (ECP5 only)

    @property
    def uses_pll(self) -> bool:
        return self.core_hz != self.clock_hz

    def platform_class(self):
        module, _, cls = self.platform.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            raise BoardError(f"{self.name}: cannot import {module!r} ({e}); fix with: "
                             f"pip install 'amaranth-boards==0.0.21'") from None
        if not hasattr(mod, cls):
            raise BoardError(f"{self.name}: platform: {module} has no class {cls!r}")
        return getattr(mod, cls)

    def make_platform(self):
        cls = self.platform_class()
        return cls(toolchain=self.toolchain) if self.family == "xc7" else cls()


def _need(path, d, key, kind):
    if key not in d:
        raise BoardError(f"{path}: {key}: missing")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BoardError(f"{path}: {key}: got {value!r}, allowed: a {kind.__name__}")
    return value


def board_from_dict(d: dict, path: str = "<dict>") -> Board:
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise BoardError(f"{path}: unknown keys {unknown}, allowed: {', '.join(sorted(_KEYS))}")
    family = _need(path, d, "family", str)
    if family not in FAMILIES:
        raise BoardError(f"{path}: family: got {family!r}, allowed: {', '.join(FAMILIES)}")
    bitstream = _need(path, d, "bitstream", str)
    if bitstream != BITSTREAMS[family]:
        raise BoardError(f"{path}: bitstream: got {bitstream!r}, allowed for {family}: {BITSTREAMS[family]!r}")
    clock, uart = _need(path, d, "clock", dict), _need(path, d, "uart", dict)
    platform = _need(path, d, "platform", str)
    if ":" not in platform:
        raise BoardError(f"{path}: platform: got {platform!r}, allowed: 'module:Class'")
    led = d.get("led")
    if led is not None:
        led = (_need(f"{path} [led]", led, "resource", str), _need(f"{path} [led]", led, "number", int))
    capacity = _need(path, d, "capacity", dict)
    bad = sorted(k for k, v in capacity.items() if k not in CAPACITY_KEYS or not isinstance(v, int) or v < 0)
    if bad:
        raise BoardError(f"{path}: capacity: bad entries {bad}, allowed: non-negative integers for "
                         f"{', '.join(CAPACITY_KEYS)}")
    hz = _need(f"{path} [clock]", clock, "hz", int)
    baud = _need(f"{path} [uart]", uart, "baud", int)
    if hz <= 0 or baud <= 0:
        raise BoardError(f"{path}: clock hz and uart baud must be positive, got {hz} and {baud}")
    unknown = sorted(set(clock) - {"resource", "hz", "core_hz"})
    if unknown:
        raise BoardError(f"{path} [clock]: unknown keys {unknown}, allowed: resource, hz, core_hz")
    core_hz = clock.get("core_hz", hz)
    if not isinstance(core_hz, int) or isinstance(core_hz, bool) or core_hz <= 0:
        raise BoardError(f"{path} [clock]: core_hz: got {core_hz!r}, allowed: a positive integer (Hz)")
    if core_hz != hz and family != "ecp5":
        raise BoardError(f"{path} [clock]: core_hz: got {core_hz}, allowed for {family}: {hz} (the board clock; "
                         "only ECP5 boards have a PLL in hwgen)")
    return Board(
        name=_need(path, d, "name", str), description=d.get("description", ""), family=family,
        part=_need(path, d, "part", str), package=_need(path, d, "package", str), speed=_need(path, d, "speed", str),
        toolchain=_need(path, d, "toolchain", str), platform=platform, bitstream=bitstream,
        clock=_need(f"{path} [clock]", clock, "resource", str), clock_hz=hz,
        uart_resource=_need(f"{path} [uart]", uart, "resource", str),
        uart_number=_need(f"{path} [uart]", uart, "number", int),
        uart_rx=_need(f"{path} [uart]", uart, "rx", str), uart_tx=_need(f"{path} [uart]", uart, "tx", str),
        baud=baud, led=led, capacity=dict(capacity), path=path, core_hz=core_hz)


def _files(boards_dir: Path) -> dict[str, Path]:
    return {p.stem.replace("_", "-"): p for p in sorted(Path(boards_dir).glob("*.toml"))}


def board_names(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return list(_files(boards_dir))


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    """Board by name (`ulx3s-85f` or `ulx3s_85f`) or by path to a TOML file."""
    path = Path(name)
    if path.suffix != ".toml":
        files = _files(boards_dir)
        key = name.lower().replace("_", "-")
        if key not in files:
            allowed = ", ".join(files) or f"(no board files in {boards_dir})"
            raise BoardError(f"board: got {name!r}, allowed: {allowed}")
        path = files[key]
    return board_from_dict(read_toml(path, "board", BoardError), str(path))


def check_platform(board: Board) -> list[str]:
    """Differences between the board file and its amaranth-boards platform (empty list: they agree)."""
    cls = board.platform_class()
    plat = board.make_platform()
    problems = []
    for attr, mine in (("device", board.part), ("package", board.package)):
        if str(getattr(cls, attr, "")).upper() != mine.upper():
            problems.append(f"{attr}: board file {mine!r}, platform {getattr(cls, attr, None)!r}")
    if board.speed and str(getattr(cls, "speed", "")) != board.speed:
        problems.append(f"speed: board file {board.speed!r}, platform {getattr(cls, 'speed', None)!r}")
    if cls.default_clk != board.clock:
        problems.append(f"clock: board file {board.clock!r}, platform default_clk {cls.default_clk!r}")
    clk = plat.lookup(board.clock, 0)
    if clk.clock is None or abs(clk.clock.frequency - board.clock_hz) > 1:
        problems.append(f"clock hz: board file {board.clock_hz}, platform {clk.clock and clk.clock.frequency}")
    uart = plat.lookup(board.uart_resource, board.uart_number)
    pins = {sub.name: " ".join(sub.ios[0].names) for sub in uart.ios}
    for line, mine in (("rx", board.uart_rx), ("tx", board.uart_tx)):
        if pins.get(line) != mine:
            problems.append(f"uart {line}: board file {mine!r}, platform {pins.get(line)!r}")
    if board.led is not None:
        try:
            plat.lookup(*board.led)
        except Exception as e:          # amaranth raises ResourceError
            problems.append(f"led: {e}")
    return problems
