"""The accelerator top's host side without a simulator: config checks, command encoding against the documented
header layout, program errors, and the golden system against the engines' own golden models."""
import numpy as np
import pytest

from hwgen.host.system_backend import SystemBackend
from hwgen.system.top import Opcode, System
from sw_model.config import ConfigError
from sw_model.host.network import GoldenBackend
from sw_model.host.network_int8 import Int8GoldenBackend
from sw_model.numerics.formats import encode
from sw_model.registry import PRESETS, config_from_dict
from sw_model.system.golden import GoldenSystem, Program, ProgramError, decode_replies

MANIFEST = {"name": "system-default", "unit": "system", **System(PRESETS["system-default"]).manifest_extra()}


@pytest.mark.parametrize("fields, message", [
    ({"engines": ["lmul-e9"]}, "engines: got 'lmul-e9', allowed: unit presets"),
    ({"engines": ["system-default"]}, "engines: got 'system-default'"),
    ({"engines": []}, "engines: got (), allowed: a list of 1 to 16"),
    ({"host_width": 100}, "host_width: got 100, allowed: a multiple of 32"),
    ({"host_width": 32}, "host_width: got 32, allowed: an integer from 64 to 1024"),
    ({"spad_depth": 1000}, "spad_depth: got 1000, allowed: a power of two"),
    ({"spad_depth": 65536, "host_width": 64}, "spad_depth: got 65536, allowed: a depth whose command header fits"),
    ({"engines": [{"unit": "snn_core", "neuronz": 4}]}, "neuronz: unknown field for unit 'snn_core'"),
    ({"engines": [{"unit": "system"}]}, "engines: got a system table, allowed: unit presets or unit configs"),
    ({"engines": [3]}, "engines: got 3, allowed: unit presets"),
])
def test_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_dict({"unit": "system", **fields})


def test_header_matches_documented_layout():
    # system-default: op bits 0-3, engine 4-7, addr 8-18, count 19-30, addr2 31-41, count2 42-53 (depth 2048)
    assert [(f["name"], f["offset"], f["width"]) for f in MANIFEST["system"]["header"]] == [
        ("op", 0, 4), ("engine", 4, 4), ("addr", 8, 11), ("count", 19, 12), ("addr2", 31, 11), ("count2", 42, 12)]
    p = Program(MANIFEST).run(1, 5, 300, 0, 2048)
    assert p.words == [Opcode.RUN.value | 1 << 4 | 5 << 8 | 300 << 19 | 0 << 31 | 2048 << 42]
    p = Program(MANIFEST).write(0, 7, [1, 2 ** 256 + 3])
    assert p.words == [Opcode.WRITE.value | 7 << 8 | 2 << 19, 1, 0, 3, 1]     # 257-bit beats: 2 words each
    tiny = {"name": "t", "unit": "system", **System(config_from_dict(
        {"unit": "system", "engines": ["lmuldot-e4m3x16"], "host_width": 128})).manifest_extra()}
    p = Program(tiny).write(0, 0, [2 ** 256 + 3])
    assert p.words[1:] == [3, 0, 1]                                              # 128-bit words: 3 per beat


@pytest.mark.parametrize("call, message", [
    (lambda p: p.write(2, 0, [1]), "engine: got 2, allowed: 0..1"),
    (lambda p: p.write(0, 2047, [1, 2]), "write: got addr 2047 count 2, allowed: addr \\+ count <= spad_depth 2048"),
    (lambda p: p.write(0, 0, [1 << 257]), "write: a beat does not fit engine 0's 257-bit input payload"),
    (lambda p: p.run(1, 0, 2049, 0, 1), "run input: got addr 0 count 2049"),
    (lambda p: p.read(0, -1, 1), "read: got addr -1"),
    (lambda p: p.engine_index("attention"), "engine: got 'attention', allowed: one of this system's engines"),
])
def test_program_errors(call, message):
    with pytest.raises(ProgramError, match=message):
        call(Program(MANIFEST))


def test_not_a_system_manifest_and_incomplete_replies():
    with pytest.raises(ProgramError, match="is not a system"):
        Program({"name": "lmul_dut", "unit": "lmul"})
    p = Program(MANIFEST).read(0, 0, 3).info()
    with pytest.raises(ProgramError, match="got 3 words, expected 4: the run is incomplete"):
        decode_replies(p, [0, 0, 0])


