"""Column-shared bit-serial dequantizer of the BitMoD array (`BitModConfig(dequant="column")`, used by
hwgen/bitmod/array.py). Same results as one dequantizer per PE; only the output latency differs.

Why: a per-PE dequantizer (a (W + 8)-bit shift-add register) and output accumulator (an O-bit adder) cost
about as many LUTs as the PE's dot product. The config demands >= 4 * rows beats per group of >= 2 term
cycles each, so a group lasts >= 8 * rows cycles: one dequantizer per column can serve the column's rows in
turn without ever stalling the PEs. After a group end, row s is served in dequantizer cycles 8s .. 8s + 7:
  cycles 8s .. 8s + 6:  prod = 2 prod + bit_i * hold[s]      (MSB first, exact)
  cycle  8s + 7:        Y[s] = (Y[s] >> shift[s]) + 2 prod + bit_7 * hold[s],  prod = 0
(shift[s] = 0 for INT8 activations; for row-aligned FP16 the pending right shift E_g - E_y of row s.)
The output accumulators of a column form a ring of registers, so no PE needs a multiplexer: the row being
served sits at ring position R - 1 and its new sum enters position 0 as the ring turns; after R turns every
row is back in place (row r at position R - 1 - r). The final group of a vector writes the outputs instead,
in its last cycle, which waits for a free output register as the per-PE dequantizer does.
"""
from amaranth.hdl import Array, Mux, Signal, signed

from sw_model.bitmod.config import EXP_BITS, SCALE_BITS


def schedule(cfg, ctl):
    """(row being served, bit index 0..7 within its 8 cycles, end of a non-final row slot)."""
    cnt = ctl["dq_cnt"]
    sub, row = cnt[:3], cnt[3:]
    slot_end = ctl["dq_busy"] & (sub == 7) & (cnt != cfg.dequant_cycles - 1)
    return row, sub, slot_end


def scale_bit(cfg, scale, ctl):
    """The bit of a column's 8-bit scale code for this dequantizer cycle, MSB first in every row slot."""
    return Array(scale[SCALE_BITS - 1 - i] for i in range(SCALE_BITS))[ctl["dq_cnt"][:3]]


def row_exponents(m, cfg, dq_es, ctl):
    """FP16 rows: E_y[r], the exponent of row r's output accumulators, follows the group exponent dq_e[r] as
    row r is served (0 after a vector). Returns the right shift of the row being served, dq_e - E_y."""
    row, _, slot_end = schedule(cfg, ctl)
    e_ys = [Signal(EXP_BITS, name=f"row{r}_Ey") for r in range(cfg.rows)]
    pend = []
    for r, (dq_e, e_y) in enumerate(zip(dq_es, e_ys)):
        d = Signal(EXP_BITS, name=f"row{r}_yshift")
        m.d.comb += d.eq(dq_e - e_y)
        pend.append(d)
        with m.If(slot_end & (row == r)):
            m.d.sync += e_y.eq(dq_e)
    with m.If(ctl["commit"]):
        m.d.sync += e_ys[-1].eq(dq_es[-1])
        with m.If(ctl["dq_last"]):
            m.d.sync += [e_y.eq(0) for e_y in e_ys]
    shift = Signal(EXP_BITS, name="yshift")
    m.d.comb += shift.eq(Array(pend)[row] if len(pend) > 1 else pend[0])
    return shift


def column_dequantizer(m, cfg, c: int, holds, scale, ctl, y_outs, shift=None):
    """Column c: holds[r] are the group sums of its PEs (loaded at the group end, W bits signed), scale its
    8-bit scale code for the group, y_outs[r] the output payload fields; shift (FP16 rows) from
    row_exponents."""
    R, W, O = cfg.rows, cfg.group_acc_bits, cfg.out_bits
    row, sub, slot_end = schedule(cfg, ctl)
    name = f"col{c}_dq"
    sel = Signal(signed(W), name=f"{name}_sel")
    m.d.comb += sel.eq(Array(holds)[row] if R > 1 else holds[0])
    prod = Signal(signed(W + SCALE_BITS), name=f"{name}_prod")
    prod_next = Signal(signed(W + SCALE_BITS), name=f"{name}_next")
    m.d.comb += prod_next.eq((prod << 1) + Mux(scale_bit(cfg, scale, ctl), sel, 0))
    ring = [Signal(signed(O), name=f"{name}_y{p}") for p in range(R)]
    total = Signal(signed(O), name=f"{name}_total")
    m.d.comb += total.eq((ring[-1] if shift is None else ring[-1] >> shift) + prod_next)

    with m.If(ctl["dq_busy"] & (sub != 7)):
        m.d.sync += prod.eq(prod_next)
    turn = slot_end | (ctl["commit"] & ~ctl["dq_last"])
    with m.If(slot_end | ctl["commit"]):
        m.d.sync += prod.eq(0)
    with m.If(turn):
        m.d.sync += [ring[0].eq(total)] + [ring[p].eq(ring[p - 1]) for p in range(1, R)]
    with m.If(ctl["commit"] & ctl["dq_last"]):
        m.d.sync += [y_outs[r].eq(ring[R - 2 - r]) for r in range(R - 1)] + [y_outs[R - 1].eq(total)]
        m.d.sync += [y.eq(0) for y in ring]


__all__ = ["schedule", "scale_bit", "row_exponents", "column_dequantizer"]
