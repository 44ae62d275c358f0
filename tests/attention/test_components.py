"""The attention array's blocks, each elaborated alone in Amaranth's simulator against the golden model's formula
for its step: the exponential (exhaustive or swept), the 2D PE (score, probability, prob x V over back-to-back
tiles) and the 1D lane (running max, corrections, running sums, reciprocal and normalisation, driven with the
array's strobe schedule and random values on every input it must ignore). Also: each block is its own module
in the array's hierarchy."""
import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hwgen.attention.array import AttentionArray
from hwgen.attention.exp2 import Exp2Neg
from hwgen.attention.lane import Lane, LaneControl
from hwgen.attention.pe import PE
from sw_model.attention import golden as G
from sw_model.attention.config import AttentionConfig
from sw_model.attention.lmul import lmul_array, lmul_int, saturate

SMALL = AttentionConfig(head_dim=3, m0=2, p0=1, data_bits=5, score_shift=1, logit_frac=2, exp_bits=7, out_frac=3,
                        max_keys_log2=5)
ODD = AttentionConfig(head_dim=5, m0=3, p0=1, data_bits=6, score_shift=2, logit_frac=3, exp_bits=9, out_frac=4,
                      max_keys_log2=7)
D1 = AttentionConfig(head_dim=1, m0=1, p0=1, data_bits=3, score_shift=0, logit_frac=0, exp_bits=3, out_frac=1,
                     max_keys_log2=3)
LMUL = AttentionConfig(**{**ODD.__dict__, "mult": "lmul", "lmul_man": 3})
LMUL_PRODUCTS = AttentionConfig(**{**SMALL.__dict__, "mult": "lmul-products", "lmul_man": 2})
# max_keys_log2 = 1: RD and RNV are so narrow that the L-Mul running sums saturate within two key tiles
LMUL_SATURATING = AttentionConfig(**{**ODD.__dict__, "max_keys_log2": 1, "mult": "lmul", "lmul_man": 2})
# the pipelining fields: none at all, and the exponential's longest pipeline with sum_pipe past head_dim (the
# configs above have the defaults)
SMALL_P0 = AttentionConfig(**{**SMALL.__dict__, "max_pipe": 0, "exp_pipe": 0, "sum_pipe": 0})
SMALL_P0 = AttentionConfig(**{**SMALL_P0.__dict__, "lane_pipe": 0, "mul_pipe": 0})
ODD_P2 = AttentionConfig(**{**ODD.__dict__, "max_pipe": 2, "exp_pipe": 2, "sum_pipe": 6, "lane_pipe": 3})
LMUL_P2 = AttentionConfig(**{**LMUL.__dict__, "lane_pipe": 2})
CONFIGS = [SMALL, ODD, D1, LMUL, LMUL_PRODUCTS, LMUL_SATURATING, SMALL_P0, ODD_P2, LMUL_P2]
IDS = ["small-d3", "odd-d5-m3", "d1-m1", "lmul-d5", "lmul-products-d3", "lmul-saturating", "small-pipe0",
       "odd-pipe2263", "lmul-lanepipe2"]


def simulate(dut, bench, clocked=True):
    sim = Simulator(dut)
    if clocked:                                          # the exponential is combinational: no clock domain
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def srand(rng, bits):
    return int(rng.integers(-(1 << (bits - 1)), 1 << (bits - 1)))


# ---- the exponential ----

