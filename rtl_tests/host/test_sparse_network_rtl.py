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
