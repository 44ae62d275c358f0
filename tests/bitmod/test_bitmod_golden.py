"""BitMoD golden datapath and config: term decomposition (Booth, leading-one) exhaustively against value tables,
hand-worked terms, golden outputs == float reference, quantizer -> hardware integers -> float within the
quantization error bound, cycle model, bad beats and bad configs."""
import dataclasses

import numpy as np
import pytest

from sw_model.bitmod import golden as bm
from sw_model.bitmod import quant as bq
from sw_model.bitmod.config import DTYPES, BitModConfig
from sw_model.bitmod.vectors import random_beats
from sw_model.config import ConfigError
from sw_model.registry import config_from_dict, load_config

CFG = BitModConfig(lanes=4, group_size=16, max_groups=4)
CUSTOM = dataclasses.replace(CFG, sv_fp4=(2.5, -5.0, 10.0, -12.0), sv_fp3=(1.5, -3.0, 6.0, -5.0))


@pytest.mark.parametrize("cfg", [CFG, CUSTOM], ids=["default-sv", "custom-sv"])
@pytest.mark.parametrize("name", list(DTYPES))
def test_terms_sum_to_value_exhaustive(cfg, name):
    d = DTYPES[name]
    codes = np.arange(1 << d.bits)
    for sv in range(4):
        lane, bsig = bm.weight_terms(codes, d.code, sv, cfg)
        assert np.array_equal((lane << bsig).sum(-1), bm.half_units(codes, d.code, sv, cfg))
        assert (lane[..., d.terms:] == 0).all()
        nz = lane[lane != 0]
        assert np.all((np.abs(nz) & (np.abs(nz) - 1)) == 0)     # every term is +-2^e
        assert np.abs(nz).max() <= 1 << 4 if d.kind == "fp" else np.abs(nz).max() <= 4   # lane shift <= 4
    # the FP value tables agree with the quantizer's code tables (x2, half units)
    if d.kind == "fp":
        for sv in range(4):
            want = 2 * bq.code_table(name, cfg.sv_table(name)[sv])
            assert np.array_equal(bm.half_units(codes, d.code, sv, cfg), want)


def test_hand_worked_terms():
    assert bm.booth_digits([0x80, 0x7F, 0x03, 0xFF], 8).tolist() == [
        [0, 0, 0, -2], [-1, 0, 0, 2], [-1, 1, 0, 0], [-1, 0, 0, 0]]
    assert bm.booth_digits([0b011111], 6).tolist() == [[-1, 0, 2]]             # 31 = -1 + 2 * 16
    lane, _ = bm.weight_terms([0b0111, 0b1000, 0b0101], DTYPES["fp4"].code, 3, CFG)   # 6, SV -8, 3
    assert lane[:, :2].tolist() == [[8, 4], [-16, 0], [4, 2]]                    # half units


def test_golden_equals_float_reference():
    for cfg, seed in ((CFG, 1), (CUSTOM, 2), (BitModConfig(rows=3, cols=5, lanes=3, group_size=12,
                                                          max_groups=3), 3)):
        beats = random_beats(cfg, 20, seed=seed)
        assert np.array_equal(bm.array_outputs(cfg, beats), bm.reference_outputs(cfg, beats))


def test_quantized_matrix_on_the_datapath():
    """Quantize W (mixed datatypes) and x (int8 per tensor), run the integer datapath model, rescale by
    s_x * s_c / 2: equals x @ W_hat.T, and |x @ W.T - that| <= sum |x| |W - W_hat|."""
    rng = np.random.default_rng(7)
    cfg = BitModConfig(rows=2, cols=3, lanes=4, group_size=16, max_groups=4)
    w = rng.normal(size=(3, 64))
    x = rng.normal(size=(2, 64))
    qw = bq.quantize(w, rng.choice(["int8", "int6", "fp4", "fp3"], size=(3, 4)), group_size=16)
    sx = np.abs(x).max() / 127
    xq = np.rint(x / sx).astype(np.int64)
    beats = bm.make_beats(cfg, qw.codes, xq[None], qw.dtype, qw.sv, qw.scale)
    y_int = bm.array_outputs(cfg, beats).reshape(2, 3)
    y = y_int * sx * qw.chan_scale.astype(np.float64)[None, :] / 2
    w_hat = qw.dequantize()
    assert np.allclose(y, (xq * sx) @ w_hat.T, rtol=1e-12, atol=1e-12)
    bound = np.abs(xq * sx) @ np.abs(w - w_hat).T + np.abs(x - xq * sx) @ np.abs(w).T
    assert (np.abs(y - x @ w.T) <= bound + 1e-12).all()


def test_cycles_per_beat_and_latency():
    beats = {"dtype": np.array([[0, 2], [3, 2], [1, 3], [2, 1]])}
    assert bm.cycles_per_beat(beats).tolist() == [4, 2, 3, 3]
    assert bm.LATENCY == 9 == bm.latency(BitModConfig())
    assert bm.latency(BitModConfig(rows=3, group_size=48, dequant="column", pipeline=1)) == 8 * 3 + 1 + 1


def test_outputs_use_the_full_width():
    from sw_model.bitmod.vectors import extreme_beats
    cfg = BitModConfig(lanes=1, group_size=4, max_groups=4)
    y = bm.array_outputs(cfg, extreme_beats(cfg))
    assert y[:, 0].tolist() == [4 * 4 * 128 * 256 * 255, -4 * 4 * 127 * 256 * 255]
    assert abs(y).max() < 1 << (cfg.out_bits - 1)


