"""Board files, the board top, and `hwgen build` (bitstreams in the slow tests)."""
import json
import re
import textwrap
from pathlib import Path

import pytest

from hwgen import cli
from hwgen.flow.boards import BoardError, board_from_dict, board_names, check_platform, load_board
from hwgen.flow.boards import BOARDS_DIR
from hwgen.flow.build import BoardTop, _lattice_build, build
from hwgen.flow.generate import build_component
from hwgen.flow.report import DoesNotFitError
from hwgen.system.bridge import BridgedUnit
from sw_model.registry import PRESETS, load_config

BOARDS = ["arty-a7-35t", "icebreaker", "ulx3s-85f"]


def test_board_files_agree_with_amaranth_boards():
    assert board_names() == BOARDS
    for name in BOARDS:
        board = load_board(name)
        assert board.name == name
        assert check_platform(board) == [], name


def test_board_lookup_by_alias_and_bad_names():
    assert load_board("ulx3s_85f").part == "LFE5U-85F"
    with pytest.raises(BoardError, match=r"board: got 'nope', allowed: arty-a7-35t, icebreaker, ulx3s-85f"):
        load_board("nope")
    with pytest.raises(BoardError, match=r"board: file 'missing.toml' does not exist"):
        load_board("missing.toml")


def _icebreaker_dict():
    import tomllib
    return tomllib.loads((BOARDS_DIR / "icebreaker.toml").read_text())


@pytest.mark.parametrize("change,message", [
    ({"family": "gowin"}, r"family: got 'gowin', allowed: ice40, ecp5, xc7"),
    ({"bitstream": "bit"}, r"bitstream: got 'bit', allowed for ice40: 'bin'"),
    ({"colour": "red"}, r"unknown keys \['colour'\]"),
    ({"part": 5}, r"part: got 5, allowed: a str"),
    ({"platform": "amaranth_boards.icebreaker"},
     r"platform: got 'amaranth_boards.icebreaker', allowed: 'module:Class'"),
    ({"capacity": {"lut": -1}}, r"capacity: bad entries \['lut'\]"),
])
def test_bad_board_files(change, message):
    d = _icebreaker_dict()
    d.update(change)
    with pytest.raises(BoardError, match=message):
        board_from_dict(d, "x.toml")


def test_check_platform_reports_disagreement():
    d = _icebreaker_dict()
    d["uart"] = dict(d["uart"], tx="10")
    d["clock"] = dict(d["clock"], hz=48_000_000)
    problems = check_platform(board_from_dict(d, "x.toml"))
    assert problems == ["clock hz: board file 48000000, platform 12000000.0",
                        "uart tx: board file '10', platform '9'"]


@pytest.mark.parametrize("name,constraint", [
    ("icebreaker", ("top.pcf", [r"set_io uart_0__rx__io 6", r"set_io uart_0__tx__io 9"])),
    ("ulx3s-85f", ("top.lpf", [r'LOCATE COMP "uart_0__rx__io" SITE "M1"', r'LOCATE COMP "uart_0__tx__io" SITE "L4"'])),
])
def test_board_top_puts_the_bridge_on_the_uart_pins(name, constraint):
    board = load_board(name)
    _, config = load_config("lmul-e4m3")
    top = BoardTop(board, BridgedUnit(build_component(config), divisor=104, timeout=104_000))
    plan = board.make_platform().prepare(top, name="top")
    text = plan.files[constraint[0]]
    text = text if isinstance(text, str) else text.decode()
    for pattern in constraint[1]:
        assert re.search(pattern, text), (pattern, text)


def test_not_fitting_design_names_the_resource(tmp_path):
    """The error path with a stand-in toolchain that fails like nextpnr-ice40 does on too many DSPs."""
    board = load_board("icebreaker")
    (tmp_path / "build_top.sh").write_text(textwrap.dedent("""\
        cat > top.tim <<'EOF'
        Info: Device utilisation:
        Info: 	         ICESTORM_LC:   812/ 5280    15%
        Info: 	        ICESTORM_DSP:    16/    8   200%
        ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_DSP'
        EOF
        exit 1
        """))
    with pytest.raises(DoesNotFitError, match=r"design does not fit ice40 iCE40UP5K SG48: needs 16 ICESTORM_DSP "
                                              r"but the part has 8 \(board icebreaker\)") as info:
        _lattice_build(board, tmp_path, timeout=30)
    assert (info.value.resource, info.value.used, info.value.available) == ("ICESTORM_DSP", 16, 8)


