"""The shared harness: content-hash build cache, clear errors for missing simulators, waveforms on request."""
import os

import numpy as np
import pytest

from hwgen.sim.harness import SimulatorMissing, build, check_simulator, design, run_vectors
from sw_model.lmul import golden
from sw_model.lmul.config import LMulConfig


def test_unknown_simulator():
    with pytest.raises(ValueError, match="simulator: got 'modelsim', allowed: verilator, icarus"):
        check_simulator("modelsim")


def test_missing_icarus_has_fix_it_message(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorMissing, match="apt-get install -y iverilog"):
        check_simulator("icarus")


def test_design_is_remembered_across_processes(monkeypatch):
    import hwgen.flow.generate
    from hwgen.sim import harness
    cfg = LMulConfig(fmt="e2m1", pipeline=1)
    verilog, manifest = design(cfg)
    harness._design_cached.cache_clear()               # as in a new process: only the files on disk remain

    def fail(*args):
        raise AssertionError("the generator ran although its sources and the config did not change")
    monkeypatch.setattr(hwgen.flow.generate, "generate", fail)
    assert design(cfg) == (verilog, manifest)
    with pytest.raises(AssertionError, match="the generator ran"):          # a key never seen is generated
        design(cfg, name=f"dut_{os.getpid()}_{id(cfg)}")
    harness._design_cached.cache_clear()


def test_build_is_cached_by_content():
    cfg = LMulConfig(fmt="e2m1", pipeline=1)
    verilog, manifest = design(cfg)
    _, first = build(verilog, manifest["top"])
    binary = first / manifest["top"]
    stamp = binary.stat().st_mtime_ns
    _, second = build(verilog, manifest["top"])
    assert first == second and binary.stat().st_mtime_ns == stamp
    _, other = build(verilog, manifest["top"], waves=True)
    assert other != first


def test_waves_on_request(sim_opts):
    cfg = LMulConfig(fmt="e2m1", pipeline=2)
    a, b = (x.ravel() for x in np.meshgrid(np.arange(16), np.arange(16), indexing="ij"))
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": golden.lmul(a, b, cfg.format)}, sim=sim_opts["sim"], waves=True)
    assert not res["mismatches"]
    from hwgen.cache import build_root
    dumps = [p for p in (build_root() / "runs").rglob("*") if p.suffix in (".fst", ".vcd")]
    assert dumps, "waves=True must leave a waveform dump under build/runs/"
    assert max(os.path.getmtime(p) for p in dumps) > 0


def test_mismatch_is_reported():
    """A wrong expectation must fail the bench with the first mismatches in the message."""
    from hwgen.sim.harness import BenchFailed
    cfg = LMulConfig(fmt="e2m1", pipeline=1)
    a, b = np.arange(16), np.full(16, 2)
    want = golden.lmul(a, b, cfg.format).astype(np.int64)
    want[5] ^= 1
    with pytest.raises(BenchFailed, match="'beat': 5, 'field': 'p'"):
        run_vectors(cfg, {"a": a, "b": b}, {"p": want})
