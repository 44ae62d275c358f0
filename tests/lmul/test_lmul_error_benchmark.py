"""benchmarks/lmul_error.py on a small sample: the paper's error ordering must hold for the golden models
(L-Mul k=3 more precise than E5M2 multiplication, L-Mul k=4 within 1.5x of E4M3 multiplication), so a regression
in sw_model.lmul.golden fails the suite."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lmul_error_bench", ROOT / "benchmarks" / "lmul_error.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

PAIRS, SEED = 20_000, 1


@pytest.fixture(scope="module")
def rows():
    return bench.random_rows(PAIRS, SEED)


def test_ordering_holds(rows):
    checks = bench.check_ordering(rows)
    assert len(checks) == 4
    failed = [f"{c['name']}: {c['detail']}" for c in checks if not c["passed"]]
    assert not failed, failed


def test_rows_are_sane(rows):
    by = {r["key"]: r for r in rows}
    # every L-Mul row: no flushes or saturation with the wide-exponent operand formats
    for k in bench.K_VALUES:
        for mode in bench.MODES:
            r = by[f"lmul-{mode}-k{k}"]
            assert r["format"] == f"e8m{k}"
            assert r["flushed_to_zero"] == 0 and r["saturated"] == 0 and r["rounded_ref_zero"] == 0
            assert r["vs_rounded"]["n"] == r["vs_exact"]["n"] == PAIRS
    # loose bands around the measured values (ALGORITHMS.md section 1 sanity numbers for the adder mode)
    bands = {"lmul-adder-k2": (0.13, 0.16), "lmul-adder-k3": (0.05, 0.065), "lmul-adder-k4": (0.045, 0.06),
             "lmul-adder-k5": (0.02, 0.035), "fmul-e4m3": (0.04, 0.05), "fmul-e5m2": (0.065, 0.08),
             "inputs-e4m3": (0.03, 0.038), "inputs-e5m2": (0.055, 0.067)}
    for key, (lo, hi) in bands.items():
        assert lo < by[key]["vs_exact"]["mean"] < hi, (key, by[key]["vs_exact"]["mean"])
    # input rounding only: zero error against the rounded-operand product
    assert by["inputs-e4m3"]["vs_rounded"]["mean"] == 0.0
    # more mantissa bits never hurt the adder mode
    errs = [by[f"lmul-adder-k{k}"]["vs_exact"]["mean"] for k in bench.K_VALUES]
    assert errs == sorted(errs, reverse=True)


def test_ordering_check_can_fail(rows):
    bad = [dict(r) for r in rows]
    for r in bad:
        if r["key"] == "fmul-e5m2":
            r["vs_exact"] = dict(r["vs_exact"], mean=0.01)
    checks = bench.check_ordering(bad)
    assert [c["passed"] for c in checks] == [False, True, False, True]


def test_main_writes_results(tmp_path, monkeypatch):
    out = tmp_path / "res"
    rc = bench.main(["--pairs", "5000", "--seed", "3", "--out", str(out), "--no-exhaustive"])
    assert rc == 0
    data = json.loads((out / "lmul_error.json").read_text())
    assert data["pairs"] == 5000 and data["seed"] == 3 and data["exhaustive"] == []
    assert data["versions"]["ml_dtypes"] and data["versions"]["numpy"]
    md = (out / "lmul_error.md").read_text()
    assert "--pairs 5000 --seed 3" in md and "PASS:" in md and "ml_dtypes" in md
    # a failing ordering makes the script exit non-zero
    monkeypatch.setattr(bench, "check_ordering", lambda rows: [{"name": "x", "passed": False, "detail": ""}])
    assert bench.main(["--pairs", "100", "--out", str(out), "--no-exhaustive"]) == 1


def test_exhaustive_rows():
    by = {r["key"]: r for r in bench.exhaustive_rows()}
    assert set(by) == {"lmul-e4m3-adder", "lmul-e4m3-formula", "lmul-e5m2-adder", "lmul-e5m2-formula",
                       "lmul-e3m4-adder", "lmul-e3m4-formula", "fmul-e4m3", "fmul-e5m2"}
    # exact multiply: RNE error below half an ulp, 2^-(m+1) relative
    assert 0 < by["fmul-e4m3"]["max"] < 2 ** -4 and 0 < by["fmul-e5m2"]["max"] < 2 ** -3
    # adder mode: worst case is the no-carry corner xm = ym = 0, (1 + 2^-l) vs 1
    assert by["lmul-e4m3-adder"]["max"] == 0.125 and by["lmul-e5m2-adder"]["max"] == 0.25
    for r in by.values():
        assert r["flushed_to_zero"] == 0 and r["pairs"] > 20_000
        assert r["mean"] < r["max"]
