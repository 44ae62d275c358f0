"""The event-driven spiking core `SNNCore` (golden model: `sw_model.snn.golden`; docs: docs/snn.md).

`neurons` LIF neurons live in `lanes` parallel lanes: neuron n is lane n % lanes of group n // lanes. Two
memories (amaranth.lib.memory, synchronous read):
- weights: one word per (axon, group) holding `lanes` signed weights, at address {axon, group} (the group index
  padded to a power of two); written through the input stream (Op.WRITE beats).
- state: one word per group holding (v, ref) of its `lanes` neurons; its read port is transparent for its write
  port, so a read-modify-write of the same group in back-to-back cycles sees the new value.

Input stream `i` (one beat per event): op (Op: SPIKE/TICK/WRITE/CLEAR), addr (axon), group, w[lanes].
Output stream `o`: kind (Out: SPIKE/TICK/ERROR), addr (neuron, or the offending address), t (timestep counter).

Cycle model, cycles an input beat holds the input stream when the output is never stalled (`stream_model` cost):
SPIKE G = ceil(neurons / lanes) (a 2-stage pipeline: read weights+state, then add and write back; one group per
cycle), WRITE 1, CLEAR G, TICK 2G + S + 1 (per group: read, then fire/reset/leak/write; then one cycle per output
spike S of the group; then the TICK marker), an out-of-range SPIKE/WRITE 1 (an ERROR beat is sent instead; the
event is dropped). Stream rules: o.valid never waits for o.ready; o.payload is stable while o.valid and not
o.ready; the input payload is read while i.valid and before i.ready, so the source must hold it (stream rule).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from sw_model.snn.config import SNNCoreConfig
from sw_model.snn.golden import Op
from sw_model.snn.golden import Out as OutKind


class _State(enum.Enum, shape=3):
    """Dispatch FSM states (a Switch with a Default, so the Verilog case statement is complete)."""
    IDLE = 0
    READ = 1
    FIRE = 2
    EMIT = 3
    DONE = 4


def in_layout(cfg: SNNCoreConfig) -> data.StructLayout:
    return data.StructLayout({"op": 2, "addr": cfg.addr_bits, "group": max(1, ceil_log2(cfg.groups)),
                              "w": data.ArrayLayout(signed(cfg.weight_bits), cfg.lanes)})


def out_layout(cfg: SNNCoreConfig) -> data.StructLayout:
    return data.StructLayout({"kind": 2, "addr": max(cfg.addr_bits, (cfg.neurons - 1).bit_length(), 1),
                              "t": cfg.time_bits})


class SNNCore(wiring.Component):
    """Event-driven LIF core: spike events add weight rows to the membrane potentials (`lanes` neurons per cycle),
    TICK beats fire/reset/leak every neuron and emit the spikes in ascending neuron order, then a TICK marker.
    Work per spike event: ceil(neurons / lanes) cycles, independent of the other inputs (event-driven)."""

    # How a system's RUN counts this engine's outputs, whose number depends on the data: each input beat with
    # op == TICK gives exactly one output beat with kind == TICK, after the spikes of its timestep.
    RUN_MARKER = {"in_field": "op", "in_value": int(Op.TICK), "out_field": "kind", "out_value": int(OutKind.TICK)}

    def __init__(self, config: SNNCoreConfig):
        self.config = config
        super().__init__({"i": In(stream.Signature(in_layout(config))),
                          "o": Out(stream.Signature(out_layout(config)))})

    def timing(self) -> dict:
        g = self.config.groups
        return {"latency": None, "ii": None,
                "cycles": {"spike": g, "write": 1, "clear": g, "tick": f"{2 * g} + spikes + 1", "error": 1}}

    def _fix(self, total, symmetric=False):
        """Saturate (or wrap) a wide sum into the signed state range."""
        cfg = self.config
        lo, hi = cfg.state_range
        if cfg.saturate:
            lo += symmetric
            return Mux(total > hi, hi, Mux(total < lo, lo, total))
        return total[:cfg.state_bits].as_signed()

    def _decay(self, m, v, factor: int):
        """trunc0(v * factor / 4096): magnitude times a constant, shifted, sign restored."""
        mag = Signal(self.config.state_bits + 13)
        m.d.comb += mag.eq((Mux(v < 0, -v, v).as_unsigned()[:self.config.state_bits] * factor) >> 12)
        return Mux(v < 0, -mag, mag)

    def _leak(self, m, v):
        cfg = self.config
        if cfg.leak == "shift":
            return v - (v >> cfg.leak_shift)
        if cfg.leak == "mult":
            return self._decay(m, v, 4096 - cfg.decay)
        return v

    def _compare(self, v):
        cfg = self.config
        return (v >= cfg.threshold) if cfg.compare == "ge" else (v > cfg.threshold)

    def _reset(self, v):
        return Const(0, self.config.state_bits) if self.config.reset == "hard" else v - self.config.threshold

    def _tick_lif(self, m, k, old, new):
        """LIF boundary of one lane: returns the fire bit, drives the new state."""
        refr = old.ref != 0
        fire = ~refr & self._compare(old.v)
        after = Signal(signed(self.config.state_bits), name=f"after_reset{k}")
        m.d.comb += [after.eq(Mux(fire, self._reset(old.v), old.v)),
                     new.v.eq(Mux(refr, old.v, self._leak(m, after))),
                     new.ref.eq(Mux(refr, old.ref - 1, Mux(fire, self.config.refractory, 0)))]
        return fire

    def _tick_cuba(self, m, k, old, new):
        """CUBA boundary of one lane (Lava order): current, then voltage, then fire and reset; a <- 0."""
        cfg = self.config
        u = Signal(signed(cfg.state_bits), name=f"u_next{k}")
        v = Signal(signed(cfg.state_bits), name=f"v_next{k}")
        m.d.comb += [u.eq((self._decay(m, old.u, 4095 - cfg.du) + (old.a << cfg.input_shift))[:cfg.state_bits]),
                     v.eq(self._fix(self._decay(m, old.v, 4096 - cfg.decay) + u, symmetric=True))]
        fire = self._compare(v)
        m.d.comb += [new.u.eq(u), new.v.eq(Mux(fire, self._reset(v), v))]
        return fire

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        G, M, s = cfg.groups, cfg.lanes, cfg.state_bits
        gbits = ceil_log2(G)
        cuba = cfg.model == "cuba"
        if cuba:
            lane_state = data.StructLayout({"a": signed(s), "u": signed(s), "v": signed(s)})
        else:
            lane_state = data.StructLayout({"v": signed(s), "ref": unsigned(cfg.ref_bits)})

        m.submodules.wmem = wmem = Memory(shape=data.ArrayLayout(signed(cfg.weight_bits), M),
                                          depth=cfg.axons << gbits, init=[])
        w_wr = wmem.write_port()
        w_rd = wmem.read_port()
        m.submodules.smem = smem = Memory(shape=data.ArrayLayout(lane_state, M), depth=G, init=[])
        s_wr = smem.write_port()
        s_rd = smem.read_port(transparent_for=(s_wr,))

        p = self.i.payload
        g = Signal(max(1, gbits))                    # group counter of the beat being processed
        last_group = g == G - 1
        t = Signal(cfg.time_bits)
        base = Signal(range(G * M + 1))              # g * lanes during a tick (no multiplier)
        pending = Signal(M)                          # fired lanes of the current group not yet sent
        # Lanes past `neurons` in the last group exist in memory but never fire.
        tail = cfg.neurons - (G - 1) * M
        active = Mux(last_group, Const((1 << tail) - 1, M), Const((1 << M) - 1, M))

        # Stage 1 of the spike/clear pipeline: the group read in the previous cycle is updated and written back.
        s1_valid, s1_clear, s1_g = Signal(), Signal(), Signal.like(g)
        m.d.sync += s1_valid.eq(0)
        with m.If(s1_valid):
            m.d.comb += [s_wr.addr.eq(s1_g), s_wr.en.eq(1)]
            for k in range(M):
                old, new = s_rd.data[k], s_wr.data[k]
                with m.If(~s1_clear):
                    m.d.comb += new.eq(old)
                    if cuba:
                        m.d.comb += new.a.eq(self._fix(old.a + w_rd.data[k]))
                    else:
                        with m.If(old.ref == 0):
                            m.d.comb += new.v.eq(self._fix(old.v + w_rd.data[k]))

        def issue(clear):
            m.d.comb += [w_rd.addr.eq(Cat(g[:gbits], p.addr)), s_rd.addr.eq(g)]
            m.d.sync += [s1_valid.eq(1), s1_clear.eq(clear), s1_g.eq(g), g.eq(g + 1)]
            with m.If(last_group):
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += g.eq(0)

        def error():
            m.d.comb += [self.o.valid.eq(1), self.o.payload.kind.eq(OutKind.ERROR), self.o.payload.addr.eq(p.addr),
                         self.o.payload.t.eq(t), self.i.ready.eq(self.o.ready)]

        def next_group():
            with m.If(last_group):
                m.d.sync += g.eq(0)
                m.d.sync += state.eq(_State.DONE)
            with m.Else():
                m.d.sync += [g.eq(g + 1), base.eq(base + M)]
                m.d.sync += state.eq(_State.READ)

        lowest = Signal(range(M))
        for k in reversed(range(M)):
            with m.If(pending[k]):
                m.d.comb += lowest.eq(k)

        state = Signal(_State)
        # The timestep-boundary update of the group just read, computed outside the FSM (used in FIRE) so that
        # no lane signal is assigned per FSM state (keeps the Verilog free of incomplete case statements).
        ticked = Signal(data.ArrayLayout(lane_state, M))
        fired = Signal(M)
        for k in range(M):
            tick = self._tick_cuba if cuba else self._tick_lif
            m.d.comb += fired[k].eq(tick(m, k, s_rd.data[k], ticked[k]))

        # If/Elif chains rather than Switch: Amaranth prunes empty Switch arms per signal, and Verilator -Wall
        # then flags every such case statement as incomplete.
        with m.If(state == _State.IDLE):
            with m.If(self.i.valid):
                with m.If(p.op == Op.SPIKE):
                    with m.If(p.addr < cfg.axons):
                        issue(clear=0)
                    with m.Else():
                        error()
                with m.Elif(p.op == Op.WRITE):
                    with m.If((p.addr < cfg.axons) & (p.group < G)):
                        m.d.comb += [w_wr.addr.eq(Cat(p.group[:gbits], p.addr)), w_wr.data.eq(p.w),
                                     w_wr.en.eq(1), self.i.ready.eq(1)]
                    with m.Else():
                        error()
                with m.Elif(p.op == Op.CLEAR):
                    issue(clear=1)
                    with m.If(last_group):
                        m.d.sync += t.eq(0)
                with m.Else():                 # TICK; this cycle reads group 0 (g is 0 between beats)
                    m.d.comb += s_rd.addr.eq(g)
                    m.d.sync += base.eq(0)
                    m.d.sync += state.eq(_State.FIRE)
        with m.Elif(state == _State.READ):
            m.d.comb += s_rd.addr.eq(g)
            m.d.sync += state.eq(_State.FIRE)
        with m.Elif(state == _State.FIRE):
            m.d.comb += [s_wr.addr.eq(g), s_wr.en.eq(1), s_wr.data.eq(ticked)]
            m.d.sync += pending.eq(fired & active)
            with m.If((fired & active) != 0):
                m.d.sync += state.eq(_State.EMIT)
            with m.Else():
                next_group()
        with m.Elif(state == _State.EMIT):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.kind.eq(OutKind.SPIKE),
                         self.o.payload.addr.eq(base + lowest), self.o.payload.t.eq(t)]
            with m.If(self.o.ready):
                rest = pending & (pending - 1)
                m.d.sync += pending.eq(rest)
                with m.If(rest == 0):
                    next_group()
        with m.Else():                                          # DONE
            m.d.comb += [self.o.valid.eq(1), self.o.payload.kind.eq(OutKind.TICK), self.o.payload.t.eq(t),
                         self.i.ready.eq(self.o.ready)]
            with m.If(self.o.ready):
                m.d.sync += t.eq(t + 1)
                m.d.sync += state.eq(_State.IDLE)
        return m
