"""The accelerator top on RTL: random command programs (every opcode, both engines, invalid commands, random host
gaps and reply backpressure) reply bit for bit like the golden system; the performance counters and the whole
program's cycle count equal the documented cycle model; the board path (UART bridge, bit-level serial line)
gives the same results."""
import numpy as np
import pytest

from hwgen.host.system_backend import SystemBackend
from hwgen.sim.bulk import run_bulk
from hwgen.sim.harness import design
from sw_model.host.beats import pack_beats, unpack_beats
from sw_model.numerics.formats import encode
from sw_model.registry import PRESETS
from sw_model.system.golden import GoldenSystem, Program, decode_replies, program_cycles

pytestmark = pytest.mark.rtl
SYSTEM = PRESETS["system-default"]
NAME = "system_default"          # the name SystemBackend uses: one Verilator build for all system tests


def random_beats(eng: dict, n: int, rng, vector: int) -> list[int]:
    """Engine input beats with realistic field values (finite E4M3 codes / int8, valid sparse modes)."""
    if eng["unit"] == "lmuldot":
        cfg = PRESETS[eng["preset"]]
        vals = {"a": encode(rng.normal(size=(n, cfg.lanes)), cfg.format, overflow="saturate"),
                "b": encode(rng.normal(size=(n, cfg.lanes)), cfg.format, overflow="saturate")}
    else:
        cfg = PRESETS[eng["preset"]]
        vals = {"w": rng.integers(-128, 128, (n, cfg.stages)), "idx": rng.integers(0, 8, (n, cfg.stages)),
                "x": rng.integers(-128, 128, (n, cfg.x_width)), "mode": rng.integers(0, 5, n)}
    vals["last"] = (np.arange(n) % vector == vector - 1).astype(np.int64)
    return pack_beats(eng["in_fields"], vals)


