"""The cheaper BitMoD arrays on RTL: one dequantizer per column (`dequant="column"`, hwgen/bitmod/dequant.py)
and row-aligned FP16 accumulators shifted in steps (`shift_step`). The same golden models as the default array
(INT8: sw_model.bitmod.golden, row-aligned FP16: sw_model.bitmod.fp16_row), bit-exact under random gaps and
backpressure at 8 configs (the smallest legal PE, an odd 3 x 5 INT8 array with 3 lanes, 2 x 2 and 3 x 2 / 2 x 3
arrays with and without the decode pipeline register, shift steps 1 and 3 with both dequantizer kinds): mixed
datatypes per group, SVs and SV writes, extremes, Inf/NaN and exponent jumps (FP16); plus the cycle model:
cycles per beat as documented (shift stalls included), output latency 8 * rows + 1 with column dequantizers
(+ 1 with the pipeline register), exactly, with groups as short as the config allows."""
import numpy as np
import pytest

from hwgen.sim.harness import design
from rtl_tests.bitmod.test_bitmod import check as check_int8
from rtl_tests.bitmod.test_bitmod_fp16 import check as check_fp16
from rtl_tests.bitmod.test_bitmod_fp16_row import jump_beats
from sw_model.bitmod import fp16_row as bitmod_fp16_row
from sw_model.bitmod import golden
from sw_model.bitmod.config import BitModConfig
from sw_model.bitmod.golden import concat_beats
from sw_model.bitmod.vectors import extreme_beats, random_beats

pytestmark = pytest.mark.rtl

CONFIGS = [
    BitModConfig(lanes=1, group_size=4, max_groups=4, dequant="column"),                           # smallest
    BitModConfig(rows=3, cols=5, lanes=3, group_size=36, max_groups=3, dequant="column"),          # odd
    BitModConfig(rows=2, cols=2, lanes=4, group_size=32, max_groups=2, dequant="column", pipeline=1),
    BitModConfig(rows=3, cols=2, lanes=2, group_size=24, max_groups=3, act="fp16", align="row", dequant="column"),
    BitModConfig(rows=2, cols=3, lanes=2, group_size=16, max_groups=3, act="fp16", align="row", dequant="column",
                 pipeline=1),
    BitModConfig(lanes=1, group_size=4, max_groups=4, act="fp16", align="row", shift_step=3),      # smallest
    BitModConfig(rows=3, cols=2, lanes=2, group_size=24, max_groups=3, act="fp16", align="row", dequant="column",
                 shift_step=1),
    BitModConfig(rows=2, cols=3, lanes=3, group_size=24, max_groups=2, act="fp16", align="row", shift_step=3),
]
IDS = ["pe-k1-g4", "array-3x5-k3", "array-2x2-k4-pipe", "fp16row-3x2-k2", "fp16row-2x3-k2-pipe",
       "fp16row-pe-k1-step3", "fp16row-3x2-k2-step1", "fp16row-2x3-k3-pe-step3"]


def check(cfg, beats, sim_opts, **kw):
    return check_fp16(cfg, beats, sim_opts, **kw)[0] if cfg.act == "fp16" else check_int8(cfg, beats, sim_opts, **kw)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bitmod_column_random_and_extremes(cfg, sim_opts):
    beats = random_beats(cfg, 10, seed=cfg.rows * 7 + cfg.lanes, sv_writes=0.5,
                         **({"nonfinite": 0.05} if cfg.act == "fp16" else {}))
    assert beats["sv_we"].sum() > 0
    parts = [beats, extreme_beats(cfg)] + ([jump_beats(cfg)] if cfg.act == "fp16" else [])
    check(cfg, concat_beats(*parts), sim_opts, seed=1)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bitmod_column_cycle_model(cfg, sim_opts):
    """No gaps, no backpressure: beat b is accepted T_b cycles after beat b-1 (as with per-PE dequantizers) and
    each vector's output 8 * rows + 1 (+ pipeline) cycles after its last beat, exactly; FP-only vectors make
    groups of exactly 8 * rows cycles, as long as the column's dequantization."""
    beats = concat_beats(random_beats(cfg, 4, seed=20, sv_writes=0.5), random_beats(cfg, 1, seed=22, dtypes=(0,)),
                         golden.sv_write_beats(cfg, [("fp4", 1, -2.5)]), random_beats(cfg, 3, seed=21, dtypes=(2, 3)))
    res = check(cfg, beats, sim_opts, gap=0.0, backpressure=0.0)
    base = golden.cycles_per_beat(beats)
    t = bitmod_fp16_row.cycles_per_beat(cfg, beats) if cfg.align == "row" else base
    assert np.array_equal(np.diff(res["in_cycles"]), t[1:])
    assert (base == 1).any() and (base == 4).any() and (base == 2).any()    # SV writes, INT8 and FP beats
    assert (t > base).any() == (cfg.shift_step > 0)                       # shift stalls, and only with a step
    lat = golden.latency(cfg)
    assert lat == 8 * (cfg.rows if cfg.dequant == "column" else 1) + 1 + cfg.pipeline
    last_in = np.array(res["in_cycles"])[np.nonzero(beats["last"])[0]]
    assert np.array_equal(np.array(res["out_cycles"]) - last_in, np.full(len(last_in), lat))
    assert design(cfg)[1]["latency"] == lat
