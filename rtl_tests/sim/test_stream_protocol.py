"""The stream rules are checked, not hoped for: deliberately broken sources fail both benches (the cocotb
StreamSink and the bulk testbench) with the rule and the cycle, and well-behaved units under heavy backpressure
raise no false alarm."""
import dataclasses
import re
import shutil

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Instance, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.flow.generate import make_manifest
from hwgen.sim.bulk import run_bulk, run_bulk_on
from hwgen.sim.harness import (
    STREAM_RULES,
    BenchFailed,
    StreamProtocolError,
    run_vectors,
    run_vectors_on,
    save_design,
)
from sw_model.lmul import golden
from sw_model.lmul.config import LMulConfig

pytestmark = pytest.mark.rtl

LAYOUT = data.StructLayout({"x": 8})
# A blackbox whose output nobody drives: Z on a 4-state simulator (Amaranth itself never leaves a signal undriven).
UNDRIVEN = "\nmodule hwgen_undriven(output [3:0] y);\nendmodule\n"
no_icarus = pytest.mark.skipif(shutil.which("iverilog") is None,
                               reason="X/Z is visible only on a 4-state simulator; install Icarus (apt-get install -y "
                                      "iverilog)")


@dataclasses.dataclass(frozen=True)
class StageConfig:
    fault: str | None = None
    unit = "register_stage"               # a class attribute, as the manifest expects of a config


class RegisterStage(wiring.Component):
    """A one-beat register stage (latency 1), correct unless `fault` breaks its output stream:
    `valid_dropped`: a stalled beat is withdrawn after one cycle; `payload_changed`: a stalled payload counts up;
    `undefined`: the top 4 payload bits come from an undriven blackbox output."""
    i: In(stream.Signature(LAYOUT))
    o: Out(stream.Signature(LAYOUT))

    def __init__(self, fault: str | None = None):
        self.fault = fault
        super().__init__()

    def timing(self) -> dict:
        return {"latency": 1, "ii": 1}

    def elaborate(self, platform):
        m = Module()
        held = Signal(8)
        stalled = self.o.valid & ~self.o.ready
        m.d.comb += self.i.ready.eq(~stalled)
        with m.If(~stalled):
            m.d.sync += [self.o.valid.eq(self.i.valid), held.eq(self.i.payload.x)]
        if self.fault == "valid_dropped":
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        elif self.fault == "payload_changed":
            with m.Else():
                m.d.sync += held.eq(held + 1)
        if self.fault == "undefined":
            floating = Signal(4)
            m.submodules.undriven = Instance("hwgen_undriven", o_y=floating)
            m.d.comb += self.o.payload.x.eq(Cat(held[:4], floating))
        else:
            m.d.comb += self.o.payload.x.eq(held)
        return m


def stage_design(fault):
    name = f"stage_{fault or 'ok'}"
    component = RegisterStage(fault)
    text = verilog.convert(component, name=name, emit_src=False)
    if fault == "undefined":
        text += UNDRIVEN
    manifest = make_manifest(name, StageConfig(fault), component, text)
    return save_design(text, manifest), manifest


BEATS = np.arange(200) % 256
# (gap, backpressure, cycle of the violation): with no gaps and ready never high, the first beat is taken at cycle
# 0, offered on o from cycle 1 and broken at cycle 2 (an undefined payload is seen at once, at cycle 1); the
# random case shows the same rule caught wherever it happens first.
PRESSURE = [(0.0, 1.0, {"valid_dropped": 2, "payload_changed": 2, "undefined": 1}), (0.3, 0.5, None)]


def expect_violation(fault, cycles):
    cycle = str(cycles[fault]) if cycles else r"\d+"
    return pytest.raises(StreamProtocolError, match=rf"stream 'o': {re.escape(STREAM_RULES[fault])} at cycle {cycle}\b")


def run_both(fault, sim, gap, backpressure, cycles):
    verilog_path, manifest = stage_design(fault)
    with expect_violation(fault, cycles):
        run_vectors_on(verilog_path, manifest, {"x": BEATS}, {"x": BEATS}, sim=sim, gap=gap,
                       backpressure=backpressure)
    with expect_violation(fault, cycles):
        run_bulk_on(verilog_path, manifest, {"x": BEATS}, len(BEATS), sim=sim, gap=gap, backpressure=backpressure)


@pytest.mark.parametrize("gap,backpressure,cycles", PRESSURE, ids=["stalled", "random"])
@pytest.mark.parametrize("fault", ["valid_dropped", "payload_changed"])
def test_broken_source_is_caught(fault, gap, backpressure, cycles, sim_opts):
    run_both(fault, sim_opts["sim"], gap, backpressure, cycles)


@no_icarus
@pytest.mark.parametrize("gap,backpressure,cycles", PRESSURE, ids=["stalled", "random"])
def test_undefined_payload_is_caught_on_icarus(gap, backpressure, cycles):
    run_both("undefined", "icarus", gap, backpressure, cycles)


def test_protocol_error_is_a_bench_failure():
    assert issubclass(StreamProtocolError, BenchFailed)


@pytest.mark.parametrize("gap,backpressure", [(0.0, 0.9), (0.5, 0.8)])
def test_well_behaved_stage_passes_under_backpressure(gap, backpressure, sim_opts):
    verilog_path, manifest = stage_design(None)
    res = run_vectors_on(verilog_path, manifest, {"x": BEATS}, {"x": BEATS}, sim=sim_opts["sim"], gap=gap,
                         backpressure=backpressure, seed=7)
    assert not res["mismatches"] and res["n_out"] == len(BEATS)
    res = run_bulk_on(verilog_path, manifest, {"x": BEATS}, len(BEATS), sim=sim_opts["sim"], gap=gap,
                      backpressure=backpressure, seed=7)
    assert np.array_equal(res["outputs"]["x"], BEATS)
    assert res["cycles"] > 3 * len(BEATS)                   # the backpressure really stalled the stream


def test_pipelined_unit_passes_under_heavy_backpressure(sim_opts):
    cfg = LMulConfig(fmt="e4m3", pipeline=3)
    rng = np.random.default_rng(11)
    a, b = rng.integers(0, 256, (2, 300))
    want = golden.lmul(a, b, cfg.format)
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, sim=sim_opts["sim"], gap=0.2, backpressure=0.85, seed=2)
    assert not res["mismatches"]
    res = run_bulk(cfg, {"a": a, "b": b}, len(a), sim=sim_opts["sim"], gap=0.2, backpressure=0.85, seed=2)
    assert np.array_equal(res["outputs"]["p"], want)
