"""N:M sparsity in int8 networks: pruning, masked fine-tuning, the compiler's sparse steps and their backends."""
import numpy as np
import pytest

from hwgen.host.system_backend import SystemBackend
from sw_model.host.netdesc import (
    Conv2d,
    Flatten,
    Linear,
    MatmulChainBackend,
    MaxPool2d,
    Network,
    NetworkError,
    ReLU,
    compile_int8,
)
from sw_model.host.netdesc.prune import finetune, nm_mask, prune_network, sparsity_of
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.registry import load_config
from sw_model.sparse.config import SparseChainConfig
from sw_model.system.config import SystemConfig


def small_cnn(rng, k_fc=36):
    return Network((1, 6, 6), [Conv2d(rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4), padding=1), ReLU(),
                               MaxPool2d(2), Flatten(), Linear(rng.normal(size=(6, k_fc)), rng.normal(size=6))])


def test_prune_hand_example_pads_the_last_group():
    w = np.array([[3, -5, 1, 0, 2, 2, -2, 7, 0.5]])
    net = Network((9,), [Linear(w), ReLU()])
    pruned = prune_network(net, "2:4")
    # groups [3 -5 1 0] [2 2 -2 7] [0.5 + 3 padded zeros]: the two largest |w|, ties to the lower position
    assert pruned.layers[0].weight.tolist() == [[3, -5, 0, 0, 2, 0, 0, 7, 0.5]]
    assert sparsity_of(pruned) == {0: "2:4"} and net.layers[0].sparsity is None       # the input is not changed
    assert prune_network(net, "1:4").layers[0].weight.tolist() == [[0, -5, 0, 0, 0, 0, 0, 7, 0.5]]


def test_conv_groups_run_along_the_flattened_input_axis():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 3, 3, 3))                     # K = 27 = (c, ky, kx), groups of 4 across channels
    got = prune_network(Network((3, 5, 5), [Conv2d(w)]), "1:4").layers[0].weight.reshape(5, -1)
    flat = np.pad(w.reshape(5, -1), ((0, 0), (0, 1)))
    for r in range(5):
        for g in range(7):
            block = flat[r, 4 * g:4 * g + 4]
            keep = np.zeros(4)
            keep[np.argmax(np.abs(block))] = block[np.argmax(np.abs(block))]
            assert got[r, 4 * g:min(4 * g + 4, 27)].tolist() == keep[:min(4, 27 - 4 * g)].tolist()
    assert nm_mask(w.reshape(5, -1), "2:4").sum() == 5 * (6 * 2 + 2)   # last group: 3 real weights, keeps 2


def test_prune_errors():
    net = Network((8,), [Linear(np.ones((2, 8))), ReLU()])
    with pytest.raises(NetworkError, match="sparsity: got '3:4', allowed: '2:4', '1:4', '2:8', '4:8'"):
        prune_network(net, "3:4")
    with pytest.raises(NetworkError, match=r"sparsity: layer 1 is not a Linear or Conv2d layer, allowed: \[0\]"):
        prune_network(net, {1: "2:4"})
    with pytest.raises(NetworkError, match="layer \\(Linear\\): sparsity: got '2:3', allowed: None, 'dense'"):
        Linear(np.ones((2, 8)), sparsity="2:3")


def test_finetune_keeps_the_pattern_and_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1, 6, 6))
    y = (x[:, 0, :3].sum(axis=(1, 2)) > 0).astype(int)     # a learnable two-class rule
    net = Network((1, 6, 6), [Conv2d(rng.normal(size=(4, 1, 3, 3)) * 0.3, padding=1), ReLU(), MaxPool2d(2),
                              Flatten(), Linear(rng.normal(size=(2, 36)) * 0.1)])
    pruned = prune_network(net, {0: "2:4", 4: "1:4"})
    tuned = finetune(pruned, x, y, epochs=30, lr=1e-2, batch=32)
    for i in (0, 4):
        before, after = pruned.layers[i].weight, tuned.layers[i].weight
        assert ((after != 0) <= (before != 0)).all() and not np.array_equal(before, after)
    assert sparsity_of(tuned) == {0: "2:4", 4: "1:4"}
    acc = np.mean(tuned.forward(x).argmax(1) == y)
    assert acc > np.mean(pruned.forward(x).argmax(1) == y) and acc > 0.85
    from sw_model.host.netdesc import AvgPool2d
    with pytest.raises(NetworkError, match=r"layer 1 \(AvgPool2d\): finetune supports Linear, Conv2d, ReLU, "
                                           r"MaxPool2d, Flatten"):
        finetune(Network((1, 6, 6), [Conv2d(np.ones((2, 1, 3, 3))), AvgPool2d(2)]), x, y)
    with pytest.raises(NetworkError, match=r"finetune: y: got shape \(200, 1\) with labels 0..1, allowed: one label "
                                           r"0..1 per sample \(200\)"):
        finetune(pruned, x, y[:, None])


