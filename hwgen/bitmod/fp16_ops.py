"""Combinational FP16 helpers of the BitMoD array and its comparison baseline: the activation decoder and the
block-floating-point add (the rule of sw_model/bitmod/fp16.py `_align_add`)."""
from amaranth.hdl import Cat, Mux, Signal, signed

from hwgen.bitmod.layouts import FP16_ACT, MAN_BITS
from sw_model.bitmod.config import EXP_BITS


def decode_act(m, bits, name: str):
    """FP16 pattern -> a FP16_ACT view (sign, e_eff, 11-bit mantissa, live, special). Inf/NaN: mantissa 0, so
    live = 0 (a dead lane), and special = 1 (it flags its row)."""
    e, f = bits[10:15], bits[:10]
    man = Signal(MAN_BITS, name=f"{name}_m")          # named apart: `live` must not read back from `act`
    act = Signal(FP16_ACT, name=name)
    m.d.comb += [man.eq(Mux(e == 31, 0, Cat(f, e != 0))),
                 act.sign.eq(bits[15]), act.special.eq(e == 31), act.e.eq(Mux(e == 0, 1, e)), act.man.eq(man),
                 act.live.eq(man != 0)]
    return act


def align_add(m, a, ea, b, eb, width: int, name: str):
    """Block-floating-point add: (a, ea) + (b, eb) -> (a >> (en - ea)) + (b >> (en - eb)), en = max(ea, eb),
    with one arithmetic right shifter on the operand of the smaller exponent."""
    gt = Signal(name=f"{name}_gt")
    d = Signal(EXP_BITS, name=f"{name}_d")
    small, big = Signal(signed(width), name=f"{name}_small"), Signal(signed(width), name=f"{name}_big")
    total, en = Signal(signed(width), name=f"{name}_sum"), Signal(EXP_BITS, name=f"{name}_e")
    m.d.comb += [gt.eq(eb > ea), d.eq(Mux(gt, eb - ea, ea - eb)),
                 small.eq(Mux(gt, a, b)), big.eq(Mux(gt, b, a)), en.eq(Mux(gt, eb, ea)),
                 total.eq(big + (small >> d))]
    return total, en


__all__ = ["MAN_BITS", "decode_act", "align_add"]