def good_beats(cfg=CFG):
    return random_beats(cfg, 2, seed=0, max_groups=2)


@pytest.mark.parametrize("mutate,msg", [
    (lambda b: b["last"].__setitem__(0, 1), "last: vectors must be whole groups of 4 beats"),
    (lambda b: b["last"].__setitem__(-1, 0), "last: vectors must be whole groups"),
    (lambda b: b["scale"].__setitem__((1, 0), (b["scale"][0, 0] + 1) % 256), "scale: must be the same on every beat"),
    (lambda b: b["a"].__setitem__((0, 0), 128), "a: activations must be int8"),
    (lambda b: (b["dtype"].__setitem__(slice(0, 4), 3), b["w"].__setitem__((0, 0), 8)),
     "w: a weight code does not fit its group's datatype"),
])
def test_bad_beats(mutate, msg):
    b = {k: np.array(v) for k, v in good_beats().items()}
    mutate(b)
    with pytest.raises(ValueError) as e:
        bm.array_outputs(CFG, b)
    assert msg in str(e.value)


def test_too_many_groups():
    cfg = BitModConfig(lanes=4, group_size=16, max_groups=1)
    assert bm.array_outputs(cfg, random_beats(cfg, 1, seed=3)).shape == (1, 1)      # 1 group: fine
    with pytest.raises(ValueError, match="at most max_groups=1 groups"):
        bm.array_outputs(cfg, bm.make_beats(cfg, np.zeros((1, 32)), np.zeros((1, 1, 32)), [[0, 0]], [[0, 0]],
                                            [[1, 1]]))


@pytest.mark.parametrize("kwargs,msg", [
    ({"group_size": 10, "lanes": 4}, "group_size: got 10, allowed: a multiple of lanes (4)"),
    ({"group_size": 12, "lanes": 4}, "group_size: got 12, allowed: at least 4 beats per group (>= 16 for lanes=4)"),
    ({"lanes": 0}, "lanes: got 0, allowed: an integer from 1 to 16"),
    ({"dequant": "row"}, "dequant: got 'row', allowed: pe, column"),
    ({"rows": 2, "group_size": 28, "lanes": 4, "dequant": "column"},
     "group_size: got 28, allowed with dequant='column': at least 4 * rows beats per group (>= 32 for rows=2, "
     "lanes=4)"),
    ({"act": "fp16", "dequant": "column"}, "dequant: got 'column' with act='fp16', align='product', allowed: "
     "'column' with act='int8' or align='row'"),
    ({"act": "bf16"}, "act: got 'bf16', allowed: int8, fp16"),
    ({"sv_fp4": (5.0, -5.0, 8.0)}, "sv_fp4: got (5.0, -5.0, 8.0), allowed: a list of 4 special values"),
    ({"sv_fp4": (5.0, -5.0, 8.0, 7.0)}, "sv_fp4: got 7.0, allowed: a nonzero multiple of 0.5 below 16"),
    ({"sv_fp3": (3.0, -3.0, 6.0, 0.25)}, "sv_fp3: got 0.25"),
    ({"sv_fp3": (3.0, -3.0, 6.0, 16)}, "sv_fp3: got 16"),
])
def test_bad_config(kwargs, msg):
    with pytest.raises(ConfigError) as e:
        BitModConfig(**kwargs)
    assert msg in str(e.value)


def test_presets_and_toml_dict():
    assert load_config("bitmod-array-3x5")[1].cols == 5
    cfg = config_from_dict({"unit": "bitmod", "rows": 2, "sv_fp4": [5, -5, 8, -6]})
    assert cfg.sv_fp4 == (5.0, -5.0, 8.0, -6.0) and hash(cfg)
    assert BitModConfig().group_acc_bits == 25 and BitModConfig().out_bits == 25 + 8 + 3 + 1


def test_sv_register_words_and_writes():
    from sw_model.bitmod.config import sv_reg_encode
    assert sv_reg_encode(5.0) == 10 and sv_reg_encode(-8.0) == 32 | 16 and bm.sv_reg_decode(32 | 3) == -1.5
    with pytest.raises(ValueError, match="sv_val: 7.0 is not a multiple of 0.5"):
        sv_reg_encode(7.0)
    with pytest.raises(ValueError, match="more than two one bits"):
        bm.sv_reg_decode(7)
    # FP4 SV code 1000 with selector 1 (-5), then the same after writing fp4[1] = +0.5 (and fp3[1] = 12)
    cfg = BitModConfig(lanes=1, group_size=4, max_groups=1)
    vec = bm.make_beats(cfg, np.array([[8, 8, 8, 8]]), np.ones((1, 1, 4)), [[2]], [[1]], [[1]])
    before = bm.array_outputs(cfg, vec)
    after = bm.array_outputs(cfg, bm.concat_beats(bm.sv_write_beats(cfg, [("fp4", 1, 0.5), ("fp3", 1, 12.0)]), vec))
    assert before.tolist() == [[4 * -10]] and after.tolist() == [[4 * 1]]     # half units: -5 -> -10, 0.5 -> 1
    t = bm.cycles_per_beat(bm.concat_beats(bm.sv_write_beats(cfg, [("fp4", 0, 1.0)]), vec))
    assert t.tolist() == [1, 2, 2, 2, 2]