def test_finetune_gradients_match_finite_differences():
    from sw_model.host.netdesc.prune import _backward, _forward
    rng = np.random.default_rng(3)
    net = Network((2, 5, 5), [Conv2d(rng.normal(size=(3, 2, 3, 3)), stride=2, padding=1), ReLU(), MaxPool2d(2),
                              Flatten(), Linear(rng.normal(size=(4, 3)))])
    params = {0: [net.layers[0].weight.copy(), net.layers[0].bias.copy()],
              4: [net.layers[4].weight.copy(), net.layers[4].bias.copy()]}
    x = rng.normal(size=(3, 2, 5, 5))
    g = rng.normal(size=(3, 4))
    out, caches = _forward(net, params, x)
    grads = _backward(net, params, caches, g)
    for i, j, pos in ((0, 0, (1, 1, 2, 0)), (0, 1, (2,)), (4, 0, (3, 1))):
        eps = 1e-6
        params[i][j][pos] += eps
        up = (_forward(net, params, x)[0] * g).sum()
        params[i][j][pos] -= 2 * eps
        down = (_forward(net, params, x)[0] * g).sum()
        params[i][j][pos] += eps
        assert grads[i][j][pos] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("preset", ["sparse-chain-8", "sparse-chain-8-g2", "sparse-chain-16-g4"])
@pytest.mark.parametrize("mode", ["2:4", "1:4", "4:8"])
def test_sparse_program_is_bit_exact_with_the_dense_one(preset, mode):
    """The chain skips only zeros: the pruned network compiled sparse gives the accumulators of the same
    weights compiled dense, on the beat-level golden model, the matmul and the golden system."""
    rng = np.random.default_rng(2)
    net = prune_network(small_cnn(rng), mode)
    x = rng.uniform(0, 16, (3, 1, 6, 6))
    _, cfg = load_config(preset)
    sparse = compile_int8(net, x, cfg)
    dense = compile_int8(net, x, cfg, sparsity={0: None, 4: None})
    assert [s.extra.get("sparsity") for s in sparse.steps if s.engine != "host"] == [mode, mode]
    assert not any(s.extra.get("sparsity") for s in dense.steps)
    want, ref = dense.run(x, {i: MatmulChainBackend() for i in dense.engine_steps})
    system = SystemBackend(SystemConfig(engines=(preset,)), "golden")
    for backends in (None, {i: MatmulChainBackend() for i in sparse.engine_steps},
                     {i: system for i in sparse.engine_steps}):
        got, records = sparse.run(x, backends)
        assert (got == want).all()
        for i in sparse.engine_steps:
            assert (records[i]["acc"] == ref[i]["acc"]).all()
    _, rec = sparse.run(x, {i: system for i in sparse.engine_steps})
    assert sum(rec[i]["beats"] for i in sparse.engine_steps) == sparse.engine_beats(len(x))


def test_sparse_beats_and_host_words():
    """2:4 on the grouped chain: half the beats (two rows per beat) and half the output beats; on the
    ungrouped chain half the beats (window 16 instead of 8), the same outputs."""
    rng = np.random.default_rng(4)
    w = prune_network(Network((64,), [Linear(rng.normal(size=(32, 64)))]), "2:4")
    x = rng.integers(-128, 128, (64, 5))
    counts = {}
    for preset in ("sparse-chain-8", "sparse-chain-8-g2"):
        system = SystemBackend(SystemConfig(engines=(preset,)), "golden")
        _, cfg = load_config(preset)
        w_q = np.clip(np.round(w.layers[0].weight * 20), -127, 127).astype(np.int64)
        for mode in ("dense", "2:4"):
            from sw_model.sparse.group import pack_nm_gemm
            beats = pack_nm_gemm(w_q, x, mode, cfg)
            program, _ = system.program(cfg, beats)
            acc, stats = system.sparse_gemm(cfg, w_q, x, mode)
            assert (acc == w_q @ x).all()
            counts[preset, mode] = (len(beats["mode"]), program.reply_words(), len(program.words),
                                    stats["model_cycles"])
    assert counts["sparse-chain-8", "dense"][:2] == (32 * 5 * 8, 32 * 5 + 6)       # + the COUNTERS and STATUS replies
    assert counts["sparse-chain-8", "2:4"][:2] == (32 * 5 * 4, 32 * 5 + 6)
    assert counts["sparse-chain-8-g2", "dense"][:2] == (32 * 5 * 8, 32 * 5 + 6)
    assert counts["sparse-chain-8-g2", "2:4"][:2] == (16 * 5 * 8, 16 * 5 + 6)
    for preset in ("sparse-chain-8", "sparse-chain-8-g2"):
        assert counts[preset, "2:4"][2] < 0.6 * counts[preset, "dense"][2]         # host words sent
        assert counts[preset, "2:4"][3] < counts[preset, "dense"][3]


