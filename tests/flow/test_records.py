"""Tests for the report records (hwgen.flow.records), the critical-path parsers and the ASIC flow.

The cache tests replace the tool runs by a counter (they check what re-runs, not what the tools say); the
parsers read logs captured from real runs (tests/flow/data); two tests run the real tools on the smallest
L-Mul preset (a few seconds each).
"""
import dataclasses
import json
from pathlib import Path

import pytest

from hwgen.flow import asic, records
from hwgen.flow.report import DoesNotFitError, parse_critical_path, parse_utilization
from sw_model.registry import PRESETS

DATA = Path(__file__).parent / "data"


# --- critical-path parsers on captured logs --------------------------------------------------------

def test_ecp5_critical_path_from_captured_log():
    log = (DATA / "nextpnr_ecp5_lmul_e4m3.log").read_text()
    cp = parse_critical_path(log)
    assert cp["clock"] == "$glbnet$clk$TRELLIS_IO_IN"          # not one of the two <async> reports after it
    assert cp["start"] == "i__payload_in_q_TRELLIS_FF_Q_1.Q"
    assert cp["start_net"] == "i__payload_in_q[1]"
    assert cp["end"] == "unit.o__payload_TRELLIS_FF_Q_6.M"
    assert cp["delay_ns"] == 7.42 and cp["logic_ns"] == 3.12 and cp["routing_ns"] == 4.31
    assert cp["logic_levels"] == 12 and cp["segments"] == 27          # counted with grep
    # the same log's Fmax line: the path is the one that sets the clock (1000 / 7.42 ns = 134.77 MHz)
    assert 1000 / cp["delay_ns"] == pytest.approx(134.75, abs=0.05)


def test_ice40_critical_path_from_captured_log():
    cp = parse_critical_path((DATA / "nextpnr_ice40_lmul_e4m3.log").read_text())
    assert cp["start"] == "i__payload$8_SB_DFFSR_Q_DFFLC.O"
    assert cp["end"] == "o__payload$18_SB_DFFESR_Q_1_D_SB_LUT4_O_LC.I2"
    assert cp["delay_ns"] == 17.19 and (cp["logic_ns"], cp["routing_ns"]) == (8.17, 9.02)
    assert cp["logic_levels"] == 10 and cp["segments"] == 23


def test_critical_path_absent_and_other_clock():
    assert parse_critical_path("Info: Program finished normally.\n") is None
    log = (DATA / "nextpnr_ecp5_lmul_e4m3.log").read_text()
    # a clock of another name: the first register-to-register report is still the answer
    assert parse_critical_path(log, clock="pll_out")["end"] == "unit.o__payload_TRELLIS_FF_Q_6.M"


def test_utilization_lines():
    util = parse_utilization((DATA / "nextpnr_ecp5_lmul_e4m3.log").read_text())
    assert util["TRELLIS_FF"] == {"used": 37, "available": 83640}
    assert util["MULT18X18D"] == {"used": 0, "available": 156}


def test_sta_report_from_captured_log():
    path = asic.parse_sta_report((DATA / "opensta_osu018_lmul_e4m3.log").read_text())
    assert path == {"start": "_284_", "end": "_269_", "arrival_ns": 1.801, "setup_ns": 0.174, "delay_ns": 1.975,
                    "cells": 11, "slack_ns": 8.025, "met": True}
    assert asic.parse_sta_report("No paths found.\n") is None


# --- the record cache (tool runs replaced by a counter) ---------------------------------------------

