"""Bit-serial dequantizers of the BitMoD array (hwgen/bitmod/array.py), written once for every PE kind.

`BitSerialScaler` is the shift-add multiplier by the 8-bit group scale code (MSB first). `SerialDequantizer`
is one PE's dequantizer and output accumulator (`dequant="pe"`), `ColumnDequantizer` one column's, serving
the column's rows in turn (`dequant="column"`), and `RowExponents` keeps the rows' output exponents for the
column dequantizers of a row-aligned FP16 array. Both dequant modes give the same results; only the output
latency differs.

Why the column mode: a per-PE dequantizer (a (W + 8)-bit shift-add register) and output accumulator (an O-bit
adder) cost about as many LUTs as the PE's dot product. The config demands >= 4 * rows beats per group of >= 2
term cycles each, so a group lasts >= 8 * rows cycles: one dequantizer per column can serve the column's rows
in turn without ever stalling the PEs. After a group end, row s is served in dequantizer cycles 8s .. 8s + 7:
  cycles 8s .. 8s + 6:  prod = 2 prod + bit_i * hold[s]      (MSB first, exact)
  cycle  8s + 7:        Y[s] = (Y[s] >> shift[s]) + 2 prod + bit_7 * hold[s],  prod = 0
(shift[s] = 0 for INT8 activations; for row-aligned FP16 the pending right shift E_g - E_y of row s.)
The output accumulators of a column form a ring of registers, so no PE needs a multiplexer: the row being
served sits at ring position R - 1 and its new sum enters position 0 as the ring turns; after R turns every
row is back in place (row r at position R - 1 - r). The final group of a vector writes the outputs instead,
in its last cycle, which waits for a free output register as the per-PE dequantizer does.
"""
from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.bitmod.fp16_ops import align_add
from hwgen.bitmod.layouts import control_layout, group_sum_shape, output_shape
from sw_model.bitmod.config import EXP_BITS, SCALE_BITS, BitModConfig


class BitSerialScaler(wiring.Component):
    """value * scale code, one scale bit per cycle, MSB first.

    next = 2 prod + (bit ? value : 0) (combinational, value_bits + 8 bits signed); prod takes `next` when
    `advance` and 0 when `clear` (clear wins). After a clear, 7 advances with scale bits 7..1 leave
    next = value * scale in the cycle that presents bit 0."""

    def __init__(self, value_bits: int):
        self.value_bits = value_bits
        super().__init__({"value": In(signed(value_bits)), "bit": In(1), "advance": In(1), "clear": In(1),
                          "next": Out(signed(value_bits + SCALE_BITS))})

    def elaborate(self, platform):
        m = Module()
        prod = Signal(signed(self.value_bits + SCALE_BITS))
        m.d.comb += self.next.eq((prod << 1) + Mux(self.bit, self.value, 0))
        with m.If(self.advance):
            m.d.sync += prod.eq(self.next)
        with m.If(self.clear):
            m.d.sync += prod.eq(0)
        return m


def _kind(cfg: BitModConfig) -> str:
    if cfg.act == "int8":
        return "int"
    return "row" if cfg.align == "row" else "bfp"


class SerialDequantizer(wiring.Component):
    """One PE's bit-serial dequantizer and output accumulator (`dequant="pe"`), for every PE kind.

    In the dequantizer cycles after a group end it computes value * scale MSB first (a BitSerialScaler,
    cleared on `ctl.handoff`, advancing on `ctl.dq_shift`); on `ctl.commit` the product enters the output
    accumulator, or, with `ctl.dq_last`, the output register `y` (and the accumulator clears). The
    accumulator follows the config: INT8 activations add exactly; row-aligned FP16 also shifts the
    accumulator right by `y_sel` (0, 1, 4 or 16 bits) in each shift-add cycle (the row's pending exponent
    growth); product-aligned FP16 adds (product, value_e) into (accumulator, exponent) in block floating
    point and also outputs the exponent `e`.
    Interface: ctl (control_layout), value (the held group sum, stable while dq_busy), scale_bit (the scale
    code bit of this cycle), y; value_e and e (product-aligned FP16); y_sel (row-aligned FP16).
    Timing: y / e change in the cycle after a commit with dq_last."""

    def __init__(self, config: BitModConfig):
        self.config = config
        self.kind = _kind(config)
        members = {"ctl": In(control_layout(config)), "value": In(group_sum_shape(config)), "scale_bit": In(1),
                   "y": Out(output_shape(config))}
        if self.kind == "bfp":
            members.update(value_e=In(EXP_BITS), e=Out(EXP_BITS))
        if self.kind == "row":
            members["y_sel"] = In(2)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ctl, O = self.ctl, self.config.out_bits
        m.submodules.scaler = scaler = BitSerialScaler(self.config.group_acc_bits)
        m.d.comb += [scaler.value.eq(self.value), scaler.bit.eq(self.scale_bit), scaler.advance.eq(ctl.dq_shift),
                     scaler.clear.eq(ctl.handoff)]
        prod_next = scaler.next
        out_acc = Signal(signed(O))
        if self.kind == "bfp":
            out_e = Signal(EXP_BITS)
            out_next, out_e_next = align_add(m, out_acc, out_e, prod_next, self.value_e, O, "oa")
            with m.If(ctl.commit):
                m.d.sync += [out_acc.eq(Mux(ctl.dq_last, 0, out_next)), out_e.eq(Mux(ctl.dq_last, 0, out_e_next))]
                with m.If(ctl.dq_last):
                    m.d.sync += [self.y.eq(out_next), self.e.eq(out_e_next)]
            return m
        if self.kind == "row":
            # floor shifts compose: 16 / 4 / 1 bits per cycle reach any pending shift within the 7 cycles
            sel, y_sh = self.y_sel, Signal(signed(O))
            m.d.comb += y_sh.eq(Mux(sel[1], Mux(sel[0], out_acc >> 16, out_acc >> 4),
                                    Mux(sel[0], out_acc >> 1, out_acc)))
            with m.If(ctl.dq_shift):
                m.d.sync += out_acc.eq(y_sh)
        with m.If(ctl.commit):
            m.d.sync += out_acc.eq(Mux(ctl.dq_last, 0, out_acc + prod_next))
            with m.If(ctl.dq_last):
                m.d.sync += self.y.eq(out_acc + prod_next)
        return m


