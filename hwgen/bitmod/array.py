"""BitMoD bit-serial mixed-datatype PE array (Chen et al., HPCA'25), INT8 or FP16 activations.

`BitModArray` is a rows x cols output-stationary array; a single PE is the 1 x 1 array. Each input beat carries
`lanes` weight codes per column (broadcast down the column) and `lanes` activations per row (broadcast across
the row), plus per column the group's datatype, SV selector and scale code. The shared term engine feeds one
signed power-of-two term of every weight per cycle (`term_decoder`), so a beat takes T = max over columns of
terms(dtype) cycles (INT8 4, INT6 3, FP4/FP3 2). Every PE sums its k lane products per cycle and accumulates
exactly; at each group end the group sum goes to the PE's bit-serial dequantizer (8 shift-add cycles, MSB first,
overlapping the next group), whose product is added to the PE's output accumulator. The beat with `last` set
closes a vector; its result leaves on `o` 9 cycles after that beat's handshake (see sw_model/bitmod/golden.py).
With `act = "fp16"` the PEs align the k FP16 products of a cycle to their largest exponent (hwgen/bitmod/fp16.py,
sw_model/bitmod/fp16.py), or with `align = "row"` the activations are aligned once per row and beat and the PEs
only shift pre-aligned mantissas by their terms (hwgen/bitmod/fp16_row.py, sw_model/bitmod/fp16_row.py);
control, term engine, SV registers and timing are the same. The exact datapaths (INT8 activations, row-aligned
FP16) use the window term decoding of hwgen/bitmod/decode.py (lane shifts 0..3, decoding shared per column).

Stream rules: `o.valid` never waits for `o.ready`; `o.payload` stays stable while valid and not ready.
`i.ready` is asserted in the last term cycle of a beat (it depends on `i.valid`); the term engine reads
`i.payload` while `i.valid` holds, which the stream rules keep stable until the handshake.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod import dequant as bitmod_dequant
from hwgen.bitmod import fp16 as bitmod_fp16
from hwgen.bitmod import fp16_row as bitmod_fp16_row
from hwgen.bitmod.decode import window_column
from sw_model.bitmod.config import ACT_BITS, CODE_BITS, DTYPES, EXP_BITS, SCALE_BITS, BitModConfig, sv_reg_encode

_TERMS = [DTYPES[n].terms for n in sorted(DTYPES, key=lambda n: DTYPES[n].code)]


def _half_grid(name):
    return [int(2 * v) for v in DTYPES[name].grid]


def _lod(m, x, width, name):
    """Leading-one position of x (0 when x == 0; callers test x == 0 separately)."""
    pos = Signal(range(width), name=name)
    for b in range(width):
        with m.If(x[b]):
            m.d.comb += pos.eq(b)
    return pos


def term_decoder(m, code, dtype, sv, j, sv_regs, name: str):
    """One weight code -> its term number j: (neg, zero, lane shift 0..4); the column's bsig is 2j for INT
    groups and 0 for FP groups. `sv_regs`: 8 SV register words (sign << 5 | half-unit magnitude), FP4
    selectors 0..3 then FP3. Combinational. (Product-aligned FP16 PEs; the exact datapaths use the cheaper
    window decoding of hwgen/bitmod/decode.py.)"""
    neg, zero, shift = Signal(name=f"{name}_neg"), Signal(name=f"{name}_zero"), Signal(range(5), name=f"{name}_sh")

    # radix-4 Booth digit j of the two's complement code (INT6 uses digits 0..2 of its 6 bits)
    ext = Cat(Const(0, 1), code)
    trip = Array([ext[2 * t:2 * t + 3] for t in range(4)])[j]
    b_neg = trip[2] & (trip != 0b111)
    b_two = (trip == 0b011) | (trip == 0b100)
    b_zero = (trip == 0b000) | (trip == 0b111)

    # FP: half-unit magnitude (<= 5 bits), SV substitution for the -0 code, then leading-one detection
    mag, sgn = Signal(5, name=f"{name}_mag"), Signal(name=f"{name}_sgn")
    with m.Switch(dtype):
        for base, (dname, top) in enumerate((("fp4", 3), ("fp3", 2))):
            with m.Case(DTYPES[dname].code):
                grid = Array([Const(v, 5) for v in _half_grid(dname)])
                word = Array(sv_regs[4 * base:4 * base + 4])[sv]
                with m.If(code[:top + 1] == (1 << top)):
                    m.d.comb += [mag.eq(word[:5]), sgn.eq(word[5])]
                with m.Else():
                    m.d.comb += [mag.eq(grid[code[:top]]), sgn.eq(code[top])]
        with m.Default():                              # INT groups: mag/sgn unused
            m.d.comb += [mag.eq(0), sgn.eq(0)]
    lo0 = _lod(m, mag, 5, f"{name}_lo0")
    rest = Signal(5, name=f"{name}_rest")
    m.d.comb += rest.eq(mag & ~(Const(1, 5) << lo0))
    lo1 = _lod(m, rest, 5, f"{name}_lo1")

    is_int = dtype[1] == 0
    beyond = j >= Array([Const(t, 3) for t in _TERMS])[dtype]
    with m.If(is_int):
        m.d.comb += [neg.eq(b_neg), zero.eq(b_zero | beyond), shift.eq(1 + b_two)]
    with m.Elif(j == 0):
        m.d.comb += [neg.eq(sgn), zero.eq(mag == 0), shift.eq(lo0)]
    with m.Else():
        m.d.comb += [neg.eq(sgn), zero.eq((rest == 0) | beyond), shift.eq(lo1)]
    return neg, zero, shift


class BitModArray(wiring.Component):
    """rows x cols bit-serial BitMoD PEs with `lanes`-way term x activation dot products per cycle.

    i.payload: w[cols*lanes] (8-bit codes, column-major groups of `lanes`), a[rows*lanes] (int8),
               dtype[cols] (0 INT8, 1 INT6, 2 FP4, 3 FP3), sv[cols], scale[cols] (unsigned), last;
               sv_we = 1 makes the beat an SV-register write instead (sv_addr 0..3 FP4, 4..7 FP3 selectors;
               sv_val = sign << 5 | half-unit magnitude), taking one cycle; the registers reset to the
               config's tables.
    o.payload: y[rows*cols] (two's complement, out_bits each, row-major), one beat per vector.
    act = "fp16": a[rows*lanes] are FP16 bit patterns; o.payload adds e[rows*cols] (6-bit block exponent:
               value = y * 2^(e - 26 - guard_bits)) and nonfinite[rows] (an Inf/NaN activation in the row).
    Timing: a beat is accepted after max_c terms(dtype[c]) cycles of work; output latency 9 cycles after the
    last beat's handshake (8 * rows + 1 with `dequant = "column"`; + 1 with `pipeline = 1`: a register after
    the term decoders); no stall from the dequantizer without backpressure (a group lasts >= 8 cycles, >= 8 *
    rows with `dequant = "column"`)."""

    def __init__(self, config: BitModConfig):
        self.config = config
        c, k, r = config.cols, config.lanes, config.rows
        out = {"y": data.ArrayLayout(config.out_bits, r * c)}
        if config.act == "fp16":
            out.update(e=data.ArrayLayout(EXP_BITS, r * c), nonfinite=data.ArrayLayout(1, r))
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "w": data.ArrayLayout(CODE_BITS, c * k), "a": data.ArrayLayout(config.act_bits, r * k),
                "dtype": data.ArrayLayout(2, c), "sv": data.ArrayLayout(2, c),
                "scale": data.ArrayLayout(SCALE_BITS, c), "last": 1,
                "sv_we": 1, "sv_addr": 3, "sv_val": 6}))),
            "o": Out(stream.Signature(data.StructLayout(out))),
        })

    def timing(self) -> dict:
        return {"latency": self.config.dequant_cycles + 1 + self.config.pipeline, "ii": None,
                "cycles_per_beat": {n: d.terms for n, d in DTYPES.items()},
                "note": "a beat takes max over columns of terms(dtype) cycles; latency counts from the "
                        "handshake of a vector's last beat"}

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        R, C, k = cfg.rows, cfg.cols, cfg.lanes
        p = self.i.payload

        # ---- shared term engine -------------------------------------------------------------------------
        j = Signal(2)
        beat_cnt = Signal(range(cfg.beats_per_group))
        t_of = Array([Const(t, 3) for t in _TERMS])
        t_beat = Signal(3, name="t_col0")
        m.d.comb += t_beat.eq(t_of[p.dtype[0]])
        for c in range(1, C):                          # max over the columns' term counts
            t_c, t_max = Signal(3, name=f"t_col{c}"), Signal(3, name=f"t_max{c}")
            m.d.comb += [t_c.eq(t_of[p.dtype[c]]), t_max.eq(Mux(t_c > t_beat, t_c, t_beat))]
            t_beat = t_max
        final = j == t_beat - 1
        group_end = (beat_cnt == cfg.beats_per_group - 1) | p.last

        dq_len, column_dq = cfg.dequant_cycles, cfg.dequant == "column"
        dq_busy, dq_cnt, dq_last = Signal(), Signal(range(dq_len)), Signal()
        dq_scale = [Signal(SCALE_BITS, name=f"dq_scale{c}") for c in range(C)]
        o_free = ~self.o.valid | self.o.ready
        commit = dq_busy & (dq_cnt == dq_len - 1) & (~dq_last | o_free)
        dq_free = ~dq_busy | commit
        if cfg.pipeline:
            # the PEs see a group end one cycle later: accept it only if the dequantizer is free then, i.e.
            # free now, committing now, or certain to commit next cycle (the count before the last and the
            # output register free now: nothing but a commit can fill it)
            dq_free = dq_free | (dq_busy & (dq_cnt == dq_len - 2) & (~dq_last | o_free))
        # SV register file: an sv_we beat writes one word in one cycle and computes nothing
        sv_regs = [Signal(6, name=f"sv_reg{t}", init=sv_reg_encode(v))
                   for t, v in enumerate(cfg.sv_fp4 + cfg.sv_fp3)]
        sv_write = self.i.valid & p.sv_we
        for t in range(8):
            with m.If(sv_write & (p.sv_addr == t)):
                m.d.sync += sv_regs[t].eq(p.sv_val)

        # FP16 rows with shift_step: a compute beat waits while a row's accumulator shift is too long for one
        # cycle (driven by the row units below; never in a group's first beat, never with the pipeline register)
        need_shift = Signal()
        shift_stall = self.i.valid & ~p.sv_we & need_shift
        step = self.i.valid & ~p.sv_we & ~need_shift & (~final | ~group_end | dq_free)
        handoff = step & final & group_end
        m.d.comb += self.i.ready.eq(sv_write | (step & final))
        with m.If(step):
            m.d.sync += j.eq(Mux(final, 0, j + 1))
            with m.If(final):
                m.d.sync += beat_cnt.eq(Mux(group_end, 0, beat_cnt + 1))

        # ---- per-column term decoders (broadcast down the column) ---------------------------------------
        cols = []
        for c in range(C):
            if cfg.act == "int8" or cfg.align == "row":     # exact datapaths: window terms, 4:1 lane shifts
                bsig, lanes = window_column(m, [p.w[c * k + l] for l in range(k)], p.dtype[c], p.sv[c], j, sv_regs,
                                            f"t{c}")
            else:
                bsig = Signal(3, name=f"bsig{c}")
                m.d.comb += bsig.eq(Mux(p.dtype[c][1], 0, j << 1))
                lanes = [term_decoder(m, p.w[c * k + l], p.dtype[c], p.sv[c], j, sv_regs, f"t{c}_{l}")
                         for l in range(k)]
            cols.append((bsig, lanes))

        # ---- optional decode pipeline register: decoded terms, bsig, activations and the step/group-end
        # events reach the PEs one cycle later (Fmax; latency + 1, the same cycles per beat) ----------------
        pe_a, pe_step, pe_handoff, pe_last, pe_scale = p.a, step, handoff, p.last, p.scale
        if cfg.pipeline:
            pe_step, pe_handoff, pe_last = Signal(name="pe_step"), Signal(name="pe_handoff"), Signal(name="pe_last")
            m.d.sync += [pe_step.eq(step), pe_handoff.eq(handoff), pe_last.eq(p.last)]
            pe_a = [Signal(cfg.act_bits, name=f"pe_a{t}") for t in range(R * k)]
            m.d.sync += [pe_a[t].eq(p.a[t]) for t in range(R * k)]
            pe_scale = [Signal(SCALE_BITS, name=f"pe_scale{c}") for c in range(C)]
            with m.If(handoff):
                m.d.sync += [pe_scale[c].eq(p.scale[c]) for c in range(C)]
            piped = []
            for c, (bsig, lanes) in enumerate(cols):
                bsig_r = Signal(3, name=f"bsig{c}_r")
                lanes_r = []
                for l, (neg, zero, shift) in enumerate(lanes):
                    regs = (Signal(name=f"t{c}_{l}_neg_r"), Signal(name=f"t{c}_{l}_zero_r"),
                            Signal.like(shift, name=f"t{c}_{l}_sh_r"))
                    m.d.sync += [regs[0].eq(neg), regs[1].eq(zero), regs[2].eq(shift)]
                    lanes_r.append(regs)
                m.d.sync += bsig_r.eq(bsig)
                piped.append((bsig_r, lanes_r))
            cols = piped

        # ---- dequantizer control (shared) and output --------------------------------------------------------
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(dq_busy & ((dq_cnt != dq_len - 1) | commit)):
            m.d.sync += dq_cnt.eq(dq_cnt + 1)
        if not column_dq:                              # MSB first: the scale shifts left
            with m.If(dq_busy & (dq_cnt != 7)):
                m.d.sync += [dq_scale[c].eq(dq_scale[c] << 1) for c in range(C)]
        with m.If(commit):
            m.d.sync += dq_busy.eq(0)
            with m.If(dq_last):
                m.d.sync += self.o.valid.eq(1)
        with m.If(pe_handoff):
            m.d.sync += [dq_busy.eq(1), dq_cnt.eq(0), dq_last.eq(pe_last)]
            m.d.sync += [dq_scale[c].eq(pe_scale[c]) for c in range(C)]

        # ---- PEs ------------------------------------------------------------------------------------------
        ctl = dict(step=pe_step, handoff=pe_handoff, commit=commit, dq_busy=dq_busy, dq_cnt=dq_cnt,
                   dq_last=dq_last, beat_done=step & final, last=pe_last, pipeline=cfg.pipeline,
                   group_first=beat_cnt == 0, shift_stall=shift_stall)
        holds = [[None] * C for _ in range(R)]         # dequant="column": the PEs' group sums
        if cfg.act == "fp16":
            acts = [[bitmod_fp16.decode_act(m, pe_a[r * k + l], f"a{r}_{l}") for l in range(k)] for r in range(R)]
            ctl["raw_specials"] = [[x[4] for x in acts[r]] for r in range(R)] if not cfg.pipeline else \
                [[bitmod_fp16.decode_act(m, p.a[r * k + l], f"ra{r}_{l}")[4] for l in range(k)] for r in range(R)]
            rows = []
            for r in range(R):
                row = bitmod_fp16_row.row_unit(m, cfg, r, acts[r], ctl) if cfg.align == "row" else None
                rows.append(row)
                for c in range(C):
                    bsig, lanes = cols[c]
                    ctl["scale_bit"] = dq_scale[c][SCALE_BITS - 1]
                    if row is not None:
                        holds[r][c] = bitmod_fp16_row.row_pe(m, cfg, r, c, row, lanes, bsig, ctl,
                                                             self.o.payload.y[r * C + c], self.o.payload.e[r * C + c])
                        continue
                    bitmod_fp16.fp16_pe(m, cfg, r, c, acts[r], lanes, bsig, ctl, self.o.payload.y[r * C + c],
                                        self.o.payload.e[r * C + c])
            bitmod_fp16.nonfinite_flags(m, R, ctl["raw_specials"], ctl, self.o.payload.nonfinite)
            if cfg.shift_step:
                m.d.comb += need_shift.eq(Cat(*[row["need_stall"] for row in rows]).any())
            if column_dq:
                shift = bitmod_dequant.row_exponents(m, cfg, [row["dq_e"] for row in rows], ctl)
                self._column_dequantizers(m, holds, dq_scale, ctl, shift)
            return m
        for r in range(R):
            for c in range(C):
                bsig, lanes = cols[c]
                prods, negs = [], []
                for l, (neg, zero, shift) in enumerate(lanes):
                    # a << shift (0..3, window decoding), negated as one's complement: +1s added after the tree
                    a = pe_a[r * k + l].as_signed()
                    mag = Signal(signed(ACT_BITS + 3), name=f"pe{r}_{c}_m{l}")
                    n = Signal(name=f"pe{r}_{c}_n{l}")
                    prod = Signal(signed(ACT_BITS + 3), name=f"pe{r}_{c}_p{l}")
                    m.d.comb += [mag.eq(Mux(zero, 0, a << shift)), n.eq(~zero & neg),
                                 prod.eq(mag ^ Cat(*([n] * (ACT_BITS + 3))).as_signed())]
                    prods.append(prod)
                    negs.append(n)
                tree = prods
                while len(tree) > 1:               # pairwise adder tree
                    tree = [tree[t] + tree[t + 1] for t in range(0, len(tree) - 1, 2)] + \
                           ([tree[-1]] if len(tree) % 2 else [])
                s_sum = Signal(signed(ACT_BITS + 4 + (k - 1).bit_length()), name=f"pe{r}_{c}_S")
                m.d.comb += s_sum.eq(tree[0] + sum(negs[1:], negs[0]))
                acc = Signal(signed(cfg.group_acc_bits), name=f"pe{r}_{c}_acc")
                acc_next = Signal(signed(cfg.group_acc_bits), name=f"pe{r}_{c}_acc_next")
                m.d.comb += acc_next.eq(acc + (s_sum << bsig))
                dq_val = Signal(signed(cfg.group_acc_bits), name=f"pe{r}_{c}_dq_val")
                holds[r][c] = dq_val
                with m.If(pe_step):
                    m.d.sync += acc.eq(acc_next)
                with m.If(pe_handoff):
                    m.d.sync += [acc.eq(0), dq_val.eq(acc_next)]
                if column_dq:
                    continue
                dq_prod = Signal(signed(cfg.group_acc_bits + SCALE_BITS), name=f"pe{r}_{c}_dq_prod")
                prod_next = Signal(signed(cfg.group_acc_bits + SCALE_BITS), name=f"pe{r}_{c}_dq_next")
                bit = dq_scale[c][SCALE_BITS - 1]               # the scale shifts left: MSB first
                m.d.comb += prod_next.eq((dq_prod << 1) + Mux(bit, dq_val, 0))
                out_acc = Signal(signed(cfg.out_bits), name=f"pe{r}_{c}_out_acc")
                with m.If(dq_busy & (dq_cnt != 7)):
                    m.d.sync += dq_prod.eq(prod_next)
                with m.If(commit):
                    m.d.sync += out_acc.eq(Mux(dq_last, 0, out_acc + prod_next))
                    with m.If(dq_last):
                        m.d.sync += self.o.payload.y[r * C + c].eq(out_acc + prod_next)
                with m.If(pe_handoff):
                    m.d.sync += dq_prod.eq(0)
        if column_dq:
            self._column_dequantizers(m, holds, dq_scale, ctl)
        return m

    def _column_dequantizers(self, m, holds, dq_scale, ctl, shift=None):
        R, C = self.config.rows, self.config.cols
        for c in range(C):
            bitmod_dequant.column_dequantizer(m, self.config, c, [holds[r][c] for r in range(R)], dq_scale[c], ctl,
                                              [self.o.payload.y[r * C + c] for r in range(R)], shift)
