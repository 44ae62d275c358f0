"""Row-aligned FP16 datapath of the BitMoD array (`BitModConfig(act="fp16", align="row")`, used by
hwgen/bitmod/array.py). Bit-exact with sw_model/bitmod/fp16_row.py.

Why: in an output-stationary array the k activations of a beat are the same for every PE of a row, so their
alignment (max exponent, per-lane barrel shift) is done once per row and beat, not per PE and cycle. A PE then
shifts a pre-aligned mantissa LEFT by its weight term's lane shift (0..4, exact), sums k lanes, shifts the sum
left by bsig (exact) and adds it to its group accumulator, which is right-shifted only when the row's block
exponent grows (the amount is the row's, shared). The output accumulator's exponent is also the row's; its
right shift at a group end runs during the 8 dequantization cycles by 16 / 4 / 1 / 0 bits per cycle (floor
shifts compose exactly), so a PE needs no full output barrel shifter.

Row r: E_r (block exponent, 0..30), per beat E' = max(E_r, max live e_eff), m''_l = (m_l << g) >> (E' - e_l),
dA = E' - E_r; at a group end the row hands E' to its dequant exponent dq_e and loads rem = E' - E_y (the
pending output shift); at the commit E_y = dq_e.
"""
from amaranth.hdl import Cat, Mux, Signal, signed

from hwgen.bitmod.fp16 import MAN_BITS
from sw_model.bitmod.config import EXP_BITS, SCALE_BITS


def _max(m, a, b, name):
    out = Signal(EXP_BITS, name=name)
    m.d.comb += out.eq(Mux(a > b, a, b))
    return out


def row_aligner(m, g: int, acts, step, clear, name: str, shift_step: int = 0, first=None, stall=None):
    """Block exponent register E_r (updated on `step`, cleared on `clear`) and the beat's pre-aligned lanes.
    acts: per lane (sign, e_eff, man, live, special). Returns (E', the group accumulators' right shift this
    cycle, [(sign, m'')], whether the row needs a stall cycle). With shift_step = n > 0 the shift is at most
    n: in a beat that is not the group's `first` a larger dA needs a `stall` cycle, which moves E_r up by n."""
    e_r = Signal(EXP_BITS, name=f"{name}_E")
    xs = []
    for l, (s, e_eff, man, live, _) in enumerate(acts):
        x = Signal(EXP_BITS, name=f"{name}_ex{l}")
        m.d.comb += x.eq(Mux(live, e_eff, 0))
        xs.append(x)
    level = 0
    while len(xs) > 1:                                  # max tree over the live lanes' exponents
        xs = [_max(m, xs[t], xs[t + 1], f"{name}_mx{level}_{t}") for t in range(0, len(xs) - 1, 2)] + \
             ([xs[-1]] if len(xs) % 2 else [])
        level += 1
    e_new = _max(m, e_r, xs[0], f"{name}_Enew")
    d_a = Signal(EXP_BITS, name=f"{name}_dA")
    m.d.comb += d_a.eq(e_new - e_r)
    need = Signal(name=f"{name}_stall")
    if shift_step:
        amt = Signal(range(shift_step + 1), name=f"{name}_sh")
        m.d.comb += [amt.eq(Mux(d_a > shift_step, shift_step, d_a)), need.eq(~first & (d_a > shift_step))]
        with m.If(stall):
            m.d.sync += e_r.eq(e_r + amt)
        d_a = amt
    lanes = []
    for l, (s, e_eff, man, live, _) in enumerate(acts):
        sh = Signal(5, name=f"{name}_sh{l}")
        mag = Signal(MAN_BITS + g, name=f"{name}_m{l}")
        m.d.comb += [sh.eq(e_new - e_eff), mag.eq(Mux(live, (man << g) >> sh, 0))]    # truncating, per row
        lanes.append((s, mag))
    with m.If(step):
        m.d.sync += e_r.eq(e_new)
    with m.If(clear):
        m.d.sync += e_r.eq(0)
    return e_new, d_a, lanes, need


def row_unit(m, cfg, r: int, acts, ctl):
    """Row r's aligner and exponent bookkeeping. acts: per lane (sign, e_eff, man, live, special).
    Returns a dict: lanes [(sign, m'')], d_a (the group accumulators' right shift this cycle), dq_e (the
    exponent of the group being dequantized) and with dequant="pe" y_sel (the output accumulators' shift this
    cycle: 0 none, 1 by 1, 2 by 4, 3 by 16)."""
    name = f"row{r}"
    e_new, d_a, lanes, need = row_aligner(m, cfg.guard_bits, acts, ctl["step"], ctl["handoff"] & ctl["last"],
                                          name, cfg.shift_step, ctl["group_first"], ctl["shift_stall"])
    if cfg.dequant == "column":                        # hwgen/bitmod/dequant.py keeps the output exponents
        dq_e = Signal(EXP_BITS, name=f"{name}_dqE")
        with m.If(ctl["handoff"]):
            m.d.sync += dq_e.eq(e_new)
        return dict(lanes=lanes, d_a=d_a, dq_e=dq_e, need_stall=need)

    # output exponent: E_y (of the output accumulators), dq_e (of the group being dequantized), rem (pending
    # right shift of the output accumulators, done in the dequantization cycles)
    e_y, dq_e, rem = Signal(EXP_BITS, name=f"{name}_Ey"), Signal(EXP_BITS, name=f"{name}_dqE"), \
        Signal(EXP_BITS, name=f"{name}_rem")
    y_sel = Signal(2, name=f"{name}_ysel")
    amt = Signal(EXP_BITS, name=f"{name}_amt")
    m.d.comb += [y_sel.eq(Mux(rem >= 16, 3, Mux(rem >= 4, 2, Mux(rem != 0, 1, 0)))),
                 amt.eq(Mux(rem >= 16, 16, Mux(rem >= 4, 4, Mux(rem != 0, 1, 0))))]
    shifting = ctl["dq_busy"] & (ctl["dq_cnt"] != 7)
    with m.If(shifting):
        m.d.sync += rem.eq(rem - amt)
    with m.If(ctl["commit"]):
        m.d.sync += e_y.eq(Mux(ctl["dq_last"], 0, dq_e))
    with m.If(ctl["handoff"]):
        # a commit in this same cycle has just moved dq_e into E_y (or cleared it at a vector end)
        e_y_now = Mux(ctl["commit"], Mux(ctl["dq_last"], 0, dq_e), e_y)
        m.d.sync += [dq_e.eq(e_new), rem.eq(e_new - e_y_now)]
    return dict(lanes=lanes, d_a=d_a, y_sel=Mux(shifting, y_sel, 0), dq_e=dq_e, need_stall=need)


