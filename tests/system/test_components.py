"""The system's blocks, each elaborated alone in Amaranth's simulator against a small reference written here: the
performance counters, the reply serializer, the run controller (with a one-register stand-in engine) and the
command decoder (with real scratchpad memories); and the blocks' places in the System hierarchy."""
import gc
import random

import pytest
from amaranth.hdl import Fragment, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from hwgen.system.commands import ERROR_CODES, INFO_MAGIC, STATUS_FIELDS, VERSION, Opcode, header_layout
from hwgen.system.counters import COUNTER_NAMES, PerfCounters
from hwgen.system.decoder import CommandDecoder
from hwgen.system.run_controller import RunController
from hwgen.system.serializer import ReplySerializer
from hwgen.system.top import System
from sw_model.system.config import SystemConfig

CFG = SystemConfig(engines=("sdsa-8x16",), host_width=64, spad_depth=16)
DEPTH, W = CFG.spad_depth, CFG.host_width


def simulate(top, testbench):
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def header(op, engine=0, addr=0, count=0, addr2=0, count2=0) -> int:
    fields = {"op": op, "engine": engine, "addr": addr, "count": count, "addr2": addr2, "count2": count2}
    return header_layout(CFG).const(fields).as_value().value


# --- performance counters ---------------------------------------------------------------------------------------

def test_counters_count_events_and_clear():
    dut, n = PerfCounters(3), 3
    names = COUNTER_NAMES[1:]
    rng = random.Random(1)
    seen = {"clears": 0, "max": 0}

    async def tb(ctx):
        cycles, counts = 0, [[0] * len(names) for _ in range(n)]
        for step in range(300):
            clear = rng.random() < 0.04
            events = [[rng.random() < 0.6 for _ in names] for _ in range(n)]
            engine = rng.randrange(n + 2)                   # n and n + 1: no such engine
            ctx.set(dut.clear, clear)
            ctx.set(dut.engine, engine)
            ctx.set(dut.events, [dict(zip(names, ev)) for ev in events])
            got = ctx.get(dut.values)
            want = [cycles] + (counts[engine] if engine < n else [0] * len(names))
            assert [getattr(got, name) for name in COUNTER_NAMES] == want, f"cycle {step}"
            seen["max"] = max(seen["max"], *want[1:])
            await ctx.tick()
            seen["clears"] += clear
            cycles = 0 if clear else cycles + 1
            counts = [[0] * len(names) if clear else [c + v for c, v in zip(cs, ev)]
                      for cs, ev in zip(counts, events)]

    simulate(dut, tb)
    assert seen["clears"] >= 3 and seen["max"] >= 10          # the run did clear, and counted between clears


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_counters_reject_a_bad_engine_count():
    with pytest.raises(ValueError, match="engines: got 0, allowed: an integer from 1 to 16"):
        PerfCounters(0)
    gc.collect()          # the half-built component warns now, under this test's filter


# --- reply serializer -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gap, backpressure", [(0.0, 0.0), (0.4, 0.5)])
def test_serializer_sends_each_beat_low_word_first(gap, backpressure):
    dut = ReplySerializer(host_width=16, max_words=3)
    rng = random.Random(2)
    beats = [(rng.getrandbits(48), rng.randrange(1, 4)) for _ in range(60)]
    want = [(b >> (16 * k)) & 0xFFFF for b, n in beats for k in range(n)]
    got, stats = [], {}

    async def tb(ctx):
        pos, cycle, held = 0, 0, None
        while len(got) < len(want):
            offer = pos < len(beats) and rng.random() >= gap
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, {"beat": beats[pos][0], "words": beats[pos][1]})
            ready = rng.random() >= backpressure
            ctx.set(dut.o.ready, ready)
            valid, word = ctx.get(dut.o.valid), ctx.get(dut.o.payload.word)
            if held is not None:                       # stream rule: an offered word stays until taken
                assert valid and word == held, f"cycle {cycle}"
            held = word if valid and not ready else None
            if valid and ready:
                got.append(word)
            if offer and ctx.get(dut.i.ready):
                pos += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 20 * len(want)
        stats["cycles"] = cycle

    simulate(dut, tb)
    assert got == want
    if gap == backpressure == 0:                      # back-to-back beats: one word per cycle after the first
        assert stats["cycles"] == len(want) + 1


# --- run controller ---------------------------------------------------------------------------------------------

