"""Spike-driven self-attention block `SDSA` (golden model and formula: `sw_model.snn.sdsa`).

Input stream `i`, one beat per token row: op (0: a K/V row, 1: a Q row), first (on a K/V row: restart the KV
counters), a (K row or Q row, `dim` bits), b (V row). A K/V row adds `k[j] AND v[c]` to the dim x dim saturating
counters KV[j][c]; a Q row computes S[c] = sum over j of (q[j] ? KV[j][c] : 0) with adder trees and emits one
output beat s[c] = S[c] >= vth << scale_shift. Only AND gates, counters, multiplexers, adders and constant
compares: no multiplier. II = 1; K/V rows produce no output. A Q row's read-out (mask, adder-tree levels,
threshold compare) is cut into 1 + `pipeline` register slices (the last one is the output register), so its
output beat is valid `sw_model.snn.sdsa.latency(cfg)` = 1 + pipeline cycles after its handshake. The mask stage
reads KV in the handshake cycle, so a Q row sees exactly the K/V rows accepted before it. The whole pipeline
stalls together while the output is stalled (and so does the input). Stream rules: o.valid never waits for
o.ready, payload stable while stalled.
"""
from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwgen.blocks.trees import pair_level
from sw_model.snn.sdsa import SDSAConfig, latency


class SDSA(wiring.Component):
    """One SDSA head: K/V rows build the co-occurrence counters, Q rows read them out as spikes (II = 1)."""

    def __init__(self, config: SDSAConfig):
        self.config = config
        d = config.dim
        super().__init__({"i": In(stream.Signature(data.StructLayout({"op": 1, "first": 1, "a": d, "b": d}))),
                          "o": Out(stream.Signature(data.StructLayout({"s": d})))})

    def timing(self) -> dict:
        return {"latency": latency(self.config), "ii": 1}

    def elaborate(self, platform):
        cfg, m = self.config, Module()
        d, p = cfg.dim, self.i.payload
        top = cfg.count_max
        kv = [[Signal(cfg.count_bits, name=f"kv_{j}_{c}") for c in range(d)] for j in range(d)]

        depth = 1 + cfg.pipeline
        valids = [Signal(name=f"q_valid{k}") for k in range(depth)]
        advance = Signal()
        m.d.comb += [advance.eq(~valids[-1] | self.o.ready), self.i.ready.eq(advance), self.o.valid.eq(valids[-1])]
        take = self.i.valid & self.i.ready

        with m.If(take & (p.op == 0)):
            for j in range(d):
                for c in range(d):
                    hit = p.a[j] & p.b[c]
                    base = Mux(p.first, 0, kv[j][c])
                    m.d.sync += kv[j][c].eq(Mux(hit & (base != top), base + hit, base))

        # the read-out as a list of stages over per-column lists of terms; register slices go between stages
        threshold = cfg.vth << cfg.scale_shift
        stages = [lambda cols: [[Mux(p.a[j], kv[j][c], 0) for j in range(d)] for c in range(d)]]
        stages += [lambda cols: [pair_level(col, lambda x, y: x + y) for col in cols]] * ceil_log2(d)
        stages += [lambda cols: [[col[0] >= threshold] for col in cols]]
        cuts = [max(1, (len(stages) * (k + 1)) // depth) for k in range(depth)]     # even spread, last at end
        cols, done = None, 0
        for k, cut in enumerate(cuts):
            for stage in stages[done:cut]:
                cols = stage(cols)
            done = cut
            regs = []
            for c, col in enumerate(cols):
                regs.append([])
                for j, value in enumerate(col):
                    reg = Signal(Value.cast(value).shape(), name=f"q{k}_c{c}_{j}") if k < depth - 1 else self.o.payload.s[c]
                    with m.If(advance):
                        m.d.sync += reg.eq(value)
                    regs[-1].append(reg)
            cols = regs
            with m.If(advance):
                m.d.sync += valids[k].eq(take & (p.op == 1) if k == 0 else valids[k - 1])
        return m
