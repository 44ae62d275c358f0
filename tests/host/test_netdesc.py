"""The network description API and its int8 compiler (golden backend).

The int8 path is checked bit for bit against an independent reference written here: per-output-pixel loops in
Python integers transcribing TFLite's int8 reference kernels (ConvPerChannel, FullyConnected per channel,
MaxPool, AveragePool, Add) with their own scalar MultiplyByQuantizedMultiplier (gemmlowp SRDHM + RDBPOT). Only the
quantization parameters are taken from the compiled program (as TFLite takes them from the model file); those are
checked separately against the float weights and scales.
"""
import numpy as np
import pytest

from sw_model.host.netdesc import (
    Add,
    AvgPool2d,
    Conv2d,
    Flatten,
    Layer,
    LayerNorm,
    Linear,
    MatmulChainBackend,
    MaxPool2d,
    Network,
    NetworkError,
    ReLU,
    compile_int8,
)
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.registry import load_config
from sw_model.sparse.config import SparseChainConfig

CONFIGS = [SparseChainConfig(stages=1, acc_bits=20), SparseChainConfig(stages=3), SparseChainConfig(stages=8)]


# ---- independent reference (Python ints, loops) -----------------------------------------------------------------

def srdhm(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    total = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    q = abs(total) // (1 << 31)                     # std::int64 division truncates toward zero
    return q if total >= 0 else -q


def rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, multiplier: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(x * (1 << left), multiplier), right)


def ref_conv(x, st):
    """TFLite reference_integer_ops::ConvPerChannel, NCHW, input/output offsets 0; also returns accumulators."""
    layer = st.layer
    co, ci, kh, kw = layer.weight.shape
    w = st.w_q.reshape(co, ci, kh, kw)
    b_, _, h, wd = x.shape
    _, oh, ow = st.out_shape
    out = np.zeros((b_, co, oh, ow), np.int64)
    acc_out = np.zeros((co, b_, oh, ow), np.int64)
    for b in range(b_):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(co):
                    acc = 0
                    for fy in range(kh):
                        for fx in range(kw):
                            iy = oy * layer.stride - layer.padding + fy
                            ix = ox * layer.stride - layer.padding + fx
                            if 0 <= iy < h and 0 <= ix < wd:
                                for ic in range(ci):
                                    acc += int(w[oc, ic, fy, fx]) * int(x[b, ic, iy, ix])
                    acc += int(st.bias_q[oc])
                    acc_out[oc, b, oy, ox] = acc
                    y = mbqm(acc, int(st.multiplier[oc]), int(st.shift[oc]))
                    out[b, oc, oy, ox] = min(max(y, st.lo), st.hi)
    return out, acc_out.reshape(co, -1)


def ref_fc(x, st):
    out = np.zeros((len(x), len(st.w_q)), np.int64)
    accs = np.zeros((len(st.w_q), len(x)), np.int64)
    for b in range(len(x)):
        for o in range(len(st.w_q)):
            acc = sum(int(wv) * int(xv) for wv, xv in zip(st.w_q[o], x[b])) + int(st.bias_q[o])
            accs[o, b] = acc
            out[b, o] = min(max(mbqm(acc, int(st.multiplier[o]), int(st.shift[o])), st.lo), st.hi)
    return out, accs


def ref_pool(x, layer, avg):
    b_, c, h, w = x.shape
    k, s = layer.kernel, layer.stride
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((b_, c, oh, ow), np.int64)
    for b in range(b_):
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    vals = [int(x[b, ch, oy * s + dy, ox * s + dx]) for dy in range(k) for dx in range(k)]
                    if not avg:
                        out[b, ch, oy, ox] = max(vals)
                    else:
                        acc, n = sum(vals), len(vals)
                        q = (acc + n // 2) / n if acc > 0 else (acc - n // 2) / n
                        out[b, ch, oy, ox] = min(max(int(q), -128), 127)      # int() truncates like C++
    return out


def ref_add(x1, x2, st):
    out = np.zeros(x1.shape, np.int64)
    ls = st.extra["left_shift"]
    for idx in np.ndindex(x1.shape):
        a = mbqm(int(x1[idx]) << ls, *st.extra["q1"])
        b = mbqm(int(x2[idx]) << ls, *st.extra["q2"])
        out[idx] = min(max(mbqm(a + b, *st.extra["qo"]), st.lo), st.hi)
    return out


def reference(program, x_q):
    """Final int8 outputs and the accumulators of every engine step."""
    saved, h, accs = {-1: x_q}, x_q, {}
    for st in program.steps:
        if isinstance(st.layer, Conv2d):
            h, accs[st.index] = ref_conv(h, st)
        elif isinstance(st.layer, Linear):
            h, accs[st.index] = ref_fc(h, st)
        elif isinstance(st.layer, (MaxPool2d, AvgPool2d)):
            h = ref_pool(h, st.layer, isinstance(st.layer, AvgPool2d))
        elif isinstance(st.layer, Flatten):
            h = h.reshape(len(h), -1)
        elif isinstance(st.layer, ReLU):
            h = np.maximum(h, 0)
        elif isinstance(st.layer, Add):
            h = ref_add(h, saved[st.layer.source], st)
        for j in st.layers:
            saved[j] = h
    return h, accs


# ---- networks --------------------------------------------------------------------------------------------------

def _w(rng, *shape):
    return rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)


