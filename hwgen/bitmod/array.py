"""BitMoD bit-serial mixed-datatype PE array (Chen et al., HPCA'25), INT8 or FP16 activations.

`BitModArray` is a rows x cols output-stationary array; a single PE is the 1 x 1 array. Each input beat carries
`lanes` weight codes per column (broadcast down the column) and `lanes` activations per row (broadcast across
the row), plus per column the group's datatype, SV selector and scale code. The shared term engine feeds one
signed power-of-two term of every weight per cycle (a `TermDecoder` per column), so a beat takes T = max over columns of
terms(dtype) cycles (INT8 4, INT6 3, FP4/FP3 2). Every PE sums its k lane products per cycle and accumulates
exactly; at each group end the group sum goes to the PE's bit-serial dequantizer (8 shift-add cycles, MSB first,
overlapping the next group), whose product is added to the PE's output accumulator. The beat with `last` set
closes a vector; its result leaves on `o` 9 cycles after that beat's handshake (see sw_model/bitmod/golden.py).
With `act = "fp16"` the PEs align the k FP16 products of a cycle to their largest exponent (hwgen/bitmod/fp16.py,
sw_model/bitmod/fp16.py), or with `align = "row"` the activations are aligned once per row and beat and the PEs
only shift pre-aligned mantissas by their terms (hwgen/bitmod/fp16_row.py, sw_model/bitmod/fp16_row.py);
control, term engine, SV registers and timing are the same. The exact datapaths (INT8 activations, row-aligned
FP16) use the window term decoding of hwgen/bitmod/decode.py (lane shifts 0..3, decoding shared per column).

Blocks (each a `wiring.Component`, its own module in the Verilog): `dec{c}` TermDecoder, `pe{r}_{c}` Int8PE /
Fp16PE / Fp16RowPE (each with its SerialDequantizer `dq` when `dequant = "pe"`), `dq{c}` ColumnDequantizer,
`row{r}` RowUnit, `row_exp` RowExponents, `nonfinite` NonfiniteFlags. This module keeps the term engine, the
SV register file and the dequantizer schedule, and sends them to the blocks as one typed `ctl`
(hwgen/bitmod/layouts.control_layout).

Stream rules: `o.valid` never waits for `o.ready`; `o.payload` stays stable while valid and not ready.
`i.ready` is asserted in the last term cycle of a beat (it depends on `i.valid`); the term engine reads
`i.payload` while `i.valid` holds, which the stream rules keep stable until the handshake.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.decode import TermDecoder
from hwgen.bitmod.dequant import ColumnDequantizer, RowExponents
from hwgen.bitmod.fp16 import Fp16PE, NonfiniteFlags, decode_act, raw_specials
from hwgen.bitmod.fp16_row import Fp16RowPE, RowUnit
from hwgen.bitmod.layouts import column_terms_layout, control_layout
from hwgen.bitmod.pe import Int8PE
from hwgen.blocks.trees import max_tree
from sw_model.bitmod.config import CODE_BITS, DTYPES, EXP_BITS, SCALE_BITS, BitModConfig, sv_reg_encode

_TERMS = [DTYPES[n].terms for n in sorted(DTYPES, key=lambda n: DTYPES[n].code)]


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
        t_cols = [Signal(3, name=f"t_col{c}") for c in range(C)]
        t_beat = Signal(3, name="t_beat")              # max over the columns' term counts
        m.d.comb += [t_cols[c].eq(t_of[p.dtype[c]]) for c in range(C)] + [t_beat.eq(max_tree(t_cols))]
        final = j == t_beat - 1
        group_end = (beat_cnt == cfg.beats_per_group - 1) | p.last

        dq_len, column_dq = cfg.dequant_cycles, cfg.dequant == "column"
        dq_busy, dq_cnt, dq_last = Signal(), Signal(range(dq_len)), Signal()
        dq_scale = [Signal(SCALE_BITS, name=f"dq_scale{c}") for c in range(C)]
        o_free = ~self.o.valid | self.o.ready
        commit = dq_busy & (dq_cnt == dq_len - 1) & (~dq_last | o_free)
        dq_shift = dq_busy & (dq_cnt[:3] != 7)         # the shift-add cycles (7 of every 8)
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
            m.submodules[f"dec{c}"] = dec = TermDecoder(cfg)
            m.d.comb += [dec.codes[l].eq(p.w[c * k + l]) for l in range(k)]
            m.d.comb += [dec.sv_regs[t].eq(sv_regs[t]) for t in range(8)]
            m.d.comb += [dec.dtype.eq(p.dtype[c]), dec.sv.eq(p.sv[c]), dec.j.eq(j)]
            cols.append(dec.o)

        # ---- optional decode pipeline register: decoded terms, activations and the step/group-end events
        # reach the PEs one cycle later (Fmax; latency + 1, the same cycles per beat) -------------------------
        pe_a, pe_step, pe_handoff, pe_last, pe_scale = p.a, step, handoff, p.last, p.scale
        if cfg.pipeline:
            pe_step, pe_handoff, pe_last = Signal(name="pe_step"), Signal(name="pe_handoff"), Signal(name="pe_last")
            m.d.sync += [pe_step.eq(step), pe_handoff.eq(handoff), pe_last.eq(p.last)]
            pe_a = Signal(data.ArrayLayout(cfg.act_bits, R * k), name="pe_a")
            m.d.sync += pe_a.eq(p.a)
            pe_scale = Signal(data.ArrayLayout(SCALE_BITS, C), name="pe_scale")
            with m.If(handoff):
                m.d.sync += pe_scale.eq(p.scale)
            cols_r = [Signal(column_terms_layout(cfg), name=f"terms{c}_r") for c in range(C)]
            m.d.sync += [reg.eq(terms) for reg, terms in zip(cols_r, cols)]
            cols = cols_r

        # ---- dequantizer control (shared) and output --------------------------------------------------------
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(dq_busy & ((dq_cnt != dq_len - 1) | commit)):
            m.d.sync += dq_cnt.eq(dq_cnt + 1)
        if not column_dq:                              # MSB first: the scale shifts left
            with m.If(dq_shift):
                m.d.sync += [dq_scale[c].eq(dq_scale[c] << 1) for c in range(C)]
        with m.If(commit):
            m.d.sync += dq_busy.eq(0)
            with m.If(dq_last):
                m.d.sync += self.o.valid.eq(1)
        with m.If(pe_handoff):
            m.d.sync += [dq_busy.eq(1), dq_cnt.eq(0), dq_last.eq(pe_last)]
            m.d.sync += [dq_scale[c].eq(pe_scale[c]) for c in range(C)]

        ctl = Signal(control_layout(cfg), name="ctl")
        m.d.comb += [ctl.step.eq(pe_step), ctl.handoff.eq(pe_handoff), ctl.last.eq(pe_last),
                     ctl.shift_stall.eq(shift_stall), ctl.beat_done.eq(step & final), ctl.dq_busy.eq(dq_busy),
                     ctl.dq_cnt.eq(dq_cnt), ctl.dq_last.eq(dq_last), ctl.dq_shift.eq(dq_shift),
                     ctl.commit.eq(commit)]

        # ---- PEs ------------------------------------------------------------------------------------------
        y, holds = self.o.payload.y, [[None] * C for _ in range(R)]     # holds: dequant="column" group sums
        rows = [None] * R
        if cfg.act == "fp16":
            m.submodules.nonfinite = nf = NonfiniteFlags(cfg)
            # the flags follow the term engine's beat, ahead of the decode register
            m.d.comb += [nf.ctl.eq(ctl), self.o.payload.nonfinite.eq(nf.flags)]
            m.d.comb += [nf.specials[r].eq(raw_specials([p.a[r * k + l] for l in range(k)])) for r in range(R)]
            acts = [[decode_act(m, pe_a[r * k + l], f"a{r}_{l}") for l in range(k)] for r in range(R)]
            if cfg.align == "row":
                for r in range(R):
                    m.submodules[f"row{r}"] = rows[r] = RowUnit(cfg)
                    m.d.comb += [rows[r].ctl.eq(ctl)] + [rows[r].acts[l].eq(acts[r][l]) for l in range(k)]
                    if cfg.shift_step:
                        m.d.comb += rows[r].first.eq(beat_cnt == 0)
                if cfg.shift_step:
                    m.d.comb += need_shift.eq(Cat(*[row.need_stall for row in rows]).any())
        for r in range(R):
            for c in range(C):
                if cfg.act == "int8":
                    pe = Int8PE(cfg)
                    m.d.comb += [pe.a[l].eq(pe_a[r * k + l]) for l in range(k)]
                elif cfg.align == "row":
                    pe = Fp16RowPE(cfg)
                    m.d.comb += pe.row.eq(rows[r].row)
                else:
                    pe = Fp16PE(cfg)
                    m.d.comb += [pe.acts[l].eq(acts[r][l]) for l in range(k)]
                m.submodules[f"pe{r}_{c}"] = pe
                m.d.comb += [pe.ctl.eq(ctl), pe.terms.eq(cols[c])]
                if cfg.act == "fp16":
                    m.d.comb += self.o.payload.e[r * C + c].eq(pe.e)
                if column_dq:
                    holds[r][c] = pe.hold
                else:
                    m.d.comb += [pe.scale_bit.eq(dq_scale[c][SCALE_BITS - 1]), y[r * C + c].eq(pe.y)]
        if column_dq:
            shift = None
            if cfg.act == "fp16":
                m.submodules.row_exp = row_exp = RowExponents(cfg)
                m.d.comb += [row_exp.ctl.eq(ctl)] + [row_exp.dq_e[r].eq(rows[r].row.dq_e) for r in range(R)]
                shift = row_exp.shift
            for c in range(C):
                m.submodules[f"dq{c}"] = cdq = ColumnDequantizer(cfg)
                m.d.comb += [cdq.ctl.eq(ctl), cdq.scale.eq(dq_scale[c])]
                m.d.comb += [cdq.holds[r].eq(holds[r][c]) for r in range(R)]
                m.d.comb += [y[r * C + c].eq(cdq.y[r]) for r in range(R)]
                if shift is not None:
                    m.d.comb += cdq.shift.eq(shift)
        return m
