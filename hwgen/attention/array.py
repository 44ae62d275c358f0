"""One-pass (FuseMax / FlashAttention-2 cascade) attention array: an M0 x P0 2D PE array and a P0-lane 1D array.

Stream protocol (one input stream `i`, one output stream `o`; valid never waits for ready, payloads stay stable
while stalled):
- a query tile starts with 1..P0 beats of kind 0 (QUERY): `x` = one Q row; then any number N >= 1 of beats of
  kind 1 (KEYVALUE): `x` = one K row, `v` = the V row of the same key; `last` = 1 on the final K/V beat. The
  sequence length is therefore a runtime quantity; nothing in the design depends on it.
- while K/V beats stream in, `kind` is ignored (only the first K/V beat of a tile needs kind = 1).
- a QUERY beat with `last` = 1 closes the tile with zero keys: the array answers with all-zero rows.
- causal configs add `pos` (the query's position) to the payload; key m of the K/V stream (counted from 0) is
  masked for a query at position < m.
- after the final K/V beat the array sends one beat per query row on `o` (`out` = that row, signed,
  `out_frac` fractional bits), in query order, and then accepts the next query tile.

Per key tile (M0 keys, the last one may be partial): S phase (head_dim cycles, scores accumulate in the PEs),
G1 (column max -> running max, 1 + mul_pipe + max_pipe cycles: the column max trees have max_pipe register slices),
G2 (exponentials -> PE prob registers, corrections, 1 + exp_pipe cycles), PV phase (head_dim cycles, prob x V
registered, summed down each column by a tree with sum_pipe register slices, registered, into the lanes, which
rotate head_dim + 1 + lane_pipe times lane_delay = 2 + sum_pipe cycles behind; the lanes take the probability
sums and start RD x PRM rd_delay = sum_pipe + lane_pipe cycles after the first PV cycle). `mult` = "lmul" / "lmul-products": the multipliers are
fixed-point L-Muls (hwgen/attention/lmul.py), same timing. A new tile starts in the cycle
after the previous PV phase when its K/V rows are in the fill buffer. Cycle model: `sw_model.attention.timing`.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.attention.lane import Lane, LaneControl
from hwgen.attention.pe import PE, PEControl
from hwgen.blocks.trees import maximum, registered_tree
from sw_model.attention.config import AttentionConfig


class Mode(enum.Enum, shape=3):
    LOADQ = 0    # accepting Q rows (and the first K/V row)
    KEYS = 1     # streaming K/V tiles through the arrays
    RECIP = 2    # reciprocal of the running denominators
    NORM = 3     # final normalisation of the running numerators
    OUT = 4      # sending output rows


class Phase(enum.Enum, shape=3):
    IDLE = 0
    S = 1
    G1 = 2
    G2 = 3
    PV = 4


def attention_layouts(cfg: AttentionConfig):
    d, b = cfg.head_dim, cfg.data_bits
    fields = {"x": data.ArrayLayout(signed(b), d), "v": data.ArrayLayout(signed(b), d), "kind": 1, "last": 1}
    if cfg.causal:
        fields["pos"] = cfg.max_keys_log2                  # query position (QUERY beats only)
    i = data.StructLayout(fields)
    o = data.StructLayout({"out": data.ArrayLayout(signed(cfg.out_width), d)})
    return i, o


class AttentionArray(wiring.Component):
    """One-pass attention of up to P0 query rows against a runtime-length K/V stream (see module docstring).

    Storage: Q (P0 x E), a K/V fill buffer and a K/V compute buffer (M0 x E each), per-PE score and probability
    registers, per-lane RM/PRM/RD/RNV (F elements)/reciprocal: O(M0 x P0 + (M0 + P0) x E), never O(N)."""

    def __init__(self, config: AttentionConfig):
        self.config = config
        i, o = attention_layouts(config)
        super().__init__({"i": In(stream.Signature(i)), "o": Out(stream.Signature(o))})

    def timing(self) -> dict:
        cfg = self.config
        return {"latency": None, "ii": None, "pe_2d": cfg.m0 * cfg.p0, "lanes_1d": cfg.p0,
                "cycle_model": "sw_model.attention.timing.cycle_model",
                "tile_cycles": cfg.tile_cycles, "recip_cycles": cfg.recip_bits,
                "lane_delay": cfg.lane_delay, "norm_cycles": cfg.norm_cycles, "rd_delay": cfg.rd_delay,
                "mult": cfg.mult, "mul_pipe": cfg.mul_pipe, "max_pipe": cfg.max_pipe, "exp_pipe": cfg.exp_pipe, "sum_pipe": cfg.sum_pipe,
                "lane_pipe": cfg.lane_pipe}

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        d, M0, P0, b = cfg.head_dim, cfg.m0, cfg.p0, cfg.data_bits

        mode = Signal(Mode)
        phase = Signal(Phase)
        c = Signal(range(max(cfg.norm_cycles, cfg.mul_pipe + cfg.max_pipe, cfg.exp_pipe) + 1))   # phase / normalisation counter
        n_q = Signal(range(P0 + 1))
        oq = Signal(range(P0 + 1))
        first = Signal(init=1)
        was_first = Signal()

        q = [[Signal(signed(b), name=f"q{p}_{e}") for e in range(d)] for p in range(P0)]
        kf = [[Signal(signed(b), name=f"kf{r}_{e}") for e in range(d)] for r in range(M0)]
        vf = [[Signal(signed(b), name=f"vf{r}_{e}") for e in range(d)] for r in range(M0)]
        kc = [[Signal(signed(b), name=f"kc{r}_{e}") for e in range(d)] for r in range(M0)]
        vc = [[Signal(signed(b), name=f"vc{r}_{e}") for e in range(d)] for r in range(M0)]
        fill_cnt, fill_n, n_valid = Signal(range(M0 + 1)), Signal(range(M0 + 1)), Signal(range(M0 + 1))
        fill_full, fill_last, seen_last, tile_last = Signal(), Signal(), Signal(), Signal()
        if cfg.causal:                                     # query positions; position of the tile's key row 0
            qpos = [Signal(cfg.max_keys_log2, name=f"qpos{p}") for p in range(P0)]
            kbase, knext = Signal(cfg.max_keys_log2 + 1), Signal(cfg.max_keys_log2 + 1)

        # strobes to the PEs and the lanes, decoded once here and shared by all of them
        pe_ctl, lane_ctl = Signal(PEControl), Signal(LaneControl)
        s_phase, pv_phase = phase == Phase.S, phase == Phase.PV
        # G1 and G2 strobe in their last cycle, once the max trees / exponential registers have caught up
        g1_now = (phase == Phase.G1) & (c == cfg.mul_pipe + cfg.max_pipe)
        g2_now = (phase == Phase.G2) & (c == cfg.exp_pipe)
        m.d.comb += [pe_ctl.step.eq(s_phase), pe_ctl.clear.eq(c == 0), pe_ctl.pv.eq(pv_phase),
                     pe_ctl.load_prob.eq(g2_now)]
        m.d.comb += [lane_ctl.first.eq(first), lane_ctl.was_first.eq(was_first),
                     lane_ctl.g1.eq(g1_now), lane_ctl.g2.eq(g2_now), lane_ctl.norm_step.eq(mode == Mode.NORM)]
        # the lanes trail the PV phase by lane_delay cycles (registered PE products, the sum_pipe slices of the
        # column trees, registered column sums) and rotate 1 + lane_pipe more times after it (lane_tail: the
        # bubbles of the pipelined lane multiplier); the probability sums (rd_step) and the reciprocal's start
        # (recip_go) wait for the sum_pipe slices of the SLD trees and the lane_pipe slices of RD x PRM
        pv_d = [pv_phase]
        for k in range(1, cfg.lane_delay + 1):
            pv_d.append(Signal(name=f"pv_d{k}"))
            m.d.sync += pv_d[k].eq(pv_d[k - 1])
        lane_step, rd_step2 = pv_d[-1], Signal()
        tail_d = [lane_step]                               # lane_step delayed by 1 .. 1 + lane_pipe cycles
        for k in range(1, cfg.lane_pipe + 2):
            tail_d.append(Signal(name=f"tail_d{k}"))
            m.d.sync += tail_d[k].eq(tail_d[k - 1])
        rd_d, last_d = [pv_phase & (c == 0)], [pv_phase & (c == 0) & tile_last]
        for k in range(1, cfg.rd_delay + 1):
            rd_d.append(Signal(name=f"rd_d{k}"))
            last_d.append(Signal(name=f"last_d{k}"))
            m.d.sync += [rd_d[k].eq(rd_d[k - 1]), last_d[k].eq(last_d[k - 1])]
        m.d.sync += rd_step2.eq(rd_d[-1])
        m.d.comb += [lane_ctl.lane_step.eq(lane_step), lane_ctl.lane_tail.eq(Cat(*tail_d[1:]).any()),
                     lane_ctl.rd_step.eq(rd_d[-1]), lane_ctl.rd_step2.eq(rd_step2)]
        lanes_busy = Signal()                              # a lane rotation is due in the next cycle or later
        m.d.comb += lanes_busy.eq(Cat(*pv_d[1:], *tail_d[1:-1]).any())

        # ---- input side: Q rows and the K/V fill buffer ----
        payload = self.i.payload
        m.d.comb += self.i.ready.eq((mode == Mode.LOADQ) | ((mode == Mode.KEYS) & ~fill_full & ~seen_last))
        accept = self.i.valid & self.i.ready
        with m.If(accept):
            with m.If((mode == Mode.KEYS) | payload.kind):
                for r in range(M0):
                    with m.If(fill_cnt == r):
                        m.d.sync += [kf[r][e].eq(payload.x[e]) for e in range(d)]
                        m.d.sync += [vf[r][e].eq(payload.v[e]) for e in range(d)]
                with m.If((fill_cnt == M0 - 1) | payload.last):
                    m.d.sync += [fill_full.eq(1), fill_n.eq(fill_cnt + 1), fill_last.eq(payload.last),
                                 fill_cnt.eq(0)]
                with m.Else():
                    m.d.sync += fill_cnt.eq(fill_cnt + 1)
                m.d.sync += [seen_last.eq(payload.last), mode.eq(Mode.KEYS)]
            with m.Else():
                for p in range(P0):
                    with m.If(n_q == p):
                        m.d.sync += [q[p][e].eq(payload.x[e]) for e in range(d)]
                        if cfg.causal:
                            m.d.sync += qpos[p].eq(payload.pos)
                with m.If(n_q != P0):                      # rows beyond P0 are dropped
                    m.d.sync += n_q.eq(n_q + 1)
                with m.If(payload.last):                   # zero keys: straight to the drain
                    m.d.sync += mode.eq(Mode.RECIP)

        # ---- compute sequencing of the 2D array ----
        # control strobes as plain expressions (continuous assigns, see the output mux below)
        recip_go = Signal()                                # RD is final after the next cycle (rd_step2)
        zero_keys = accept & (mode != Mode.KEYS) & ~payload.kind & payload.last
        m.d.comb += lane_ctl.recip_init.eq(recip_go | zero_keys)
        m.d.sync += recip_go.eq(last_d[-1])
        with m.If(phase == Phase.S):
            m.d.sync += c.eq(c + 1)
            m.d.sync += [q[p][e].eq(q[p][(e + 1) % d]) for p in range(P0) for e in range(d)]
            m.d.sync += [kc[r][e].eq(kc[r][e + 1]) for r in range(M0) for e in range(d - 1)]
            with m.If(c == d - 1):
                m.d.sync += [phase.eq(Phase.G1), c.eq(0)]
        with m.Elif(phase == Phase.G1):
            m.d.sync += c.eq(c + 1)
            with m.If(c == cfg.mul_pipe + cfg.max_pipe):
                m.d.sync += [phase.eq(Phase.G2), c.eq(0), first.eq(0), was_first.eq(first)]
        with m.Elif(phase == Phase.G2):
            m.d.sync += c.eq(c + 1)
            with m.If(c == cfg.exp_pipe):
                m.d.sync += [phase.eq(Phase.PV), c.eq(0)]
        with m.Elif(phase == Phase.PV):
            m.d.sync += c.eq(c + 1)
            m.d.sync += [vc[r][e].eq(vc[r][e + 1]) for r in range(M0) for e in range(d - 1)]
            with m.If(c == d - 1):
                m.d.sync += [phase.eq(Phase.IDLE), c.eq(0)]
                with m.If(tile_last):
                    m.d.sync += mode.eq(Mode.RECIP)
        can_start = fill_full & ((phase == Phase.IDLE) | (pv_phase & (c == d - 1)))
        with m.If(can_start):
            m.d.sync += [kc[r][e].eq(kf[r][e]) for r in range(M0) for e in range(d)]
            m.d.sync += [vc[r][e].eq(vf[r][e]) for r in range(M0) for e in range(d)]
            m.d.sync += [n_valid.eq(fill_n), tile_last.eq(fill_last), fill_full.eq(0),
                         phase.eq(Phase.S), c.eq(0)]
            if cfg.causal:
                m.d.sync += [kbase.eq(knext), knext.eq(knext + fill_n)]

        # ---- drain: reciprocal (recip_bits cycles, overlapping the last PV phase), normalisation (head_dim
        # cycles), output rows ----
        rc = Signal(range(cfg.recip_bits + 1))
        recip_busy, recip_done = Signal(), Signal()
        m.d.comb += lane_ctl.recip_step.eq(recip_busy)
        norm_enter = (mode == Mode.RECIP) & recip_done & ~lanes_busy
        m.d.comb += lane_ctl.norm_next.eq((mode == Mode.NORM) | norm_enter)   # NORM next cycle (or already)
        with m.If(lane_ctl.recip_init):
            m.d.sync += [recip_busy.eq(1), rc.eq(0)]
        with m.If(recip_busy):
            m.d.sync += rc.eq(rc + 1)
            with m.If(rc == cfg.recip_bits - 1):
                m.d.sync += [recip_busy.eq(0), recip_done.eq(1)]
        with m.If(norm_enter):
            m.d.sync += [mode.eq(Mode.NORM), c.eq(0), recip_done.eq(0)]
        with m.If(mode == Mode.NORM):                     # norm_cycles rotations of the pipelined ring
            m.d.sync += c.eq(c + 1)
            with m.If(c == cfg.norm_cycles - 1):
                m.d.sync += [mode.eq(Mode.OUT), c.eq(0)]
        done = Signal()
        m.d.comb += self.o.valid.eq((mode == Mode.OUT) & (oq < n_q))
        m.d.comb += done.eq((mode == Mode.OUT) & ((self.o.valid & self.o.ready & (oq == n_q - 1)) | (n_q == 0)))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += oq.eq(oq + 1)
        m.d.comb += lane_ctl.clear.eq(done)
        with m.If(done):
            m.d.sync += [mode.eq(Mode.LOADQ), oq.eq(0), n_q.eq(0), first.eq(1), seen_last.eq(0)]
            if cfg.causal:
                m.d.sync += knext.eq(0)

        # ---- the 2D array ----
        def keep(r, p):                                    # key row r takes part for query lane p
            if not cfg.causal:
                return r < n_valid
            k = Signal(name=f"keep{r}_{p}")
            m.d.comb += k.eq((r < n_valid) & (kbase + r <= qpos[p]))
            return k

        keeps = [[keep(r, p) for p in range(P0)] for r in range(M0)]
        pes = [[None] * P0 for _ in range(M0)]
        for r in range(M0):
            for p in range(P0):
                pes[r][p] = pe = m.submodules[f"pe{r}_{p}"] = PE(cfg)
                m.d.comb += [pe.ctl.eq(pe_ctl), pe.keep.eq(keeps[r][p]), pe.q.eq(q[p][0]), pe.k.eq(kc[r][0]),
                             pe.v.eq(vc[r][0])]
        # ---- the 1D array: per column, the max and sums down the M0 PEs feed lane p ----
        lanes = []
        for p in range(P0):
            col = [pes[r][p] for r in range(M0)]
            masked = []                                   # padding rows of a partial tile never win the max
            for r, pe in enumerate(col):
                sig = Signal.like(pe.logit, name=f"col{p}_masked{r}")
                lowest = -(1 << (cfg.logit_width - 1))
                if cfg.causal:                             # a causal mask may hide row 0 as well
                    m.d.comb += sig.eq(Mux(keeps[r][p], pe.logit, lowest))
                elif r:
                    m.d.comb += sig.eq(Mux(r >= n_valid, lowest, pe.logit))
                else:
                    m.d.comb += sig.eq(pe.logit)
                masked.append(sig)
            lane = m.submodules[f"lane{p}"] = Lane(cfg)
            add = lambda a, b: a + b  # noqa: E731
            sld = registered_tree(m, [pe.prob for pe in col], add, cfg.sum_pipe, f"col{p}_sld")
            slnv_now = registered_tree(m, [pe.pv_product for pe in col], add, cfg.sum_pipe, f"col{p}_slnv")
            # the lane's ports are exactly as wide as the trees (no bit of a sum is dropped or padded)
            assert (len(sld), len(slnv_now)) == (len(lane.sld), len(lane.slnv)), "lane_sum_shapes != the trees"
            slnv = Signal.like(lane.slnv, name=f"col{p}_slnv")    # the column sum, registered
            m.d.sync += slnv.eq(slnv_now)
            # the lane's max with RM counts as one more level when the max tree's slices are placed
            lm = registered_tree(m, masked, maximum, cfg.max_pipe, f"col{p}_max", consumer_levels=1)
            m.d.comb += [lane.ctl.eq(lane_ctl), lane.lm.eq(lm), lane.sld.eq(sld), lane.slnv.eq(slnv)]
            m.d.comb += [pe.rm.eq(lane.rm) for pe in col]
            lanes.append(lane)

        # Output row mux as a chain of Mux (continuous assigns in the Verilog), not an If chain: an If chain
        # becomes an `always @*` process, which Icarus runs only when one of its inputs changes; with all-zero
        # K/V nothing it reads changes before the first output (oq stays 0, RNV stays at its reset value 0), so
        # Icarus left the output X for the whole run (Verilator evaluates every process at time 0).
        for f in range(d):
            row = Const(0, cfg.out_width)
            for p in reversed(range(P0)):
                row = Mux(oq == p, lanes[p].rnv[f][:cfg.out_width], row)
            m.d.comb += self.o.payload.out[f].eq(row)
        return m