def residual_net(rng):
    """Conv+ReLU (fused), conv, residual add of the fused output, ReLU fused into the add, overlapping max pool."""
    return Network((3, 6, 6), [Conv2d(_w(rng, 3, 3, 3, 3), rng.normal(0, .1, 3), padding=1), ReLU(),
                               Conv2d(_w(rng, 3, 3, 3, 3), rng.normal(0, .1, 3), padding=1), Add(1), ReLU(),
                               MaxPool2d(3, stride=2), Flatten(), Linear(_w(rng, 5, 12), rng.normal(0, .1, 5))])


def strided_net(rng):
    """Strided non-square conv and a linear layer whose pre-ReLU outputs feed adds (no fusion), 1x1 conv, average
    pool, odd sizes."""
    return Network((1, 5, 7), [Conv2d(_w(rng, 4, 1, 2, 3), rng.normal(0, .1, 4), stride=2), ReLU(),
                               Conv2d(_w(rng, 4, 4, 1, 1)), Add(0), AvgPool2d(2), Flatten(),
                               Linear(_w(rng, 3, 4), rng.normal(0, .1, 3)), ReLU(), Add(6)])


NETS = {"residual": residual_net, "strided": strided_net}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"stages{c.stages}")
@pytest.mark.parametrize("name", NETS)
def test_int8_matches_tflite_reference_loops(name, config):
    rng = np.random.default_rng(len(name) + config.stages)
    net = NETS[name](rng)
    calib = rng.normal(0, 1, (64,) + net.input_shape)
    program = compile_int8(net, calib, config, max_beats=50)       # small jobs: the column tiling is exercised
    # two calibration images, then one beyond the calibration range (saturation)
    x = np.concatenate([calib[:2], 3 * calib[2:3]])
    got, records = program.run(x)
    want, accs = reference(program, program.quantize_input(x))
    assert np.array_equal(got, want)
    for i, acc in accs.items():
        assert np.array_equal(records[i]["acc"], acc)
    assert np.abs(want).max() > 20                                 # not a degenerate all-zero network
    assert np.array_equal(program.run(program.quantize_input(x), quantized=True)[0], got)
    assert (np.abs(program.quantize_input(x[2:])) >= 127).sum() > 2
    # inside the calibration range the integer network approximates the float one
    ref = net.forward(x[:2])
    assert np.abs(got[:2] * program.output_scale - ref).max() < 0.1 * np.abs(ref).max()


def test_fusion_and_report():
    rng = np.random.default_rng(1)
    res = compile_int8(residual_net(rng), rng.normal(0, 1, (8, 3, 6, 6)), CONFIGS[2])
    assert [(s["op"], s["engine"]) for s in res.report()] == [
        ("Conv2d+ReLU", "sparse_chain"), ("Conv2d", "sparse_chain"), ("Add+ReLU", "host"), ("MaxPool2d", "host"),
        ("Flatten", "host"), ("Linear", "sparse_chain")]
    assert res.steps[0].lo == 0 and res.steps[1].lo == -128 and res.steps[2].lo == 0
    assert "im2col" in res.steps[0].why and "ReLU fused" in res.steps[0].why and "TFLite int8 ADD" in res.steps[2].why
    assert res.steps[0].shape == (3, 27) and res.steps[3].shape == (12, 108)
    # layer 0 feeds an add before its ReLU: no fusion, the ReLU is a host step
    st = compile_int8(strided_net(rng), rng.normal(0, 1, (8, 1, 5, 7)), CONFIGS[2])
    assert [s.op for s in st.steps][:3] == ["Conv2d", "ReLU", "Conv2d"] and st.steps[1].engine == "host"
    # cycle model: rows x columns x ceil(K / stages)
    assert res.engine_beats(2) == 2 * (3 * 36 * 4 + 3 * 36 * 4 + 5 * 2)


