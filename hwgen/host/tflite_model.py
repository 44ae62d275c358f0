"""`TFLiteModel`: an int8 .tflite model run by the host with its CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
GEMMs on the accelerator's sparse chain engine.

    from hwgen.host.tflite_model import TFLiteModel
    m = TFLiteModel("model.tflite", system="system-default", backend="golden")   # or "rtl" / "board"
    outputs = m.invoke(x)          # list of numpy arrays (the model's output types); state kept between invokes
    m.records                      # per engine op of the last invoke: int32 accumulators, cycles, beats, ...
    m.reset()                      # resource variables and CALL_ONCE back to their loaded state

backend "golden": the exact integer model of the chain (one numpy matmul per GEMM, wrapped to the accumulator
width); "rtl": each GEMM is a command program run on the system's Verilog in a bulk simulation; "board": the same
behind the UART bridge over a simulated serial line (`hwgen.host.system_backend`). The engine config is the
system's first sparse_chain engine. Everything that is not a GEMM runs on the host (`sw_model.importers.tflite`).
`depthwise_group`: input channels per block-diagonal GEMM of a depthwise layer (default: the whole layer in one
GEMM; smaller groups multiply fewer zero weights in more engine jobs).
"""
from __future__ import annotations

from sw_model.host.netdesc import MatmulChainBackend
from sw_model.importers.tflite.program import TFLiteProgram
from sw_model.registry import load_config

BACKENDS = ("golden", "rtl", "board")


def system_engine(system) -> tuple[str, object, object]:
    """(system name, system config, its first sparse_chain engine config)."""
    name, cfg = load_config(system) if isinstance(system, str) else (f"{system}", system)
    if getattr(cfg, "unit", None) != "system":
        raise ValueError(f"system: got {system!r} (unit {getattr(cfg, 'unit', None)!r}), allowed: a system config")
    for engine in cfg.engine_configs:
        if engine.unit == "sparse_chain" and engine.weight_bits == 8 and not engine.packed:
            return name, cfg, engine
    raise ValueError(f"system: {name} has no int8 dense sparse_chain engine (it has {', '.join(cfg.engine_names)}); "
                     "allowed: a system with one, e.g. system-default or system-int8")


class TFLiteModel:
    """An int8 TFLite model on the host + the system's sparse chain engine (see the module docstring).
    Interface: invoke(*inputs) -> outputs, reset(), input_details(), output_details(), records, program."""

    def __init__(self, path, system="system-default", backend: str = "golden", sim: str = "verilator",
                 depthwise_group: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend: got {backend!r}, allowed: {', '.join(BACKENDS)}")
        self.system_name, self.system_config, self.engine_config = system_engine(system)
        # one dot product must fit half a scratchpad (the system double-buffers): longer K is split on the host
        max_k = self.system_config.spad_depth // 2 * self.engine_config.stages
        self.program = TFLiteProgram(path, config=self.engine_config, max_k=max_k, depthwise_group=depthwise_group)
        self.backend_name = backend
        if backend == "golden":
            self.engine = MatmulChainBackend()
        else:
            from hwgen.host.system_backend import SystemBackend
            self.engine = SystemBackend(system, backend, sim)

    def invoke(self, *inputs):
        return self.program.invoke(*inputs, backend=self.engine)

    def reset(self):
        self.program.reset()

    def input_details(self):
        return self.program.input_details()

    def output_details(self):
        return self.program.output_details()

    @property
    def records(self):
        return self.program.records
