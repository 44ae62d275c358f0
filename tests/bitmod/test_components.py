"""Every block of the BitMoD array elaborated and simulated ALONE (Amaranth's Python simulator), against the golden
model's function for its step (term decomposition, FP16 fields, row alignment, whole 1 x 1 arrays) or a small
Python reference: the term decoders, the three PE kinds, the row aligner and row unit, the bit-serial scaler,
the per-PE and per-column dequantizers, the row exponents and the Inf/NaN flags. The control a block receives
comes from `control()`, a Python statement of what the array's term engine and dequantizer control send."""
import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwgen.bitmod.array import BitModArray
from hwgen.bitmod.decode import TermDecoder
from hwgen.bitmod.dequant import BitSerialScaler, ColumnDequantizer, RowExponents, SerialDequantizer
from hwgen.bitmod.fp16 import Fp16PE, NonfiniteFlags
from hwgen.bitmod.fp16_row import Fp16RowPE, RowAligner, RowUnit
from hwgen.bitmod.pe import Int8PE
from sw_model.bitmod import fp16, fp16_row, golden
from sw_model.bitmod.config import BitModConfig, sv_reg_encode
from sw_model.bitmod.fp16 import _align_add, fp16_fields
from sw_model.bitmod.golden import TERMS, weight_terms
from sw_model.bitmod.vectors import SV_MAGS, random_beats, random_codes, random_fp16

Y_SHIFT = {0: 0, 1: 1, 2: 4, 3: 16}                   # row.y_sel -> output accumulator right shift


def simulate(dut, cycles, apply, sample, clocked=True):
    """One testbench: for every cycle, apply(ctx, i), then (after the clock edge) sample(ctx, i)."""
    async def bench(ctx):
        for i in range(cycles):
            apply(ctx, i)
            if clocked:
                await ctx.tick()
            sample(ctx, i)
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def control(cfg, ends, lasts, tail: int = 0):
    """The shared control of a stream of groups without stalls: ends[i] = 1 where cycle i hands a group off
    (its last compute cycle; every cycle before the tail computes), lasts[i] = 1 where that group closes a
    vector. Returns per cycle (ctl dict, index of the group being dequantized or None)."""
    dq_len, n = cfg.dequant_cycles, len(ends) + tail
    out = [({"step": int(i < len(ends)), "handoff": int(i < len(ends) and ends[i]),
             "last": int(i < len(ends) and lasts[i])}, None) for i in range(n)]
    g = 0
    for i in np.nonzero(ends)[0]:
        for c in range(dq_len):
            ctl = out[i + 1 + c][0]
            ctl.update(dq_busy=1, dq_cnt=c, dq_last=int(lasts[i]), dq_shift=int(c % 8 != 7),
                       commit=int(c == dq_len - 1))
            out[i + 1 + c] = (ctl, g)
        g += 1
    return out


_DONT_CARE = np.random.default_rng(0)


def term_fields(lane, bsig):
    """Golden signed power-of-two lane values and bsig -> a column_terms_layout value; a zero term gets a random
    neg and shift (don't-cares the decoders do produce), which a PE must ignore."""
    def term(v):
        if v == 0:
            return {"neg": int(_DONT_CARE.integers(0, 2)), "zero": 1, "shift": int(_DONT_CARE.integers(0, 4))}
        return {"neg": int(v < 0), "zero": 0, "shift": int(abs(v)).bit_length() - 1}
    return {"bsig": int(bsig), "lanes": [term(v) for v in lane]}


# ---- term decoders ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act,align", [("int8", "product"), ("fp16", "row"), ("fp16", "product")],
                         ids=["window-int8", "window-fp16-row", "plain-fp16"])