def test_golden_system_round_trip_and_info():
    rng = np.random.default_rng(0)
    beats = [int(v) for v in rng.integers(0, 2 ** 62, 5)]
    # sparse-chain beats are 348 bits: store arbitrary payloads, RUN nothing, read nothing back but INFO
    p = Program(MANIFEST).info().write(1, 100, beats)
    replies = decode_replies(p, GoldenSystem(MANIFEST).execute(p.words))
    assert replies == [{"magic": 0x48574731, "version": 1, "engines": 2, "errors": 0}]


def test_golden_backend_equals_engine_models():
    rng = np.random.default_rng(1)
    dot_cfg, chain_cfg = PRESETS["lmuldot-e4m3x16"], PRESETS["sparse-chain-8"]
    x = encode(rng.normal(size=(4, 48)), dot_cfg.format, overflow="saturate")
    w = encode(rng.normal(size=(6, 48)), dot_cfg.format, overflow="saturate")
    wq, xq = rng.integers(-127, 128, (9, 40)), rng.integers(-128, 128, (40, 5))
    backend = SystemBackend("system-default", "golden")
    got, stats = backend.dot(dot_cfg, x, w)
    assert np.array_equal(got, GoldenBackend().dot(dot_cfg, x, w)[0])
    assert stats["beats"] == 4 * 6 * 3 and stats["cycles"] is None
    acc, _ = backend.gemm(chain_cfg, wq, xq)
    assert np.array_equal(acc, Int8GoldenBackend().gemm(chain_cfg, wq, xq)[0])
    assert np.array_equal(acc, wq @ xq)                     # independent: exact integer matrix product


