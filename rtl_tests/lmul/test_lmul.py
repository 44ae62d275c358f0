"""L-Mul family on RTL: bit-exact against sw_model.lmul.golden under random gaps and backpressure, plus the latency
(cycle model: output k leaves `latency` cycles after input k's handshake when nothing stalls)."""
import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from sw_model.lmul import golden
from sw_model.lmul.config import FMulConfig, LMulConfig, LMulDotConfig
from sw_model.numerics.formats import encode

pytestmark = pytest.mark.rtl


def all_pairs(bits):
    a, b = np.meshgrid(np.arange(1 << bits), np.arange(1 << bits), indexing="ij")
    return a.ravel(), b.ravel()


def corner_codes(fmt):
    """Zeros, smallest/largest subnormal and normal, max finite, Inf/NaN codes, both signs."""
    m = fmt.man_bits
    mags = {0, 1, (1 << m) - 1, 1 << m, (1 << m) + 1, fmt.max_finite_code, fmt.max_finite_code - 1,
            fmt.bias << m, (fmt.bias << m) + (1 << m) - 1}
    if fmt.inf_code is not None:
        mags |= {fmt.inf_code, fmt.inf_code + 1, fmt.mag_mask}
    if fmt.nan_code is not None:
        mags.add(fmt.nan_code & fmt.mag_mask)
    codes = sorted(mags | {x | fmt.sign_mask for x in mags})
    return np.array(codes, dtype=np.int64)


def random_and_corners(fmt, n, seed):
    rng = np.random.default_rng(seed)
    c = corner_codes(fmt)
    ca, cb = np.meshgrid(c, c, indexing="ij")
    a = np.concatenate([ca.ravel(), rng.integers(0, 1 << fmt.bits, n)])
    b = np.concatenate([cb.ravel(), rng.integers(0, 1 << fmt.bits, n)])
    return a, b


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
@pytest.mark.parametrize("mode", ["adder", "formula"])
def test_lmul_exhaustive(fmt, mode, sim_opts):
    cfg = LMulConfig(fmt=fmt, mode=mode, pipeline=1)
    a, b = all_pairs(8)
    want = golden.lmul(a, b, fmt, mode, cfg.overflow)
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, gap=0.2, backpressure=0.2, seed=1, **sim_opts)
    assert res["n_out"] == 65536 and not res["mismatches"]


@pytest.mark.parametrize("cfg", [
    LMulConfig(fmt="bf16", pipeline=2),
    LMulConfig(fmt="bf16", mode="formula", overflow="inf", pipeline=0),
    LMulConfig(fmt="e4m3", overflow="inf", pipeline=0),
    LMulConfig(fmt="e2m1", pipeline=3),
    LMulConfig(fmt="e3m4", mode="formula", pipeline=1),
    LMulConfig(fmt="e5m10b11", overflow="inf", pipeline=1),
    LMulConfig(fmt="e4m3fnuz", overflow="inf", pipeline=1),
], ids=lambda c: f"{c.fmt}-{c.mode}-{c.overflow}-p{c.pipeline}")
def test_lmul_random_and_corners(cfg, sim_opts):
    fmt = cfg.format
    if fmt.bits <= 8:
        a, b = all_pairs(fmt.bits)
    else:
        a, b = random_and_corners(fmt, 20000, seed=2)
    want = golden.lmul(a, b, fmt, cfg.mode, cfg.overflow)
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, gap=0.3, backpressure=0.3, seed=3, **sim_opts)
    assert res["n_out"] == len(a) and not res["mismatches"]


@pytest.mark.parametrize("cfg", [
    FMulConfig(fmt="e4m3", pipeline=2),
    FMulConfig(fmt="e5m2", overflow="inf", pipeline=3),
    FMulConfig(fmt="e2m1", pipeline=0),
    FMulConfig(fmt="e4m3", overflow="inf", pipeline=1),
    FMulConfig(fmt="e5m2", pipeline=5),
    FMulConfig(fmt="e4m3", pipeline=6),
], ids=lambda c: f"{c.fmt}-{c.overflow}-p{c.pipeline}")
def test_fmul_exhaustive(cfg, sim_opts):
    a, b = all_pairs(cfg.format.bits)
    want = golden.fmul(a, b, cfg.format, cfg.overflow)
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, gap=0.2, backpressure=0.2, seed=4, **sim_opts)
    assert res["n_out"] == len(a) and not res["mismatches"]


@pytest.mark.parametrize("cfg", [FMulConfig(fmt="bf16", pipeline=2), FMulConfig(fmt="fp16", overflow="inf")],
                         ids=lambda c: c.fmt)
def test_fmul_random_and_corners(cfg, sim_opts):
    a, b = random_and_corners(cfg.format, 20000, seed=5)
    want = golden.fmul(a, b, cfg.format, cfg.overflow)
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, gap=0.3, backpressure=0.3, seed=6, **sim_opts)
    assert not res["mismatches"]


@pytest.mark.parametrize("cfg", [LMulConfig(pipeline=0), LMulConfig(pipeline=3), FMulConfig(pipeline=2),
                                 FMulConfig(pipeline=5)],
                         ids=lambda c: f"{c.unit}-p{c.pipeline}")
