"""N:M-pruned int8 networks through the accelerator top's RTL: every sparse engine step bit-exact with the golden
chain model (and with the same weights run dense), with the documented cycle count, on the ungrouped chain
(system-default) and the grouped one (system-sparse)."""
import numpy as np
import pytest

from hwgen.host.system_backend import SystemBackend
from sw_model.host.netdesc import Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, compile_int8
from sw_model.host.netdesc.prune import prune_network
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.registry import load_config

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("system", ["system-sparse", "system-default"])
def test_pruned_cnn_on_the_system_rtl(system):
    rng = np.random.default_rng(7)
    net = Network((1, 6, 6), [Conv2d(rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4), padding=1), ReLU(),
                              MaxPool2d(2), Flatten(), Linear(rng.normal(size=(6, 36)))])
    x = rng.uniform(0, 16, (3, 1, 6, 6))
    _, sysc = load_config(system)
    cfg = sysc.engine_configs[-1]
    device = SystemBackend(system, "rtl")
    cycles = {}
    for mode in ("2:4", "1:4", "dense"):
        program = compile_int8(prune_network(net, "2:4" if mode == "dense" else mode), x, cfg,
                               sparsity=None if mode != "dense" else {0: None, 4: None})
        ref = program.run(x, {i: Int8GoldenBackend() for i in program.engine_steps})
        got, records = program.run(x, {i: device for i in program.engine_steps})
        assert (got == ref[0]).all()
        for i in program.engine_steps:
            assert (records[i]["acc"] == ref[1][i]["acc"]).all()
            assert records[i]["cycles"] == records[i]["model_cycles"]
        cycles[mode] = sum(records[i]["cycles"] for i in program.engine_steps)
    assert cycles["1:4"] < cycles["2:4"] < cycles["dense"]


def test_hwgen_run_digits_cnn_sparse_on_system_sparse(tmp_path, monkeypatch):
    """`hwgen run digits-cnn --sparsity 2:4 --backend rtl --system system-sparse --config sparse-chain-8-g2` on 3
    images (the pruning without its fine-tuning, to stay fast): 0 mismatches, cycles = the model's."""
    from hwgen.host import run_cnn
    from hwgen.host.run_network import run_network
    from sw_model.networks.digits_cnn import digits_cnn

    def quick(sparsity, cache_dir):
        net, data = digits_cnn(cache_dir=cache_dir)
        return prune_network(net, sparsity), data
    monkeypatch.setattr(run_cnn, "pruned_digits_cnn", quick)
    s = run_network("digits-cnn", "sparse-chain-8-g2", "rtl", limit=3, out=tmp_path, system="system-sparse",
                    sparsity="2:4")
    assert s["mismatches"] == 0 and s["sparsity"] == "2:4"
    assert [lay["ran_on"] for lay in s["layers"] if lay["engine"] != "host"] == ["rtl"] * 3
    assert s["cycles_total"] == s["cycles_model_total"]