def schedule(cfg: BitModConfig, ctl):
    """Column dequantizer: (row being served, bit index 0..7 within its 8 cycles, end of a non-final row slot)."""
    cnt = ctl.dq_cnt
    sub, row = cnt[:3], cnt[3:]
    slot_end = ctl.dq_busy & (sub == 7) & (cnt != cfg.dequant_cycles - 1)
    return row, sub, slot_end


class ColumnDequantizer(wiring.Component):
    """One column's bit-serial dequantizer (`dequant="column"`), serving the column's rows in turn (see the
    module docstring for the schedule and the ring of output accumulators).

    Interface: ctl (control_layout), holds[rows] (the PEs' group sums, loaded at the group end and stable
    while dq_busy), scale (the column's 8-bit scale code for the group), shift (row-aligned FP16: the right
    shift of the served row's output accumulator, from RowExponents), y[rows] (output registers).
    Timing: y changes in the cycle after a commit with dq_last, 8 * rows dequantizer cycles after the group
    end."""

    def __init__(self, config: BitModConfig):
        self.config = config
        R = config.rows
        members = {"ctl": In(control_layout(config)), "holds": In(data.ArrayLayout(group_sum_shape(config), R)),
                   "scale": In(SCALE_BITS), "y": Out(data.ArrayLayout(output_shape(config), R))}
        if config.act == "fp16":
            members["shift"] = In(EXP_BITS)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg, ctl = self.config, self.ctl
        R, W, O = cfg.rows, cfg.group_acc_bits, cfg.out_bits
        row, sub, slot_end = schedule(cfg, ctl)
        holds = [self.holds[r] for r in range(R)]
        sel = Signal(signed(W))
        m.d.comb += sel.eq(Array(holds)[row] if R > 1 else holds[0])
        bit = Array(self.scale[SCALE_BITS - 1 - i] for i in range(SCALE_BITS))[sub]    # MSB first in every slot
        m.submodules.scaler = scaler = BitSerialScaler(W)
        m.d.comb += [scaler.value.eq(sel), scaler.bit.eq(bit), scaler.advance.eq(ctl.dq_shift),
                     scaler.clear.eq(slot_end | ctl.commit)]
        prod_next = scaler.next
        ring = [Signal(signed(O), name=f"ring{p}") for p in range(R)]
        total = Signal(signed(O))
        m.d.comb += total.eq((ring[-1] >> self.shift if cfg.act == "fp16" else ring[-1]) + prod_next)
        turn = slot_end | (ctl.commit & ~ctl.dq_last)
        with m.If(turn):
            m.d.sync += [ring[0].eq(total)] + [ring[p].eq(ring[p - 1]) for p in range(1, R)]
        with m.If(ctl.commit & ctl.dq_last):
            m.d.sync += [self.y[r].eq(ring[R - 2 - r]) for r in range(R - 1)] + [self.y[R - 1].eq(total)]
            m.d.sync += [y.eq(0) for y in ring]
        return m


class RowExponents(wiring.Component):
    """Row-aligned FP16 with column dequantizers: E_y[r], the exponent of row r's output accumulators, follows
    the group exponent dq_e[r] as row r is served (0 after a vector).

    Interface: ctl (control_layout), dq_e[rows] (each row's exponent of the group being dequantized),
    shift = dq_e - E_y of the row being served (combinational). E_y updates at the end of the row's slot."""

    def __init__(self, config: BitModConfig):
        self.config = config
        super().__init__({"ctl": In(control_layout(config)), "dq_e": In(data.ArrayLayout(EXP_BITS, config.rows)),
                          "shift": Out(EXP_BITS)})

    def elaborate(self, platform):
        m = Module()
        cfg, ctl = self.config, self.ctl
        row, _, slot_end = schedule(cfg, ctl)
        dq_es = [self.dq_e[r] for r in range(cfg.rows)]
        e_ys = [Signal(EXP_BITS, name=f"row{r}_Ey") for r in range(cfg.rows)]
        pend = []
        for r, (dq_e, e_y) in enumerate(zip(dq_es, e_ys)):
            d = Signal(EXP_BITS, name=f"row{r}_yshift")
            m.d.comb += d.eq(dq_e - e_y)
            pend.append(d)
            with m.If(slot_end & (row == r)):
                m.d.sync += e_y.eq(dq_e)
        with m.If(ctl.commit):
            m.d.sync += e_ys[-1].eq(dq_es[-1])
            with m.If(ctl.dq_last):
                m.d.sync += [e_y.eq(0) for e_y in e_ys]
        m.d.comb += self.shift.eq(Array(pend)[row] if len(pend) > 1 else pend[0])
        return m


__all__ = ["BitSerialScaler", "SerialDequantizer", "ColumnDequantizer", "RowExponents", "schedule"]
