"""The per-engine run controller: streams a range of the input scratchpad through an engine into the output
scratchpad, independently of the command decoder."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from hwgen.system.commands import header_layout
from hwgen.system.counters import ENGINE_EVENTS
from sw_model.system.config import SystemConfig


class RunController(wiring.Component):
    """One engine's RUN: IN[addr .. addr+count) -> engine -> OUT[addr2 ...] until `count2` output beats.

    Interface: `start` (one cycle) latches the RUN header `cmd` (`addr`, `count`, `addr2`, `count2`; a start
    while a run is active restarts it). `spad_in` drives a synchronous read port of the input scratchpad,
    `spad_out` a write port of the output scratchpad; `to_engine` feeds the engine's input stream, `from_engine`
    takes its output stream. `events` reports the cycle's counter events (`busy`: the run is not finished).

    Timing: the scratchpad's synchronous read and a data register after it form a two-beat read pipeline,
    refilled in the cycle a beat is taken, so an II=1 engine takes a beat every cycle: with a start in cycle s,
    the beats enter the engine in cycles s+3 .. s+count+2 (valid never waits for ready; the payload holds while
    stalled). The controller takes
    the engine's outputs while fewer than `count2` have been counted and writes each to the next OUT address;
    with `marker` (`{"out_field", "out_value"}`, e.g. the spiking core's TICK beats) only beats whose field has
    that value count, the others are written too. `busy` is high from the cycle after `start` until the last
    beat has entered and the last counted output has been written: (n - 1) * II + L + 3 cycles for n beats on an
    engine of initiation interval II and latency L whose last output comes L cycles after its last beat (the cycle
    model's RUN)."""

    def __init__(self, config: SystemConfig, in_layout, out_layout, marker: dict | None = None):
        self.config = config
        self.marker = marker
        in_width, out_width = data.Layout.cast(in_layout).size, data.Layout.cast(out_layout).size
        if marker is not None and marker.get("out_field") not in data.Layout.cast(out_layout).members:
            raise ValueError(f"marker: got {marker!r}, allowed: a dict naming an output payload field "
                             "(out_field) and its value (out_value)")
        super().__init__({
            "start": In(1), "cmd": In(header_layout(config)), "events": Out(ENGINE_EVENTS),
            # the memory ports' signatures are from the memory's side: In() gives the controller's side
            "spad_in": In(ReadPort.Signature(addr_width=config.addr_bits, shape=unsigned(in_width))),
            "spad_out": In(WritePort.Signature(addr_width=config.addr_bits, shape=unsigned(out_width))),
            "to_engine": Out(stream.Signature(in_layout)), "from_engine": In(stream.Signature(out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, rp, wp, eng_i, eng_o = self.config, self.spad_in, self.spad_out, self.to_engine, self.from_engine
        raddr, rleft = Signal(cfg.addr_bits), Signal(cfg.count_bits)
        # two read stages: the block RAM's output (rvalid) and a register after it (dvalid, data), so no logic
        # sits between the RAM's slow clock-to-out and a flop; they stall together when the engine is not ready
        rvalid, dvalid, data_reg = Signal(), Signal(), Signal(data.Layout.cast(eng_i.payload.shape()).size)
        waddr, wleft = Signal(cfg.addr_bits), Signal(cfg.count_bits)
        take = ~dvalid | eng_i.ready                  # the data register is empty or being taken
        advance = ~rvalid | take                      # the RAM's output moves on (or is empty)
        if self.marker is None:
            counted = wp.en
        else:
            counted = wp.en & (getattr(eng_o.payload, self.marker["out_field"]) == self.marker["out_value"])
        m.d.comb += [rp.addr.eq(raddr), rp.en.eq(advance),
                     eng_i.valid.eq(dvalid), eng_i.payload.eq(data_reg), eng_o.ready.eq(wleft != 0),
                     wp.addr.eq(waddr), wp.data.eq(eng_o.payload), wp.en.eq(eng_o.valid & eng_o.ready)]
        with m.If(self.start):
            m.d.sync += [raddr.eq(self.cmd.addr), rleft.eq(self.cmd.count), rvalid.eq(0), dvalid.eq(0),
                         waddr.eq(self.cmd.addr2), wleft.eq(self.cmd.count2)]
        with m.Else():
            with m.If(take):
                m.d.sync += [dvalid.eq(rvalid), data_reg.eq(rp.data)]
            with m.If(advance):
                m.d.sync += rvalid.eq(rleft != 0)
                with m.If(rleft != 0):
                    m.d.sync += [raddr.eq(raddr + 1), rleft.eq(rleft - 1)]
            with m.If(wp.en):
                m.d.sync += waddr.eq(waddr + 1)
            with m.If(counted):
                m.d.sync += wleft.eq(wleft - 1)
        m.d.comb += [self.events.busy.eq((rleft != 0) | rvalid | dvalid | (wleft != 0)),
                     self.events.in_beats.eq(eng_i.valid & eng_i.ready),
                     self.events.out_beats.eq(eng_o.valid & eng_o.ready),
                     self.events.in_stall.eq(eng_i.valid & ~eng_i.ready)]
        return m
