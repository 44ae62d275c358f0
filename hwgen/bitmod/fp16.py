"""FP16-activation PE datapath of the BitMoD array (used by hwgen/bitmod/array.py when `config.act == "fp16"`).

Per PE and term cycle: k lane exponents e_eff + shift (dead lanes 0), their max P, per-lane right shift of the
11-bit mantissa (with `guard_bits` extra low bits) by P - p_l (magnitude truncation), sign XOR, adder tree,
then a block-floating-point group accumulator (one shifter: the operand with the smaller exponent is shifted
right arithmetically), the shared bit-serial dequantizer of bitmod_pe.py on the group mantissa, and the same
block-floating-point add into the output accumulator at the group end. Bit-exact with sw_model/bitmod/fp16.py.
"""
from amaranth.hdl import Cat, Mux, Signal, signed

from sw_model.bitmod.config import EXP_BITS, SCALE_BITS

MAN_BITS = 11


def decode_act(m, bits, name: str):
    """FP16 pattern -> (sign, e_eff (5 bits), 11-bit mantissa, live, special). Inf/NaN: live = 0, special = 1."""
    e, f = bits[10:15], bits[:10]
    special = Signal(name=f"{name}_nf")
    e_eff = Signal(5, name=f"{name}_e")
    man = Signal(MAN_BITS, name=f"{name}_m")
    live = Signal(name=f"{name}_live")
    m.d.comb += [special.eq(e == 31), e_eff.eq(Mux(e == 0, 1, e)),
                 man.eq(Mux(special, 0, Cat(f, e != 0))), live.eq(man != 0)]
    return bits[15], e_eff, man, live, special


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


def _max_tree(m, xs, name: str):
    level = 0
    while len(xs) > 1:
        nxt = []
        for t in range(0, len(xs) - 1, 2):
            mx = Signal(EXP_BITS, name=f"{name}_max{level}_{t}")
            m.d.comb += mx.eq(Mux(xs[t] > xs[t + 1], xs[t], xs[t + 1]))
            nxt.append(mx)
        xs = nxt + ([xs[-1]] if len(xs) % 2 else [])
        level += 1
    return xs[0]


def fp16_pe(m, cfg, r: int, c: int, acts, lanes, bsig, ctl, y_out, e_out):
    """Build PE (r, c). acts: per lane (sign, e_eff, man, live, special) of row r; lanes: per lane (neg, zero,
    shift) of column c; bsig: column c's bsig; ctl: dict of the shared control (step, handoff, commit, dq_busy,
    dq_cnt, dq_last, scale_bit); y_out / e_out: the output payload fields of this PE."""
    name, g = f"pe{r}_{c}", cfg.guard_bits
    p_lane, live_lane = [], []
    for l, ((s, e_eff, man, a_live, _), (neg, zero, shift)) in enumerate(zip(acts, lanes)):
        live = Signal(name=f"{name}_live{l}")
        p = Signal(EXP_BITS, name=f"{name}_p{l}")
        m.d.comb += [live.eq(a_live & ~zero), p.eq(Mux(live, e_eff + shift, 0))]
        p_lane.append(p)
        live_lane.append(live)
    big_p = _max_tree(m, p_lane, name)
    prods = []
    for l, ((s, e_eff, man, a_live, _), (neg, zero, shift)) in enumerate(zip(acts, lanes)):
        delta = Signal(EXP_BITS, name=f"{name}_d{l}")
        mag = Signal(MAN_BITS + g, name=f"{name}_mag{l}")
        prod = Signal(signed(MAN_BITS + g + 1), name=f"{name}_p{l}_v")
        m.d.comb += [delta.eq(big_p - p_lane[l]),
                     mag.eq(Mux(live_lane[l], (man << g) >> delta, 0)),   # truncating alignment
                     prod.eq(Mux(s ^ neg, -mag, mag))]
        prods.append(prod)
    tree = prods
    while len(tree) > 1:
        tree = [tree[t] + tree[t + 1] for t in range(0, len(tree) - 1, 2)] + ([tree[-1]] if len(tree) % 2 else [])
    W = cfg.group_acc_bits
    s_sum = Signal(signed(W), name=f"{name}_S")
    e_sum = Signal(EXP_BITS, name=f"{name}_Es")
    m.d.comb += [s_sum.eq(tree[0]), e_sum.eq(Mux(big_p != 0, big_p + bsig, 0))]

    acc, acc_e = Signal(signed(W), name=f"{name}_acc"), Signal(EXP_BITS, name=f"{name}_acc_e")
    acc_next, acc_e_next = align_add(m, acc, acc_e, s_sum, e_sum, W, f"{name}_ga")
    dq_val, dq_e = Signal(signed(W), name=f"{name}_dq_val"), Signal(EXP_BITS, name=f"{name}_dq_e")
    dq_prod = Signal(signed(W + SCALE_BITS), name=f"{name}_dq_prod")
    prod_next = Signal(signed(W + SCALE_BITS), name=f"{name}_dq_next")
    m.d.comb += prod_next.eq((dq_prod << 1) + Mux(ctl["scale_bit"], dq_val, 0))
    O = cfg.out_bits
    out_acc, out_e = Signal(signed(O), name=f"{name}_out_acc"), Signal(EXP_BITS, name=f"{name}_out_e")
    out_next, out_e_next = align_add(m, out_acc, out_e, prod_next, dq_e, O, f"{name}_oa")

    with m.If(ctl["step"]):
        m.d.sync += [acc.eq(acc_next), acc_e.eq(acc_e_next)]
    with m.If(ctl["dq_busy"] & (ctl["dq_cnt"] != 7)):
        m.d.sync += dq_prod.eq(prod_next)
    with m.If(ctl["commit"]):
        m.d.sync += [out_acc.eq(Mux(ctl["dq_last"], 0, out_next)),
                     out_e.eq(Mux(ctl["dq_last"], 0, out_e_next))]
        with m.If(ctl["dq_last"]):
            m.d.sync += [y_out.eq(out_next), e_out.eq(out_e_next)]
    with m.If(ctl["handoff"]):
        m.d.sync += [acc.eq(0), acc_e.eq(0), dq_val.eq(acc_next), dq_e.eq(acc_e_next), dq_prod.eq(0)]


def nonfinite_flags(m, R: int, row_specials, ctl, nf_out):
    """Per row: sticky OR of the Inf/NaN activations over a vector's compute beats (taken at each beat's
    handshake), handed to the dequantizer with the last beat and to the output with the last commit. With the
    decode pipeline the hand-over is one cycle later, when the sticky bit already holds the last beat (the next
    compute beat cannot finish in that cycle: it takes >= 2)."""
    for r in range(R):
        any_nf = Signal(name=f"nf_beat{r}")
        m.d.comb += any_nf.eq(Cat(*row_specials[r]).any())
        sticky, dq_nf = Signal(name=f"nf_sticky{r}"), Signal(name=f"nf_dq{r}")
        with m.If(ctl["beat_done"]):
            m.d.sync += sticky.eq(sticky | any_nf)
        with m.If(ctl["handoff"] & ctl["last"]):
            m.d.sync += [dq_nf.eq(sticky if ctl["pipeline"] else sticky | any_nf), sticky.eq(0)]
        with m.If(ctl["commit"] & ctl["dq_last"]):
            m.d.sync += nf_out[r].eq(dq_nf)


__all__ = ["decode_act", "align_add", "fp16_pe", "nonfinite_flags"]