IN = data.StructLayout({"x": 8, "tag": 2})
OUT = data.StructLayout({"y": 8, "kind": 2})


def controller_bench(init, marker=None):
    """The controller between two scratchpads and a stand-in engine: y = x + 1, kind = tag, one output register
    (latency 1, II = 1), which takes no beat while `stall` is high."""
    m = Module()
    m.submodules.rc = rc = RunController(CFG, IN, OUT, marker)
    m.submodules.spad_in = spad_in = Memory(shape=unsigned(IN.size), depth=DEPTH, init=init)
    m.submodules.spad_out = spad_out = Memory(shape=unsigned(OUT.size), depth=DEPTH, init=[])
    wiring.connect(m, rc.spad_in, spad_in.read_port())
    wiring.connect(m, rc.spad_out, spad_out.write_port())
    stall = Signal()
    eng_i, eng_o = rc.to_engine, rc.from_engine
    m.d.comb += eng_i.ready.eq((~eng_o.valid | eng_o.ready) & ~stall)
    with m.If(eng_o.ready):
        m.d.sync += eng_o.valid.eq(0)
    with m.If(eng_i.valid & eng_i.ready):
        m.d.sync += [eng_o.valid.eq(1), eng_o.payload.y.eq(eng_i.payload.x + 1),
                     eng_o.payload.kind.eq(eng_i.payload.tag)]
    return m, rc, spad_out, stall


def run_controller(init, cmd, marker=None, stall_p=0.0, seed=3, stall_until=0):
    """Start one run (the engine stalls in cycles < `stall_until` and then with probability `stall_p`); returns
    OUT's contents, the event totals and the cycles from the start until `busy` fell."""
    m, rc, spad_out, stall = controller_bench(init, marker)
    rng = random.Random(seed)
    res = {}

    async def tb(ctx):
        ctx.set(rc.cmd, {"op": Opcode.RUN, **cmd})
        ctx.set(rc.start, 1)
        await ctx.tick()
        ctx.set(rc.start, 0)
        totals = dict.fromkeys(("busy", "in_beats", "out_beats", "in_stall"), 0)
        cycles = 0
        while True:
            ctx.set(stall, cycles < stall_until or rng.random() < stall_p)
            ev = ctx.get(rc.events)
            for k in totals:
                totals[k] += getattr(ev, k)
            if not ev.busy:
                break
            await ctx.tick()
            cycles += 1
            assert cycles < 500, "the run does not end"
        for _ in range(5):                                  # nothing moves after the end
            await ctx.tick()
            assert ctx.get(rc.events).as_value().value == 0
        res.update(out=[ctx.get(spad_out.data[a]) for a in range(DEPTH)], totals=totals, cycles=cycles)

    simulate(m, tb)
    return res


def test_run_controller_streams_n_beats_and_ends():
    rng = random.Random(4)
    xs = [rng.randrange(255) for _ in range(DEPTH)]
    init = [IN.const({"x": x, "tag": 0}).as_value().value for x in xs]
    n, src, dst = 6, 13, 14                                  # both ranges wrap around the end of the scratchpad
    res = run_controller(init, {"addr": src, "count": n, "addr2": dst, "count2": n})
    want = [0] * DEPTH
    for k in range(n):
        want[(dst + k) % DEPTH] = OUT.const({"y": xs[(src + k) % DEPTH] + 1, "kind": 0}).as_value().value
    assert res["out"] == want
    # the documented RUN timing: busy (n - 1) * II + L + 3 cycles, for this II=1 engine of latency L = 1: n + 3
    assert res["totals"] == {"busy": n + 3, "in_beats": n, "out_beats": n, "in_stall": 0}
    assert res["cycles"] == n + 3


def test_run_controller_under_engine_stalls_loses_no_beat():
    xs = list(range(40, 40 + DEPTH))
    init = [IN.const({"x": x, "tag": 1}).as_value().value for x in xs]
    res = run_controller(init, {"addr": 2, "count": 9, "addr2": 0, "count2": 9}, stall_p=0.5, seed=5)
    assert [data.Const(OUT, v).y for v in res["out"][:9]] == [x + 1 for x in xs[2:11]] and res["out"][9:] == [0] * 7
    t = res["totals"]
    assert t["in_beats"] == t["out_beats"] == 9 and t["in_stall"] > 0 and t["busy"] == 9 + 3 + t["in_stall"]