def test_term_decoder(act, align):
    cfg = BitModConfig(lanes=3, group_size=12, act=act, align=align)
    rng = np.random.default_rng(1)
    tables = rng.choice(SV_MAGS[1:], size=(2, 4)) / 2 * rng.choice([-1, 1], size=(2, 4))
    decode = fp16_row.window_terms if align == "row" or act == "int8" else weight_terms
    cases = [(dt, random_codes(rng, dt, 3, p_sv=0.3), int(rng.integers(0, 4))) for dt in range(4) for _ in range(25)]
    dut = TermDecoder(cfg)
    steps = [(dt, codes, sv, j) for dt, codes, sv in cases for j in range(4)]

    def apply(ctx, i):
        dt, codes, sv, j = steps[i]
        ctx.set(dut.sv_regs, [sv_reg_encode(v) for v in tables.reshape(-1)])
        ctx.set(dut.codes, [int(c) for c in codes])
        ctx.set(dut.dtype, dt)
        ctx.set(dut.sv, sv)
        ctx.set(dut.j, j)

    def sample(ctx, i):
        dt, codes, sv, j = steps[i]
        lane, bsig = decode(codes, dt, sv, cfg, tables[dt - 2] if dt >= 2 else None)
        got = ctx.get(dut.o)
        want = term_fields(lane[:, j], bsig[j])
        assert int(got.bsig) == want["bsig"], steps[i]
        for l, t in enumerate(want["lanes"]):
            assert int(got.lanes[l].zero) == t["zero"], (steps[i], l)
            if not t["zero"]:                          # neg and shift of a zero term are don't-cares
                assert (int(got.lanes[l].neg), int(got.lanes[l].shift)) == (t["neg"], t["shift"]), (steps[i], l)
    simulate(dut, len(steps), apply, sample, clocked=False)


# ---- PEs: a 1 x 1 array's golden outputs, the terms and the control supplied by the test ----------------------

def pe_stream(cfg, beats, decode):
    """Per compute cycle of a 1 x 1 array: (beat index, term fields); plus the handoff / last flags."""
    cycles, ends, lasts = [], [], []
    bpg, k = cfg.beats_per_group, cfg.lanes
    for b in range(len(beats["last"])):
        dt, sv = int(beats["dtype"][b][0]), int(beats["sv"][b][0])
        lane, bsig = decode(np.asarray(beats["w"][b]), dt, sv, cfg)
        for j in range(TERMS[dt]):
            cycles.append((b, term_fields(lane[:, j], bsig[j])))
            end = j == TERMS[dt] - 1 and b % bpg == bpg - 1
            ends.append(int(end))
            lasts.append(int(end and beats["last"][b]))
    assert len(beats["a"][0]) == k
    return cycles, ends, lasts


def run_pe(cfg, dut, beats, decode, set_acts, row_model=None):
    """Drives a PE through `beats`; returns its (y, e) after each vector (y only for INT8 activations)."""
    cycles, ends, lasts = pe_stream(cfg, beats, decode)
    ctls = control(cfg, ends, lasts, tail=cfg.dequant_cycles + 2)
    groups = np.nonzero(np.asarray(beats["last"]) | (np.arange(len(beats["last"])) % cfg.beats_per_group
                                                       == cfg.beats_per_group - 1))[0]
    scales = [int(beats["scale"][b][0]) for b in groups]
    got = []

    def apply(ctx, i):
        ctl, g = ctls[i]
        ctx.set(dut.ctl, ctl)
        if i < len(cycles):
            b, terms = cycles[i]
            ctx.set(dut.terms, terms)
            set_acts(ctx, b)
        if row_model is not None:
            ctx.set(dut.row, row_model(i, ctl))
        if g is not None:
            ctx.set(dut.scale_bit, scales[g] >> (7 - ctl["dq_cnt"]) & 1)

    def sample(ctx, i):
        ctl, _ = ctls[i]
        if ctl.get("commit") and ctl["dq_last"]:
            got.append((ctx.get(dut.y), ctx.get(dut.e) if cfg.act == "fp16" else None))
    simulate(dut, len(ctls), apply, sample)
    return got


@pytest.mark.parametrize("lanes,group", [(1, 4), (3, 12)], ids=["k1", "k3"])
def test_int8_pe(lanes, group):
    cfg = BitModConfig(lanes=lanes, group_size=group, max_groups=3)
    beats = random_beats(cfg, 4, seed=3)
    dut = Int8PE(cfg)
    got = run_pe(cfg, dut, beats, fp16_row.window_terms,
                 lambda ctx, b: ctx.set(dut.a, [int(x) for x in beats["a"][b]]))
    assert [y for y, _ in got] == golden.array_outputs(cfg, beats)[:, 0].tolist()