def row_pe(m, cfg, r: int, c: int, row, lanes, bsig, ctl, y_out, e_out):
    """PE (r, c): k lanes (+-m'' << shift, exact), adder tree, << bsig, group accumulator with the row's right
    shift and its group-end copy (returned); with dequant="pe" also the bit-serial dequantizer (MSB first) and
    the output accumulator with the row's serial right shift."""
    name, g = f"pe{r}_{c}", cfg.guard_bits
    lw = MAN_BITS + g + 3                              # lane shift 0..3 (window term decoding)
    xs, negs = [], []
    for l, ((s, mag), (neg, zero, shift)) in enumerate(zip(row["lanes"], lanes)):
        v = Signal(lw, name=f"{name}_v{l}")
        n = Signal(name=f"{name}_n{l}")
        x = Signal(signed(lw + 1), name=f"{name}_x{l}")
        # conditional negation as one's complement; the +1s are added once, after the tree
        m.d.comb += [v.eq(Mux(zero, 0, mag << shift)), n.eq(~zero & (s ^ neg)),
                     x.eq(Cat(v, 0) ^ Cat(*([n] * (lw + 1))))]
        xs.append(x)
        negs.append(n)
    tree = xs
    while len(tree) > 1:
        tree = [tree[t] + tree[t + 1] for t in range(0, len(tree) - 1, 2)] + ([tree[-1]] if len(tree) % 2 else [])
    W = cfg.group_acc_bits
    s_sum = Signal(signed(lw + 1 + (len(xs) - 1).bit_length()), name=f"{name}_S")
    m.d.comb += s_sum.eq(tree[0] + sum(negs[1:], negs[0]))
    acc = Signal(signed(W), name=f"{name}_acc")
    acc_sh = Signal(signed(W), name=f"{name}_acc_sh")
    acc_next = Signal(signed(W), name=f"{name}_acc_next")
    m.d.comb += [acc_sh.eq(acc >> row["d_a"]), acc_next.eq(acc_sh + (s_sum << bsig))]
    if cfg.shift_step:
        with m.If(ctl["shift_stall"]):                 # a shift-only cycle: the beat's terms wait
            m.d.sync += acc.eq(acc_sh)

    dq_val = Signal(signed(W), name=f"{name}_dq_val")
    with m.If(ctl["step"]):
        m.d.sync += acc.eq(acc_next)
    with m.If(ctl["handoff"]):
        m.d.sync += [acc.eq(0), dq_val.eq(acc_next)]
    with m.If(ctl["commit"] & ctl["dq_last"]):
        m.d.sync += e_out.eq(row["dq_e"])
    if cfg.dequant == "column":
        return dq_val
    dq_prod = Signal(signed(W + SCALE_BITS), name=f"{name}_dq_prod")
    prod_next = Signal(signed(W + SCALE_BITS), name=f"{name}_dq_next")
    m.d.comb += prod_next.eq((dq_prod << 1) + Mux(ctl["scale_bit"], dq_val, 0))
    O = cfg.out_bits
    out_acc = Signal(signed(O), name=f"{name}_out_acc")
    y_sh = Signal(signed(O), name=f"{name}_out_sh")
    sel = row["y_sel"]
    m.d.comb += y_sh.eq(Mux(sel[1], Mux(sel[0], out_acc >> 16, out_acc >> 4), Mux(sel[0], out_acc >> 1, out_acc)))

    with m.If(ctl["dq_busy"] & (ctl["dq_cnt"] != 7)):
        m.d.sync += [dq_prod.eq(prod_next), out_acc.eq(y_sh)]
    with m.If(ctl["commit"]):
        m.d.sync += out_acc.eq(Mux(ctl["dq_last"], 0, out_acc + prod_next))
        with m.If(ctl["dq_last"]):
            m.d.sync += y_out.eq(out_acc + prod_next)
    with m.If(ctl["handoff"]):
        m.d.sync += dq_prod.eq(0)
    return dq_val


__all__ = ["row_aligner", "row_unit", "row_pe"]
