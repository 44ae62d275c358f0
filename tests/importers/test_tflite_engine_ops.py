"""The engine side of the importer: GEMM splitting (K parts that keep the chain's accumulator from wrapping or fit
a scratchpad, column parts of bounded beats) is exact, and the zero-point fold keeps the operands int8."""
import numpy as np

from sw_model.host.netdesc import MatmulChainBackend
from sw_model.importers.tflite.engine_ops import engine_gemm
from sw_model.sparse.config import SparseChainConfig


class Counting(MatmulChainBackend):
    def __init__(self):
        self.shapes = []

    def gemm(self, config, w_q, x_q):
        assert w_q.min() >= -128 and w_q.max() <= 127 and x_q.min() >= -128 and x_q.max() <= 127
        self.shapes.append((w_q.shape, x_q.shape))
        return super().gemm(config, w_q, x_q)


def test_k_is_split_so_the_accumulator_never_wraps():
    cfg = SparseChainConfig(stages=4, acc_bits=20)          # 2^19 / 128^2: at most 31 products per call
    w = np.full((3, 100), 127)
    x = np.full((100, 5), 127)
    wrapped, _ = MatmulChainBackend().gemm(cfg, w, x)
    assert (wrapped != w @ x).all()                         # one call would wrap 100 * 16129 at 20 bits
    backend = Counting()
    acc, stats = engine_gemm(w, x, backend, cfg, max_beats=1 << 16)
    np.testing.assert_array_equal(acc, w @ x)
    assert [s[0][1] for s in backend.shapes] == [31, 31, 31, 7] and stats["calls"] == 4


def test_max_k_and_max_beats_split_and_the_sum_is_exact():
    rng = np.random.default_rng(0)
    cfg = SparseChainConfig(stages=8)
    w = rng.integers(-128, 128, (6, 50))
    x = rng.integers(-128, 128, (50, 40))
    backend = Counting()
    acc, stats = engine_gemm(w, x, backend, cfg, max_beats=6 * 2 * 10, max_k=16)
    np.testing.assert_array_equal(acc, w @ x)
    # K parts 16, 16, 16, 2: 2 beats per dot (10 columns per call of 120 beats), the last part 1 beat (20 columns)
    assert sorted({(s[0][1], s[1][1]) for s in backend.shapes}) == [(2, 20), (16, 10)]
    assert stats["calls"] == len(backend.shapes) == 3 * 4 + 2
