"""Stream bus-functional models for cocotb benches, driven by the manifest's stream description.

`StreamSource` presents beats on a valid/ready stream with random idle cycles between them; `StreamSink`
takes beats with random backpressure. Both sample right after the rising edge (cocotb gives the pre-edge
values there, i.e. what the flops saw) and record the cycle of every handshake, so benches can check latency.
`pack_beats`/`unpack_beats` (from `sw_model.host.beats`) convert between per-field numpy arrays and payload
integers using the field offsets and widths of the manifest.
"""
from __future__ import annotations

import random

from cocotb.triggers import RisingEdge

from sw_model.host.beats import pack_beats, unpack_beats  # noqa: F401  (re-exported for the benches)


class StreamSource:
    """Drives `beats` (payload integers) on the stream; before each beat, idles with probability `gap`."""

    def __init__(self, dut, stream: dict, clk, gap: float = 0.0, rng: random.Random | None = None):
        self.valid = getattr(dut, stream["valid"])
        self.ready = getattr(dut, stream["ready"])
        self.payload = getattr(dut, stream["payload"])
        self.clk, self.gap, self.rng = clk, gap, rng or random.Random(0)
        self.handshake_cycles: list[int] = []
        self.valid.value = 0
        # An idle all-ones payload (not X) makes the pipeline registers change value before the first beat:
        # Icarus never evaluates an `always @*` block whose inputs keep their initial values.
        self.payload.value = (1 << len(self.payload)) - 1

    async def send(self, beats: list[int]):
        cycle, k, n = 0, 0, len(beats)
        offering = False
        while k < n:
            if not offering and (self.gap == 0 or self.rng.random() >= self.gap):
                self.payload.value = beats[k]
                self.valid.value = 1
                offering = True
            await RisingEdge(self.clk)
            if offering and self.ready.value == 1:
                self.handshake_cycles.append(cycle)
                k += 1
                offering = False
                self.valid.value = 0
            cycle += 1
        self.valid.value = 0


class StreamSink:
    """Accepts beats from the stream until `count` arrived; withholds ready with probability `backpressure`."""

    def __init__(self, dut, stream: dict, clk, backpressure: float = 0.0, rng: random.Random | None = None):
        self.valid = getattr(dut, stream["valid"])
        self.ready = getattr(dut, stream["ready"])
        self.payload = getattr(dut, stream["payload"])
        self.clk, self.backpressure, self.rng = clk, backpressure, rng or random.Random(1)
        self.beats: list[int] = []
        self.handshake_cycles: list[int] = []
        self.ready.value = 0

    async def receive(self, count: int, timeout_cycles: int):
        cycle = 0
        while len(self.beats) < count:
            ready = int(self.backpressure == 0 or self.rng.random() >= self.backpressure)
            self.ready.value = ready
            await RisingEdge(self.clk)
            if ready and self.valid.value == 1:
                value = self.payload.value
                if not value.is_resolvable:
                    raise AssertionError(f"output beat {len(self.beats)} at cycle {cycle} has X/Z bits: {value}")
                # cocotb 2 gives a Logic (not a LogicArray) for a 1-bit port
                self.beats.append(value.to_unsigned() if hasattr(value, "to_unsigned") else int(value))
                self.handshake_cycles.append(cycle)
            cycle += 1
            if cycle > timeout_cycles:
                raise AssertionError(f"timeout: {len(self.beats)} of {count} output beats after {cycle} cycles")
        self.ready.value = 0