def test_quantization_parameters_follow_the_float_model():
    rng = np.random.default_rng(2)
    net = residual_net(rng)
    calib = rng.normal(0, 1, (32, 3, 6, 6))
    p = compile_int8(net, calib, CONFIGS[1])
    acts = net.forward(calib, keep=True)
    assert p.input_scale == pytest.approx(np.abs(calib).max() / 127)
    conv = p.steps[0]
    w = net.layers[0].weight.reshape(3, -1)
    s_w = np.abs(w).max(axis=1) / 127
    assert np.abs(conv.w_q * s_w[:, None] - w).max() <= s_w.max() / 2 + 1e-12
    assert np.abs(conv.w_q).max() == 127
    assert conv.out_scale == pytest.approx(np.abs(acts[1]).max() / 127)
    real = conv.multiplier * 2.0 ** (conv.shift.astype(float) - 31)
    assert real == pytest.approx(p.input_scale * s_w / conv.out_scale, rel=2 ** -29)
    assert np.abs(conv.bias_q * p.input_scale * s_w - net.layers[0].bias).max() <= (p.input_scale * s_w).max()
    # an all-zero output channel quantizes to zeros (its bias still counts)
    w = _w(rng, 3, 4)
    w[1] = 0
    z = compile_int8(Network((4,), [Linear(w, np.array([0.0, 0.5, 0.0]))]), rng.normal(0, 1, (16, 4)), CONFIGS[0])
    assert not z.steps[0].w_q[1].any() and z.steps[0].bias_q[1] > 0
    assert z.run(np.zeros((1, 4)))[0][0, 1] > 0


def test_matmul_backend_equals_chain_model_including_wraparound():
    rng = np.random.default_rng(3)
    for cfg in (SparseChainConfig(stages=1, acc_bits=16), SparseChainConfig(stages=3)):
        w, x = rng.integers(-127, 128, (5, 40)), rng.integers(-128, 128, (40, 7))
        a, _ = Int8GoldenBackend().gemm(cfg, w, x)
        b, _ = MatmulChainBackend().gemm(cfg, w, x)
        assert np.array_equal(a, b)
    a16, _ = MatmulChainBackend().gemm(SparseChainConfig(stages=1, acc_bits=16), w, x)
    assert not np.array_equal(a16, w @ x) and np.array_equal(a16 % 65536, (w @ x) % 65536)


# ---- errors ----------------------------------------------------------------------------------------------------

def _msg(fn):
    with pytest.raises(NetworkError) as e:
        fn()
    return str(e.value)


def test_shape_errors_name_layer_field_value_and_allowed():
    rng = np.random.default_rng(4)
    c = Conv2d(_w(rng, 2, 1, 3, 3))
    assert "layer 1 (Linear): input: got shape (2, 2, 2), allowed: a flat vector of 8 (insert Flatten())" in \
        _msg(lambda: Network((1, 4, 4), [c, Linear(_w(rng, 3, 8))]))
    assert "layer 2 (Linear): in_features: got 10, allowed: 8" in \
        _msg(lambda: Network((1, 4, 4), [c, Flatten(), Linear(_w(rng, 3, 10))]))
    assert "layer 0 (Conv2d): in_channels: got 1, allowed: 3" in _msg(lambda: Network((3, 4, 4), [c]))
    assert "layer 0 (Conv2d): kernel: got 3x3, allowed: at most 2x2" in _msg(lambda: Network((1, 2, 2), [c]))
    assert "layer 1 (MaxPool2d): kernel: got 3, allowed: at most 2" in \
        _msg(lambda: Network((1, 4, 4), [c, MaxPool2d(3)]))
    assert "layer 1 (Add): source: got 1, allowed: -1..0" in _msg(lambda: Network((1, 4, 4), [c, Add(1)]))
    assert "layer 1 (Add): source: layer -1 has shape (1, 4, 4), allowed: the shape of its input (2, 2, 2)" in \
        _msg(lambda: Network((1, 4, 4), [c, Add(-1)]))
    assert "layer 0: got str, allowed: Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Add" in \
        _msg(lambda: Network((4,), ["relu"]))
    assert "input_shape: got (1, 1, 8, 8), allowed: (C, H, W), (tokens, features) or (features,)" in \
        _msg(lambda: Network((1, 1, 8, 8), []))
    assert "stride: got 0, allowed: an integer >= 1" in _msg(lambda: Conv2d(_w(rng, 2, 1, 3, 3), stride=0))
    assert "bias: got shape (3,), allowed: (2,)" in _msg(lambda: Linear(_w(rng, 2, 4), np.zeros(3)))
    assert "layer (Conv2d): weight: got shape (2, 3), allowed: 4-D" in _msg(lambda: Conv2d(np.ones((2, 3))))