def test_ulx3s_core_clock_comes_from_the_pll():
    board = load_board("ulx3s-85f")
    assert (board.clock_hz, board.core_hz, board.uses_pll) == (25_000_000, 100_000_000, True)
    assert not load_board("icebreaker").uses_pll


@pytest.mark.parametrize("change,message", [
    ({"core_hz": 24_000_000}, r"core_hz: got 24000000, allowed for ice40: 12000000 \(the board clock"),
    ({"core_hz": "fast"}, r"core_hz: got 'fast', allowed: a positive integer"),
    ({"speed_hz": 1}, r"\[clock\]: unknown keys \['speed_hz'\]"),
])
def test_bad_core_clock(change, message):
    d = _icebreaker_dict()
    d["clock"] = dict(d["clock"], **change)
    with pytest.raises(BoardError, match=message):
        board_from_dict(d, "x.toml")


@pytest.mark.parametrize("out_mhz", [100, 75, 125, 50])
def test_pll_dividers_make_the_frequency_within_the_ecp5_ranges(out_mhz):
    from hwgen.flow.pll import ecp5_pll_params
    p = ecp5_pll_params(25_000_000, out_mhz * 1_000_000)
    assert 25e6 * p["CLKFB_DIV"] / p["CLKI_DIV"] == out_mhz * 1e6          # CLKOP feedback: out = in * fb / ref
    assert 400e6 <= p["vco_hz"] == out_mhz * 1e6 * p["CLKOP_DIV"] <= 800e6
    assert 3.125e6 <= 25e6 / p["CLKI_DIV"] and p["CLKOP_CPHASE"] == (p["CLKOP_DIV"] - 1) // 2
    if out_mhz == 100:                       # what Trellis's ecppll -i 25 -o 100 prints
        assert (p["CLKI_DIV"], p["CLKFB_DIV"], p["CLKOP_DIV"], p["CLKOP_CPHASE"]) == (1, 4, 6, 2)


def test_pll_refuses_unreachable_frequencies():
    from hwgen.flow.pll import ecp5_pll_params
    with pytest.raises(ValueError, match=r"core_hz: got 500000000, allowed: 3125000 \.\. 400000000 Hz"):
        ecp5_pll_params(25_000_000, 500_000_000)
    with pytest.raises(ValueError, match=r"core_hz: got 100000001, allowed: a frequency the ECP5 PLL makes exactly"):
        ecp5_pll_params(25_000_000, 100_000_001)


def test_ulx3s_top_runs_the_design_from_the_pll():
    board = load_board("ulx3s-85f")
    _, config = load_config("lmul-e4m3")
    top = BoardTop(board, BridgedUnit(build_component(config), divisor=868, timeout=868_000))
    plan = board.make_platform().prepare(top, name="top")
    il = plan.files["top.il"]
    il = il if isinstance(il, str) else il.decode()
    assert re.search(r"cell \\EHXPLLL ", il)
    for param, value in (("CLKI_DIV", "1"), ("CLKFB_DIV", "4"), ("CLKOP_DIV", "6"), ("CLKOP_CPHASE", "2"),
                         ("FEEDBK_PATH", '"CLKOP"')):
        assert re.search(rf"parameter \\{param} {value}\n", il), param
    assert re.search(r"connect \\CLKFB \\clk", il) and re.search(r"connect \\CLKOP \\clk", il)


