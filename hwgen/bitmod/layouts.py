"""Typed buses between the blocks of the BitMoD array (hwgen/bitmod/array.py): the shared control, a column's
decoded weight terms, a decoded FP16 activation and a row aligner's output. Each is a `data.StructLayout`
built from the config, so every block sees the same field names and widths."""
from amaranth.hdl import signed
from amaranth.lib import data

from sw_model.bitmod.config import EXP_BITS, BitModConfig

MAN_BITS = 11                                          # FP16 mantissa with the hidden bit


def control_layout(cfg: BitModConfig) -> data.StructLayout:
    """The array's shared control, one copy broadcast to every PE, row unit and dequantizer.
    step:        the PEs take this cycle's terms (accumulate)
    handoff:     group end: the group sums go to the dequantizer(s), the group accumulators clear
    last:        with handoff: the group closes a vector
    group_first: the beat in the term engine is its group's first
    shift_stall: FP16 rows with shift_step: a shift-only cycle (the beat's terms wait)
    beat_done:   a compute beat finishes this cycle (the term engine's view, before the decode register)
    dq_busy / dq_cnt / dq_last: the dequantizer runs, its cycle (0 .. dequant_cycles - 1), the group it
                 serves closes a vector
    dq_shift:    a shift-add cycle of the bit-serial dequantizer (busy and not the 8th cycle of a row slot)
    commit:      the dequantizer's last cycle completes (its sums enter the output accumulators / registers)"""
    return data.StructLayout({
        "step": 1, "handoff": 1, "last": 1, "group_first": 1, "shift_stall": 1, "beat_done": 1,
        "dq_busy": 1, "dq_cnt": range(cfg.dequant_cycles), "dq_last": 1, "dq_shift": 1, "commit": 1,
    })


def uses_window_terms(cfg: BitModConfig) -> bool:
    """The exact datapaths (INT8 activations, row-aligned FP16) use window term decoding (lane shifts 0..3);
    the product-aligned FP16 PE uses plain leading-one terms (lane shifts 0..4)."""
    return cfg.act == "int8" or cfg.align == "row"


def term_layout(cfg: BitModConfig) -> data.StructLayout:
    """One weight's term this cycle: +-2^shift half units (times the column's 2^bsig), or zero."""
    return data.StructLayout({"neg": 1, "zero": 1, "shift": 2 if uses_window_terms(cfg) else range(5)})


def column_terms_layout(cfg: BitModConfig) -> data.StructLayout:
    """A column's decoded terms this cycle: the column's bsig and one term per lane."""
    return data.StructLayout({"bsig": 3, "lanes": data.ArrayLayout(term_layout(cfg), cfg.lanes)})


FP16_ACT = data.StructLayout({"sign": 1, "e": 5, "man": MAN_BITS, "live": 1, "special": 1})
"""A decoded FP16 activation: sign, e_eff = max(e, 1), mantissa with the hidden bit (0 for Inf/NaN),
live = mantissa != 0, special = Inf/NaN."""


def aligned_lane_layout(guard_bits: int) -> data.StructLayout:
    """A row-aligned activation: sign and floor(m * 2^guard / 2^(E' - e_eff))."""
    return data.StructLayout({"sign": 1, "mag": MAN_BITS + guard_bits})


def row_shift_shape(shift_step: int):
    """The group accumulators' right shift per cycle: any growth of the row exponent, or at most shift_step."""
    return range(shift_step + 1) if shift_step else EXP_BITS


def row_layout(cfg: BitModConfig) -> data.StructLayout:
    """What a row unit gives the PEs of its row: the pre-aligned lanes, the group accumulators' right shift
    d_a this cycle, the exponent dq_e of the group being dequantized and (dequant="pe") y_sel, the output
    accumulators' right shift this cycle (0 none, 1 by 1, 2 by 4, 3 by 16)."""
    fields = {"lanes": data.ArrayLayout(aligned_lane_layout(cfg.guard_bits), cfg.lanes),
              "d_a": row_shift_shape(cfg.shift_step), "dq_e": EXP_BITS}
    if cfg.dequant == "pe":
        fields["y_sel"] = 2
    return data.StructLayout(fields)


def group_sum_shape(cfg: BitModConfig):
    return signed(cfg.group_acc_bits)


def output_shape(cfg: BitModConfig):
    return signed(cfg.out_bits)


__all__ = ["MAN_BITS", "FP16_ACT", "control_layout", "uses_window_terms", "term_layout", "column_terms_layout",
           "aligned_lane_layout", "row_shift_shape", "row_layout", "group_sum_shape", "output_shape"]