def test_latency_matches_cycle_model(cfg, sim_opts):
    from hwgen.sim.harness import design
    _, manifest = design(cfg)
    a, b = all_pairs(4)
    want = (golden.lmul(a, b, cfg.format) if cfg.unit == "lmul" else golden.fmul(a, b, cfg.format))
    res = run_vectors(cfg, {"a": a, "b": b}, {"p": want}, gap=0.0, backpressure=0.0, **sim_opts)
    lat = np.array(res["out_cycles"]) - np.array(res["in_cycles"])
    assert manifest["latency"] == cfg.pipeline
    assert (lat == manifest["latency"]).all(), f"latencies seen: {sorted(set(lat.tolist()))}"
    assert np.all(np.diff(res["in_cycles"]) == 1), "the unit must accept one beat per cycle (II = 1)"


def dot_vectors(cfg, n_vectors, beats_per_vector, seed, scale=1.0):
    """Random normal-ish operands (codes of `cfg.fmt`) with some zeros, specials and large magnitudes."""
    rng = np.random.default_rng(seed)
    shape = (n_vectors, beats_per_vector, cfg.lanes)
    vals = rng.normal(0, scale, size=(2,) + shape) * rng.choice([1, 1, 1, 0, 30], size=(2,) + shape)
    a, b = (encode(v, cfg.format, overflow="saturate").astype(np.int64) for v in vals)
    return a, b


@pytest.mark.parametrize("cfg,beats", [
    (LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=16, pipeline=2), 3),
    (LMulDotConfig(fmt="e5m2", acc_fmt="bf16", lanes=5, mode="formula", pipeline=1), 4),
    (LMulDotConfig(fmt="e4m3", acc_fmt="fp16", lanes=1, overflow="inf", pipeline=0), 2),
    (LMulDotConfig(fmt="e3m4", acc_fmt="fp32", lanes=3, pipeline=3), 1),
    # every tree step registered, the accumulator's add over 3 and 5 cycles (II 3 and 5)
    (LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=6, pipeline=16, acc_stages=3), 3),
    (LMulDotConfig(fmt="e5m2", acc_fmt="bf16", lanes=8, pipeline=17, acc_stages=5), 2),
    (LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=4, mode="exact", pipeline=1), 2),     # the exact engine
    (LMulDotConfig(fmt="e5m2", acc_fmt="bf16", lanes=3, mode="exact", pipeline=0), 2),
], ids=lambda x: getattr(x, "fmt", None) and (f"{x.fmt}-{x.acc_fmt}-x{x.lanes}-p{x.pipeline}-a{x.acc_stages}"
                                              + ("-exact" if x.mode == "exact" else "")))
def test_lmuldot_random(cfg, beats, sim_opts):
    a, b = dot_vectors(cfg, 300, beats, seed=cfg.lanes)
    want = golden.lmul_dot(a, b, cfg.format, cfg.acc_format, cfg.mode, cfg.overflow)
    last = np.zeros((300, beats), dtype=np.int64)
    last[:, -1] = 1
    flat = {"a": a.reshape(-1, cfg.lanes), "b": b.reshape(-1, cfg.lanes), "last": last.ravel()}
    res = run_vectors(cfg, flat, {"sum": want}, gap=0.3, backpressure=0.3, seed=7, **sim_opts)
    assert res["n_out"] == 300 and not res["mismatches"]


@pytest.mark.parametrize("cfg", [LMulDotConfig(lanes=4, pipeline=2), LMulDotConfig(lanes=4, pipeline=11),
                                 LMulDotConfig(lanes=4, pipeline=4, acc_stages=2),
                                 LMulDotConfig(lanes=4, pipeline=11, acc_stages=5)],
                         ids=lambda c: f"p{c.pipeline}-a{c.acc_stages}")
@pytest.mark.parametrize("beats", [1, 3])
def test_lmuldot_latency(cfg, beats, sim_opts):
    """The manifest's timing: a lone vector's sum leaves `latency` cycles after its last beat; back to back,
    the accumulator takes a beat every II cycles, so vector j's sum leaves at
    first beat + (beats * (j + 1) - 1) * II + latency."""
    from hwgen.sim.harness import design
    _, manifest = design(cfg)
    assert (manifest["latency"], manifest["ii"]) == (cfg.pipeline + cfg.acc_stages, cfg.acc_stages)
    n = 12
    a, b = dot_vectors(cfg, n, beats, seed=9)
    last = np.tile([0] * (beats - 1) + [1], n)
    want = golden.lmul_dot(a, b, cfg.format, cfg.acc_format)
    res = run_vectors(cfg, {"a": a.reshape(-1, 4), "b": b.reshape(-1, 4), "last": last}, {"sum": want},
                      gap=0.0, backpressure=0.0, **sim_opts)
    assert not res["mismatches"]
    ins, outs = np.array(res["in_cycles"]), np.array(res["out_cycles"])
    j = np.arange(n)
    assert (outs - ins[0] == (beats * (j + 1) - 1) * manifest["ii"] + manifest["latency"]).all(), outs - ins[0]