@pytest.mark.parametrize("registered", [False, True], ids=["comb", "registered"])
@pytest.mark.parametrize("cfg,width", [(SMALL, 8), (D1, 4), (AttentionConfig(), 20)], ids=["small", "frac0", "preset"])
def test_exp2_against_golden(cfg, width, registered):
    """Every input of the narrow units; for the preset's 20-bit input, every value up to past the underflow
    (x >> F > W gives 0) plus random large ones. `registered`: y follows x one clock edge later."""
    top = (cfg.exp_bits + 3) << cfg.logit_frac
    xs = list(range(min(1 << width, top)))
    if width > 12:
        xs += [int(x) for x in np.random.default_rng(1).integers(top, 1 << width, 200)] + [(1 << width) - 1]
    want = G.exp2_neg(cfg, xs)
    dut = Exp2Neg(cfg, width, registered=registered)
    got = []

    async def bench(ctx):
        for x in xs:
            ctx.set(dut.x, x)
            if registered:
                await ctx.tick()
                ctx.set(dut.x, (x + 1) % (1 << width))     # the register holds x's result after the edge
            got.append(ctx.get(dut.y))
    simulate(dut, bench, clocked=registered)
    assert got == [int(v) for v in want]
    assert got[0] == 1 << cfg.exp_bits


# ---- the 2D PE ----

def product(cfg, a, b):
    return a * b if cfg.mult == "exact" else lmul_int(a, b, cfg.lmul_man)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_pe_score_prob_and_pv(cfg):
    """Three tiles back to back (S, G1, G2, PV as the array sequences them, no idle cycle between tiles): the
    logit is the floored score of this tile only (`clear` restarts it), prob = exp2(-(rm - logit)) or 0 when the
    row is not kept, and each PV cycle's product appears one cycle later."""
    rng = np.random.default_rng(3)
    d, b, w = cfg.head_dim, cfg.data_bits, cfg.exp_bits
    idle = {"step": 0, "clear": 0, "pv": 0, "load_prob": 0}
    dut = PE(cfg)

    async def bench(ctx):
        for tile in range(3):
            q, k, v = ([srand(rng, b) for _ in range(d)] for _ in range(3))
            if tile == 1:                                   # extreme codes: the largest magnitude score
                q, k = [-(1 << (b - 1))] * d, [-(1 << (b - 1))] * d
            for e in range(d):                             # S
                ctx.set(dut.ctl, {**idle, "step": 1, "clear": int(e == 0)})
                ctx.set(dut.q, q[e])
                ctx.set(dut.k, k[e])
                ctx.set(dut.v, srand(rng, b))              # ignored in S
                await ctx.tick()
            ctx.set(dut.ctl, idle)                         # G1: 1 + mul_pipe cycles
            for _ in range(cfg.mul_pipe):                  # the last product lands mul_pipe cycles later
                await ctx.tick()
            logit = sum(product(cfg, q[e], k[e]) for e in range(d)) >> cfg.score_shift
            assert ctx.get(dut.logit) == logit, tile
            await ctx.tick()
            lo, hi = -(1 << (cfg.logit_width - 1)), (1 << (cfg.logit_width - 1)) - 1
            rm = min(logit + int(rng.integers(0, (w + 2) << cfg.logit_frac)), hi) if tile != 1 else logit
            keep = int(tile != 2)
            assert lo <= rm <= hi
            ctx.set(dut.rm, rm)                            # G2: 1 + exp_pipe cycles, rm stable
            ctx.set(dut.keep, keep)
            for g in range(cfg.exp_pipe + 1):
                ctx.set(dut.ctl, {**idle, "load_prob": int(g == cfg.exp_pipe)})
                await ctx.tick()
            prob = int(G.exp2_neg(cfg, rm - logit)) if keep else 0
            assert ctx.get(dut.prob) == prob, tile
            seen = []
            for f in range(d + cfg.mul_pipe):              # PV; each product 1 + mul_pipe edges later
                if f < d:
                    ctx.set(dut.ctl, {**idle, "pv": 1, "clear": int(f == 0)})
                    ctx.set(dut.v, v[f])
                    ctx.set(dut.q, srand(rng, b))          # ignored in PV
                    ctx.set(dut.k, srand(rng, b))
                await ctx.tick()
                # registered: after the edge, with other operands offered, it still holds that product
                ctx.set(dut.v, srand(rng, b))
                ctx.set(dut.ctl, idle)
                seen.append(ctx.get(dut.pv_product))
            assert seen[cfg.mul_pipe:] == [product(cfg, prob, v[f]) for f in range(d)], tile
            assert ctx.get(dut.prob) == prob               # PV does not disturb the probability
    simulate(dut, bench)