def test_run_controller_with_a_marker_takes_outputs_up_to_the_last_counted_marker():
    tags = [0, 3, 0, 0, 3, 0]                                # 2 markers (kind 3), then a beat past them
    init = [IN.const({"x": 10 * k, "tag": t}).as_value().value for k, t in enumerate(tags)]
    res = run_controller(init, {"addr": 0, "count": 6, "addr2": 4, "count2": 2},
                         marker={"in_field": "tag", "in_value": 3, "out_field": "kind", "out_value": 3})
    written = [data.Const(OUT, v) for v in res["out"][4:10]]
    assert [(w.y, w.kind) for w in written] == [(1, 0), (11, 3), (21, 0), (31, 0), (41, 3), (0, 0)]
    assert res["totals"]["in_beats"] == 6 and res["totals"]["out_beats"] == 5


def test_run_controller_stays_busy_while_a_beat_waits_for_the_engine():
    # one beat, no output wanted: the run ends when the engine takes the beat, not when it left the scratchpad
    res = run_controller([7] * DEPTH, {"addr": 0, "count": 1, "addr2": 0, "count2": 0}, stall_until=20)
    # the beat is offered from cycle 2 (two read stages) and taken in cycle 20: 18 stalled cycles
    assert res["cycles"] == 21 and res["totals"]["in_stall"] == 18 and res["totals"]["in_beats"] == 1
    assert res["totals"]["out_beats"] == 0 and res["out"] == [0] * DEPTH


def test_run_controller_with_nothing_to_do_is_never_busy():
    res = run_controller([1] * DEPTH, {"addr": 5, "count": 0, "addr2": 5, "count2": 0})
    assert res["cycles"] == 0 and res["totals"]["busy"] == 0 and res["out"] == [0] * DEPTH


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_run_controller_rejects_a_marker_field_the_engine_lacks():
    with pytest.raises(ValueError, match="marker: got .*allowed: a dict naming an output payload field"):
        RunController(CFG, IN, OUT, {"out_field": "nope", "out_value": 1})
    gc.collect()


# --- command decoder ----------------------------------------------------------------------------------------------

IN_W, OUT_W = [150, 40], [70, 8]          # 64-bit words: WRITE beats of 3 and 1 words, READ beats of 2 and 1
OUT_INIT = [[(0xABC << 50) + 7 * a for a in range(DEPTH)], [(5 * a + 1) & 0xFF for a in range(DEPTH)]]


def counter_values(engine: int) -> dict:
    return {name: 1000 * engine + k for k, name in enumerate(COUNTER_NAMES)}


def drive_decoder(words, busy=lambda cycle, e: False, backpressure=0.0, seed=6, tail=30):
    """Offer `words` on `i` one per cycle; returns the cycle each word was taken, the run and clear strobes, the
    reply beats, the final IN scratchpads. `busy(cycle, e)` drives busy[e]; the counter values answer
    `counter_engine` like `counter_values`."""
    m = Module()
    m.submodules.dec = dec = CommandDecoder(CFG, IN_W, OUT_W)
    spads_in = []
    for e in range(2):
        spad_in = Memory(shape=unsigned(IN_W[e]), depth=DEPTH, init=[])
        spad_out = Memory(shape=unsigned(OUT_W[e]), depth=DEPTH, init=OUT_INIT[e])
        m.submodules[f"in{e}"], m.submodules[f"out{e}"] = spad_in, spad_out
        wiring.connect(m, getattr(dec, f"spad_in{e}"), spad_in.write_port())
        wiring.connect(m, getattr(dec, f"spad_out{e}"), spad_out.read_port())
        spads_in.append(spad_in)
    rng = random.Random(seed)
    res = {"taken": [], "runs": [], "clears": [], "replies": []}

    async def tb(ctx):
        pos, cycle, idle = 0, 0, 0
        while idle < tail:
            ctx.set(dec.i.valid, pos < len(words))
            ctx.set(dec.i.payload.word, words[pos] if pos < len(words) else 0)
            ctx.set(dec.busy, [busy(cycle, e) for e in range(2)])
            ctx.set(dec.counter_values, counter_values(ctx.get(dec.counter_engine)))
            ready = rng.random() >= backpressure
            ctx.set(dec.reply.ready, ready)
            for e in range(2):
                if ctx.get(dec.run[e]):
                    c = ctx.get(dec.cmd)
                    res["runs"].append((cycle, e, c.addr, c.count, c.addr2, c.count2))
            if ctx.get(dec.clear):
                res["clears"].append(cycle)
            if ctx.get(dec.reply.valid) and ready:
                r = ctx.get(dec.reply.payload)
                res["replies"].append((r.beat, r.words))
            if pos < len(words) and ctx.get(dec.i.ready):
                res["taken"].append(cycle)
                pos += 1
            idle = idle + 1 if pos == len(words) else 0
            await ctx.tick()
            cycle += 1
            assert cycle < 1000
        res["spads_in"] = [[ctx.get(s.data[a]) for a in range(DEPTH)] for s in spads_in]

    simulate(m, tb)
    return res