def test_chunking_over_small_scratchpads(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text('unit = "system"\nengines = ["sparse-chain-8"]\nhost_width = 64\nspad_depth = 16\n')
    rng = np.random.default_rng(2)
    wq, xq = rng.integers(-127, 128, (7, 24)), rng.integers(-128, 128, (24, 6))
    backend = SystemBackend(str(toml), "golden")
    acc, _ = backend.gemm(PRESETS["sparse-chain-8"], wq, xq)      # 126 beats -> chunks of <= 8 beats, double-buffered
    assert np.array_equal(acc, wq @ xq)
    with pytest.raises(ProgramError, match="a vector of 24 beats and 1 outputs, allowed: at most half the scratchpad"):
        backend.gemm(PRESETS["sparse-chain-8"], rng.integers(-127, 128, (1, 192)), rng.integers(-128, 128, (192, 1)))


def test_backend_errors():
    with pytest.raises(ValueError, match="backend: got 'fpga', allowed: golden, rtl, board"):
        SystemBackend("system-default", "fpga")
    with pytest.raises(ValueError, match="--system: got 'lmul-e4m3' \\(unit 'lmul'\\), allowed: a system config"):
        SystemBackend("lmul-e4m3", "golden")
    with pytest.raises(ValueError, match="has no engine with this lmuldot config; it has sparse-chain-8"):
        SystemBackend("system-int8", "golden").dot(PRESETS["lmuldot-e4m3x16"], np.zeros((1, 16), int),
                                                    np.zeros((1, 16), int))


def test_engines_given_as_configs():
    """An engine may be a config instead of a preset (inline TOML table or object): the manifest carries every
    engine's config, which the golden system rebuilds."""
    table = {"unit": "snn_core", "neurons": 12, "axons": 20, "lanes": 4, "threshold": 40}
    system = config_from_dict({"unit": "system", "engines": ["sdsa-8x16", table], "host_width": 128})
    core = config_from_dict(table)
    assert system.engine_configs == [PRESETS["sdsa-8x16"], core]
    assert system.engine_names[1].startswith("snn_core-") and system == config_from_dict(
        {"unit": "system", "engines": ["sdsa-8x16", core], "host_width": 128})
    golden = SystemBackend(system, "golden")
    assert golden.engine_index(core) == 1 and GoldenSystem(golden.manifest).configs[1] == core
    with pytest.raises(ValueError, match="has no engine with this snn_core config; it has sdsa-8x16, snn_core-"):
        golden.engine_index(PRESETS["snn-core-64x8"])


def test_every_system_preset_resolves_its_engines():
    for name, cfg in PRESETS.items():
        if cfg.unit == "system":
            assert [c.unit for c in cfg.engine_configs]


def test_golden_attention_engine_equals_the_attention_model(tmp_path):
    from sw_model.attention.golden import attention
    toml = tmp_path / "att.toml"
    toml.write_text('unit = "system"\nengines = ["attention-4x4-d8"]\nhost_width = 128\nspad_depth = 64\n')
    cfg = PRESETS["attention-4x4-d8"]
    rng = np.random.default_rng(3)
    lim = 1 << (cfg.data_bits - 1)
    q, k, v = (rng.integers(-lim, lim, (2, n, cfg.head_dim)) for n in (6, 13, 13))
    got, _ = SystemBackend(str(toml), "golden").attention(cfg, q, k, v)      # 2 query tiles x 17 beats per head
    assert np.array_equal(got, np.stack([attention(cfg, *head) for head in zip(q, k, v)]))


def test_beat_packing_equals_a_per_element_reference():
    from sw_model.host.beats import pack_beats, unpack_beats
    fields = [{"name": "a", "offset": 0, "width": 128, "count": 16, "elem_width": 8},
              {"name": "w", "offset": 128, "width": 24, "count": 8, "elem_width": 3},
              {"name": "last", "offset": 152, "width": 1}, {"name": "m", "offset": 153, "width": 3}]
    rng = np.random.default_rng(9)
    n = 200
    vals = {"a": rng.integers(-128, 128, (n, 16)), "w": rng.integers(0, 8, (n, 8)), "last": rng.integers(0, 2, n),
            "m": rng.integers(0, 8, n)}
    want = [0] * n
    for f in fields:
        ew = f.get("elem_width", f["width"])
        for j, row in enumerate(np.asarray(vals[f["name"]]).reshape(n, -1).tolist()):
            for k, x in enumerate(row):
                want[j] |= (x & ((1 << ew) - 1)) << (f["offset"] + k * ew)
    assert pack_beats(fields, vals) == want
    back = unpack_beats(fields, want)
    assert np.array_equal(back["a"], vals["a"] & 255) and np.array_equal(back["m"], vals["m"])


def test_golden_system_drops_malformed_commands_and_status_reports_them():
    """The golden system drops what the decoder drops (unknown opcode, missing engine, ranges past the end, a
    WRITE's data words with it) and leaves the scratchpads alone; STATUS counts them, names the first and clears."""
    from hwgen.system.top import ERROR_CODES
    p = Program(MANIFEST).write(1, 0, [5, 6]).run(1, 0, 0, 0, 0)
    p.raw([Opcode.WRITE.value | 1 << 4 | 2047 << 8 | 2 << 19] + [Opcode.INFO.value] * 4)   # 2047 + 2 > 2048
    p.raw([0xF, Opcode.READ.value | 9 << 4, Opcode.READ.value | 2040 << 8 | 9 << 19]).status().status().info()
    golden = GoldenSystem(MANIFEST)
    first, second, info = decode_replies(p, golden.execute(p.words))
    assert first == {"errors": 4, "error_code": ERROR_CODES["RANGE"], "error_op": Opcode.WRITE.value,
                     "error_engine": 1, "busy": 0, "commands": 7}
    assert second["errors"] == 0 and second["commands"] == 8 and info["errors"] == 0
    assert golden.spad_in[1][:2] == [5, 6] and golden.spad_in[1][2047] == 0


def test_backend_raises_when_status_reports_dropped_commands():
    from hwgen.host.system_backend import CommandError
    backend = SystemBackend("system-default", "golden")
    p = Program(backend.manifest).raw([Opcode.READ.value | 1 << 4 | 2000 << 8 | 100 << 19]).status()
    with pytest.raises(CommandError, match=r"system: the command decoder dropped 1 command\(s\); the first: RANGE "
                                           r"\(READ, engine 1\); allowed: .*addr \+ count <= spad_depth 2048"):
        backend.execute(p)


def test_program_cycles_counts_hazard_waits_and_dropped_commands():
    """A WRITE into the range of a run that is still active waits for it; a dropped WRITE still takes its words;
    a dropped READ costs a cycle. The RTL benches check the same model (test_system_properties)."""
    from sw_model.system.golden import program_cycles
    lat = MANIFEST["system"]["engines"][1]["latency"]
    base = Program(MANIFEST).run(1, 0, 10, 0, 0)           # busy 10 + lat + 2 cycles from cycle 1
    apart = Program(MANIFEST, words=list(base.words)).write(1, 10, [1]).info()
    inside = Program(MANIFEST, words=list(base.words)).write(1, 9, [1]).info()
    k = MANIFEST["system"]["engines"][1]["in_words"]
    assert program_cycles(apart) == 1 + (2 + k) + 1 + 1 + 1
    assert program_cycles(inside) == (10 + lat + 3) + (2 + k) + 1 + 1 + 1
    dropped = Program(MANIFEST).raw([Opcode.WRITE.value | 1 << 4 | 2047 << 8 | 2 << 19] + [0] * (2 * k)).info()
    assert program_cycles(dropped) == (2 + 2 * k) + 1 + 1 + 1