# ---- the 1D lane ----

def lane_tiles(cfg, n, rng, base, spread):
    """Per key tile: LM (base +- spread), SLD, SLNV (head_dim values) as a column of M0 PEs delivers them; every
    tile holds a probability 2^W (the key at the running max), so RD >= 2^W as the reciprocal assumes."""
    w, b = cfg.exp_bits, cfg.data_bits
    tiles = []
    for _ in range(n):
        lm = base + int(rng.integers(-spread, spread + 1))
        p = rng.integers(0, (1 << w) + 1, cfg.m0)
        p[rng.integers(cfg.m0)] = 1 << w
        v = rng.integers(-(1 << (b - 1)), 1 << (b - 1), (cfg.m0, cfg.head_dim))
        if cfg.mult == "exact":
            slnv = [int(x) for x in p @ v]
        else:
            slnv = [int(x) for x in lmul_array(p[:, None], v, cfg.lmul_man).sum(axis=0)]
        tiles.append((lm, int(p.sum()), slnv))
    return tiles


def lane_reference(cfg, tiles):
    """The golden model's per-tile update of one query row (sw_model.attention.golden._query_tile) and its
    normalisation: per tile (RM, PRM, RD, RNV), and the output row."""
    w, man = cfg.exp_bits, cfg.lmul_man
    rm, rd, rnv, states = None, 0, np.zeros(cfg.head_dim, dtype=object), []
    for lm, sld, slnv in tiles:
        new = lm if rm is None else max(rm, lm)
        prm = 0 if rm is None else int(G.exp2_neg(cfg, new - rm))
        slnv = np.array(slnv, dtype=object)
        if cfg.mult == "lmul":
            rd = int(saturate(sld + lmul_int(rd, prm, man, w), cfg.rd_width, False))
            rnv = saturate(slnv + lmul_array(rnv, prm, man, w), cfg.rnv_width, True)
        else:
            rd, rnv = sld + ((rd * prm) >> w), slnv + ((rnv * prm) >> w)
        rm = new
        states.append((rm, prm, rd, [int(x) for x in rnv]))
    out = G.normalize(cfg, np.array([rd], dtype=object), np.array([rnv], dtype=object))[0]
    return states, int(G.reciprocal(cfg, np.array([rd], dtype=object))[0]), [int(x) for x in out]