def test_compile_refuses_weights_that_are_not_nm_sparse():
    rng = np.random.default_rng(5)
    net = small_cnn(rng)
    x = rng.uniform(0, 16, (2, 1, 6, 6))
    cfg = SparseChainConfig(stages=8)
    with pytest.raises(NetworkError, match=r"layer 4 \(Linear\): sparsity 2:4: the int8 weights are not 2:4 sparse: "
                                           r"row 0 group 0 \(K positions 0..3\) has 4 nonzero weights, allowed at "
                                           r"most N = 2 \(prune first"):
        compile_int8(net, x, cfg, sparsity={4: "2:4"})
    with pytest.raises(NetworkError, match=r"layer 0 \(Conv2d\): sparsity: got '4:8', allowed: the modes this chain "
                                           r"offers \(DENSE, S1_4\)"):
        compile_int8(prune_network(net, "4:8"), x, SparseChainConfig(stages=1))
    with pytest.raises(NetworkError, match=r"sparsity: layer 2 is not a Linear or Conv2d layer"):
        compile_int8(net, x, cfg, sparsity={2: "2:4"})
    program = compile_int8(prune_network(net, "2:4"), x, cfg)
    with pytest.raises(NetworkError, match=r"backends: step 0 \(Conv2d\+ReLU\) runs on the sparse_chain engine: got "
                                           r"a Dense without sparse_gemm\(\)"):
        program.run(x, {0: Dense()})


class Dense:
    """A backend of the dense-only kind (gemm but no sparse_gemm)."""
    name = "dense-only"

    def gemm(self, config, w_q, x_q):
        return Int8GoldenBackend().gemm(config, w_q, x_q)


def test_pruned_digits_cnn_is_cached_with_its_marks(tmp_path, monkeypatch):
    import shutil

    from hwgen.cache import build_root
    from sw_model.networks import digits_cnn as dc
    dense = build_root() / "models" / "digits_cnn_seed0.npz"
    if dense.exists():                                    # skip retraining the dense CNN in the temporary cache
        shutil.copy(dense, tmp_path / dense.name)
    monkeypatch.setattr(dc, "PRUNE_RECIPE", {"epochs": 1, "lr": 3e-3, "batch": 64})
    net, _ = dc.pruned_digits_cnn("2:4", cache_dir=tmp_path)
    assert (tmp_path / "digits_cnn_seed0_2of4.npz").exists()
    again, _ = dc.pruned_digits_cnn("2:4", cache_dir=tmp_path)
    assert sparsity_of(net) == sparsity_of(again) == {0: "2:4", 3: "2:4", 7: "2:4"}
    for a, b in zip(net.layers, again.layers):
        if hasattr(a, "weight"):
            assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
            assert nm_mask(a.weight.reshape(len(a.weight), -1), "2:4").sum() >= np.count_nonzero(a.weight)


def test_run_digits_cnn_with_sparsity(tmp_path, monkeypatch):
    from hwgen.host import run_cnn
    from hwgen.host.run_network import run_network
    from sw_model.networks.digits_cnn import digits_cnn

    def quick(sparsity, cache_dir):                       # pruning without the fine-tuning: the plumbing only
        net, data = digits_cnn(cache_dir=cache_dir)
        return prune_network(net, sparsity), data
    monkeypatch.setattr(run_cnn, "pruned_digits_cnn", quick)
    s = run_network("digits-cnn", limit=6, out=tmp_path, sparsity="1:4")
    assert s["sparsity"] == "1:4" and s["mismatches"] == 0 and s["samples"] == 6
    assert [("1:4 mode" in (lay.get("why") or "")) for lay in s["layers"] if lay["engine"] != "host"] == [True] * 3
    with pytest.raises(ValueError, match="--sparsity: got '3:4', allowed: 2:4, 1:4, 2:8, 4:8"):
        run_network("digits-cnn", sparsity="3:4")
    with pytest.raises(ValueError, match="--sparsity: got '2:4' for digits-mlp-int8, allowed: only for digits-cnn"):
        run_network("digits-mlp-int8", sparsity="2:4")
