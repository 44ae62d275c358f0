"""Sparse DSP chain (FlightLLM-style N:M): a DSP48-style MAC cascade whose per-stage activation mux skips
pruned weights, optionally cut into DSP groups with reduction nodes (several output rows per beat in N:M
modes). The mode (dense, 2:4, 1:4, 2:8, 4:8) is a field of every input beat, not a rebuild."""
from amaranth.hdl import Array, Cat, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from sw_model.sparse.config import SparseChainConfig
from sw_model.sparse.golden import ACT_BITS, INDEX_BITS, MODE_NM, SparseMode
from sw_model.sparse.group import rows_per_beat, stage_candidates


class Mode(enum.Enum, shape=3):
    """The gateware's view of sw_model.sparse.golden.SparseMode (same names and codes; the driver uses the IntEnum)."""
    DENSE = SparseMode.DENSE.value
    S2_4 = SparseMode.S2_4.value
    S1_4 = SparseMode.S1_4.value
    S2_8 = SparseMode.S2_8.value
    S4_8 = SparseMode.S4_8.value



class SparseChain(wiring.Component):
    """Dot products of weight rows with one activation vector per beat stream, one beat per cycle (G = 1:
    one row per vector; G > 1: up to G rows per vector, see below).

    Input beat `i.payload`: `w[stages]` (signed `weight_bits`: dense weights, or the compressed values of
    stages // N whole groups), `idx[stages]` (3 bits; an N:M stage uses the low log2(M) bits), `x[x_width]`
    (signed 8-bit activations of the beat's K window; packed: also `x2`), `mode` (`Mode`), `last` (ends a
    vector). Stage s in N:M mode multiplies w[s] by x[(s // N) * M + idx[s] % M]; dense: w[s] * x[s]; stages
    past the last whole group, and unknown mode codes, add 0.
    Output beat `o.payload`: `y` (signed `acc_bits`, the wrapped sum of all beats of the vector; packed: `y` for
    `x`, `y2` for `x2`).

    With `groups` G > 1 (see `sw_model.sparse.group`): the stages form G cascades of S/G DSPs, each starting
    from 0 and skewed from its own first stage; the beat holds R = `config.rows(mode)` weight rows (row r in
    stages r*S/R ..) over one shared activation window, stage s maps as `stage_candidates`; a registered
    reduction node sums the group outputs of each row (dense: all G), and `y`, `y2` become arrays of G lanes
    (lane r = row r; lanes >= R stay 0). Latency S/G + 4.

    Packed: every group sum is split into lanes with the sign correction and the overflow adjust
    (`sw_model.sparse.golden.lane_split`).

    Microarchitecture per stage s (local position t in its group): t skew registers, then the DSP48 registers
    A/B, M (product) and P (= P of stage s-1 + M; 0 + M at a group's first stage), so beat b's products meet in
    the cascade diagonally; the group's last P feeds the reduction / accumulator and the output register.
    Timing: II = 1; latency from a vector's last beat handshake to `o.valid` = S/G + 3 (+1 reduction register
    when G > 1) cycles when `o` is ready. The whole pipeline advances together when the output register is empty or being read
    (`i.ready = ~o.valid | o.ready`); valid never waits for ready and the output payload is stable while stalled.
    """

    def __init__(self, config: SparseChainConfig):
        self.config = config
        cfg = config
        fields = {"w": data.ArrayLayout(signed(cfg.weight_bits), cfg.stages),
                  "idx": data.ArrayLayout(unsigned(INDEX_BITS), cfg.stages),
                  "x": data.ArrayLayout(signed(ACT_BITS), cfg.x_width)}
        lane = signed(cfg.acc_bits)
        outs = {"y": lane if cfg.groups == 1 else data.ArrayLayout(lane, cfg.groups)}
        if cfg.packed:
            fields["x2"] = data.ArrayLayout(signed(ACT_BITS), cfg.x_width)
            outs["y2"] = outs["y"]
        fields.update(mode=Mode, last=1)
        super().__init__({"i": In(stream.Signature(data.StructLayout(fields))),
                          "o": Out(stream.Signature(data.StructLayout(outs)))})

    def timing(self) -> dict:
        """Latency counts from the handshake of a vector's last beat; rows_per_beat: outputs (rows) per vector."""
        cfg = self.config
        return {"latency": cfg.group_stages + 3 + (cfg.groups > 1), "ii": 1,
                "rows_per_beat": {md.name: cfg.rows(md) for md in cfg.modes}}

    def _select(self, m, s, xs):
        """The sparse mux of stage s: its activation(s) for the beat's mode and index (0 when idle)."""
        cfg, p = self.config, self.i.payload
        sel = [Signal(signed(ACT_BITS), name=f"sel{s}_{k}") for k in range(len(xs))]
        with m.Switch(p.mode):
            for md in cfg.modes:
                mm = MODE_NM[md][1]
                cand = stage_candidates(md, cfg.stages, cfg.groups, s)
                if cand is None:
                    continue
                with m.Case(Mode[md.name]):
                    for out, x in zip(sel, xs):
                        if mm == 1:
                            m.d.comb += out.eq(x[cand[0]])
                        else:
                            m.d.comb += out.eq(Array(x[c] for c in cand)[p.idx[s][:mm.bit_length() - 1]])
            with m.Default():                   # unknown codes and modes that leave this stage idle
                m.d.comb += [out.eq(0) for out in sel]
        return sel

    def elaborate(self, platform):
        m = Module()
        cfg, p = self.config, self.i.payload
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        xs = [p.x, p.x2] if cfg.packed else [p.x]

        per = cfg.group_stages
        prev, group_sums = None, []
        for s in range(cfg.stages):
            local = s % per                     # position inside its DSP group
            acts = self._select(m, s, xs)
            # WP486: two activations in one multiplier operand, x2 in the upper lane (formed before the skew
            # so that the DSP's A input is a plain register chain, which Yosys folds into AREG)
            ops = [p.w[s], acts[1].shift_left(cfg.lane_bits) + acts[0] if cfg.packed else acts[0]]
            # Skew: stage s sees beat b `local` cycles after its group's first stage, so all groups finish a
            # beat together (reset-less so the skew lines can become shift registers).
            for d in range(local):
                nxt = [Signal(Value.cast(v).shape(), reset_less=True, name=f"skew{s}_{d}_{k}")
                       for k, v in enumerate(ops)]
                with m.If(en):
                    m.d.sync += [n_.eq(v) for n_, v in zip(nxt, ops)]
                ops = nxt
            w, a_val = ops
            a_reg = Signal(a_val.shape(), reset_less=True, name=f"dsp{s}_a")
            b_reg = Signal(w.shape(), reset_less=True, name=f"dsp{s}_b")
            m_reg = Signal(signed(len(a_reg) + len(b_reg)), reset_less=True, name=f"dsp{s}_m")
            p_reg = Signal(signed(len(m_reg) + local.bit_length()), reset_less=True, name=f"dsp{s}_p")
            with m.If(en):     # a group's first stage adds 0 (the DSP48 Z-mux), the others their PCIN
                m.d.sync += [a_reg.eq(a_val), b_reg.eq(w), m_reg.eq(a_reg * b_reg),
                             p_reg.eq(m_reg if local == 0 else m_reg + prev)]
            prev = p_reg
            if local == per - 1:
                group_sums.append(p_reg)

        # valid/last(/mode) travel beside the data: skew (S/G - 1) + A/B + M + P registers.
        vl = [Signal(5, name=f"vl{k}") for k in range(per + 2)]
        with m.If(en):
            m.d.sync += vl[0].eq(Cat(self.i.valid, p.last, p.mode.as_value()))
            m.d.sync += [vl[k].eq(vl[k - 1]) for k in range(1, len(vl))]
        valid, last, mode = vl[-1][0], vl[-1][1], vl[-1][2:]

        # lane split of every group sum with the sign correction and the overflow adjust (sparse.lane_split):
        # t = P - 1, lo = sext(t[0:L]) + 1, hi = (t >> L) + t[L-1]
        kinds = [[], []] if cfg.packed else [group_sums]
        if cfg.packed:
            for g, psum in enumerate(group_sums):
                t = Signal(signed(len(psum) + 1), name=f"lane_t{g}")
                m.d.comb += t.eq(psum - 1)
                kinds[0].append(t[:cfg.lane_bits].as_signed() + 1)
                kinds[1].append(t.shift_right(cfg.lane_bits) + t[cfg.lane_bits - 1])

        if cfg.groups == 1:
            addends = [[k[0]] for k in kinds]
        else:   # reduction nodes: lane r of a beat = the sum of the groups of its row r (registered)
            addends = [[Signal(signed(cfg.acc_bits), name=f"red{k}_{r}") for r in range(cfg.groups)]
                       for k in range(len(kinds))]
            vl_red = Signal(2, name="vl_red")
            with m.If(en):
                m.d.sync += vl_red.eq(Cat(valid, last))
                with m.Switch(mode):
                    for md in cfg.modes:
                        rows = rows_per_beat(md, cfg.stages, cfg.groups)
                        span = cfg.groups // rows
                        with m.Case(int(md)):
                            for k, vals in enumerate(kinds):
                                for r in range(cfg.groups):
                                    part = vals[r * span:(r + 1) * span] if r < rows else []
                                    total = sum(part[1:], part[0]) if part else 0
                                    m.d.sync += addends[k][r].eq(total)
                    with m.Default():          # unknown mode codes: every lane adds 0
                        m.d.sync += [a.eq(0) for lanes in addends for a in lanes]
            valid, last = vl_red[0], vl_red[1]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        names = ("y", "y2")
        for k, lanes in enumerate(addends):
            for r, beat in enumerate(lanes):
                field = getattr(self.o.payload, names[k])
                out = field if cfg.groups == 1 else field[r]
                acc = Signal(signed(cfg.acc_bits), name=f"acc{k}_{r}")
                total = Signal(signed(cfg.acc_bits), name=f"tot{k}_{r}")
                m.d.comb += total.eq(acc + beat)      # wraps at acc_bits
                with m.If(en & valid):
                    with m.If(last):
                        m.d.sync += [out.eq(total), acc.eq(0)]
                    with m.Else():
                        m.d.sync += acc.eq(total)
        with m.If(en & valid & last):
            m.d.sync += self.o.valid.eq(1)
        return m