def lane_schedule(cfg, tiles, gaps):
    """The array's strobes for one query tile, cycle by cycle (hwgen.attention.array): per key tile, `gap` idle
    cycles, S (head_dim), G1 (1 + max_pipe, g1 in the last), G2 (1 + exp_pipe, g2 in the last), PV (head_dim);
    rd_step rd_delay cycles after the first PV cycle, lane steps lane_delay cycles behind PV, then 1 + lane_pipe
    bubble rotations; the reciprocal from rd_delay + 1 cycles after the first PV cycle of the last tile; NORM
    (norm_cycles) once it is done and the lanes are idle; then one `clear`. Returns (per-cycle control dicts,
    per-cycle inputs, per-cycle checks)."""
    d, s, lag, lp = cfg.head_dim, cfg.rd_delay, cfg.lane_delay, cfg.lane_pipe
    events, inputs, checks = {}, {}, {}

    def at(cycle, **fields):
        events.setdefault(cycle, {}).update(fields)

    def check(cycle, what, tile=None):       # with head_dim 1 the tiles overlap: several checks in one cycle
        checks.setdefault(cycle, []).append((what, tile))
    start, g1s = 0, []
    for i, ((lm, sld, slnv), gap) in enumerate(zip(tiles, gaps)):
        g1 = start + gap + d + cfg.max_pipe
        g2 = g1 + 1 + cfg.exp_pipe
        pv0 = g2 + 1
        at(g1, g1=1)
        at(g2, g2=1)
        at(pv0 + s, rd_step=1)
        at(pv0 + s + 1, rd_step2=1)
        for f in range(d):
            at(pv0 + lag + f, lane_step=1)
            inputs.setdefault(pv0 + lag + f, {})["slnv"] = slnv[f]
        for t in range(1 + lp):
            at(pv0 + lag + d + t, lane_tail=1)
        inputs.setdefault(g1, {})["lm"] = lm
        for c in range(pv0 + s, pv0 + s + d):             # the column's probability sum, stable through PV
            inputs.setdefault(c, {})["sld"] = sld
        for cycle, what in ((g1, "rm"), (g2, "prm"), (pv0 + s + 1, "rd"), (pv0 + lag + d + lp, "rnv")):
            check(cycle, what, i)
        g1s.append(g1)
        start = pv0 + d                                   # the next S phase may start right after PV
    at(pv0 + s + 1, recip_init=1)
    for c in range(pv0 + s + 2, pv0 + s + 2 + cfg.recip_bits):
        at(c, recip_step=1)
    norm_enter = max(pv0 + s + 2 + cfg.recip_bits, pv0 + d + lag + lp)   # recip done, no lane rotation due
    check(norm_enter, "recip")
    nc = cfg.norm_cycles
    for c in range(norm_enter, norm_enter + nc + 1):
        at(c, norm_next=1)
    for c in range(norm_enter + 1, norm_enter + nc + 1):
        at(c, norm_step=1)
    check(norm_enter + nc, "out")
    at(norm_enter + nc + 1, clear=1)
    check(norm_enter + nc + 1, "cleared")
    n = norm_enter + nc + 2
    ctl = []
    g1s.append(n)
    for c in range(n):            # first / was_first are registers in the array, updated at every G1
        fields = {name: 0 for name, _ in LaneControl}
        fields["first"] = int(c <= g1s[0])
        fields["was_first"] = int(g1s[0] < c <= g1s[1])
        fields.update(events.get(c, {}))
        ctl.append(fields)
    return ctl, [inputs.get(c, {}) for c in range(n)], checks


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_lane_against_golden_recurrence(cfg):
    """Two query tiles (4 and 1 key tiles, with and without idle cycles between key tiles) on one lane: RM, PRM,
    RD and the RNV ring after every key tile, the reciprocal and the output row equal the golden model's
    formulas; `clear` empties RD and RNV. Inputs the lane must not sample carry random values. The second query
    tile's LM is one above the RM the first one left (RM is not cleared): its PRM must still be 0."""
    rng = np.random.default_rng(11)
    dut = Lane(cfg)
    base = srand(rng, cfg.logit_width - 1)
    # LM spread over the exponential's range (PRM from 2^W down to 0); one flat max for the saturating config
    spread = 0 if cfg is LMUL_SATURATING else (cfg.exp_bits + 2) << cfg.logit_frac
    runs = [(lane_tiles(cfg, 4, rng, base, spread), [0, 0, 2, 1]), (lane_tiles(cfg, 1, rng, base, spread), [3])]
    last_rm = lane_reference(cfg, runs[0][0])[0][-1][0]
    runs[1][0][0] = (last_rm + 1,) + runs[1][0][0][1:]
    if cfg is LMUL_SATURATING:                           # the case this config is for
        assert max(rd for _, _, rd, _ in lane_reference(cfg, runs[0][0])[0]) == (1 << cfg.rd_width) - 1
    sld_w, slnv_w = len(dut.sld), len(dut.slnv)
    done = []

    async def bench(ctx):
        for tiles, gaps in runs:
            states, recip, out = lane_reference(cfg, tiles)
            ctl, inputs, checks = lane_schedule(cfg, tiles, gaps)
            for c, (fields, given) in enumerate(zip(ctl, inputs)):
                ctx.set(dut.ctl, fields)
                ctx.set(dut.lm, given.get("lm", srand(rng, cfg.logit_width)))
                ctx.set(dut.sld, given.get("sld", int(rng.integers(0, 1 << sld_w))))
                ctx.set(dut.slnv, given.get("slnv", srand(rng, slnv_w)))
                await ctx.tick()
                rnv = [ctx.get(dut.rnv[f]) for f in range(cfg.head_dim)]
                for what, tile in checks.get(c, []):
                    done.append(what)
                    if what in ("rm", "prm", "rd", "rnv"):
                        got = {"rm": ctx.get(dut.rm), "prm": ctx.get(dut.prm), "rd": ctx.get(dut.rd), "rnv": rnv}
                        assert got[what] == states[tile][("rm", "prm", "rd", "rnv").index(what)], (what, tile, c)
                    elif what == "recip":
                        assert ctx.get(dut.recip) == recip
                    elif what == "out":
                        assert rnv == out
                    else:
                        assert (ctx.get(dut.rd), rnv) == (0, [0] * cfg.head_dim)
    simulate(dut, bench)
    assert len(done) == 4 * 5 + 3 * 2                     # every check ran