@pytest.fixture
def fake_flow(monkeypatch, tmp_path):
    monkeypatch.setenv("HWGEN_BUILD_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(records, "tool_versions", lambda target: {"yosys": "Yosys test"})
    runs = []

    def run_flow(config, target, options, timeout, workdir):
        runs.append((config, target))
        return {"status": "ok", "lut": 10 * len(runs), "fmax_mhz": 123.0, "critical_path": None}
    monkeypatch.setattr(records, "_run_flow", run_flow)
    return runs


def test_unchanged_preset_comes_from_the_cache(fake_flow):
    cfg = PRESETS["lmul-e4m3"]
    first = records.make_record("lmul-e4m3", cfg, "ecp5")
    again = records.make_record("lmul-e4m3", cfg, "ecp5")
    assert len(fake_flow) == 1
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["lut"] == first["lut"] and again["key"] == first["key"]
    # another target is another record
    records.make_record("lmul-e4m3", cfg, "xc7")
    assert len(fake_flow) == 2


def test_changed_preset_reruns_only_itself(fake_flow):
    cfg, other = PRESETS["lmul-e4m3"], PRESETS["lmul-e5m2"]
    records.make_record("lmul-e4m3", cfg, "ecp5")
    records.make_record("lmul-e5m2", other, "ecp5")
    changed = dataclasses.replace(cfg, mode="formula")            # the edited preset
    r = records.make_record("lmul-e4m3", changed, "ecp5")
    assert len(fake_flow) == 3 and not r["cached"] and fake_flow[-1][0] == changed
    assert records.make_record("lmul-e5m2", other, "ecp5")["cached"]
    assert len(fake_flow) == 3


def test_flow_options_and_tool_versions_are_in_the_key(fake_flow, monkeypatch):
    cfg = PRESETS["lmul-e4m3"]
    records.make_record("lmul-e4m3", cfg, "ecp5")
    records.make_record("lmul-e4m3", cfg, "ecp5", dsp=False)
    assert len(fake_flow) == 2
    monkeypatch.setattr(records, "tool_versions", lambda target: {"yosys": "Yosys test 2"})
    records.make_record("lmul-e4m3", cfg, "ecp5")
    assert len(fake_flow) == 3


def test_gateware_edit_without_verilog_change_does_not_resynthesize(fake_flow, monkeypatch):
    cfg = PRESETS["lmul-e4m3"]
    first = records.make_record("lmul-e4m3", cfg, "ecp5")
    monkeypatch.setattr(records, "gateware_digest", lambda: "edited-sources")    # forces a new Verilog hash
    again = records.make_record("lmul-e4m3", cfg, "ecp5")
    assert again["cached"] and again["verilog_sha"] == first["verilog_sha"]
    assert len(fake_flow) == 1


def test_failed_runs_are_records_but_not_cached(fake_flow, monkeypatch):
    def broken(config, target, options, timeout, workdir):
        fake_flow.append(target)
        raise RuntimeError("yosys failed for x on ecp5 (exit 1)\nlog tail")
    monkeypatch.setattr(records, "_run_flow", broken)
    r = records.make_record("lmul-e4m3", PRESETS["lmul-e4m3"], "ecp5")
    assert r["status"] == "error" and r["error"] == "yosys failed for x on ecp5 (exit 1)"
    records.make_record("lmul-e4m3", PRESETS["lmul-e4m3"], "ecp5")
    assert len(fake_flow) == 2                                   # retried


def test_unknown_target_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown target 'asic-sky130'.*asic-osu018"):
        records.flow_options("asic-sky130")
    with pytest.raises(ValueError, match=r"unknown target 'virtex'.*ecp5"):
        records.flow_options("virtex")


def test_does_not_fit_is_a_record_with_utilization(monkeypatch, tmp_path):
    monkeypatch.setenv("HWGEN_BUILD_DIR", str(tmp_path))

    def no_fit(component, target, **kwargs):
        component._MustUse__silence = True                      # never elaborated here
        error = DoesNotFitError("design does not fit ice40 UP5K sg48: needs 9000 ICESTORM_LC but the part has 5280",
                                resource="ICESTORM_LC", used=9000, available=5280,
                                utilization={"ICESTORM_LC": {"used": 9000, "available": 5280},
                                             "ICESTORM_RAM": {"used": 0, "available": 30}})
        error.result = {"part": "UP5K", "lut": 8000, "ff": 900, "fmax_mhz": None, "yosys_version": "Yosys t",
                        "nextpnr_version": "nextpnr t"}
        raise error
    monkeypatch.setattr("hwgen.flow.report.synthesize", no_fit)
    fields = records._run_flow(PRESETS["lmul-e4m3"], "ice40", records.flow_options("ice40"), None, tmp_path)
    assert fields["status"] == "does_not_fit" and fields["resource"] == "ICESTORM_LC"
    assert fields["lut"] == 8000 and fields["fmax_mhz"] is None
    assert fields["utilization"] == {"ICESTORM_LC": {"used": 9000, "available": 5280}}   # unused BELs dropped
    assert "needs 9000 ICESTORM_LC" in fields["error"]


def test_cli_report_prints_and_writes_the_record(fake_flow, tmp_path, capsys):
    from hwgen.cli import main
    page_record = records.make_record("lmul-e4m3", PRESETS["lmul-e4m3"], "ecp5")
    assert main(["report", "lmul-e4m3", "--target", "ecp5", "-o", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / "lmul-e4m3.report.json").read_text())
    assert len(fake_flow) == 1                                   # the CLI found the page's record
    assert {k: v for k, v in written[0].items() if k != "cached"} == \
        {k: v for k, v in page_record.items() if k != "cached"}
    assert "| lmul-e4m3 | ecp5 |" in capsys.readouterr().out


# --- real tools on the smallest preset ----------------------------------------------------------------

def test_real_ecp5_record_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_BUILD_DIR", str(tmp_path))
    r = records.make_record("lmul-e4m3", PRESETS["lmul-e4m3"], "ecp5")
    assert r["status"] == "ok" and r["part"] == "LFE5U-85F" and r["options"]["speed"] == 6
    assert r["lut"] > 20 and r["ff"] >= 37 and r["ops_per_cycle"] == 1
    cp = r["critical_path"]
    assert cp["logic_levels"] >= 1 and cp["segments"] > cp["logic_levels"]
    assert 1000 / cp["delay_ns"] == pytest.approx(r["fmax_mhz"], rel=0.01)  # the path that sets the Fmax
    assert r["tools"]["yosys"].startswith("Yosys 0.70") and r["tools"]["nextpnr"].startswith("nextpnr-")


def _asic_installed():
    try:
        asic.liberty_file("asic-osu018")
        asic.sta_command()
    except RuntimeError as e:
        return str(e)
    return None


def test_asic_missing_package_names_the_apt_line(monkeypatch, tmp_path):
    monkeypatch.setitem(asic.ASIC_TARGETS, "asic-osu018",
                        dict(asic.ASIC_TARGETS["asic-osu018"], liberty=tmp_path / "none.lib"))
    with pytest.raises(RuntimeError, match=r"apt-get install -y qflow-tech-osu018 opensta"):
        asic.liberty_file("asic-osu018")
    monkeypatch.setattr(asic.shutil, "which", lambda name: None)
    monkeypatch.setattr(asic, "_STA", str(tmp_path / "no-sta"))
    with pytest.raises(RuntimeError, match=r"OpenSTA.*apt-get install -y qflow-tech-osu035 opensta"):
        asic.sta_command("asic-osu035")


def test_real_asic_report(tmp_path, monkeypatch):
    missing = _asic_installed()
    if missing:
        pytest.skip(missing)
    monkeypatch.setenv("HWGEN_BUILD_DIR", str(tmp_path))
    r = records.make_record("lmul-e4m3", PRESETS["lmul-e4m3"], "asic-osu018")
    assert r["status"] == "ok" and r["cells"]["DFFPOSX1"] == r["ff"] >= 37      # harness flops at least
    assert r["area_um2"] > 1000 and r["cell_count"] == sum(r["cells"].values())
    assert 0.3 < r["delay_ns"] < 10 and r["critical_path"]["cells"] >= 2
    assert r["tools"]["sta"].startswith("OpenSTA")


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_records_keeps_the_order_and_reports_each(fake_flow, jobs):
    points = [("lmul-e4m3", PRESETS["lmul-e4m3"], "ecp5"), ("lmul-e5m2", PRESETS["lmul-e5m2"], "xc7"),
              ("lmul-e4m3", PRESETS["lmul-e4m3"], "ice40")]
    seen = []
    got = records.run_records(points, jobs=jobs, on_record=seen.append)
    assert [(r["preset"], r["target"]) for r in got] == [(n, t) for n, _c, t in points]
    assert sorted((r["preset"], r["target"]) for r in seen) == sorted((n, t) for n, _c, t in points)
    assert all(r["status"] == "ok" for r in got)
    again = records.run_records(points, jobs=jobs)               # the workers wrote the cache
    assert all(r["cached"] for r in again)
