"""Why the importer is compared with LiteRT's reference kernels: on x86, LiteRT 2.3.0's optimized int8
DEPTHWISE_CONV_2D kernel (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES) rounds the second step of the
requantization, RoundingDivideByPOT, with ties toward +infinity, where the reference kernel rounds them away from
zero. So outputs differ by one code exactly where SaturatingRoundingDoublingHighMul lands on a negative half:
e.g. acc = -23124, multiplier 1390758506, shift -8: SRDHM gives -14976, -14976 / 2^8 = -58.5, the reference
rounds to -59, the optimized kernel to -58 (docs/import.md shows the example)."""
import numpy as np

from sw_model.importers.tflite.program import TFLiteProgram
from sw_model.importers.tflite.writer import ModelBuilder
from sw_model.numerics.requant import (
    multiply_by_quantized_multiplier,
    saturating_rounding_doubling_high_mul,
)
from tests.importers.litert import OpResolverType, interpreter, invoke


def test_the_documented_tie():
    high = saturating_rounding_doubling_high_mul(-23124, 1390758506)
    assert high == -14976 and high / 2 ** 8 == -58.5
    assert multiply_by_quantized_multiplier(-23124, 1390758506, -8) == -59
    assert (high + (1 << 7)) >> 8 == -58


def _depthwise_model(rng, c=8):
    b = ModelBuilder()
    x = b.tensor("x", (1, 4, 4, c), "INT8", scale=0.05, zero_point=-128)
    s_w = rng.uniform(0.002, 0.02, c)
    w = b.tensor("w", (1, 3, 3, c), "INT8", data=rng.integers(-127, 128, (1, 3, 3, c)), scale=s_w,
                 zero_point=np.zeros(c), quantized_dimension=3)
    bias = b.tensor("b", (c,), "INT32", data=rng.integers(-3000, 3000, c), scale=0.05 * s_w, zero_point=np.zeros(c))
    y = b.tensor("y", (1, 4, 4, c), "INT8", scale=0.07, zero_point=-9)
    b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], Padding=0, StrideH=1, StrideW=1, DilationHFactor=1,
         DilationWFactor=1, DepthMultiplier=1, FusedActivationFunction=0)
    return b.build([x], [y])


def test_optimized_depthwise_rounds_negative_ties_up_the_reference_away_from_zero():
    rng = np.random.default_rng(3)
    data = _depthwise_model(rng)
    prog = TFLiteProgram(data)
    ref = interpreter(data)
    opt = interpreter(data, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    (_, _, e), = prog.engine_ops()
    mult, shift = e.multiplier[:, None], e.shift[:, None]
    differ = 0
    for _ in range(200):
        x = rng.integers(-128, 128, (1, 4, 4, 8)).astype(np.int8)
        ours, want, fast = prog.invoke(x)[0], invoke(ref, x)[0], invoke(opt, x)[0]
        np.testing.assert_array_equal(ours, want)                  # the importer follows the reference kernel
        high = saturating_rounding_doubling_high_mul(prog.records[0]["acc"], mult)
        ties_up = (high + (np.int64(1) << (-shift - 1))) >> -shift
        model_fast = np.clip(ties_up + e.zp_out, -128, 127).T.reshape(fast.shape)
        np.testing.assert_array_equal(fast, model_fast)            # ... and this is the optimized one
        d = fast != want
        differ += int(d.sum())
        assert np.all(fast[d].astype(int) == want[d].astype(int) + 1)   # one code up, on negative ties only
    assert differ > 0
