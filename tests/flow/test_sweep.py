"""Design-space sweeps: spec validation, one record per point, resume without redoing points, Pareto front,
and the same sweep on a Dask cluster."""
import json

import pytest

from hwgen.cli import main
from hwgen.flow.sweep import load_spec, pareto_front, run_sweep
from sw_model.config import ConfigError

SPEC = """
name = "tiny"
unit = "lmul"
[grid]
fmt = ["e2m1", "e3m2"]
mode = ["adder", "formula"]
[run]
targets = []
samples = 2000
rtl_samples = 64
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC)
    return path


def test_sweep_records_and_resume(spec, tmp_path, capsys):
    out = tmp_path / "out"
    records = run_sweep(spec, out, jobs=2)
    assert len(records) == 4 and len(list((out / "points").glob("*.json"))) == 4
    for r in records:
        assert r["metrics"]["rtl_mismatches"] == 0 and r["metrics"]["rtl_beats"] == 64
        assert 0 < r["metrics"]["mean_rel_error"] < 1
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    (out / "points" / f"{records[0]['id']}.json").unlink()          # simulate an interrupted sweep
    capsys.readouterr()
    again = run_sweep(spec, out, jobs=1)
    assert "3 already done, 1 to run" in capsys.readouterr().out
    assert [r["id"] for r in again] == [r["id"] for r in records]
    for p in (out / "points").glob("*.json"):
        if p.name != f"{records[0]['id']}.json":
            assert p.stat().st_mtime_ns == stamps[p.name], "a finished point was redone"


def test_sweep_on_dask(spec, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is part of the dev extra")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        records = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert len(records) == 4 and all(r["metrics"]["rtl_mismatches"] == 0 for r in records)


def test_cli_sweep_with_synthesis_writes_pareto(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace('fmt = ["e2m1", "e3m2"]', 'fmt = ["e3m2"]').replace("targets = []",
                                                                                       'targets = ["xc7"]'))
    assert main(["sweep", str(spec), "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "pareto.png").stat().st_size > 1000
    table = (tmp_path / "o" / "sweep.md").read_text()
    assert table.count("| yes |") >= 1 and "mode=formula" in table
    data = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert all(p["synthesis"]["xc7"]["lut"] > 0 for p in data["points"])


def test_pareto_front():
    pts = [(10, 0.5), (20, 0.2), (15, 0.6), (30, 0.2), (40, 0.1)]
    assert pareto_front(pts) == [0, 1, 4]


@pytest.mark.parametrize("text,message", [
    ('unit = "lmul"\n[grid]\n', "grid: got an empty grid"),
    ('unit = "lmul"\n[grid]\nfmt = ["e4m3"]\n[run]\nworkload = "mnist"\n', "run.workload: got 'mnist'"),
    ('unit = "lmul"\n[grid]\nfmt = ["e4m0"]\n', "fmt: FloatFormat.man_bits: got 0"),
    ('unit = "lmul"\n[grid]\nfmt = ["e4m3"]\n[run]\ntargets = ["vu9p"]\n', "run.targets: got 'vu9p'"),
    ('unit = "lmul"\ngrids = 1\n', "unknown key(s) ['grids']"),
])
def test_bad_spec(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_spec(path)
