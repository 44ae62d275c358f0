"""The Python API of the ONNX importer: a model, its layers, calibration and runs with per-layer numerics.

    m = OnnxModel("model.onnx")                       # refuses unsupported operators before anything runs
    y = m.run({"x": batch})                           # float32 reference
    p = m.prepare(load_config("cfg.toml"), calib)     # per-layer numerics, calibrated on `calib` feeds
    y = m.run({"x": batch}, p)                        # the same graph with those layer products
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.importers.onnx.config import NumericsConfig, load_config
from sw_model.importers.onnx.graph import Graph, load_graph, run_graph
from sw_model.importers.onnx.numerics import get_numeric


@dataclass
class Prepared:
    """A model's layers prepared for one numerics config: layer name -> (numeric, prepared layer)."""
    config: NumericsConfig
    layers: dict


class OnnxModel:
    """An imported float model: `graph`, `layer_names` (the MatMul/Gemm/Conv with constant weights)."""

    def __init__(self, model):
        self.graph: Graph = model if isinstance(model, Graph) else load_graph(model)
        self._layers = {l.name: l for l in self.graph.layers()}
        self.layer_names = list(self._layers)

    def calibrate(self, feeds_list) -> dict[str, float]:
        """Largest |input| of every layer over the float32 runs of `feeds_list` (an iterable of feed dicts)."""
        out = {k: 0.0 for k in self.layer_names}

        def record(layer, x, w):
            out[layer.name] = max(out[layer.name], float(np.abs(x).max()) if x.size else 0.0)
            return np.asarray(x, np.float32) @ w.T
        for feeds in feeds_list:
            run_graph(self.graph, feeds, record)
        return out

    def prepare(self, config, calibration: dict[str, float]) -> Prepared:
        """Each layer's numeric from `config` (NumericsConfig, numeric name or TOML path) prepared with its weight
        and calibrated input range."""
        config = config if isinstance(config, NumericsConfig) else load_config(config)
        assign = config.assign(self.layer_names)
        layers = {}
        for name, numeric in assign.items():
            nm = get_numeric(numeric)
            layers[name] = (nm, nm.prepare(self._layers[name].w, calibration.get(name, 0.0)))
        return Prepared(config, layers)

    def run(self, feeds: dict, prepared: Prepared | None = None, linear=None, keep: bool = False) -> dict:
        """Outputs for `feeds`: float32 reference, the `prepared` numerics, or a custom `linear(layer, x, w)`."""
        if prepared is not None and linear is None:
            def linear(layer, x, w):
                return prepared.layers[layer.name][1](x)
        return run_graph(self.graph, feeds, linear, keep)
