"""The L-Mul family's pipelining fields: ranges, the tree's step count and the latency they give."""
import pytest

from sw_model.config import ConfigError
from sw_model.lmul.config import ADD_STEPS, PRESETS_LMUL, FMulConfig, LMulDotConfig


@pytest.mark.parametrize("lanes,steps", [(1, 1), (2, 1 + ADD_STEPS), (5, 1 + 3 * ADD_STEPS), (16, 1 + 4 * ADD_STEPS)])
def test_tree_steps_count_products_and_five_steps_per_level(lanes, steps):
    assert LMulDotConfig(lanes=lanes).tree_steps == steps


def test_latency_is_pipeline_plus_accumulator_stages():
    cfg = LMulDotConfig(lanes=16, pipeline=21, acc_stages=5)
    assert cfg.latency == 26
    assert PRESETS_LMUL["lmuldot-e4m3x16"].latency == 26 and PRESETS_LMUL["lmuldot-e5m2x8-bf16"].latency == 21


@pytest.mark.parametrize("fields,message", [
    ({"acc_stages": 0}, "acc_stages: got 0, allowed: an integer from 1 to 5"),
    ({"acc_stages": 6}, "acc_stages: got 6, allowed: an integer from 1 to 5"),
    ({"lanes": 16, "pipeline": 24}, "pipeline: got 24, allowed: an integer from 0 to 23"),
    ({"lanes": 1, "pipeline": 4}, "pipeline: got 4, allowed: an integer from 0 to 3"),
])
def test_lmuldot_pipelining_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        LMulDotConfig(**fields)


def test_fmul_pipeline_range():
    assert FMulConfig().pipeline == 5 and FMulConfig(pipeline=6).pipeline == 6
    with pytest.raises(ConfigError, match="pipeline: got 7, allowed: an integer from 0 to 6"):
        FMulConfig(pipeline=7)
