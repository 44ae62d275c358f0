"""Sparse DSP chain (FlightLLM-style N:M): a DSP48-style MAC cascade whose per-stage activation mux skips
pruned weights. The mode (dense, 2:4, 1:4, 2:8, 4:8) is a field of every input beat, not a rebuild."""
from amaranth.hdl import Array, Cat, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from sw_model.sparse import ACT_BITS, INDEX_BITS, MODE_NM, SparseMode
from sw_model.sparse_config import SparseChainConfig



class Mode(enum.Enum, shape=3):
    """The gateware's view of sw_model.sparse.SparseMode (same names and codes; the driver uses the IntEnum)."""
    DENSE = SparseMode.DENSE.value
    S2_4 = SparseMode.S2_4.value
    S1_4 = SparseMode.S1_4.value
    S2_8 = SparseMode.S2_8.value
    S4_8 = SparseMode.S4_8.value



class SparseChain(wiring.Component):
    """One dot product of one weight row with one activation vector, one beat per cycle.

    Input beat `i.payload`: `w[stages]` (signed `weight_bits`: dense weights, or the compressed values of
    stages // N whole groups), `idx[stages]` (3 bits; an N:M stage uses the low log2(M) bits), `x[x_width]`
    (signed 8-bit activations of the beat's K window; packed: also `x2`), `mode` (`Mode`), `last` (ends a
    vector). Stage s in N:M mode multiplies w[s] by x[(s // N) * M + idx[s] % M]; dense: w[s] * x[s]; stages
    past the last whole group, and unknown mode codes, add 0.
    Output beat `o.payload`: `y` (signed `acc_bits`, the wrapped sum of all beats of the vector; packed: `y` for
    `x`, `y2` for `x2`).

    Microarchitecture per stage s: s skew registers, then the DSP48 registers A/B, M (product) and P (= P of
    stage s-1 + M), so beat b's products meet in the cascade diagonally; the last P feeds an accumulator and the
    output register. Timing: II = 1; latency from a vector's last beat handshake to `o.valid` = stages + 3 cycles
    when `o` is ready. The whole pipeline advances together when the output register is empty or being read
    (`i.ready = ~o.valid | o.ready`); valid never waits for ready and the output payload is stable while stalled.
    """

    def __init__(self, config: SparseChainConfig):
        self.config = config
        cfg = config
        fields = {"w": data.ArrayLayout(signed(cfg.weight_bits), cfg.stages),
                  "idx": data.ArrayLayout(unsigned(INDEX_BITS), cfg.stages),
                  "x": data.ArrayLayout(signed(ACT_BITS), cfg.x_width)}
        outs = {"y": signed(cfg.acc_bits)}
        if cfg.packed:
            fields["x2"] = data.ArrayLayout(signed(ACT_BITS), cfg.x_width)
            outs["y2"] = signed(cfg.acc_bits)
        fields.update(mode=Mode, last=1)
        super().__init__({"i": In(stream.Signature(data.StructLayout(fields))),
                          "o": Out(stream.Signature(data.StructLayout(outs)))})

    def timing(self) -> dict:
        """Latency counts from the handshake of a vector's last beat."""
        return {"latency": self.config.stages + 3, "ii": 1}

    def _select(self, m, s, xs):
        """The sparse mux of stage s: its activation(s) for the beat's mode and index (0 when idle)."""
        cfg, p = self.config, self.i.payload
        sel = [Signal(signed(ACT_BITS), name=f"sel{s}_{k}") for k in range(len(xs))]
        with m.Switch(p.mode):
            for md in cfg.modes:
                n, mm = MODE_NM[md]
                if s >= (cfg.stages // n) * n:
                    continue
                with m.Case(Mode[md.name]):
                    for out, x in zip(sel, xs):
                        if mm == 1:
                            m.d.comb += out.eq(x[s])
                        else:
                            base = (s // n) * mm
                            cand = Array(x[base + j] for j in range(mm))
                            m.d.comb += out.eq(cand[p.idx[s][:mm.bit_length() - 1]])
            with m.Default():                   # unknown codes and modes that leave this stage idle
                m.d.comb += [out.eq(0) for out in sel]
        return sel

    def elaborate(self, platform):
        m = Module()
        cfg, p = self.config, self.i.payload
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        xs = [p.x, p.x2] if cfg.packed else [p.x]

        prev = None
        for s in range(cfg.stages):
            acts = self._select(m, s, xs)
            # WP486: two activations in one multiplier operand, x2 in the upper lane (formed before the skew
            # so that the DSP's A input is a plain register chain, which Yosys folds into AREG)
            ops = [p.w[s], acts[1].shift_left(cfg.lane_bits) + acts[0] if cfg.packed else acts[0]]
            # Skew: stage s sees beat b s cycles after stage 0 (reset-less so they can become shift registers).
            for d in range(s):
                nxt = [Signal(Value.cast(v).shape(), reset_less=True, name=f"skew{s}_{d}_{k}")
                       for k, v in enumerate(ops)]
                with m.If(en):
                    m.d.sync += [n_.eq(v) for n_, v in zip(nxt, ops)]
                ops = nxt
            w, a_val = ops
            a_reg = Signal(a_val.shape(), reset_less=True, name=f"dsp{s}_a")
            b_reg = Signal(w.shape(), reset_less=True, name=f"dsp{s}_b")
            m_reg = Signal(signed(len(a_reg) + len(b_reg)), reset_less=True, name=f"dsp{s}_m")
            p_reg = Signal(signed(len(m_reg) + s.bit_length()), reset_less=True, name=f"dsp{s}_p")
            with m.If(en):
                m.d.sync += [a_reg.eq(a_val), b_reg.eq(w), m_reg.eq(a_reg * b_reg),
                             p_reg.eq(m_reg if prev is None else m_reg + prev)]
            prev = p_reg

        # valid/last travel beside the data: skew (stages-1) + A/B + M + P registers.
        vl = [Signal(2, name=f"vl{k}") for k in range(cfg.stages + 2)]
        with m.If(en):
            m.d.sync += vl[0].eq(Cat(self.i.valid, p.last))
            m.d.sync += [vl[k].eq(vl[k - 1]) for k in range(1, len(vl))]
        valid, last = vl[-1][0], vl[-1][1]

        if cfg.packed:   # lane split with the sign correction: hi = floor(P / 2^L) + (sign bit of the low lane)
            lo = prev[:cfg.lane_bits].as_signed()
            hi = prev.shift_right(cfg.lane_bits) + prev[cfg.lane_bits - 1]
            lanes = [(lo, self.o.payload.y), (hi, self.o.payload.y2)]
        else:
            lanes = [(prev, self.o.payload.y)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        for k, (beat, out) in enumerate(lanes):
            acc, total = Signal(signed(cfg.acc_bits), name=f"acc{k}"), Signal(signed(cfg.acc_bits), name=f"tot{k}")
            m.d.comb += total.eq(acc + beat)      # wraps at acc_bits
            with m.If(en & valid):
                with m.If(last):
                    m.d.sync += [out.eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        with m.If(en & valid & last):
            m.d.sync += self.o.valid.eq(1)
        return m
