"""BitMoD array with FP16 activations on RTL: bit-exact (mantissa, block exponent, nonfinite flags) against
sw_model.bitmod.fp16 (itself bounded against a float64 reference in tests/test_bitmod_fp16.py) under random gaps
and backpressure, at 4 configs (the smallest legal PE, the default-lane PE, an odd non-square 3 x 5 array with
3 lanes, a 2 x 3 array with guard_bits = 1 and a custom SV table): mixed datatypes per group, SVs and SV writes,
all-zero groups, scales 0/1/255, subnormal / +-0 / +-65504 / Inf / NaN activations, extremes; each datatype
alone; the cycle model (cycles per beat = max terms, 1 per SV write, output latency 9)."""
import numpy as np
import pytest

from hwgen.sim.harness import design, run_vectors
from sw_model.bitmod import fp16, golden
from sw_model.bitmod import fp16_row as bitmod_fp16_row
from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import concat_beats
from sw_model.bitmod.vectors import extreme_beats, random_beats

pytestmark = pytest.mark.rtl

CONFIGS = [
    BitModConfig(lanes=1, group_size=4, max_groups=4, act="fp16"),                       # smallest legal
    pytest.param(BitModConfig(lanes=4, group_size=16, max_groups=4, act="fp16"), marks=pytest.mark.slow),
    BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3, act="fp16"),      # odd, non-square
    BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=2, act="fp16", guard_bits=1,
                 sv_fp4=(2.5, -5.0, 10.0, -12.0), sv_fp3=(1.5, -3.0, 6.0, -5.0)),
]
IDS = ["pe-k1-g4", "pe-k4-g16", "array-3x5-k3", "array-2x3-g1-customsv"]


def check(cfg, beats, sim_opts, gap=0.3, backpressure=0.3, seed=0):
    """RTL bit-exact with the golden model of the config's alignment rule, that model within its float64 bound
    (shared with test_bitmod_fp16_row.py)."""
    model = bitmod_fp16_row if cfg.align == "row" else fp16
    want = model.array_outputs(cfg, beats)
    ref, bound = model.reference_and_bound(cfg, beats)                 # golden within its float64 bound
    v = model.output_values(cfg, want)
    assert (np.isnan(v) | (np.abs(v - ref) <= bound)).all()
    expected = {"y": golden.to_bits(want["y"], cfg.out_bits), "e": want["e"], "nonfinite": want["nonfinite"]}
    res = run_vectors(cfg, {k: np.asarray(x) for k, x in beats.items()}, expected, gap=gap,
                      backpressure=backpressure, seed=seed, **sim_opts)
    assert res["n_out"] == len(want["y"]) and not res["mismatches"] and not res["extra_output"]
    return res, want


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bitmod_fp16_mixed_random_specials_extremes(cfg, sim_opts):
    beats = random_beats(cfg, 12, seed=cfg.rows * 7 + cfg.lanes, sv_writes=0.5, nonfinite=0.05)
    assert beats["sv_we"].sum() > 0
    _, want = check(cfg, concat_beats(beats, extreme_beats(cfg)), sim_opts, seed=1)
    assert want["nonfinite"].any() and not want["nonfinite"].all()      # the flag path is exercised both ways


def test_bitmod_fp16_each_datatype_alone(sim_opts):
    cfg = CONFIGS[2]
    check(cfg, concat_beats(*[random_beats(cfg, 4, seed=10 + d, dtypes=(d,)) for d in range(4)]), sim_opts, seed=3)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2]], ids=[IDS[0], IDS[2]])
def test_bitmod_fp16_cycle_model(cfg, sim_opts):
    """No gaps, no backpressure: beat b is accepted T_b cycles after beat b-1 and each vector's output
    LATENCY cycles after its last beat: exactly, for every beat (the same model as the INT8 array)."""
    beats = concat_beats(random_beats(cfg, 6, seed=20, sv_writes=0.5), random_beats(cfg, 2, seed=21, dtypes=(2, 3)))
    res, _ = check(cfg, beats, sim_opts, gap=0.0, backpressure=0.0)
    t = golden.cycles_per_beat(beats)
    assert np.array_equal(np.diff(res["in_cycles"]), t[1:])
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert (t == 1).any() and (t == 4).any() and (t == 2).any()       # SV writes, INT8 and FP beats
    assert np.array_equal(np.array(res["out_cycles"]) - last_in, np.full(len(last_in), golden.LATENCY))
    _, manifest = design(cfg)
    assert manifest["latency"] == golden.LATENCY
