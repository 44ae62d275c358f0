"""BitMoD array with the decode pipeline register (`pipeline=1`), INT8 and FP16 activations: bit-exact with the
unchanged golden models under random gaps and backpressure (incl. Inf/NaN flags and extremes), and the cycle
model: the same cycles per beat, output latency 10 instead of 9, no extra stall at minimum-length groups."""
import numpy as np
import pytest

from hwgen.sim.harness import design, run_vectors
from sw_model.bitmod import fp16, golden
from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import concat_beats
from sw_model.bitmod.vectors import extreme_beats, random_beats

pytestmark = pytest.mark.rtl

CONFIGS = [
    BitModConfig(lanes=1, group_size=4, max_groups=4, pipeline=1),                        # int8, smallest
    BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3, act="fp16", pipeline=1),
]
IDS = ["int8-pe-k1-g4", "fp16-array-3x5-k3"]


def expected(cfg, beats):
    if cfg.act == "fp16":
        want = fp16.array_outputs(cfg, beats)
        return {"y": golden.to_bits(want["y"], cfg.out_bits), "e": want["e"], "nonfinite": want["nonfinite"]}
    return {"y": golden.to_bits(golden.array_outputs(cfg, beats), cfg.out_bits)}


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bitmod_pipelined(cfg, sim_opts):
    beats = concat_beats(random_beats(cfg, 10, seed=31, sv_writes=0.5, nonfinite=0.05), extreme_beats(cfg))
    want = expected(cfg, beats)
    res = run_vectors(cfg, beats, want, gap=0.3, backpressure=0.3, seed=4, **sim_opts)
    assert res["n_out"] == len(want["y"]) and not res["mismatches"] and not res["extra_output"]
    # cycle model without gaps / backpressure, FP-only vectors included (the shortest groups, 8 cycles)
    beats = concat_beats(random_beats(cfg, 5, seed=32, sv_writes=0.5), random_beats(cfg, 2, seed=33, dtypes=(2, 3)))
    want = expected(cfg, beats)
    res = run_vectors(cfg, beats, want, gap=0.0, backpressure=0.0, **sim_opts)
    assert not res["mismatches"]
    t = golden.cycles_per_beat(beats)
    assert np.array_equal(np.diff(res["in_cycles"]), t[1:])
    assert (t == 1).any() and (t == 2).any() and (t == 4).any()
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert golden.latency(cfg) == 10
    assert np.array_equal(np.array(res["out_cycles"]) - last_in, np.full(len(last_in), 10))
    assert design(cfg)[1]["latency"] == 10
