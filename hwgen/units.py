"""The gateware of every unit family, by the `unit` name of its config (the accelerator top builds its engines here).

A component class takes its config and provides `timing()` -> dict with at least `latency` (cycles from the input
handshake to output valid, where fixed; else None) and `ii`."""
from __future__ import annotations

from amaranth.lib import wiring

from hwgen.attention.array import AttentionArray
from hwgen.bitmod.array import BitModArray
from hwgen.lmul.units import FMul, LMul, LMulDot
from hwgen.snn.core import SNNCore
from hwgen.snn.router import MulticastRouter
from hwgen.snn.sdsa import SDSA
from hwgen.sparse.chain import SparseChain

COMPONENTS: dict[str, type] = {"lmul": LMul, "fmul": FMul, "lmuldot": LMulDot, "snn_core": SNNCore, "sdsa": SDSA,
                               "snn_router": MulticastRouter,
                               "bitmod": BitModArray, "sparse_chain": SparseChain, "attention": AttentionArray}


def build_unit(config) -> wiring.Component:
    """The component of a unit config (any family but the accelerator top)."""
    if config.unit not in COMPONENTS:
        raise ValueError(f"unit: got {config.unit!r}, allowed: {', '.join(COMPONENTS)}")
    return COMPONENTS[config.unit](config)