def test_critical_path_from_the_nextpnr_log():
    from hwgen.flow.build import _critical_path
    log = textwrap.dedent("""\
        Info: Critical path report for clock '$glbnet$bridged.clk' (posedge -> posedge):
        Info: curr total
        Info:   clk-to-q  0.52  0.52 Source run0.dvalid_TRELLIS_FF_Q.Q
        Info:   routing  1.10  1.62 Net run0.dvalid (13,4) -> (14,4)
        Info:                          Sink engine0.x_LUT4_Z.B
        Info:      logic  0.24  1.86 Source engine0.x_LUT4_Z.F
        Info:   routing  0.90  2.76 Net engine0.x (14,4) -> (15,7)
        Info:                          Sink engine0.p0_t3_TRELLIS_FF_Q.DI
        Info:      setup  0.00  2.76 Source engine0.p0_t3_TRELLIS_FF_Q.DI
        Info: 0.76 ns logic, 2.00 ns routing
        Info: Critical path report for cross-domain path '<async>' -> 'posedge $glbnet$bridged.clk':
        """)
    assert _critical_path(log) == {"clock": "$glbnet$bridged.clk", "from": "run0.dvalid_TRELLIS_FF_Q.Q",
                                   "to": "engine0.p0_t3_TRELLIS_FF_Q.DI", "cells": 3,
                                   "delay": "0.76 ns logic, 2.00 ns routing"}
    assert _critical_path("Info: no timing here") is None


def test_cli_build_bad_board_and_config(capsys):
    assert cli.main(["build", "nope", "--config", "lmul-e4m3"]) == 2
    assert "hwgen: error: board: got 'nope', allowed: arty-a7-35t, icebreaker, ulx3s-85f" in capsys.readouterr().err
    assert cli.main(["build", "icebreaker", "--config", "nope"]) == 2
    assert "hwgen: error: config: got 'nope', allowed: a TOML file or a preset" in capsys.readouterr().err


def test_xc7_resources_only(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["build", "arty-a7-35t", "--config", "lmul-e4m3", "-o", str(out)]) == 0
    assert "no bitstream (resources only: no open xc7 bitstream flow)" in capsys.readouterr().out
    record = json.loads((out / "lmul-e4m3-arty-a7-35t.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["lmul-e4m3-arty-a7-35t.json"]
    res = record["resources"]
    # The L-Mul E4M3 unit alone is ~29 LUTs on xc7; the UART, bridge and heartbeat add the rest.
    assert 60 < res["lut"] < 1000 and 40 < res["ff"] < 1000 and res["dsp"] == 0 and res["bram"] == 0
    assert record["bridge"] == {"protocol": 1, "baud": 115200, "divisor": 868, "baud_actual": pytest.approx(1e8 / 868),
                                "timeout_cycles": 868_000, "timeout_ms": pytest.approx(8.68), "in_bytes": 2,
                                "out_bytes": 1, "ident": int(record["manifest"]["config_hash"][:8], 16)}
    assert record["manifest"]["streams"][0]["fields"][1] == {"name": "b", "offset": 8, "width": 8, "signed": False}


def _check_bitstream(board, out, record):
    data = Path(record["bitstream"]).read_bytes()
    if board == "icebreaker":
        assert data[4:8] == bytes.fromhex("7eaa997e")          # iCE40 sync word
    else:
        assert b"LFE5U-85F" in data[:64] and bytes.fromhex("41113043") in data[:128]   # ECP5-85F IDCODE
    assert record["fmax_mhz"] >= record["board"]["core_hz"] / 1e6


@pytest.mark.slow
@pytest.mark.parametrize("board,suffix", [("icebreaker", "bin"), ("ulx3s-85f", "bit")])
def test_bitstream(board, suffix, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["build", board, "--config", "lmul-e4m3", "-o", str(out)]) == 0
    record = json.loads((out / f"lmul-e4m3-{board}.json").read_text())
    assert record["bitstream"] == str(out / f"lmul-e4m3-{board}.{suffix}")
    _check_bitstream(board, out, record)


@pytest.mark.slow
def test_too_many_dsps_on_icebreaker(tmp_path):
    if "sparse-chain-16" not in PRESETS:
        pytest.skip("the sparse-chain family is not in this tree")
    with pytest.raises(DoesNotFitError, match=r"needs 16 ICESTORM_DSP but the part has 8 \(board icebreaker\)"):
        build("icebreaker", "sparse-chain-16", tmp_path / "out", log=lambda *a: None)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_lmuldot16_does_not_fit_icebreaker(tmp_path):
    with pytest.raises(DoesNotFitError, match=r"design does not fit ice40 iCE40UP5K SG48: needs \d+ ICESTORM_LC but "
                                              r"the part has 5280 \(board icebreaker\)"):
        build("icebreaker", "lmuldot-e4m3x16", tmp_path / "out", log=lambda *a: None)