def info(errors: int) -> int:
    return INFO_MAGIC | VERSION << 32 | 2 << 40 | errors << 48


def test_decoder_writes_reads_and_replies():
    rng = random.Random(7)
    beats0 = [rng.getrandbits(IN_W[0]) for _ in range(3)]
    beats1 = [rng.getrandbits(IN_W[1]) for _ in range(2)]
    words = [header(Opcode.WRITE, 0, addr=13, count=3)]       # up to the last address (addr + count = depth)
    for b in beats0:
        words += [b & (2 ** 64 - 1), (b >> 64) & (2 ** 64 - 1), b >> 128]
    words += [header(Opcode.WRITE, 1, addr=4, count=2), *beats1,
              header(Opcode.READ, 0, addr=14, count=2), header(Opcode.READ, 1, addr=3, count=3),
              header(Opcode.READ, 1, addr=0, count=0), header(Opcode.NOP),
              header(Opcode.COUNTERS, 1), header(Opcode.COUNTERS, 0), header(Opcode.CLEAR), header(Opcode.INFO)]
    res = drive_decoder(words, backpressure=0.4)
    want_in0 = [0] * DEPTH
    want_in0[13:16] = beats0
    assert res["spads_in"][0] == want_in0
    assert res["spads_in"][1] == [0] * 4 + beats1 + [0] * 10
    counters = [sum(v << (W * k) for k, v in enumerate(counter_values(e).values())) for e in (1, 0)]
    assert res["replies"] == [(OUT_INIT[0][14], 2), (OUT_INIT[0][15], 2),
                              (OUT_INIT[1][3], 1), (OUT_INIT[1][4], 1), (OUT_INIT[1][5], 1),
                              (counters[0], 5), (counters[1], 5), (info(0), 1)]
    assert res["runs"] == [] and len(res["clears"]) == 1


def test_decoder_runs_wait_for_their_engine():
    words = [header(Opcode.RUN, 1, addr=1, count=2, addr2=3, count2=4),
             header(Opcode.RUN, 0, addr=5, count=6, addr2=7, count2=8),
             header(Opcode.WAIT, 1), header(Opcode.NOP)]
    # engine 0 still runs until cycle 30; engine 1 starts on its RUN (cycle 0) and runs until cycle 50
    res = drive_decoder(words, busy=lambda cycle, e: cycle < 30 if e == 0 else 1 <= cycle < 50)
    # RUN 0 waits for engine 0; WAIT 1 ends in the first cycle engine 1 is free, and the NOP goes a cycle later
    assert res["taken"] == [0, 30, 31, 51]
    assert res["runs"] == [(0, 1, 1, 2, 3, 4), (30, 0, 5, 6, 7, 8)]
    assert res["replies"] == [] and res["clears"] == []


def test_decoder_counts_unknown_opcodes_and_engines_as_errors():
    words = [header(Opcode.INFO), 9, 15 | 3 << 8,                   # unknown opcodes
             header(Opcode.WRITE, 2, count=3), header(Opcode.RUN, 5, count=1, count2=1),
             header(Opcode.READ, 3, count=2), header(Opcode.COUNTERS, 15), header(Opcode.WAIT, 2),
             header(Opcode.INFO, 7), header(Opcode.CLEAR, 9),          # global commands ignore the engine field
             header(Opcode.INFO)]
    res = drive_decoder(words, busy=lambda cycle, e: True)
    assert res["replies"] == [(info(0), 1), (info(7), 1), (info(7), 1)]
    assert res["runs"] == [] and len(res["clears"]) == 1 and res["spads_in"] == [[0] * DEPTH] * 2