def test_int8_pe_hold():
    """dequant="column": the PE only holds its group sums (sum over the group of a * half-unit weight)."""
    cfg = BitModConfig(lanes=2, group_size=8, dequant="column")
    beats = random_beats(cfg, 3, seed=4, max_groups=2)
    cycles, ends, lasts = pe_stream(cfg, beats, fp16_row.window_terms)
    ctls = control(cfg, ends, lasts, tail=cfg.dequant_cycles + 1)
    dut, got = Int8PE(cfg), []
    wh = [golden.half_units(beats["w"][b], beats["dtype"][b][0], beats["sv"][b][0], cfg)
          for b in range(len(beats["last"]))]
    prods = [int(np.dot(beats["a"][b], wh[b])) for b in range(len(beats["last"]))]
    want = [sum(prods[g:g + cfg.beats_per_group]) for g in range(0, len(prods), cfg.beats_per_group)]

    def apply(ctx, i):
        ctx.set(dut.ctl, ctls[i][0])
        if i < len(cycles):
            ctx.set(dut.terms, cycles[i][1])
            ctx.set(dut.a, [int(x) for x in beats["a"][cycles[i][0]]])

    def sample(ctx, i):
        if ctls[i][0]["handoff"]:
            got.append(ctx.get(dut.hold))
    simulate(dut, len(ctls), apply, sample)
    assert got == want


def fp16_act(bits):
    s, e, m, live, special = fp16_fields(bits)
    return {"sign": int(s), "e": int(e), "man": int(m), "live": int(live), "special": int(special)}


def test_fp16_pe():
    cfg = BitModConfig(lanes=3, group_size=12, max_groups=3, act="fp16")
    beats = random_beats(cfg, 4, seed=5, nonfinite=0.1)
    dut = Fp16PE(cfg)
    got = run_pe(cfg, dut, beats, weight_terms,
                 lambda ctx, b: ctx.set(dut.acts, [fp16_act(x) for x in beats["a"][b]]))
    want = fp16.array_outputs(cfg, beats)
    assert [y for y, _ in got] == want["y"][:, 0].tolist()
    assert [e for _, e in got] == want["e"][:, 0].tolist()


def row_bookkeeping(cfg, beats, cycles, ctls):
    """Python model of a row unit for one row: per cycle the row_layout value a row PE receives."""
    e_r, e_y, dq_e, rem = 0, 0, 0, 0
    rows, prev_b = [], None
    for i, (ctl, _) in enumerate(ctls):
        b = cycles[i][0] if i < len(cycles) else None
        if b is not None and b != prev_b:
            e_new, d_a, lanes = fp16_row.row_align(cfg, np.asarray(beats["a"][b])[None], np.array([e_r]))
            e_new, d_a, lanes = int(e_new[0]), int(d_a[0]), lanes[0]
        elif b is not None:
            d_a = 0                                    # later cycles of a beat: E_r already moved
        amt = 16 if rem >= 16 else 4 if rem >= 4 else 1 if rem else 0
        y_sel = {16: 3, 4: 2, 1: 1, 0: 0}[amt] if ctl.get("dq_shift") else 0
        rows.append({"lanes": [{"sign": int(v < 0), "mag": abs(int(v))} for v in lanes] if b is not None else
                     [{"sign": 0, "mag": 0}] * cfg.lanes, "d_a": d_a if b is not None else 0, "dq_e": dq_e,
                     "y_sel": y_sel})
        e_y_now = e_y
        if ctl.get("dq_shift"):
            rem -= amt
        if ctl.get("commit"):
            e_y = e_y_now = 0 if ctl["dq_last"] else dq_e
        if b is not None:
            e_r = e_new
        if ctl["handoff"]:
            dq_e, rem = e_new, e_new - e_y_now
            if ctl["last"]:
                e_r = 0
        prev_b = b
    return rows


