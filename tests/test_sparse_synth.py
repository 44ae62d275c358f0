"""Yosys maps the sparse chain as intended: one DSP48E1 per stage with the sum cascaded PCOUT -> PCIN inside
the DSPs and a small fabric share (xc7), one MULT18X18D per stage (ECP5). The preset-sized runs through
hwgen.report.synthesize are in benchmarks/sparse_bench.py."""
from pathlib import Path

import pytest

from hwgen.sparse_synth import synth_chain, xc7_cascade_of
from sw_model.sparse_config import SparseChainConfig


@pytest.mark.parametrize("cfg", [
    SparseChainConfig(stages=3),
    pytest.param(SparseChainConfig(stages=4, weight_bits=4), marks=pytest.mark.slow),
    pytest.param(SparseChainConfig(stages=3, packed=True, lane_bits=16), marks=pytest.mark.slow),
], ids=["s3", "s4-int4", "s3-packed-lane16"])
def test_xc7_one_dsp48_per_stage_with_cascade(cfg):
    from sw_model.configs import config_hash
    root = Path(__file__).resolve().parent.parent      # YoWASP cannot see the host /tmp: work under build/
    res = xc7_cascade_of(cfg, root / "build" / "report" / f"sparse-test-{config_hash(cfg)}")
    assert res["dsp48e1"] == cfg.stages
    assert res["pcin_links"] == cfg.stages - 1              # every stage but the first takes PCIN
    assert all(r[2] == 1 and r[3] == 1 for r in res["areg_breg_mreg_preg"])   # M and P registers in the DSP
    assert res["lut"] <= 80 * cfg.stages * (2 if cfg.packed else 1), res["lut"]   # muxes + accumulator only


def test_ecp5_one_mult18_per_stage():
    res = synth_chain(SparseChainConfig(stages=3), "ecp5")
    assert res["cells"].get("MULT18X18D") == 3 and res["dsp"] == 3


@pytest.mark.parametrize("cfg", [SparseChainConfig(stages=3), SparseChainConfig(stages=4, packed=True, weight_bits=4)],
                         ids=["s3", "s4-packed-int4"])
def test_verilog_lints_clean(cfg, tmp_path):
    from hwgen.generate import generate
    from hwgen.lint import lint
    text, _ = generate(cfg, "sparse_lint")
    (tmp_path / "sparse_lint.v").write_text(text)
    assert lint(tmp_path / "sparse_lint.v") == []
