"""Property-based tests of the accelerator top (hypothesis): random command programs run on the RTL (bulk testbench)
and on the golden system, compared beat for beat.

A program has several engines in flight at once (RUNs with no WAIT between them), WRITE/READ ranges that overlap
active runs, NOPs, STATUS/INFO/COUNTERS at any point, and malformed commands (unknown opcodes, engine indices
the system lacks, ranges past the end of a scratchpad). Without host gaps the golden system follows the cycle model
(`GoldenSystem(timed=True)`), so the performance counters, the STATUS busy flags and the total cycle count must
match too; with random gaps and backpressure everything but the timing must. The default suite runs a few
derandomized examples; `-m slow` runs many more with fresh seeds."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.sim.bulk import run_bulk
from hwgen.sim.harness import design
from sw_model.host.beats import pack_beats
from sw_model.numerics.formats import encode
from sw_model.registry import PRESETS
from sw_model.system.golden import GoldenSystem, Program, decode_replies

pytestmark = pytest.mark.rtl
SYSTEM = PRESETS["system-default"]
NAME = "system_default"          # the name SystemBackend uses: one Verilator build for all system tests
WINDOW = 48                      # most ranges fall in the first WINDOW addresses, so they overlap often


def engine_beats(eng: dict, lasts: list[int], rng) -> list[int]:
    """Input beats with realistic field values (finite E4M3 codes / int8 and valid sparse modes), `last` as given."""
    n, cfg = len(lasts), PRESETS[eng["preset"]]
    if eng["unit"] == "lmuldot":
        vals = {"a": encode(rng.normal(size=(n, cfg.lanes)), cfg.format, overflow="saturate"),
                "b": encode(rng.normal(size=(n, cfg.lanes)), cfg.format, overflow="saturate")}
    else:
        vals = {"w": rng.integers(-128, 128, (n, cfg.stages)), "idx": rng.integers(0, 8, (n, cfg.stages)),
                "x": rng.integers(-128, 128, (n, cfg.x_width)), "mode": rng.integers(0, 5, n)}
    vals["last"] = np.asarray(lasts, np.int64)
    return pack_beats(eng["in_fields"], vals)


KINDS = ("write", "run", "read", "wait", "nop", "status", "counters", "info", "clear", "bad")


def random_program(manifest: dict, rng, n_commands: int, weights) -> Program:
    """A random program of `n_commands` commands drawn with `weights` (one per KINDS entry) from `rng`. A
    shadow of every input scratchpad's `last` bits keeps each RUN well-formed for the engines (its range ends a
    vector, count2 = its vectors), so no run leaves a half-summed vector in an engine; everything else is free,
    malformed commands included."""
    sys = manifest["system"]
    depth, n_eng, ops = sys["spad_depth"], len(sys["engines"]), sys["opcodes"]
    lasts = [np.zeros(depth, np.int64) for _ in range(n_eng)]
    weights = np.asarray(weights, float) + np.asarray([3, 4] + [0] * (len(KINDS) - 2))    # mostly WRITE, RUN
    weights /= weights.sum()
    p = Program(manifest).clear()

    def addr_range(max_count: int) -> tuple[int, int]:
        count = int(rng.integers(0, max_count + 1))
        top = WINDOW if rng.random() < 0.8 else depth       # mostly near 0, sometimes up to the last address
        return int(rng.integers(max(0, top - WINDOW), top - count + 1)), count

    def header(op: int, **fields) -> int:
        word = 0
        for f in sys["header"]:
            word |= (op if f["name"] == "op" else fields.get(f["name"], 0)) << f["offset"]
        return word

    for _ in range(n_commands):
        kind, e = KINDS[rng.choice(len(KINDS), p=weights)], int(rng.integers(n_eng))
        if kind == "write":
            addr, count = addr_range(10)
            new = (rng.random(count) < 0.4).astype(np.int64)
            if count:
                new[-1] |= rng.random() < 0.7
            lasts[e][addr:addr + count] = new
            p.write(e, addr, engine_beats(sys["engines"][e], new.tolist(), rng))
        elif kind == "run":
            if not lasts[e].any():                          # prefer an engine that has something to run
                e = int(np.argmax([x.any() for x in lasts]))
            ends = np.flatnonzero(lasts[e])
            if not len(ends):
                p.run(e, 0, 0, 0, 0)                        # an empty run: never busy
                continue
            end = int(rng.choice(ends)) + 1
            src = int(rng.integers(max(0, end - 12), end))
            n_out = int(lasts[e][src:end].sum())
            dst = int(rng.integers(0, WINDOW)) if rng.random() < 0.8 else depth - n_out
            p.run(e, src, end - src, dst, n_out)
        elif kind == "read":
            p.read(e, *addr_range(6))
        elif kind == "wait":
            p.wait(e)
        elif kind == "nop":
            p.nop()
        elif kind == "status":
            p.status()
        elif kind == "counters":
            p.counters(e)
        elif kind == "info":
            p.info()
        elif kind == "clear":
            p.clear()
        else:
            bad = rng.choice(["opcode", "engine", "write range", "read range", "run range"])
            if bad == "opcode":
                p.raw([header(int(rng.integers(len(ops), 16)), engine=e, addr=int(rng.integers(depth)))])
            elif bad == "engine":
                op = str(rng.choice(["WRITE", "RUN", "WAIT", "READ", "COUNTERS"]))
                p.raw([header(ops[op], engine=int(rng.integers(n_eng, 16)), count=int(rng.integers(4)),
                              count2=1)])          # a WRITE to a missing engine: no data words (unknown size)
            else:
                addr = int(rng.integers(depth - 8, depth))
                count = depth - addr + int(rng.integers(1, 5))
                if bad == "write range":
                    k = sys["engines"][e]["in_words"]
                    data = [header(ops["INFO"])] * (count * k)        # dropped with the header, never run as INFO
                    p.raw([header(ops["WRITE"], engine=e, addr=addr, count=count)] + data)
                elif bad == "read range":
                    p.raw([header(ops["READ"], engine=e, addr=addr, count=count)])
                else:
                    p.raw([header(ops["RUN"], engine=e, addr=0, count=1, addr2=addr, count2=count)])
    return p.status()


def check_program(manifest: dict, p: Program, gap: float, seed: int):
    timed = gap == 0
    golden = GoldenSystem(manifest, timed=timed)
    want = decode_replies(p, golden.execute(p.words))
    res = run_bulk(SYSTEM, p.words, p.reply_words(), gap=gap, backpressure=gap, seed=seed, name=NAME)
    got = decode_replies(p, res["outputs"])
    if not (timed and golden.timed):               # timing-free comparison: no counters, no busy flags
        got = [dict(g, busy=0) if kind == "status" else g for g, (kind, _, _) in zip(got, p.replies)
               if kind != "counters"]
        want = [w for w, (kind, _, _) in zip(want, p.replies) if kind != "counters"]
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"reply {k} of {len(want)} differs: RTL {g}, golden {w}"
    assert len(got) == len(want)
    if timed and golden.timed:
        assert res["cycles"] == golden.model.end + 1


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROGRAMS = dict(seed=st.integers(0, 2 ** 32 - 1), n_commands=st.integers(1, 60),
                weights=st.lists(st.integers(0, 4), min_size=len(KINDS), max_size=len(KINDS)))


@settings(max_examples=10, derandomize=True, **SETTINGS)
@given(gap=st.sampled_from([0.0, 0.0, 0.3]), **PROGRAMS)
def test_random_programs_match_the_golden_system(gap, seed, n_commands, weights):
    _, manifest = design(SYSTEM, NAME)
    check_program(manifest, random_program(manifest, np.random.default_rng(seed), n_commands, weights), gap, 7)


@pytest.mark.slow
@settings(max_examples=300, **SETTINGS)
@given(gap=st.sampled_from([0.0, 0.0, 0.3, 0.6]), sim_seed=st.integers(1, 1000), **PROGRAMS)
def test_random_programs_match_the_golden_system_many(gap, sim_seed, seed, n_commands, weights):
    _, manifest = design(SYSTEM, NAME)
    check_program(manifest, random_program(manifest, np.random.default_rng(seed), n_commands, weights), gap,
                  sim_seed)


def test_back_to_back_runs_on_one_engine_wait_for_each_other():
    """RUN, RUN on the same engine with no WAIT, then a WRITE over the range the second RUN reads, RUN again and
    READ: the interlocks keep the RTL's results those of the commands one after the other (this fails if a RUN
    or the WRITE does not wait for the active run)."""
    _, manifest = design(SYSTEM, NAME)
    rng = np.random.default_rng(3)
    eng = manifest["system"]["engines"][1]
    lasts = [0, 0, 1] * 8
    p = Program(manifest).clear().write(1, 0, engine_beats(eng, lasts, rng))
    p.run(1, 0, 12, 0, 4).run(1, 12, 12, 4, 4)
    p.write(1, 12, engine_beats(eng, lasts[:12], rng)).run(1, 12, 12, 8, 4).read(1, 0, 12).counters(1)
    p.write(0, 0, engine_beats(manifest["system"]["engines"][0], [1], rng)).run(0, 0, 1, 0, 1).status()
    check_program(manifest, p, 0.0, 1)