def test_fp16_row_pe():
    cfg = BitModConfig(lanes=2, group_size=8, max_groups=3, act="fp16", align="row")
    beats = random_beats(cfg, 4, seed=6, nonfinite=0.1)
    cycles, ends, lasts = pe_stream(cfg, beats, fp16_row.window_terms)
    rows = row_bookkeeping(cfg, beats, cycles, control(cfg, ends, lasts, tail=cfg.dequant_cycles + 2))
    dut = Fp16RowPE(cfg)
    got = run_pe(cfg, dut, beats, fp16_row.window_terms, lambda ctx, b: None, row_model=lambda i, ctl: rows[i])
    want = fp16_row.array_outputs(cfg, beats)
    assert [y for y, _ in got] == want["y"][:, 0].tolist()
    assert [e for _, e in got] == want["e"][:, 0].tolist()


# ---- row aligner and row unit -----------------------------------------------------------------------------

@pytest.mark.parametrize("shift_step", [0, 2])
def test_row_aligner(shift_step):
    """Against golden row_align, one step per beat, cleared after every 5th beat; with shift_step the shift
    is capped and need_stall flags the larger growths (stall cycles inserted as the array does)."""
    cfg = BitModConfig(lanes=3, group_size=12, act="fp16", align="row")
    rng = np.random.default_rng(7)
    a = random_fp16(rng, (40, 3), p_nonfinite=0.1)
    dut = RowAligner(3, cfg.guard_bits, shift_step)
    plan, e_r = [], 0                                  # per cycle: (beat, step, clear, first, stall, want)
    for b in range(len(a)):
        e_new, d_a, lanes = fp16_row.row_align(cfg, a[b][None], np.array([e_r]))
        e_new, d_a = int(e_new[0]), int(d_a[0])
        first = b % 5 == 0
        while shift_step and not first and d_a > shift_step:
            plan.append((b, 0, 0, 0, 1, (e_new, shift_step, None, 1)))
            e_r += shift_step
            d_a -= shift_step
        # a group's first beat shifts zero accumulators: its d_a is capped without a stall
        plan.append((b, 1, int(b % 5 == 4), int(first), 0, (e_new, min(d_a, shift_step or d_a), lanes[0], 0)))
        e_r = 0 if b % 5 == 4 else e_new

    def apply(ctx, i):
        b, step, clear, first, stall, _ = plan[i]
        ctx.set(dut.acts, [fp16_act(x) for x in a[b]])
        ctx.set(dut.step, step)
        ctx.set(dut.clear, clear)
        if shift_step:
            ctx.set(dut.first, first)
            ctx.set(dut.stall, stall)
        e_new, d_a, lanes, need = plan[i][5]
        assert (ctx.get(dut.e_new), ctx.get(dut.d_a)) == (e_new, d_a), plan[i]
        if shift_step:
            assert ctx.get(dut.need_stall) == need, plan[i]
        if lanes is not None:
            got = ctx.get(dut.lanes)
            assert [-int(got[l].mag) if got[l].sign else int(got[l].mag) for l in range(3)] == lanes.tolist()
    simulate(dut, len(plan), apply, lambda ctx, i: None)
    assert any(p[4] for p in plan) == bool(shift_step)


def test_row_unit():
    """dq_e = E' of the group just handed off; the y_sel shifts of the dequantizer cycles add up to the pending
    output shift E_g - E_y; the lanes and d_a are the aligner's (checked in test_row_aligner)."""
    cfg = BitModConfig(lanes=2, group_size=8, act="fp16", align="row")
    beats = random_beats(cfg, 4, seed=8, max_groups=3)
    cycles, ends, lasts = pe_stream(cfg, beats, fp16_row.window_terms)
    ctls = control(cfg, ends, lasts, tail=cfg.dequant_cycles + 2)
    model = row_bookkeeping(cfg, beats, cycles, ctls)
    dut, got = RowUnit(cfg), []

    def apply(ctx, i):
        ctx.set(dut.ctl, ctls[i][0])
        # after the stream: +0 activations, so that the aligner stays put as the model assumes
        ctx.set(dut.acts, [fp16_act(x) for x in beats["a"][cycles[i][0]]] if i < len(cycles) else [fp16_act(0)] * 2)
        row = ctx.get(dut.row)
        got.append((int(row.dq_e), int(row.y_sel), int(row.d_a)))
    simulate(dut, len(ctls), apply, lambda ctx, i: None)
    assert [(r["dq_e"], r["y_sel"], r["d_a"]) for r in model] == got
    assert any(y for _, y, _ in got)                   # the output shifts were exercised