def test_layers_without_engine_or_host_fallback():
    """A Layer subclass the compiler does not know: a compile error naming it and the supported layers."""
    class Softplus(Layer):
        def forward(self, x, saved=None):
            return np.log1p(np.exp(x))

    rng = np.random.default_rng(5)
    net = Network((4,), [Linear(_w(rng, 4, 4)), Softplus()])
    msg = _msg(lambda: compile_int8(net, rng.normal(0, 1, (4, 4)), CONFIGS[2]))
    assert "layer 1 (Softplus): no engine and no host fallback of the int8 compiler supports it" in msg
    assert "supported: Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Add, LayerNorm, Attention, Spiking" in msg


def test_layernorm_runs_on_the_host_in_float():
    """LayerNorm between two engine GEMMs: a host step (float64 on the dequantized int8 values, requantized); the
    int8 network tracks the float one, and the step's output equals a direct computation."""
    rng = np.random.default_rng(8)
    gamma, beta = rng.uniform(0.5, 1.5, 6), rng.normal(0, 0.2, 6)
    net = Network((5,), [Linear(_w(rng, 6, 5), rng.normal(0, 0.1, 6)), LayerNorm(gamma, beta, eps=1e-6),
                         Linear(_w(rng, 3, 6))])
    x = rng.normal(0, 1, (40, 5))
    prog = compile_int8(net, x, CONFIGS[2])
    ln = prog.steps[1]
    assert ln.engine == "host" and "no engine normalizes; float64 LayerNorm" in ln.why
    out, _ = prog.run(x)
    ref = net.forward(x)
    cos = (out * prog.output_scale * ref).sum() / np.linalg.norm(out * prog.output_scale) / np.linalg.norm(ref)
    assert cos > 0.99
    h = rng.integers(-128, 128, (3, 6))
    z = h * ln.in_scale
    want = ((z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-6) * gamma + beta) / ln.out_scale
    want = np.clip(np.sign(want) * np.floor(np.abs(want) + 0.5), -128, 127)
    assert np.array_equal(prog._host(ln, h, {}), want)
    assert "features: got 5, allowed: 6" in _msg(lambda: Network((5,), [LayerNorm(gamma)]))


def test_config_and_backend_errors():
    rng = np.random.default_rng(6)
    net = Network((1, 6, 6), [Conv2d(_w(rng, 2, 1, 3, 3)), MaxPool2d(2), Flatten(), Linear(_w(rng, 3, 8))])
    calib = rng.normal(0, 1, (4, 1, 6, 6))
    assert "config: weight_bits: got 4, allowed: 8" in \
        _msg(lambda: compile_int8(net, calib, SparseChainConfig(weight_bits=4)))
    assert "config: packed: got True, allowed: false" in \
        _msg(lambda: compile_int8(net, calib, SparseChainConfig(packed=True)))
    assert "config: got unit 'lmul', allowed: sparse_chain" in \
        _msg(lambda: compile_int8(net, calib, load_config("lmul-e4m3")[1]))
    big = Network((64,), [Linear(_w(rng, 2, 64))])
    assert "layer 0 (Linear): acc_bits: config has 20, a K = 64 int8 dot needs 21 (allowed: >= 21)" in \
        _msg(lambda: compile_int8(big, rng.normal(0, 1, (4, 64)), SparseChainConfig(stages=8, acc_bits=20)))
    p = compile_int8(net, calib, CONFIGS[1])
    assert "backends: step 1 (MaxPool2d) runs on the host, allowed: engine steps [0, 3]" in \
        _msg(lambda: p.run(calib, {1: Int8GoldenBackend()}))
    assert "backends: step 9 does not exist" in _msg(lambda: p.run(calib, {9: Int8GoldenBackend()}))
