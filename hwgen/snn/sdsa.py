"""Spike-driven self-attention block `SDSA` (golden model and formula: `sw_model.snn.sdsa`).

Input stream `i`, one beat per token row: op (0: a K/V row, 1: a Q row), first (on a K/V row: restart the KV
counters), a (K row or Q row, `dim` bits), b (V row). A K/V row adds `k[j] AND v[c]` to the dim x dim saturating
counters KV[j][c]; a Q row computes S[c] = sum over j of (q[j] ? KV[j][c] : 0) with adder trees and emits one
output beat s[c] = S[c] >= vth << scale_shift. Only AND gates, counters, multiplexers, adders and constant
compares: no multiplier. II = 1; a Q row's output is registered (latency 1) and K/V rows produce no output.
Stream rules: o.valid never waits for o.ready, payload stable while stalled.
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.blocks.trees import adder_tree
from sw_model.snn.sdsa import SDSAConfig


class SDSA(wiring.Component):
    """One SDSA head: K/V rows build the co-occurrence counters, Q rows read them out as spikes (II = 1)."""

    def __init__(self, config: SDSAConfig):
        self.config = config
        d = config.dim
        super().__init__({"i": In(stream.Signature(data.StructLayout({"op": 1, "first": 1, "a": d, "b": d}))),
                          "o": Out(stream.Signature(data.StructLayout({"s": d})))})

    def timing(self) -> dict:
        return {"latency": 1, "ii": 1}

    def elaborate(self, platform):
        cfg, m = self.config, Module()
        d, p = cfg.dim, self.i.payload
        top = cfg.count_max
        kv = [[Signal(cfg.count_bits, name=f"kv_{j}_{c}") for c in range(d)] for j in range(d)]

        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        take = self.i.valid & self.i.ready

        with m.If(take & (p.op == 0)):
            for j in range(d):
                for c in range(d):
                    hit = p.a[j] & p.b[c]
                    base = Mux(p.first, 0, kv[j][c])
                    m.d.sync += kv[j][c].eq(Mux(hit & (base != top), base + hit, base))

        threshold = cfg.vth << cfg.scale_shift
        spikes = Signal(d)
        for c in range(d):
            total = adder_tree([Mux(p.a[j], kv[j][c], 0) for j in range(d)])
            m.d.comb += spikes[c].eq(total >= threshold)
        with m.If(take & (p.op == 1)):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.s.eq(spikes)]
        return m
