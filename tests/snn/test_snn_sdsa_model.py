"""SDSA golden model: against the floating-point formula of the released model (SN_0.5 of (Q (K^T V)) x 0.125 with
a tau = 2 LIF at T = 1) and an explicit AND/popcount loop; bad inputs; zero multipliers after synthesis."""
import numpy as np
import pytest

from sw_model.config import ConfigError
from sw_model.snn import sdsa as S


def float_sdsa(q, k, v):
    x = (q.astype(float) @ (k.T.astype(float) @ v.astype(float))) * 0.125
    h = 0.0 + (x - 0.0) / 2.0                     # spikingjelly charge, tau = 2, V = V_reset = 0, decay_input
    return (h - 0.5 >= 0).astype(int)              # heaviside(x >= 0) with v_th = 0.5


@pytest.mark.parametrize("seed", range(6))
def test_sdsa_matches_float_formula(seed):
    rng = np.random.default_rng(seed)
    cfg = S.SDSAConfig(dim=16, tokens=64)
    q, k, v = (rng.random((int(rng.integers(1, 40)) if x else 9, 16)) < rng.random() for x in range(3))
    k, v = k[:len(v)], v[:len(k)]
    got = S.sdsa(cfg, q, k, v)
    assert np.array_equal(got, float_sdsa(q, k, v))


def test_sdsa_loop_reference_with_saturation():
    rng = np.random.default_rng(7)
    cfg = S.SDSAConfig(dim=5, tokens=3, scale_shift=1, vth=2)
    q, k, v = (rng.integers(0, 2, (9, 5)) for _ in range(3))
    kv = [[0] * 5 for _ in range(5)]
    for t in range(9):
        for j in range(5):
            for c in range(5):
                if k[t, j] and v[t, c] and kv[j][c] < 3:
                    kv[j][c] += 1
    want = [[int(sum(kv[j][c] for j in range(5) if q[i, j]) // 2 >= 2) for c in range(5)] for i in range(9)]
    assert S.sdsa(cfg, q, k, v).tolist() == want
    assert S.kv_counts(cfg, k, v).max() == 3


def test_sdsa_errors():
    cfg = S.SDSAConfig(dim=4, tokens=4)
    with pytest.raises(ValueError, match=r"q: got shape \(2, 3\), allowed: \(tokens, dim=4\)"):
        S.sdsa(cfg, np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="k: spikes must be 0 or 1"):
        S.sdsa(cfg, np.zeros((2, 4)), np.full((2, 4), 2), np.zeros((2, 4)))
    with pytest.raises(ConfigError, match=r"vth: got 29, allowed: vth << scale_shift at most dim \* tokens \(28\)"):
        S.SDSAConfig(dim=4, tokens=4, vth=29, scale_shift=0)
    with pytest.raises(ConfigError, match="dim: got 1, allowed: an integer from 2 to 64"):
        S.SDSAConfig(dim=1)


@pytest.mark.slow
def test_sdsa_has_no_multipliers():
    """Yosys synth_xilinx with DSP inference on: no DSP48 and no multiplier cells (~30 s: slow)."""
    from hwgen.flow.report import synthesize
    from hwgen.snn.sdsa import SDSA
    r = synthesize(SDSA(S.SDSAConfig(dim=4, tokens=8)), "xc7", dsp=True, pnr=False, name="sdsa_nomul_test")
    assert r["dsp"] == 0 and r["lut"] > 20
    assert not [c for c in r["cells"] if "MUL" in c.upper() or "DSP" in c.upper()], r["cells"]