def status(errors=0, code="NONE", op=0, engine=0, busy=0, commands=0) -> int:
    values = {"errors": errors, "error_code": ERROR_CODES[code], "error_op": op, "error_engine": engine,
              "busy": busy, "commands": commands}
    return sum(v << STATUS_FIELDS[k][0] for k, v in values.items())


def test_decoder_drops_ranges_past_the_scratchpad_and_reports_them_in_status():
    """addr + count = depth is the last valid range, depth + 1 is dropped (each of WRITE, READ, RUN input, RUN
    output); a dropped WRITE of a valid engine takes its data words, so none of them runs as a command even when
    it looks like one; STATUS gives the first error's cause and clears the errors."""
    looks_like_info = header(Opcode.INFO)
    words = [header(Opcode.WRITE, 1, addr=15, count=2), looks_like_info, looks_like_info,    # dropped: 17 > 16
             header(Opcode.WRITE, 1, addr=15, count=1), 77,                                     # last address: ok
             header(Opcode.READ, 1, addr=16 - 3, count=4),                                      # dropped
             header(Opcode.READ, 1, addr=0, count=17),                                          # dropped
             header(Opcode.RUN, 0, addr=1, count=16, addr2=0, count2=1),                        # dropped (input)
             header(Opcode.RUN, 0, addr=0, count=1, addr2=8, count2=9),                         # dropped (output)
             header(Opcode.STATUS), header(Opcode.STATUS),
             header(Opcode.RUN, 0, addr=0, count=16, addr2=15, count2=1), header(Opcode.INFO)]  # both ends: ok
    res = drive_decoder(words)
    assert res["spads_in"][1] == [0] * 15 + [77]
    assert res["replies"] == [(status(5, "RANGE", Opcode.WRITE.value, 1, commands=7), 1),
                              (status(commands=8), 1), (info(0), 1)]
    assert res["runs"] == [(res["runs"][0][0], 0, 0, 16, 15, 1)]


def test_decoder_status_names_the_first_error_and_the_busy_engines():
    words = [header(Opcode.READ, 9, count=1), 12, header(Opcode.STATUS)]
    res = drive_decoder(words, busy=lambda cycle, e: e == 1)
    assert res["replies"] == [(status(2, "ENGINE", Opcode.READ.value, 9, busy=0b10, commands=3), 1)]


def test_decoder_holds_writes_and_reads_that_overlap_an_active_run():
    """While engine 0 runs IN[0][4..8) -> OUT[0][10..12): a WRITE to IN[0][7] and a READ of OUT[0][11] wait for
    the run to end; a WRITE just past the range (IN[0][8]) and a READ just before it (OUT[0][9]) go at once, and
    so does everything on engine 1."""
    run = header(Opcode.RUN, 0, addr=4, count=4, addr2=10, count2=2)
    free_at = 40
    cases = [([header(Opcode.WRITE, 0, addr=8, count=1), 1, 2, 3], False),
             ([header(Opcode.READ, 0, addr=9, count=1)], False),
             ([header(Opcode.WRITE, 1, addr=4, count=4), 1, 2, 3, 4], False),
             ([header(Opcode.READ, 0, addr=0, count=0)], False),
             ([header(Opcode.WRITE, 0, addr=7, count=1), 1, 2, 3], True),
             ([header(Opcode.WRITE, 0, addr=0, count=5), *range(15)], True),
             ([header(Opcode.READ, 0, addr=11, count=1)], True),
             ([header(Opcode.READ, 0, addr=8, count=3)], True)]
    for second, waits in cases:
        res = drive_decoder([run] + second, busy=lambda cycle, e: e == 0 and 1 <= cycle < free_at)
        assert (res["taken"][1] == free_at) == waits and (res["taken"][1] == 1) == (not waits), second


# --- the hierarchy ------------------------------------------------------------------------------------------------

def test_system_blocks_are_named_submodules():
    system = System(SystemConfig(engines=("sdsa-8x16", "sdsa-8x16"), host_width=64, spad_depth=16))
    subs = {name: type(frag.origins[0]).__name__ for frag, name, _ in Fragment.get(system, None).subfragments}
    assert subs == {"decoder": "CommandDecoder", "replies": "ReplySerializer", "counters": "PerfCounters",
                    "engine0": "SDSA", "spad_in0": "Memory", "spad_out0": "Memory", "run0": "RunController",
                    "engine1": "SDSA", "spad_in1": "Memory", "spad_out1": "Memory", "run1": "RunController"}
