"""The digits CNN: trained by numpy with a fixed seed, int8 accuracy close to float, `run_digits_cnn` on golden."""
import numpy as np
import pytest

from hwgen.cache import build_root
from hwgen.host.run_cnn import run_digits_cnn
from sw_model.host.netdesc import MatmulChainBackend, compile_int8
from sw_model.networks.digits_cnn import _conv_bwd, _conv_fwd, _pool_bwd, _pool_fwd, digits_cnn
from sw_model.sparse.config import SparseChainConfig


@pytest.fixture(scope="module")
def cnn():
    return digits_cnn(cache_dir=build_root() / "models")


def test_float_and_int8_accuracy_on_the_360_test_images(cnn):
    net, (x_train, _, x_test, y_test) = cnn
    assert len(y_test) == 360
    float_acc = np.mean(net.forward(x_test).argmax(axis=1) == y_test)
    assert float_acc >= 0.97
    program = compile_int8(net, x_train, SparseChainConfig(stages=8))
    fast = MatmulChainBackend()
    logits, _ = program.run(x_test, {i: fast for i in program.engine_steps})
    int8_acc = np.mean(logits.argmax(axis=1) == y_test)
    assert abs(int8_acc - float_acc) <= 0.01
    assert [s.op for s in program.steps] == ["Conv2d+ReLU", "MaxPool2d", "Conv2d+ReLU", "MaxPool2d", "Flatten",
                                             "Linear"]
    assert program.engine_beats() == 8 * 64 * 2 + 16 * 16 * 9 + 10 * 8


def test_backprop_matches_finite_differences():
    """The hand-written conv / max-pool gradients of the trainer (checked on a tiny random case)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 2, 4, 4)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    g = rng.normal(size=(2, 3, 2, 2))

    def loss(w_):
        y, _ = _conv_fwd(x, w_, b)
        return float((_pool_fwd(y)[0] * g).sum())

    y, cols = _conv_fwd(x, w, b)
    _, arg = _pool_fwd(y)
    _, dw, _ = _conv_bwd(_pool_bwd(g, arg, y.shape), w, cols, x.shape)
    eps, num = 1e-6, np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        d = np.zeros_like(w)
        d[idx] = eps
        num[idx] = (loss(w + d) - loss(w - d)) / (2 * eps)
    assert np.allclose(dw, num, atol=1e-5)


def test_run_digits_cnn_golden_summary_matches_the_mlp_schema(tmp_path, capsys):
    from hwgen.host.run_network import run_network
    s = run_digits_cnn(backend="golden", limit=6, out=tmp_path)
    mlp = run_network("digits-mlp-int8", limit=2)
    assert set(s) == set(mlp)
    assert set(mlp["layers"][0]) <= set(s["layers"][0])
    assert s["network"] == "digits-cnn" and s["samples"] == 6 and s["mismatches"] == 0
    assert [(lay["engine"], lay["ran_on"]) for lay in s["layers"]] == [
        ("sparse_chain", "golden"), ("host", "host"), ("sparse_chain", "golden"), ("host", "host"), ("host", "host"),
        ("sparse_chain", "golden")]
    assert s["layers"][0]["shape"] == [8, 9] and s["layers"][2]["shape"] == [16, 72]
    assert s["accuracy"] >= 5 / 6
    assert (tmp_path / "run-digits-cnn-golden.json").exists()
    assert capsys.readouterr().err == ""            # no progress bar when stderr is not a terminal


@pytest.mark.parametrize("kwargs,message", [
    (dict(backend="rtl", rtl_layers=[1]), "--rtl-layers: layer 1 (MaxPool2d) runs on the host, allowed: engine "
                                          "layers 0, 2, 5"),
    (dict(backend="rtl", rtl_layers=[6]), "--rtl-layers: got 6, allowed: layer indices 0..5"),
    (dict(backend="golden", rtl_layers=[0]), "--rtl-layers: got [0] with --backend golden, allowed: --backend rtl"),
    (dict(backend="fpga"), "--backend: got 'fpga', allowed: golden, rtl, board"),
    (dict(backend="rtl", system="system-lmul"), "has no engine with this sparse_chain config; it has lmuldot"),
    (dict(config_name="lmul-e4m3"), "--config: got unit 'lmul', allowed: a sparse_chain config"),
    (dict(limit=0), "--limit: got 0, allowed: a positive number"),
    (dict(rtl_samples=0), "--rtl-samples: got 0, allowed: a positive number"),
])
def test_run_digits_cnn_errors(kwargs, message):
    with pytest.raises(ValueError) as e:
        run_digits_cnn(**kwargs)
    assert message in str(e.value)


class _FakeRtl:
    """Stands in for the system backend on RTL: right answers (or a dying simulator), 1 cycle per beat, the engine
    busy for every cycle."""
    name = "rtl"
    die = False
    offset = 0

    def __init__(self, system="system-default", target="rtl", sim="verilator"):
        pass

    def engine_index(self, config):
        return 1

    def gemm(self, config, w_q, x_q):
        if self.die:
            raise RuntimeError("simulator exited with code 139")
        acc, _ = MatmulChainBackend().gemm(config, w_q, x_q)
        acc = acc + self.offset
        beats = w_q.shape[0] * x_q.shape[1] * -(-w_q.shape[1] // config.stages)
        return acc, {"cycles": beats, "model_cycles": beats, "engine_busy": beats, "beats": beats, "sim_seconds": 1.0}


def test_run_digits_cnn_accounting_with_a_stand_in_rtl(monkeypatch):
    import hwgen.host.run_cnn
    monkeypatch.setattr(hwgen.host.run_cnn, "SystemBackend", _FakeRtl)
    s = run_digits_cnn(backend="rtl", rtl_layers=[0, 5], limit=7, batch=3, rtl_samples=4)
    assert s["samples_on_device"] == 4 and s["mismatches"] == 0
    assert [lay["ran_on"] for lay in s["layers"]] == ["rtl", "host", "golden", "host", "host", "rtl"]
    assert s["cycles_total"] == 4 * (8 * 64 * 2 + 10 * 8) and s["cycles_per_inference"] == 8 * 64 * 2 + 10 * 8
    monkeypatch.setattr(_FakeRtl, "offset", 1)                   # a wrong engine is counted, step by step
    s = run_digits_cnn(backend="rtl", rtl_layers=[5], limit=2)
    assert s["mismatches"] == s["layers"][5]["mismatches_vs_golden"] == 2 * 10
    monkeypatch.setattr(_FakeRtl, "die", True)
    with pytest.raises(RuntimeError) as e:
        run_digits_cnn(backend="rtl", limit=7, batch=3)
    assert "digits-cnn: the rtl backend failed at samples 0..2 (simulator exited with code 139); no summary" in \
        str(e.value)
