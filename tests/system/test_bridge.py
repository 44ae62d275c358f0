"""UART + stream bridge, simulated at the bit level (Amaranth's Python simulator) around real generated units and
compared with the golden models; error frames; the host-side codec."""
import gc
import random

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwgen.flow.generate import build_component, generate
from hwgen.system import bridge as br
from hwgen.system.uart import divisor_for
from sw_model.lmul.config import LMulConfig, LMulDotConfig
from sw_model.lmul.golden import lmul, lmul_dot

# ---------------------------------------------------------------------------------------------------------------
# A serial-line model: the host drives `rx` bit by bit and decodes `tx` by sampling mid-bit.
# ---------------------------------------------------------------------------------------------------------------

def serial_bits(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def run_line(dut, divisor, plan, n_reply_bytes, *, host_bit=None, max_cycles=None):
    """Drive `plan` [(idle cycles before, byte, stop bit) or (idle, None, glitch cycles)] into dut.rx; collect
    `n_reply_bytes` from dut.tx.

    `host_bit` (default: divisor) is the host's bit period in cycles (a float models a clock mismatch).
    Returns [(byte, cycle when its stop bit was sampled)]. Gives up `max_cycles` after the start (default: the
    time to send the plan and the replies, plus 10 %, plus 2000 cycles)."""
    host_bit = host_bit or divisor
    if max_cycles is None:
        max_cycles = int(1.1 * (sum(idle for idle, _, _ in plan) + 10 * host_bit * len(plan)
                                + 10 * divisor * n_reply_bytes)) + 2000
    top = Module()
    top.submodules.dut = dut
    cycle = Signal(32)                     # a counter in the design: cheaper than a Python process per cycle
    top.d.sync += cycle.eq(cycle + 1)
    replies = []

    async def host(ctx):
        t = 0.0
        for idle, byte, stop in plan:
            if idle:
                await ctx.tick().repeat(idle)
            if byte is None:                   # a glitch: the line low for `stop` cycles
                ctx.set(dut.rx, 0)
                await ctx.tick().repeat(stop)
                ctx.set(dut.rx, 1)
                continue
            for bit in serial_bits(byte, stop):
                ctx.set(dut.rx, bit)
                nxt = t + host_bit
                await ctx.tick().repeat(round(nxt) - round(t))
                t = nxt
        ctx.set(dut.rx, 1)
        while len(replies) < n_reply_bytes and ctx.get(cycle) < max_cycles:
            await ctx.tick().repeat(divisor)

    async def monitor(ctx):
        while True:
            await ctx.negedge(dut.tx)
            await ctx.tick().repeat(divisor // 2)
            assert ctx.get(dut.tx) == 0, "start bit shorter than half a bit"
            value = 0
            for i in range(8):
                await ctx.tick().repeat(divisor)
                value |= ctx.get(dut.tx) << i
            await ctx.tick().repeat(divisor)
            assert ctx.get(dut.tx) == 1, "stop bit is 0"
            replies.append((value, ctx.get(cycle)))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return replies


def frame_plan(frames: bytes, rng, max_idle, long_idle=0, p_long=0.0):
    """Each byte preceded by a random idle of 0..max_idle cycles (sometimes `long_idle`)."""
    plan = []
    for byte in frames:
        idle = rng.randrange(max_idle + 1)
        if long_idle and rng.random() < p_long:
            idle = long_idle
        plan.append((idle, byte, 1))
    return plan


class Throttled(wiring.Component):
    """Test wrapper: random one-cycle stalls on the unit's input and output handshakes (LFSR-driven)."""

    def __init__(self, unit):
        self.unit = unit
        super().__init__({"i": In(stream.Signature(unit.i.payload.shape())),
                          "o": Out(stream.Signature(unit.o.payload.shape()))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = u = self.unit
        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq((lfsr << 1) | (lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]))
        en_i, en_o = lfsr[3] | lfsr[7], lfsr[5] | lfsr[11]
        m.d.comb += [u.i.payload.eq(self.i.payload), u.i.valid.eq(self.i.valid & en_i),
                     self.i.ready.eq(u.i.ready & en_i),
                     self.o.payload.eq(u.o.payload), self.o.valid.eq(u.o.valid & en_o),
                     u.o.ready.eq(self.o.ready & en_o)]
        return m


class Stuck(wiring.Component):
    """Test unit that never takes a beat (i.ready = 0) and never answers."""
    i: In(stream.Signature(16))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        return Module()


def lmul_vectors(fmt_bits, n, rng):
    corners = [0, 1, (1 << fmt_bits) - 1, (1 << (fmt_bits - 1)) - 1, 1 << (fmt_bits - 1), (1 << (fmt_bits - 1)) - 2]
    a = corners + [rng.randrange(1 << fmt_bits) for _ in range(n)]
    b = corners[::-1] + [rng.randrange(1 << fmt_bits) for _ in range(n)]
    return np.array(a), np.array(b)


# ---------------------------------------------------------------------------------------------------------------
# Round trips through real units
# ---------------------------------------------------------------------------------------------------------------

LMUL_CASES = [
    # (config, divisor, throttle): smallest divisor + 1-byte payloads; odd divisor + 4-byte payloads
    (LMulConfig(fmt="e4m3"), 8, False),
    (LMulConfig(fmt="e2m1", pipeline=0), 4, True),
    (LMulConfig(fmt="bf16", mode="formula", pipeline=2), 7, True),
]


@pytest.mark.parametrize("config,divisor,throttle", LMUL_CASES, ids=["e4m3-d8", "e2m1-d4-throttled",
                                                                      "bf16-d7-throttled"])
def test_lmul_round_trip(config, divisor, throttle):
    rng = random.Random(divisor)
    text_manifest = generate(config, "u")[1]
    fields_in = text_manifest["streams"][0]["fields"]
    fields_out = text_manifest["streams"][1]["fields"]
    unit = build_component(config)
    in_w, out_w = br.check_bridgeable(unit)
    timeout = 40 * divisor
    dut = br.BridgedUnit(Throttled(unit) if throttle else unit, divisor=divisor, timeout=timeout, ident=0xC0FFEE01)
    a, b = lmul_vectors(config.format.bits, 16, rng)
    words = br.pack_beats(fields_in, {"a": a, "b": b})
    n_in, n_out = br.payload_bytes(in_w), br.payload_bytes(out_w)
    frames = b"".join(br.encode_beat(w, n_in) for w in words)
    # Identify first and wait for the reply (8 bytes); then beats with a random idle of 0..2 bit times before
    # each byte, sometimes 30 bit times (also inside frames: below the 40-bit-time timeout).
    plan = [(0, br.CMD_IDENT, 1)] + frame_plan(frames, rng, 2 * divisor, 30 * divisor, 0.05)
    plan[1] = (100 * divisor, *plan[1][1:])
    replies = run_line(dut, divisor, plan, br.IDENT_BYTES + len(words) * (1 + n_out))
    msgs = br.decode_replies(bytes(v for v, _ in replies), n_out)
    assert msgs[0] == ("I", {"version": br.PROTOCOL_VERSION, "in_bytes": n_in, "out_bytes": n_out,
                             "ident": 0xC0FFEE01})
    assert [kind for kind, _ in msgs[1:]] == ["O"] * len(words)
    got = br.unpack_beats(fields_out, [w for _, w in msgs[1:]])["p"]
    expected = lmul(a, b, config.fmt, config.mode, config.overflow)
    assert got.tolist() == expected.tolist()


def test_lmuldot_round_trip_array_fields():
    """Array payload fields and `last`: 3 lanes x 8 bits x 2 + 1 = 49 bits -> 7 bytes; fp32 sum -> 4 bytes."""
    config = LMulDotConfig(fmt="e4m3", acc_fmt="fp32", lanes=3, pipeline=1)
    rng = np.random.default_rng(5)
    manifest = generate(config, "dot")[1]
    fields_in, fields_out = manifest["streams"][0]["fields"], manifest["streams"][1]["fields"]
    vectors = [rng.integers(0, 256, size=(n, 2, 3)) for n in (1, 3, 2)]
    a = np.concatenate([v[:, 0] for v in vectors])
    b = np.concatenate([v[:, 1] for v in vectors])
    last = np.concatenate([[0] * (len(v) - 1) + [1] for v in vectors])
    words = br.pack_beats(fields_in, {"a": a, "b": b, "last": last})
    dut = br.BridgedUnit(build_component(config), divisor=5, timeout=200, ident=7)
    frames = b"".join(br.encode_beat(w, 7) for w in words)
    replies = run_line(dut, 5, frame_plan(frames, random.Random(3), 10), len(vectors) * 5)
    msgs = br.decode_replies(bytes(v for v, _ in replies), 4)
    got = br.unpack_beats(fields_out, [w for _, w in msgs])["sum"]
    expected = [int(lmul_dot(v[:, 0], v[:, 1], "e4m3", "fp32")) for v in vectors]
    assert got.tolist() == expected


@pytest.mark.parametrize("skew", [0.97, 1.03])
def test_receiver_tolerates_3_percent_baud_error(skew):
    config = LMulConfig(fmt="e4m3")
    dut = br.BridgedUnit(build_component(config), divisor=16, timeout=640)
    a, b = np.array([0x38, 0x45, 0xC1, 0x7E]), np.array([0x40, 0x3A, 0x52, 0x7E])
    frames = b"".join(br.encode_beat(int(x) | int(y) << 8, 2) for x, y in zip(a, b))
    replies = run_line(dut, 16, [(0, c, 1) for c in frames], 8, host_bit=16 * skew)
    msgs = br.decode_replies(bytes(v for v, _ in replies), 1)
    assert [w for _, w in msgs] == lmul(a, b, "e4m3").tolist()


# ---------------------------------------------------------------------------------------------------------------
# Malformed input: the documented error replies and recovery
# ---------------------------------------------------------------------------------------------------------------

D, TIMEOUT = 4, 200


def lmul_dut():
    return br.BridgedUnit(build_component(LMulConfig(fmt="e4m3")), divisor=D, timeout=TIMEOUT)


def good_frame(a, b):
    return [(0, c, 1) for c in br.encode_beat(a | b << 8, 2)]


def test_short_frame_is_dropped_after_timeout_then_recovers():
    plan = [(0, br.CMD_BEAT, 1), (0, 0x38, 1)]            # one of two payload bytes, then silence
    plan += [(TIMEOUT + 100, br.CMD_BEAT, 1), (0, 0x38, 1), (0, 0x40, 1)]
    replies = run_line(lmul_dut(), D, plan, 4)
    msgs = br.decode_replies(bytes(v for v, _ in replies), 1)
    assert msgs == [("E", br.ERR_SHORT), ("O", int(lmul(0x38, 0x40, "e4m3")))]
    # The error comes only after the line was quiet for TIMEOUT cycles after the short frame.
    short_end = 2 * 10 * D + 2
    assert replies[0][1] >= short_end + TIMEOUT


def test_gap_just_below_timeout_is_not_an_error():
    plan = [(0, br.CMD_BEAT, 1), (TIMEOUT - 3 * D, 0x38, 1), (TIMEOUT - 3 * D, 0x40, 1)]
    replies = run_line(lmul_dut(), D, plan, 2)
    assert br.decode_replies(bytes(v for v, _ in replies), 1) == [("O", int(lmul(0x38, 0x40, "e4m3")))]


def test_glitch_shorter_than_half_a_bit_is_ignored():
    dut = br.BridgedUnit(build_component(LMulConfig(fmt="e4m3")), divisor=16, timeout=800)
    plan = [(0, None, 5), (40, None, 7)] + [(0, c, 1) for c in br.encode_beat(0x38 | 0x40 << 8, 2)]
    replies = run_line(dut, 16, plan, 2)
    assert br.decode_replies(bytes(v for v, _ in replies), 1) == [("O", int(lmul(0x38, 0x40, "e4m3")))]


def test_unknown_command_discards_until_idle():
    # The discarded bytes contain 'B' and 'I' on purpose: they must not start frames or identify replies.
    junk = [(0, 0x55, 1), (0, br.CMD_BEAT, 1), (0, br.CMD_IDENT, 1), (0, 0x11, 1)]
    plan = junk + [(TIMEOUT + 50, br.CMD_BEAT, 1), (0, 0x45, 1), (0, 0x3A, 1)]
    replies = run_line(lmul_dut(), D, plan, 4)
    msgs = br.decode_replies(bytes(v for v, _ in replies), 1)
    assert msgs == [("E", br.ERR_UNKNOWN), ("O", int(lmul(0x45, 0x3A, "e4m3")))]


def test_framing_error_mid_frame():
    plan = [(0, br.CMD_BEAT, 1), (0, 0x38, 0), (0, 0x40, 1)]   # stop bit 0 on the first payload byte
    plan += [(TIMEOUT + 50, br.CMD_BEAT, 1), (0, 0x38, 1), (0, 0x40, 1)]
    replies = run_line(lmul_dut(), D, plan, 4)
    msgs = br.decode_replies(bytes(v for v, _ in replies), 1)
    assert msgs == [("E", br.ERR_FRAMING), ("O", int(lmul(0x38, 0x40, "e4m3")))]


def test_overrun_when_unit_does_not_take_the_beat():
    dut = br.BridgedUnit(Stuck(), divisor=D, timeout=TIMEOUT)
    plan = good_frame(1, 2) + good_frame(3, 4)
    replies = run_line(dut, D, plan, 2)
    assert br.decode_replies(bytes(v for v, _ in replies), 1) == [("E", br.ERR_OVERRUN)]


# ---------------------------------------------------------------------------------------------------------------
# Parameters and the host codec
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters():
    unit = build_component(LMulConfig())
    with pytest.raises(ValueError, match=r"divisor: got 3, allowed: an integer from 4 to"):
        br.BridgedUnit(unit, divisor=3, timeout=100)
    with pytest.raises(ValueError, match=r"timeout: got 10, allowed: an integer >= 2 \* divisor = 16 cycles"):
        br.BridgedUnit(unit, divisor=8, timeout=10)
    with pytest.raises(ValueError, match=r"ident: got -1"):
        br.BridgedUnit(unit, divisor=8, timeout=100, ident=-1)
    with pytest.raises(ValueError, match=r"in_width: got 2048, allowed: 1 to 2040 bits"):
        br.StreamBridge(2048, 8, divisor=8, timeout=100)
    with pytest.raises(ValueError, match=r"baud: got 5000000, allowed: a rate reachable from the 12 MHz clock"):
        divisor_for(12e6, 5_000_000)          # 2.4 cycles per bit
    with pytest.raises(ValueError, match=r"baud: got 1600000, allowed: a rate reachable .* within 2 %"):
        divisor_for(12e6, 1_600_000)          # 7.5 cycles per bit: 6 % off either way
    assert divisor_for(12e6, 115200) == 104 and divisor_for(25e6, 115200) == 217
    del unit
    gc.collect()          # the never-elaborated unit warns now, under this test's filter


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_unit_with_extra_ports_is_refused():
    class Sideband(wiring.Component):
        i: In(stream.Signature(8))
        o: Out(stream.Signature(8))
        mode: In(2)

        def elaborate(self, platform):
            return Module()

    with pytest.raises(ValueError, match=r"bridge: Sideband has ports i, mode, o; allowed: exactly an input "
                                         r"stream `i` and an output stream `o`"):
        br.BridgedUnit(Sideband(), divisor=8, timeout=100)
    gc.collect()


def test_codec_round_trip_and_errors():
    fields = [{"name": "a", "offset": 0, "width": 12, "count": 2, "elem_width": 6},
              {"name": "last", "offset": 12, "width": 1}]
    words = br.pack_beats(fields, {"a": [[1, 63], [5, 0]], "last": [1, 0]})
    assert words == [1 | 63 << 6 | 1 << 12, 5]
    assert br.encode_beat(words[0], 2) == bytes([0x42, 0xC1, 0x1F])
    back = br.unpack_beats(fields, words)
    assert back["a"].tolist() == [[1, 63], [5, 0]] and back["last"].tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"a: values must be unsigned 6-bit codes"):
        br.pack_beats(fields, {"a": [[64, 0]], "last": [0]})
    with pytest.raises(ValueError, match=r"missing fields \['last'\]"):
        br.pack_beats(fields, {"a": [[1, 1]]})
    assert br.decode_replies(b"O\x05E\x01I\x01\x02\x01\x78\x56\x34\x12", 1) == [
        ("O", 5), ("E", 1), ("I", {"version": 1, "in_bytes": 2, "out_bytes": 1, "ident": 0x12345678})]
    with pytest.raises(ValueError, match=r"reply byte 0: got 0x58, allowed: 'O', 'E' or 'I'"):
        br.decode_replies(b"X", 1)
    with pytest.raises(ValueError, match=r"reply byte 2: message 0x4f truncated \(1 of 3 bytes\)"):
        br.decode_replies(b"E\x01O", 2)
