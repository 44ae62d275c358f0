"""The bulk path (whole stream test inside the simulator) agrees with the golden model and the cycle model,
in both simulators, under gaps and backpressure."""
import numpy as np
import pytest

from hwgen.sim.bulk import run_bulk
from rtl_tests.simulators import BOTH
from sw_model.lmul import golden
from sw_model.lmul.config import FMulConfig, LMulConfig, LMulDotConfig

pytestmark = pytest.mark.rtl


def all_pairs(bits):
    a, b = np.meshgrid(np.arange(1 << bits), np.arange(1 << bits), indexing="ij")
    return a.ravel(), b.ravel()


@pytest.mark.parametrize("sim", BOTH)
def test_bulk_exhaustive_e5m2_formula(sim):
    cfg = LMulConfig(fmt="e5m2", mode="formula", pipeline=2)
    a, b = all_pairs(8)
    res = run_bulk(cfg, {"a": a, "b": b}, len(a), gap=0.25, backpressure=0.25, seed=3, sim=sim)
    assert np.array_equal(res["outputs"]["p"], golden.lmul(a, b, cfg.format, "formula"))
    assert res["cycles"] > len(a)                       # the gaps and backpressure really happened


@pytest.mark.parametrize("cfg", [LMulConfig(pipeline=0), LMulConfig(pipeline=4), FMulConfig(pipeline=3)],
                         ids=lambda c: f"{c.unit}-p{c.pipeline}")
def test_bulk_latency_and_throughput(cfg):
    a, b = all_pairs(6)
    res = run_bulk(cfg, {"a": a, "b": b}, len(a))
    want = golden.lmul(a, b, cfg.format) if cfg.unit == "lmul" else golden.fmul(a, b, cfg.format)
    assert np.array_equal(res["outputs"]["p"], want)
    lat = np.array(res["out_cycles"]) - np.array(res["in_cycles"])
    assert (lat == cfg.pipeline).all(), sorted(set(lat.tolist()))
    assert (np.diff(res["in_cycles"]) == 1).all()


def test_bulk_dot_with_stalls():
    cfg = LMulDotConfig(fmt="e4m3", acc_fmt="bf16", lanes=7, pipeline=2)
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (500, 3, 7))
    b = rng.integers(0, 256, (500, 3, 7))
    last = np.tile([0, 0, 1], 500)
    res = run_bulk(cfg, {"a": a.reshape(-1, 7), "b": b.reshape(-1, 7), "last": last}, 500,
                   gap=0.4, backpressure=0.4, seed=5)
    assert np.array_equal(res["outputs"]["sum"], golden.lmul_dot(a, b, cfg.format, cfg.acc_format))
