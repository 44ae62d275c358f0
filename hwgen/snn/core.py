"""The event-driven spiking core `SNNCore` (golden model: `sw_model.snn.golden`; docs: docs/snn.md).

`neurons` LIF neurons live in `lanes` parallel lanes: neuron n is lane n % lanes of group n // lanes. Two
memories (amaranth.lib.memory, synchronous read):
- weights: one word per (axon, group) holding `lanes` signed weights, at address {axon, group} (the group index
  padded to a power of two); written through the input stream (Op.WRITE beats).
- state: one word per group holding (v, ref) (CUBA: a, u, v, ref) of its `lanes` neurons, initialised to
  (init_v, init_u); its read port is transparent for its write port, so a read in the cycle of a write to the same
  group sees the new value.

Input stream `i` (one beat per event): op (Op: SPIKE/TICK/WRITE/CLEAR), addr (axon), group, w[lanes].
Output stream `o`: kind (Out: SPIKE/TICK/ERROR), addr (neuron, or the offending address), t (timestep counter).

Pipelining (`pipeline` = P): P = 0 updates straight from the memories' read data; P >= 1 registers both memories'
read data first (the ECP5 block RAM's clock-to-out is ~6 ns) and puts P - 1 free-running register slices into the
timestep-boundary datapath (where: `_CUTS`). Cycle model (`SNNCoreConfig.cycles`, the `stream_model` cost), cycles
an input beat holds the input stream when the output is never stalled, G = ceil(neurons / lanes): SPIKE G (one
group per cycle: read weights + state, [read register], add and write back; with P >= 1 and G = 1: 2, so that the
next read sees the write), WRITE 1, CLEAR as SPIKE, TICK (2 + P) G + S + 1 (per group: read, wait P cycles,
fire/reset/leak/write; then one cycle per output spike S of the group; then the TICK marker), an out-of-range
SPIKE/WRITE 1 (an ERROR beat is sent instead; the event is dropped). Stream rules: o.valid never waits for o.ready; o.payload is stable while o.valid and not
o.ready; the input payload is read while i.valid and before i.ready, so the source must hold it (stream rule).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
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
    WAIT = 5


# Where the register slices of the timestep-boundary datapath go, best cut first (a cut after stage k of the
# model's stage list). CUBA: after the constant multiplies (DSP), after the current/bias sums, after the
# magnitudes, after the voltage clip, after the shift/sign restore. LIF: after the bias add, after fire/reset,
# after the leak's multiply.
_CUTS = {"cuba": (2, 4, 1, 5, 3, 6), "lif": (2, 1, 4, 3, 5)}


def in_layout(cfg: SNNCoreConfig) -> data.StructLayout:
    return data.StructLayout({"op": 2, "addr": cfg.addr_bits, "group": max(1, ceil_log2(cfg.groups)),
                              "w": data.ArrayLayout(signed(cfg.weight_bits), cfg.lanes)})


def out_layout(cfg: SNNCoreConfig) -> data.StructLayout:
    return data.StructLayout({"kind": 2, "addr": max(cfg.addr_bits, (cfg.neurons - 1).bit_length(), 1),
                              "t": cfg.time_bits})


class SNNCore(wiring.Component):
    """Event-driven LIF / Loihi CUBA core: spike events add weight rows to the membrane potentials (LIF) or input
    sums (CUBA), `lanes` neurons per cycle; TICK beats run the timestep update of every neuron (bias, decays,
    fire, reset, refractory) and emit the spikes in ascending neuron order, then a TICK marker. Work per spike
    event: ceil(neurons / lanes) cycles, independent of the other inputs (event-driven). Timing: module docstring."""

    # How a system's RUN counts this engine's outputs, whose number depends on the data: each input beat with
    # op == TICK gives exactly one output beat with kind == TICK, after the spikes of its timestep.
    RUN_MARKER = {"in_field": "op", "in_value": int(Op.TICK), "out_field": "kind", "out_value": int(OutKind.TICK)}

    def __init__(self, config: SNNCoreConfig):
        self.config = config
        super().__init__({"i": In(stream.Signature(in_layout(config))),
                          "o": Out(stream.Signature(out_layout(config)))})

    def timing(self) -> dict:
        cfg = self.config
        return {"latency": None, "ii": None, "pipeline": cfg.pipeline,
                "cycles": {"spike": cfg.cycles("spike"), "write": 1, "clear": cfg.cycles("clear"),
                           "tick": f"{cfg.cycles('tick') - 1} + spikes + 1", "error": 1}}

    def _fix(self, total, symmetric=False):
        """Saturate (or wrap) a wide sum into the signed state range."""
        cfg = self.config
        lo, hi = cfg.state_range
        if cfg.saturate:
            lo += symmetric
            return Mux(total > hi, hi, Mux(total < lo, lo, total))
        return total[:cfg.state_bits].as_signed()

    def _compare(self, v):
        cfg = self.config
        return (v >= cfg.threshold) if cfg.compare == "ge" else (v > cfg.threshold)

    def _reset(self, v):
        return Const(0, self.config.state_bits) if self.config.reset == "hard" else v - self.config.threshold

    def _stages(self):
        """The timestep-boundary update of one lane as a list of combinational stages, each a function
        (dict of values) -> dict; the input dict holds the lane's old state (fields of the state word), the last
        stage's output holds `new` (the new state fields) and `fire`. Register slices go between stages."""
        cfg = self.config
        s, h = cfg.state_bits, 1 << (cfg.state_bits - 1)

        def sig(x, shape, name):
            out = Signal(shape, name=name)
            self._m.d.comb += out.eq(x)
            return out

        def mag(x, name):                         # |x| and its sign: the decays round toward zero (Lava)
            return {name + "_neg": x < 0, name + "_mag": sig(Mux(x < 0, -x, x).as_unsigned()[:s], s, name + "_mag")}

        lo_bits = min(s, 17)                      # one ECP5 MULT18X18D / DSP48 input per partial product

        def prod(d, name, factor):
            """The constant decay factor times the magnitude, as two partial products (low 17 bits, the rest) so
            that the DSP output is registered before the partial products are added (DSP + adder missed 100 MHz)."""
            mag = d[name + "_mag"]
            parts = {name + "_prod": sig(mag[:lo_bits] * factor, lo_bits + 13, name + "_prod")}
            if s > lo_bits:
                parts[name + "_prodhi"] = sig(mag[lo_bits:] * factor, s - lo_bits + 13, name + "_prodhi")
            return parts

        def signed_shift(d, name):                # trunc0(x * factor / 4096): magnitude >> 12, sign restored
            total = d[name + "_prod"]
            if name + "_prodhi" in d:
                total = total + (d[name + "_prodhi"] << lo_bits)
            m = total >> 12
            return sig(Mux(d[name + "_neg"], -m, m), signed(s + 1), name + "_dec")

        keep = lambda d, *names: {k: d[k] for k in names}    # noqa: E731

        if cfg.model == "cuba":
            def st_mag(d):
                return {**mag(d["u"], "u"), **mag(d["v"], "v"), "a": d["a"], "v": d["v"], "ref": d["ref"]}

            def st_prod(d):
                return {**keep(d, "u_neg", "v_neg", "a", "v", "ref"), **prod(d, "u", 4095 - cfg.du),
                        **prod(d, "v", 4096 - cfg.decay)}

            def st_dec(d):
                return {**keep(d, "a", "v", "ref"), "u_dec": signed_shift(d, "u"), "v_dec": signed_shift(d, "v")}

            def st_sums(d):
                # Lava's current wrap into (-2^(s-1), 2^(s-1)]: the low s bits as a signed r, except that r = -2^(s-1)
                # stands for +2^(s-1) (u is stored with s + 1 bits).
                total = d["u_dec"] + (d["a"] << cfg.input_shift)
                r = sig(total[:s].as_signed(), signed(s), "u_low")
                u = sig(Mux(r == -h, h, r), signed(s + 1), "u_new")
                return {**keep(d, "v", "ref"), "u": u, "vb": sig(d["v_dec"] + cfg.bias, signed(s + 2), "v_bias")}

            def st_clip(d):
                return {**keep(d, "v", "ref", "u"),
                        "v_new": sig(self._fix(d["vb"] + d["u"], symmetric=True), signed(s), "v_clip")}

            def st_fire(d):
                refr = d["ref"] != 0
                v1 = Mux(refr, d["v"], d["v_new"])
                fire = ~refr & self._compare(v1)
                return {"fire": fire, "new": {"a": 0, "u": d["u"], "v": Mux(fire, self._reset(v1), v1),
                                              "ref": Mux(refr, d["ref"] - 1, Mux(fire, cfg.refractory, 0))}}
            return [st_mag, st_prod, st_dec, st_sums, st_clip, st_fire]

        def st_bias(d):
            refr = d["ref"] != 0
            vb = d["v"] if not cfg.bias else Mux(refr, d["v"], self._fix(d["v"] + cfg.bias))
            return {"refr": refr, "v": sig(vb, signed(s), "v_bias"), "ref": d["ref"]}

        def st_reset(d):
            fire = ~d["refr"] & self._compare(d["v"])
            return {"refr": d["refr"], "fire": fire, "ref": d["ref"],
                    "v": sig(Mux(fire, self._reset(d["v"]), d["v"]), signed(s), "v_reset")}

        def st_leak_mag(d):
            return {**d, **mag(d["v"], "v")} if cfg.leak == "mult" else d

        def st_leak_prod(d):
            if cfg.leak != "mult":
                return d
            return {**keep(d, "refr", "fire", "ref", "v", "v_neg"), **prod(d, "v", 4096 - cfg.decay)}

        def st_leak(d):
            v = d["v"]
            if cfg.leak == "shift":
                leaked = v - (v >> cfg.leak_shift)
            elif cfg.leak == "mult":
                leaked = signed_shift(d, "v")
            else:
                leaked = v
            return {"fire": d["fire"], "new": {"v": Mux(d["refr"], v, leaked),
                                               "ref": Mux(d["refr"], d["ref"] - 1, Mux(d["fire"], cfg.refractory, 0))}}
        return [st_bias, st_reset, st_leak_mag, st_leak_prod, st_leak]

    def _run_stages(self, m, stages, values, slices: int, name: str):
        """Stages with `slices` free-running register slices (no enables: the FSM waits a fixed number of cycles
        for a group to come out)."""
        cuts = sorted(_CUTS[self.config.model][:slices])
        extra = slices - len(cuts)                 # more slices than cut points: extra registers at the end
        cuts += [len(stages)] * extra
        done = 0
        for k, cut in enumerate(cuts):
            for st in stages[done:cut]:
                values = st(values)
            done = cut
            values = self._register(m, values, f"{name}_p{k}")
        for st in stages[done:]:
            values = st(values)
        return values

    def _register(self, m, values, name):
        if isinstance(values, dict):
            return {k: self._register(m, v, f"{name}_{k}") for k, v in values.items()}
        v = Value.cast(values)
        reg = Signal(v.shape(), name=name)
        m.d.sync += reg.eq(v)
        return reg

    def elaborate(self, platform):
        cfg = self.config
        m = self._m = Module()
        G, M, s, P = cfg.groups, cfg.lanes, cfg.state_bits, cfg.pipeline
        gbits = ceil_log2(G)
        cuba = cfg.model == "cuba"
        if cuba:      # u holds Lava's range (-2^(s-1), 2^(s-1)]: one more bit
            lane_state = data.StructLayout({"a": signed(s), "u": signed(s + 1), "v": signed(s),
                                            "ref": unsigned(cfg.ref_bits)})
            init_lane = {"a": 0, "u": cfg.init_u, "v": cfg.init_v, "ref": 0}
        else:
            lane_state = data.StructLayout({"v": signed(s), "ref": unsigned(cfg.ref_bits)})
            init_lane = {"v": cfg.init_v, "ref": 0}
        state_word = data.ArrayLayout(lane_state, M)

        m.submodules.wmem = wmem = Memory(shape=data.ArrayLayout(signed(cfg.weight_bits), M),
                                          depth=cfg.axons << gbits, init=[])
        w_wr = wmem.write_port()
        w_rd = wmem.read_port()
        # Power-on state = the state after CLEAR (init_v, init_u).
        m.submodules.smem = smem = Memory(shape=state_word, depth=G, init=[[init_lane] * M] * G)
        s_wr = smem.write_port()
        s_rd = smem.read_port(transparent_for=(s_wr,))
        init_word = Signal(state_word, init=[init_lane] * M)

        p = self.i.payload
        g = Signal(max(1, gbits))                    # group counter of the beat being processed
        last_group = g == G - 1
        t = Signal(cfg.time_bits)
        base = Signal(range(G * M + 1))              # g * lanes during a tick (no multiplier)
        pending = Signal(M)                          # fired lanes of the current group not yet sent
        # Lanes past `neurons` in the last group exist in memory but never fire.
        tail = cfg.neurons - (G - 1) * M
        active = Mux(last_group, Const((1 << tail) - 1, M), Const((1 << M) - 1, M))

        # pipeline >= 1: both memories' read data are registered before any arithmetic (the ECP5 block RAM's
        # clock-to-out alone is ~6 ns), free-running; the spike/tick paths below use the registered copy.
        if P:
            state_in, w_in = Signal(state_word), Signal(data.ArrayLayout(signed(cfg.weight_bits), M))
            m.d.sync += [state_in.eq(s_rd.data), w_in.eq(w_rd.data)]
        else:
            state_in, w_in = s_rd.data, w_rd.data

        # The spike/clear pipeline: issue (read) -> [P >= 1: read register] -> update and write back.
        s1_valid, s1_clear, s1_g = Signal(), Signal(), Signal.like(g)
        m.d.sync += s1_valid.eq(0)
        if P:
            wb_valid, wb_clear, wb_g = Signal(), Signal(), Signal.like(g)
            m.d.sync += [wb_valid.eq(s1_valid), wb_clear.eq(s1_clear), wb_g.eq(s1_g)]
        else:
            wb_valid, wb_clear, wb_g = s1_valid, s1_clear, s1_g
        with m.If(wb_valid):
            m.d.comb += [s_wr.addr.eq(wb_g), s_wr.en.eq(1)]
            with m.If(wb_clear):
                m.d.comb += s_wr.data.eq(init_word)
            with m.Else():
                for k in range(M):
                    old, new = state_in[k], s_wr.data[k]
                    m.d.comb += new.eq(old)
                    if cuba:
                        m.d.comb += new.a.eq(self._fix(old.a + w_in[k]))
                    else:
                        with m.If(old.ref == 0):
                            m.d.comb += new.v.eq(self._fix(old.v + w_in[k]))

        # With a read register a 1-group core would read a group in the cycle before its previous update is
        # written; such an event takes 2 cycles (issue, then a bubble) so that the next read sees the write.
        bubble = Signal()
        m.d.sync += bubble.eq(0)

        def issue(clear):
            if P and G == 1:
                with m.If(bubble):
                    m.d.comb += self.i.ready.eq(1)
                with m.Else():
                    m.d.comb += [w_rd.addr.eq(Cat(g[:gbits], p.addr)), s_rd.addr.eq(g)]
                    m.d.sync += [s1_valid.eq(1), s1_clear.eq(clear), s1_g.eq(g), bubble.eq(1)]
                return
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
        wait = Signal(range(P + 1))
        # The timestep-boundary update of the group read P + 1 cycles earlier, computed outside the FSM (used in
        # FIRE) so that no lane signal is assigned per FSM state (keeps the Verilog free of incomplete case
        # statements). Its P - 1 register slices (after the read register) run free: the FSM waits for them.
        ticked = Signal(state_word)
        fired = Signal(M)
        stages = self._stages()
        for k in range(M):
            old = state_in[k]
            values = {f: getattr(old, f) for f in lane_state.members}
            out = self._run_stages(m, stages, values, max(0, P - 1), f"lane{k}")
            m.d.comb += fired[k].eq(out["fire"])
            for f in lane_state.members:
                m.d.comb += getattr(ticked[k], f).eq(out["new"][f])

        def read_group():
            m.d.comb += s_rd.addr.eq(g)
            if P:
                m.d.sync += [wait.eq(P), state.eq(_State.WAIT)]
            else:
                m.d.sync += state.eq(_State.FIRE)

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
                    read_group()
                    m.d.sync += base.eq(0)
        with m.Elif(state == _State.READ):
            read_group()
        with m.Elif(state == _State.WAIT):
            m.d.sync += wait.eq(wait - 1)
            with m.If(wait == 1):
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
