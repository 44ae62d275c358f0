"""Stream bus-functional models for cocotb benches, driven by the manifest's stream description.

`StreamSource` presents beats on a valid/ready stream with random idle cycles between them; `StreamSink`
takes beats with random backpressure. Both sample right after the rising edge (cocotb gives the pre-edge
values there, i.e. what the flops saw) and record the cycle of every handshake, so benches can check latency.

The sink also checks that the DUT drives its output stream by the rules of `amaranth.lib.stream`, on every
clock edge it watches (while receiving and while holding ready low afterwards):
- valid was high and ready low at the previous edge => valid is still high (`valid_dropped`);
- ... and the payload equals the previous edge's (`payload_changed`);
- valid is 0 or 1, and while it is high the payload has no X/Z bit (`undefined`; only a 4-state simulator such
  as Icarus can see X/Z, Verilator is 2-state).
The first violation raises `StreamProtocolError` naming the stream, the rule and the cycle (the cycle numbering of
`handshake_cycles`). The DUT's input side needs no monitor: a sink may drop ready whenever it likes, and the
source here is the bench's own.

`pack_beats`/`unpack_beats` (from `sw_model.host.beats`) convert between per-field numpy arrays and payload
integers using the field offsets and widths of the manifest.
"""
from __future__ import annotations

import random

from cocotb.triggers import RisingEdge

from hwgen.sim.harness import StreamProtocolError, protocol_message
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
    """Accepts beats from the stream until `count` arrived; withholds ready with probability `backpressure`.
    Checks the stream rules on every edge it watches (module docstring) and raises StreamProtocolError."""

    def __init__(self, dut, stream: dict, clk, backpressure: float = 0.0, rng: random.Random | None = None):
        self.name = stream.get("name", stream["valid"].split("__")[0])
        self.valid = getattr(dut, stream["valid"])
        self.ready = getattr(dut, stream["ready"])
        self.payload = getattr(dut, stream["payload"])
        self.clk, self.backpressure, self.rng = clk, backpressure, rng or random.Random(1)
        self.beats: list[int] = []
        self.handshake_cycles: list[int] = []
        self.cycle = 0
        self._stalled = None                    # the payload of a beat offered and not taken at the last edge
        self.ready.value = 0

    async def _edge(self, ready: int):
        """Drive `ready` for the next edge, wait for it, check the rules; returns (valid, payload) at the edge."""
        self.ready.value = ready
        await RisingEdge(self.clk)
        cycle, self.cycle = self.cycle, self.cycle + 1
        valid = self.valid.value
        if not valid.is_resolvable:
            raise StreamProtocolError(protocol_message(self.name, "undefined", cycle) + f": valid is {valid}")
        valid = int(valid)
        payload = self.payload.value if valid else None
        if self._stalled is not None:
            if not valid:
                raise StreamProtocolError(protocol_message(self.name, "valid_dropped", cycle))
            if payload != self._stalled:
                raise StreamProtocolError(protocol_message(self.name, "payload_changed", cycle) +
                                          f": {self._stalled} -> {payload}")
        if valid and not payload.is_resolvable:
            raise StreamProtocolError(protocol_message(self.name, "undefined", cycle) + f": payload {payload}")
        self._stalled = payload if valid and not ready else None
        return valid, payload

    async def receive(self, count: int, timeout_cycles: int):
        self.cycle = 0
        while len(self.beats) < count:
            ready = int(self.backpressure == 0 or self.rng.random() >= self.backpressure)
            valid, payload = await self._edge(ready)
            if ready and valid:
                # cocotb 2 gives a Logic (not a LogicArray) for a 1-bit port
                self.beats.append(payload.to_unsigned() if hasattr(payload, "to_unsigned") else int(payload))
                self.handshake_cycles.append(self.cycle - 1)
            if self.cycle > timeout_cycles:
                raise AssertionError(f"timeout: {len(self.beats)} of {count} output beats after {self.cycle} cycles")
        self.ready.value = 0

    async def hold(self, cycles: int) -> bool:
        """Keep ready low for `cycles` edges, still checking the rules; returns whether valid was high at the
        last one (a beat more than expected)."""
        valid = 0
        for _ in range(cycles):
            valid, _ = await self._edge(0)
        return bool(valid)
