"""BitMoD array with FP16 activations and row alignment (`align="row"`) on RTL: bit-exact (mantissa, block
exponent, nonfinite flags) against sw_model.bitmod.fp16_row (itself bounded against float64 in
tests/bitmod/test_bitmod_fp16_row_golden.py) under random gaps and backpressure, at 4 configs (the smallest legal PE,
an odd non-square 3 x 5 array with 3 lanes, a 2 x 3 array with guard_bits = 1 and a custom SV table (slow-marked),
and the 3 x 5 array with the decode pipeline register): mixed datatypes per group, SVs and SV writes, all-zero
groups, scales 0/1/255, subnormal / +-0 / +-65504 / Inf / NaN activations, extremes, exponent jumps up and
down within vectors; each datatype alone; the cycle model (unchanged: cycles per beat = max terms, 1 per SV
write, output latency 9, 10 with the pipeline register)."""
import numpy as np
import pytest

from hwgen.sim.harness import design
from rtl_tests.bitmod.test_bitmod_fp16 import check
from sw_model.bitmod import golden
from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import concat_beats
from sw_model.bitmod.vectors import extreme_beats, random_beats

pytestmark = pytest.mark.rtl

CONFIGS = [
    BitModConfig(lanes=1, group_size=4, max_groups=4, act="fp16", align="row"),                   # smallest
    BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3, act="fp16", align="row"),  # odd
    pytest.param(BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=2, act="fp16", align="row",
                              guard_bits=1, sv_fp4=(2.5, -5.0, 10.0, -12.0), sv_fp3=(1.5, -3.0, 6.0, -5.0)),
                 marks=pytest.mark.slow),
    BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3, act="fp16", align="row", pipeline=1),
]
IDS = ["pe-k1-g4", "array-3x5-k3", "array-2x3-g1-customsv", "array-3x5-k3-pipe"]


def jump_beats(cfg, seed=0):
    """Exponent jumps across groups: subnormal-only groups (E = 1) then +-65504 (E = 30): the output accumulator
    shifts by 29 during one dequantization; then the reverse (later groups pre-aligned to E = 30)."""
    rng = np.random.default_rng(seed)
    G, C, R = cfg.group_size, cfg.cols, cfg.rows
    parts = []
    for first, second in ((0x0001, 0x7BFF), (0xFBFF, 0x8003)):
        w = rng.integers(0, 256, size=(C, 2 * G))
        a = np.concatenate([np.full((1, R, G), first), np.full((1, R, G), second)], axis=2)
        parts.append(golden.make_beats(cfg, w, a, np.zeros((C, 2), int), np.zeros((C, 2), int),
                                       rng.integers(1, 256, size=(C, 2))))
    return concat_beats(*parts)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bitmod_fp16_row_mixed_random_specials_extremes(cfg, sim_opts):
    beats = random_beats(cfg, 12, seed=cfg.rows * 7 + cfg.lanes, sv_writes=0.5, nonfinite=0.05)
    assert beats["sv_we"].sum() > 0
    _, want = check(cfg, concat_beats(beats, extreme_beats(cfg), jump_beats(cfg)), sim_opts, seed=1)
    assert want["nonfinite"].any() and not want["nonfinite"].all()      # the flag path is exercised both ways
    assert len(set(want["e"].reshape(-1).tolist())) > 3                  # many block exponents


def test_bitmod_fp16_row_each_datatype_alone(sim_opts):
    cfg = CONFIGS[1]
    check(cfg, concat_beats(*[random_beats(cfg, 4, seed=10 + d, dtypes=(d,)) for d in range(4)]), sim_opts, seed=3)


@pytest.mark.parametrize("cfg", [CONFIGS[0], pytest.param(CONFIGS[1], marks=pytest.mark.slow), CONFIGS[3]],
                         ids=[IDS[0], IDS[1], IDS[3]])
def test_bitmod_fp16_row_cycle_model(cfg, sim_opts):
    """No gaps, no backpressure: beat b is accepted T_b cycles after beat b-1 and each vector's output
    latency(cfg) cycles after its last beat, exactly, for every beat (the model of the INT8 array); FP-only
    vectors (8-cycle groups, as long as the dequantization and its output shift) included."""
    beats = concat_beats(random_beats(cfg, 6, seed=20, sv_writes=0.5), random_beats(cfg, 2, seed=21, dtypes=(2, 3)))
    res, _ = check(cfg, beats, sim_opts, gap=0.0, backpressure=0.0)
    t = golden.cycles_per_beat(beats)
    assert np.array_equal(np.diff(res["in_cycles"]), t[1:])
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert (t == 1).any() and (t == 4).any() and (t == 2).any()       # SV writes, INT8 and FP beats
    lat = golden.latency(cfg)
    assert lat == 9 + cfg.pipeline
    assert np.array_equal(np.array(res["out_cycles"]) - last_in, np.full(len(last_in), lat))
    assert design(cfg)[1]["latency"] == lat