def build_program(manifest, rng) -> tuple[Program, list[tuple]]:
    p = Program(manifest).info()
    runs = []
    for e, eng in enumerate(manifest["system"]["engines"]):
        for n, vector, src, dst in ((12, 4, 0, 0), (30, 5, 1500, 2040), (1, 1, 2047, 7)):
            p.write(e, src, random_beats(eng, n, rng, vector)).clear()
            p.run(e, src, n, dst, n // vector).wait(e).read(e, dst, n // vector).counters(e)
            runs.append((e, n))
    return p, runs


@pytest.mark.parametrize("gap", [0.0, 0.3])
def test_random_programs_bit_exact(gap, sim_opts):
    _, manifest = design(SYSTEM, NAME)
    rng = np.random.default_rng(int(gap * 10))
    p, runs = build_program(manifest, rng)
    p.words += [9, 2 | 7 << 4]          # malformed: an unknown opcode, a WRITE to engine 7 (of 2)
    p.info()
    want = decode_replies(p, GoldenSystem(manifest).execute(p.words))
    res = run_bulk(SYSTEM, p.words, p.reply_words(), gap=gap, backpressure=gap, seed=3, name=NAME,
                   sim=sim_opts["sim"])
    got = decode_replies(p, res["outputs"])
    assert got[0] == {"magic": 0x48574731, "version": 1, "engines": 2, "errors": 0}
    assert got[-1]["errors"] == want[-1]["errors"] == 2
    counters = [r for r, (kind, _, _) in zip(got, p.replies) if kind == "counters"]
    reads = [r for r, (kind, _, _) in zip(got, p.replies) if kind == "read"]
    assert reads == [r for r, (kind, _, _) in zip(want, p.replies) if kind == "read"]
    assert sum(len(r) for r in reads) == 2 * (3 + 6 + 1)
    for c, (e, n) in zip(counters, runs):
        eng = manifest["system"]["engines"][e]
        # RUN reads from the scratchpad, so host gaps and reply backpressure cannot stretch it
        assert c["busy"] == (n - 1) * eng["ii"] + eng["latency"] + 3 and c["in_beats"] == n
        # an II=1 engine never stalls the run controller; the L-Mul dot engine (II = acc_stages > 1) does once
        # its pipeline is full (runs longer than its pipeline)
        assert c["in_stall"] == 0 if eng["ii"] == 1 else (c["in_stall"] > 0) == (n > eng["latency"])


def test_cycle_model_of_a_whole_program(sim_opts):
    _, manifest = design(SYSTEM, NAME)
    p, _ = build_program(manifest, np.random.default_rng(5))
    res = run_bulk(SYSTEM, p.words, p.reply_words(), name=NAME, sim=sim_opts["sim"])
    assert res["cycles"] == program_cycles(p)


def test_board_backend_over_the_uart_bridge():
    rng = np.random.default_rng(7)
    chain, dot = PRESETS["sparse-chain-8"], PRESETS["lmuldot-e4m3x16"]
    wq, xq = rng.integers(-127, 128, (5, 24)), rng.integers(-128, 128, (24, 2))
    x = encode(rng.normal(size=(2, 32)), dot.format, overflow="saturate")
    w = encode(rng.normal(size=(3, 32)), dot.format, overflow="saturate")
    board, golden = SystemBackend("system-default", "board"), SystemBackend("system-default", "golden")
    acc, stats = board.gemm(chain, wq, xq)
    assert np.array_equal(acc, wq @ xq)
    assert stats["engine_busy"] == 5 * 2 * 3 + chain.stages + 3 + 2       # n + L + 2 (docs/system.md)
    got, _ = board.dot(dot, x, w)
    assert np.array_equal(got, golden.dot(dot, x, w)[0])


def test_attention_engine_in_a_system(tmp_path):
    """An attention array as a system engine (several output rows per vector, no fixed latency): the heads run
    through WRITE/RUN/READ chunks of a 64-deep scratchpad, bit-exact with the golden system."""
    toml = tmp_path / "system_att.toml"
    toml.write_text('unit = "system"\nengines = ["attention-4x4-d8"]\nhost_width = 128\nspad_depth = 64\n')
    cfg = PRESETS["attention-4x4-d8"]
    rng = np.random.default_rng(4)
    lim = 1 << (cfg.data_bits - 1)
    q, k, v = (rng.integers(-lim, lim, (3, n, cfg.head_dim)) for n in (6, 21, 21))
    got, stats = SystemBackend(str(toml), "rtl").attention(cfg, q, k, v)
    want, _ = SystemBackend(str(toml), "golden").attention(cfg, q, k, v)
    assert np.array_equal(got, want) and stats["beats"] == 3 * 2 * (4 + 21) - 3 * 2
    assert stats["model_cycles"] is None and stats["cycles"] > stats["engine_busy"] > stats["beats"]


@pytest.mark.parametrize("preset, depth, groups", [("bitmod-array-3x5", 32, 2), ("bitmod-pe-fp16", 128, 1),
                                                   ("bitmod-pe-fp16-row", 128, 1)])
def test_bitmod_engine_in_a_system(preset, depth, groups, tmp_path):
    """A BitMoD array as a system engine (several cycles per beat, SV-register writes inside the stream, mixed
    datatypes per group): bit-exact with the golden system, which is the array's own golden model. The
    scratchpad holds a few vectors only, so SV registers written in one RUN are used by later ones."""
    from sw_model.bitmod import fp16 as bitmod_fp16
    from sw_model.bitmod import fp16_row as bitmod_fp16_row
    from sw_model.bitmod import golden as bitmod
    from sw_model.bitmod.vectors import random_beats as bitmod_beats
    toml = tmp_path / "system_bitmod.toml"
    toml.write_text(f'unit = "system"\nengines = ["{preset}"]\nhost_width = 128\nspad_depth = {depth}\n')
    cfg = PRESETS[preset]
    beats = bitmod_beats(cfg, 10, seed=11, max_groups=groups, sv_writes=0.7)
    got, stats = SystemBackend(str(toml), "rtl").run_engine(cfg, beats)
    want, _ = SystemBackend(str(toml), "golden").run_engine(cfg, beats)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
    fp16 = bitmod_fp16_row if cfg.align == "row" else bitmod_fp16
    direct = fp16.array_outputs(cfg, beats)["y"] if cfg.act == "fp16" else bitmod.array_outputs(cfg, beats)
    assert np.array_equal(got["y"], bitmod.to_bits(direct, cfg.out_bits)) and len(got["y"]) == 10
    assert stats["beats"] == len(beats["last"]) and stats["model_cycles"] is None


def test_spiking_engines_in_a_system(tmp_path):
    """A spiking core and an SDSA head as engines of one system: their state (weights, potentials, KV counters)
    lives across the RUNs of the double-buffered chunks; the RTL replies like the golden system, whose models
    agree with the units' own stream models. The output count of a spiking RUN comes from the beat-level
    model (it depends on the data)."""
    from sw_model.snn import golden as snn
    from sw_model.snn import sdsa as snn_sdsa
    toml = tmp_path / "system_snn.toml"
    toml.write_text('unit = "system"\nengines = ["snn-core-lif-16x4", "sdsa-8x16"]\nhost_width = 64\n'
                    'spad_depth = 256\n')
    core, head = PRESETS["snn-core-lif-16x4"], PRESETS["sdsa-8x16"]
    rng = np.random.default_rng(12)
    lo, hi = core.weight_range
    spikes = (rng.random((3, 6, core.axons)) < 0.3).astype(np.uint8)
    inp = snn.concat(snn.weight_beats(core, rng.integers(lo, hi + 1, (core.axons, core.neurons))),
                     snn.batch_beats(core, spikes))
    heads = [tuple((rng.random((n, head.dim)) < 0.4).astype(np.int64) for n in (5, 9, 9)) for _ in range(12)]
    sd_in, sd_want = snn_sdsa.stream(head, heads)
    rtl, golden = SystemBackend(str(toml), "rtl"), SystemBackend(str(toml), "golden")
    for cfg, beats, want in ((core, inp, snn.stream_model(core, inp)[0]), (head, sd_in, sd_want)):
        got, stats = rtl.run_engine(cfg, beats)
        ref, _ = golden.run_engine(cfg, beats)
        assert all(np.array_equal(got[k], ref[k]) and np.array_equal(got[k], want[k]) for k in want)
        assert stats["beats"] == len(beats["op"]) > 128          # more than one chunk (half the scratchpad)


def test_spiking_run_without_a_model(tmp_path):
    """What a host without the beat-level model does: RUN counts the TICK markers it sent (the data decide how
    many spikes come with them), the out_beats counter says how many beats the run wrote, and a READ of the
    whole scratchpad half holds them first. RTL and golden system agree, and with the core's own model."""
    from sw_model.snn import golden as snn
    from sw_model.system.golden import Program
    toml = tmp_path / "system_core.toml"
    toml.write_text('unit = "system"\nengines = ["snn-core-lif-16x4"]\nhost_width = 64\nspad_depth = 512\n')
    core = PRESETS["snn-core-lif-16x4"]
    rng = np.random.default_rng(21)
    lo, hi = core.weight_range
    beats = snn.concat(snn.weight_beats(core, rng.integers(lo, hi + 1, (core.axons, core.neurons))),
                       snn.batch_beats(core, (rng.random((2, 5, core.axons)) < 0.4).astype(np.uint8)))
    n, ticks = len(beats["op"]), int(np.sum(beats["op"] == snn.Op.TICK))
    rtl = SystemBackend(str(toml), "rtl")
    manifest = rtl.manifest
    words = pack_beats(manifest["system"]["engines"][0]["in_fields"], beats)
    p = Program(manifest).clear().write(0, 0, words).run(0, 0, n, 256, ticks).wait(0).counters(0).read(0, 256, 256)
    got = rtl.execute(p)[0]
    want = decode_replies(p, GoldenSystem(manifest).execute(p.words))
    model = snn.stream_model(core, beats)[0]
    written = got[0]["out_beats"]
    assert written == len(model["kind"]) > ticks
    read = unpack_beats(manifest["system"]["engines"][0]["out_fields"], got[1][:written])
    assert all(np.array_equal(read[k], model[k]) for k in model) and got[1][:written] == want[1][:written]


def test_link_backend_survives_line_faults():
    """The system behind the reliable bridge (protocol 2) in Verilator, the retrying host in Python: 1e-3 bit
    errors, 0.1 % lost and doubled bytes on the line and a board reset mid-program; the GEMM is exact, the host
    retried and restarted once, and the hardware counters of the finished run are those of a clean one."""
    rng = np.random.default_rng(8)
    chain = PRESETS["sparse-chain-8"]
    wq, xq = rng.integers(-127, 128, (3, 16)), rng.integers(-128, 128, (16, 2))
    faults = {"ber": 1e-3, "drop": 1e-3, "dup": 1e-3, "reset_at": {20}, "seed": 4}
    acc, stats = SystemBackend("system-default", "link", faults=faults).gemm(chain, wq, xq)
    assert np.array_equal(acc, wq @ xq)
    assert stats["link_restarts"] == 1 and stats["link_retries"] > 0
    # busy n + L + 2 (two scratchpad read stages): 12 beats on the chain of latency stages + 3
    assert stats["engine_busy"] == 3 * 2 * 2 + chain.stages + 3 + 2 and stats["in_stall"] == 0
