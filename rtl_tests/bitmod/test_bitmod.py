"""BitMoD array on RTL: bit-exact against sw_model.bitmod.golden (which is itself checked against a float reference)
under random gaps and backpressure, at 4 configs (the smallest legal PE, the default-lane PE, an odd 3 x 5 array
with 3 lanes, a 2 x 2 array with a custom SV table), each datatype alone, mixed per group, special values,
all-zero groups, extreme scales, SV-register writes between and inside vectors; plus the cycle model (cycles
per beat = max terms, 1 per SV write, output latency 9)."""
import numpy as np
import pytest

from hwgen.sim.harness import design, run_vectors
from sw_model.bitmod import golden
from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import concat_beats
from sw_model.bitmod.vectors import extreme_beats, random_beats

pytestmark = pytest.mark.rtl

CONFIGS = [
    BitModConfig(lanes=1, group_size=4, max_groups=4),                       # smallest legal
    pytest.param(BitModConfig(lanes=4, group_size=16, max_groups=4), marks=pytest.mark.slow),   # time budget
    BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3),      # odd, non-square
    BitModConfig(rows=2, cols=2, lanes=4, group_size=16, max_groups=2,
                 sv_fp4=(2.5, -5.0, 10.0, -12.0), sv_fp3=(1.5, -3.0, 6.0, -5.0)),
]
IDS = ["pe-k1-g4", "pe-k4-g16", "array-3x5-k3", "array-2x2-customsv"]


def check(cfg, beats, sim_opts, gap=0.3, backpressure=0.3, seed=0):
    want = golden.array_outputs(cfg, beats)
    assert np.array_equal(want, golden.reference_outputs(cfg, beats))     # golden == float reference
    fields = {k: np.asarray(v) for k, v in beats.items()}
    res = run_vectors(cfg, fields, {"y": golden.to_bits(want, cfg.out_bits)}, gap=gap, backpressure=backpressure,
                      seed=seed, **sim_opts)
    assert res["n_out"] == len(want) and not res["mismatches"] and not res["extra_output"]
    return res


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bitmod_mixed_random_and_extremes(cfg, sim_opts):
    beats = random_beats(cfg, 12, seed=cfg.rows * 7 + cfg.lanes, sv_writes=0.5)
    assert beats["sv_we"].sum() > 0
    check(cfg, concat_beats(beats, extreme_beats(cfg)), sim_opts, seed=1)


@pytest.mark.slow
def test_bitmod_each_datatype_alone(sim_opts):
    cfg = CONFIGS[2]
    check(cfg, concat_beats(*[random_beats(cfg, 4, seed=10 + d, dtypes=(d,)) for d in range(4)]), sim_opts, seed=3)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2]], ids=[IDS[0], IDS[2]])
def test_bitmod_cycle_model(cfg, sim_opts):
    """No gaps, no backpressure: beat b is accepted T_b cycles after beat b-1 and each vector's output
    LATENCY cycles after its last beat: exactly, for every beat."""
    beats = random_beats(cfg, 8, seed=20, sv_writes=0.5)
    res = check(cfg, beats, sim_opts, gap=0.0, backpressure=0.0)
    t = golden.cycles_per_beat(beats)
    assert np.array_equal(np.diff(res["in_cycles"]), t[1:])
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert (t == 1).any() and (t == 4).any() and (t == 2).any()       # SV writes, INT8 and FP beats
    assert np.array_equal(np.array(res["out_cycles"]) - last_in, np.full(len(last_in), golden.LATENCY))
    _, manifest = design(cfg)
    assert manifest["latency"] == golden.LATENCY