# ---- dequantizers -------------------------------------------------------------------------------------------

def test_bit_serial_scaler():
    rng = np.random.default_rng(9)
    cases = [(int(v), int(s)) for v, s in zip(rng.integers(-(1 << 11), 1 << 11, 30), rng.integers(0, 256, 30))]
    cases += [(-(1 << 11), 255), ((1 << 11) - 1, 255), (-1, 0)]
    dut, got = BitSerialScaler(12), []

    def apply(ctx, i):
        v, s = cases[i // 8]
        bit = i % 8
        ctx.set(dut.value, v)
        ctx.set(dut.bit, s >> (7 - bit) & 1)
        ctx.set(dut.advance, int(bit != 7))
        ctx.set(dut.clear, int(bit == 7))
        if bit == 7:
            got.append(ctx.get(dut.next))
    simulate(dut, 8 * len(cases), apply, lambda ctx, i: None)
    assert got == [v * s for v, s in cases]


@pytest.mark.parametrize("act,align", [("int8", "product"), ("fp16", "row"), ("fp16", "product")])
def test_serial_dequantizer(act, align):
    """y = the vector's sum of value * scale; row-aligned FP16: the accumulator is shifted right by the y_sel
    steps first; product-aligned FP16: block-floating-point adds (golden _align_add)."""
    cfg = BitModConfig(act=act, align=align, max_groups=4)
    rng = np.random.default_rng(10)
    n = 14
    values = rng.integers(-(1 << (cfg.group_acc_bits - 1)), 1 << (cfg.group_acc_bits - 1), n)
    values[2] = -(1 << (cfg.group_acc_bits - 1))
    scales, exps = rng.integers(0, 256, n), np.sort(rng.integers(0, 40, n))
    ysels = rng.integers(0, 4, (n, 8)) if align == "row" else np.zeros((n, 8), dtype=int)
    lasts = np.zeros(n, dtype=int)
    lasts[[1, 2, 6, 10, 13]] = 1
    ends = [int(c % 9 == 8) for c in range(9 * n)]     # a group every 9 cycles
    ctls = control(cfg, ends, [lasts[c // 9] if e else 0 for c, e in enumerate(ends)], tail=10)
    dut, got = SerialDequantizer(cfg), []

    def apply(ctx, i):
        ctl, g = ctls[i]
        ctx.set(dut.ctl, ctl)
        if g is not None:
            ctx.set(dut.value, int(values[g]))
            ctx.set(dut.scale_bit, int(scales[g]) >> (7 - ctl["dq_cnt"]) & 1)
            if align == "row":
                ctx.set(dut.y_sel, int(ysels[g, ctl["dq_cnt"]]) if ctl["dq_shift"] else 0)
            elif act == "fp16":
                ctx.set(dut.value_e, int(exps[g]))

    def sample(ctx, i):
        if ctls[i][0].get("commit") and ctls[i][0]["dq_last"]:
            got.append((ctx.get(dut.y), ctx.get(dut.e) if align == "product" and act == "fp16" else 0))
    simulate(dut, len(ctls), apply, sample)
    want, y, e = [], 0, 0
    for g in range(n):
        p = int(values[g]) * int(scales[g])
        if act == "fp16" and align == "product":
            y, e = (int(x) for x in _align_add(np.int64(y), np.int64(e), np.int64(p), np.int64(exps[g])))
        else:
            y = (y >> sum(Y_SHIFT[int(s)] for s in ysels[g, :7])) + p
        if lasts[g]:
            want.append((y, e))
            y, e = 0, 0
    assert got == want


@pytest.mark.parametrize("act", ["int8", "fp16"])
def test_column_dequantizer(act):
    """rows = 3: row s is served in cycles 8s .. 8s + 7 of the 24; y[r] = the vector's sum of hold[r] * scale,
    with FP16 rows the served row's accumulator first shifted right by `shift`."""
    kw = dict(act="fp16", align="row") if act == "fp16" else {}
    cfg = BitModConfig(rows=3, lanes=1, group_size=12, max_groups=4, dequant="column", **kw)
    rng = np.random.default_rng(11)
    n, R, W = 7, 3, cfg.group_acc_bits
    holds = rng.integers(-(1 << (W - 1)), 1 << (W - 1), (n, R))
    scales, shifts = rng.integers(0, 256, n), rng.integers(0, 6, (n, R)) if act == "fp16" else np.zeros((n, R), int)
    lasts = np.array([0, 1, 0, 0, 1, 1, 1])
    ends = [int(c % 25 == 24) for c in range(25 * n)]
    ctls = control(cfg, ends, [lasts[c // 25] if e else 0 for c, e in enumerate(ends)], tail=26)
    dut, got = ColumnDequantizer(cfg), []

    def apply(ctx, i):
        ctl, g = ctls[i]
        ctx.set(dut.ctl, ctl)
        if g is not None:
            ctx.set(dut.holds, [int(x) for x in holds[g]])
            ctx.set(dut.scale, int(scales[g]))
            if act == "fp16":
                ctx.set(dut.shift, int(shifts[g, ctl["dq_cnt"] // 8]))

    def sample(ctx, i):
        if ctls[i][0].get("commit") and ctls[i][0]["dq_last"]:
            y = ctx.get(dut.y)
            got.append([int(y[r]) for r in range(R)])
    simulate(dut, len(ctls), apply, sample)
    want, y = [], np.zeros(R, dtype=np.int64)
    for g in range(n):
        y = (y >> shifts[g]) + holds[g] * scales[g]
        if lasts[g]:
            want.append(y.tolist())
            y = np.zeros(R, dtype=np.int64)
    assert got == want


def test_row_exponents():
    """shift = dq_e[s] - E_y[s] while row s is served; E_y[s] follows dq_e[s] at the end of its slot."""
    cfg = BitModConfig(rows=3, lanes=1, group_size=12, dequant="column", act="fp16", align="row")
    rng = np.random.default_rng(12)
    n, R = 6, 3
    dq_e = np.cumsum(rng.integers(0, 4, (n, R)), axis=0)
    lasts = np.array([0, 1, 0, 0, 0, 1])
    dq_e[2:] -= dq_e[1]                                # a new vector starts from E_y = 0
    ends = [int(c % 25 == 24) for c in range(25 * n)]
    ctls = control(cfg, ends, [lasts[c // 25] if e else 0 for c, e in enumerate(ends)], tail=26)
    dut, got, want = RowExponents(cfg), [], []
    e_y = np.zeros(R, dtype=np.int64)
    for ctl, g in ctls:
        if g is not None:
            s = ctl["dq_cnt"] // 8
            want.append(int(dq_e[g, s] - e_y[s]))
            if ctl["dq_cnt"] % 8 == 7:
                e_y[s] = 0 if ctl["commit"] and ctl["dq_last"] else dq_e[g, s]
                if ctl["commit"] and ctl["dq_last"]:
                    e_y[:] = 0

    def apply(ctx, i):
        ctl, g = ctls[i]
        ctx.set(dut.ctl, ctl)
        if g is not None:
            ctx.set(dut.dq_e, [int(x) for x in dq_e[g]])
            got.append(ctx.get(dut.shift))
    simulate(dut, len(ctls), apply, lambda ctx, i: None)
    assert got == want and any(want)


@pytest.mark.parametrize("pipeline", [0, 1])
def test_nonfinite_flags(pipeline):
    """flags[r] = OR over a vector's beats of its row's Inf/NaN lanes, out with the vector's commit."""
    cfg = BitModConfig(rows=2, lanes=2, group_size=8, act="fp16", pipeline=pipeline)
    rng = np.random.default_rng(13)
    beats_per_vec, n_vec = 8, 6                        # 2 groups per vector, a beat every 2 cycles
    specials = (rng.random((n_vec * beats_per_vec, 2, 2)) < 0.08).astype(int)
    specials[-beats_per_vec:] = 0
    specials[-1, 1, 0] = 1                             # the last beat alone flags the last vector
    specials[beats_per_vec:2 * beats_per_vec, 0] = 0   # vector 1 has no Inf/NaN in row 0, and vector 2 has one
    specials[2 * beats_per_vec, 0, 0] = 1              # in its first beat: it must not leak into vector 1
    ends = [int(c % 8 == 7) for c in range(2 * len(specials))]
    lasts = [int(e and c % 16 == 15) for c, e in enumerate(ends)]
    delay = [0] * pipeline                             # the decode register delays the PEs' handoff
    ctls = control(cfg, delay + ends, delay + lasts, tail=10)
    dut, got = NonfiniteFlags(cfg), []

    def apply(ctx, i):
        done = i < len(ends) and i % 2 == 1            # a beat every 2 cycles
        ctx.set(dut.ctl, dict(ctls[i][0], beat_done=int(done)))
        if i // 2 < len(specials):
            ctx.set(dut.specials, [int(specials[i // 2, r, 0] | specials[i // 2, r, 1] << 1) for r in range(2)])

    def sample(ctx, i):
        if ctls[i][0].get("commit") and ctls[i][0]["dq_last"]:
            got.append([int(ctx.get(dut.flags) >> r & 1) for r in range(2)])
    simulate(dut, len(ctls), apply, sample)
    want = specials.reshape(n_vec, beats_per_vec, 2, 2).any(axis=(1, 3)).astype(int).tolist()
    assert got == want and any(any(w) for w in want)


# ---- the hierarchy ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg,blocks", [
    (BitModConfig(rows=2, cols=2, lanes=1, group_size=4), ["dec1", "pe1_1", "pe1_1.dq", "pe1_1.dq.scaler"]),
    (BitModConfig(rows=2, cols=1, lanes=1, group_size=8, dequant="column", act="fp16", align="row",
                  shift_step=1),
     ["dec0", "row1", "row1.aligner", "pe1_0", "dq0", "dq0.scaler", "row_exp", "nonfinite"]),
    (BitModConfig(act="fp16", lanes=1, group_size=4), ["dec0", "pe0_0", "pe0_0.dq", "nonfinite"]),
], ids=["int8-pe", "fp16-row-column", "fp16-product"])
def test_blocks_are_modules(cfg, blocks):
    """Every block is its own module in the generated Verilog."""
    text = verilog.convert(BitModArray(cfg), name="top", emit_src=False)
    for block in blocks:
        assert f"module \\top.{block} " in text or f"module \\top.{block}(" in text, block


@pytest.mark.parametrize("preset", ["bitmod-array-3x5", "bitmod-pe-fp16"])
def test_whole_array_against_golden(preset):
    """The whole array (decoders, PEs, dequantizer, output queue) in Amaranth's simulator: random vectors with
    mixed datatypes and SV-register writes in the stream, random input gaps and output backpressure, every output
    equal to the golden model."""
    from amaranth.hdl import Value
    from amaranth.lib import data

    from hwgen.payload import payload_fields
    from sw_model.bitmod import fp16 as bitmod_fp16
    from sw_model.bitmod import golden as bitmod
    from sw_model.bitmod.vectors import random_beats
    from sw_model.host.beats import pack_beats, unpack_beats
    from sw_model.registry import PRESETS
    cfg = PRESETS[preset]
    beats = random_beats(cfg, 4, seed=3, max_groups=2, sv_writes=0.7)
    want = bitmod_fp16.array_outputs(cfg, beats)["y"] if cfg.act == "fp16" else bitmod.array_outputs(cfg, beats)
    want = bitmod.to_bits(want, cfg.out_bits)
    dut = BitModArray(cfg)
    words = pack_beats(payload_fields(data.Layout.cast(dut.i.payload.shape())), beats)
    rng = np.random.default_rng(5)
    got = []

    async def bench(ctx):
        k_in = 0
        for _ in range(50000):
            offer = k_in < len(words) and rng.random() < 0.7
            ready = rng.random() < 0.7
            ctx.set(dut.i.valid, offer)
            ctx.set(Value.cast(dut.i.payload), words[k_in] if k_in < len(words) else 0)
            ctx.set(dut.o.ready, ready)
            if ctx.get(dut.o.valid) and ready:
                got.append(ctx.get(Value.cast(dut.o.payload)))
            if offer and ctx.get(dut.i.ready):
                k_in += 1
            await ctx.tick()
            if len(got) == len(want):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    out = unpack_beats(payload_fields(data.Layout.cast(dut.o.payload.shape())), got)["y"]
    assert np.array_equal(out, want)