# ---- the hierarchy ----

def test_blocks_are_modules_of_the_array():
    """Each PE, lane and exponential is its own submodule of the array (a module of its own in the Verilog)."""
    cfg = AttentionConfig(head_dim=2, m0=3, p0=2, data_bits=4, logit_frac=1, exp_bits=5, max_keys_log2=4)
    top = Fragment.get(AttentionArray(cfg), None)
    subs = {name: frag for frag, name, _ in top.subfragments}
    assert set(subs) == {f"pe{r}_{p}" for r in range(3) for p in range(2)} | {"lane0", "lane1"}
    for name, frag in subs.items():
        assert [n for _, n, _ in frag.subfragments] == (["prm_exp"] if name.startswith("lane") else ["exp"])


# ---- the whole array, small enough for Amaranth's simulator ----

CAUSAL = AttentionConfig(head_dim=3, m0=2, p0=3, data_bits=6, score_shift=1, logit_frac=3, exp_bits=10, out_frac=4,
                         max_keys_log2=6, causal=True)


@pytest.mark.parametrize("cfg,n_q,n_k,q_pos", [
    (CAUSAL, 7, 9, [8, 0, 3, 5, 1, 2, 7]),       # masked whole tiles, row 0 of a tile, partial last tile
    (ODD, 2, 7, None),                           # 7 keys on m0 = 3: a padded last tile
    (SMALL, 3, 1, None),                         # one key: the only key tile is half padding
], ids=["causal", "padded", "one-key"])
def test_array_against_golden(cfg, n_q, n_k, q_pos):
    """The sequencer with its PEs and lanes: stream beats in with random gaps, output rows out under random
    backpressure, every row equal to the golden model (the causal and padding masks decide single rows), and no
    row after the last."""
    from amaranth.hdl import Value
    from amaranth.lib import data

    from hwgen.payload import payload_fields
    from sw_model.host.beats import pack_beats, unpack_beats
    rng = np.random.default_rng(n_q * 100 + n_k)
    lim = 1 << (cfg.data_bits - 1)
    q, k, v = (rng.integers(-lim, lim, (n, cfg.head_dim)) for n in (n_q, n_k, n_k))
    beats = G.stream_beats(cfg, q, k, v, q_pos=q_pos)
    want = G.attention(cfg, q, k, v, q_pos=q_pos) & ((1 << cfg.out_width) - 1)
    dut = AttentionArray(cfg)
    words = pack_beats(payload_fields(data.Layout.cast(dut.i.payload.shape())), beats)
    got = []

    async def bench(ctx):
        k_in = 0
        for _ in range(20000):
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
            if len(got) == n_q:
                break
        ctx.set(dut.o.ready, 1)
        for _ in range(40):                      # and nothing after the last row
            extra.append(ctx.get(dut.o.valid))
            await ctx.tick()

    extra = []
    simulate(dut, bench)
    out = unpack_beats(payload_fields(data.Layout.cast(dut.o.payload.shape())), got)["out"]
    assert out.shape == want.shape and np.array_equal(out, want) and not any(extra)
