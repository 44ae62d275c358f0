"""The reliable bridge's gateware (hwgen.system.link) in Amaranth's simulator, driven bit by bit by the protocol's
host (sw_model.host.link.LinkHost) over a serial line with faults: bit errors, lost and doubled bytes, garbage,
a board reset. Every run either returns the golden results or stops with a LinkError; never a wrong result."""
import random

import numpy as np
import pytest
from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.sim import Simulator

from hwgen.flow.generate import build_component, generate
from hwgen.system import bridge as br
from hwgen.system.link import LinkedUnit
from sw_model.host import link
from sw_model.lmul.config import LMulConfig
from sw_model.lmul.golden import lmul


class SimPort:
    """A LinkHost port onto a design in Amaranth's simulator: `exchange` drives the (faulty) request bits on
    `rx`, one per `divisor` cycles, and runs the simulation until the line has been quiet for a while; the bytes
    sampled on `tx` go through the up-line faults. `reset_at`: exchanges before which the whole board resets."""

    def __init__(self, dut, divisor: int, down: link.LineFaults, up: link.LineFaults, reset_at=()):
        self.dut, self.divisor, self.down, self.up, self.reset_at = dut, divisor, down, up, set(reset_at)
        self.queue, self.got, self.exchanges, self.cycle = [], [], 0, 0
        self.board_reset = Signal()
        top = Module()
        top.submodules.dut = ResetInserter({"sync": self.board_reset})(dut)
        self.sim = Simulator(top)
        self.sim.add_clock(1e-8)
        self.sim.add_testbench(self._drive, background=True)
        self.sim.add_testbench(self._monitor, background=True)
        self.reset_pending = False

    async def _drive(self, ctx):
        while True:
            if self.reset_pending:
                self.reset_pending = False
                ctx.set(self.board_reset, 1)
                await ctx.tick().repeat(2)
                ctx.set(self.board_reset, 0)
            if self.queue:
                ctx.set(self.dut.rx, self.queue.pop(0))
                await ctx.tick().repeat(self.divisor)
            else:
                ctx.set(self.dut.rx, 1)
                await ctx.tick()

    async def _monitor(self, ctx):
        d = self.divisor
        while True:
            await ctx.negedge(self.dut.tx)
            await ctx.tick().repeat(d // 2)
            if ctx.get(self.dut.tx):
                continue                                  # a glitch (e.g. a reset mid-byte)
            value = 0
            for i in range(8):
                await ctx.tick().repeat(d)
                value |= ctx.get(self.dut.tx) << i
            await ctx.tick().repeat(d)
            self.got.append(value)

    def exchange(self, data: bytes, answer_bytes: int) -> bytes:
        if self.exchanges in self.reset_at:
            self.reset_pending = True
        self.exchanges += 1
        bits = self.down.bits(data)
        self.queue += bits
        start, step = len(self.got), 10 * self.divisor
        limit = self.cycle + (len(bits) + 10 * (answer_bytes + 8)) * self.divisor + 4000
        quiet = 0
        while self.cycle < limit and (self.queue or quiet < 3):
            before = len(self.got)
            self.cycle += step
            self.sim.run_until(self.cycle * 1e-8)
            quiet = quiet + 1 if len(self.got) == before and not self.queue else 0
        back, _ = self.up.transmit(bytes(self.got[start:]))
        return back


LMUL = LMulConfig(fmt="e4m3")
DIVISOR = 4


def lmul_link(ber=0.0, drop=0.0, dup=0.0, seed=1, reset_at=()):
    manifest = generate(LMUL, "u")[1]
    unit = build_component(LMUL)
    in_w, out_w = br.check_bridgeable(unit)
    dut = LinkedUnit(unit, divisor=DIVISOR, timeout=20 * DIVISOR)
    rng = random.Random(seed)
    port = SimPort(dut, DIVISOR, link.LineFaults(ber, drop, dup, random.Random(rng.random())),
                   link.LineFaults(ber, drop, dup, random.Random(rng.random())), reset_at)
    n_in, n_out = br.payload_bytes(in_w), br.payload_bytes(out_w)
    return manifest, port, lambda **kw: link.LinkHost(port, n_in, n_out, rng=rng, **kw)


def lmul_job(manifest, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 256, n), rng.integers(0, 256, n)
    words = br.pack_beats(manifest["streams"][0]["fields"], {"a": a, "b": b})
    return words, [int(v) for v in lmul(a, b, LMUL.fmt, LMUL.mode, LMUL.overflow)]


def outputs(manifest, replies):
    return br.unpack_beats(manifest["streams"][1]["fields"], replies)["p"].tolist()


def test_clean_line_round_trip_with_no_retries():
    manifest, port, make_host = lmul_link()
    words, want = lmul_job(manifest, 3, 1)
    host = make_host()
    got = link.run_words(host, words, len(words))
    assert outputs(manifest, got) == want and host.stats["retries"] == 0 and host.stats["errors"] == {}


def test_bridge_answers_like_the_reference_model():
    """The same requests (good, repeated, bad CRC, wrong session, unknown type) give the same answer bytes from
    the gateware and from BridgeModel around the golden unit."""
    manifest, port, _ = lmul_link()

    class Unit:                                      # the LMul unit: one output per input, in order
        def __init__(self):
            self.q = []

        def push(self, w):
            a, b = w & 0xFF, w >> 8
            self.q.append(int(lmul(np.array([a]), np.array([b]), LMUL.fmt, LMUL.mode, LMUL.overflow)[0]))
            return True

        def pop(self):
            return self.q.pop(0) if self.q else None

        def reset(self):
            self.q = []

    model = link.BridgeModel(Unit(), 2, 1)
    bad_crc = bytearray(link.frame(link.REQ_BEAT, 3, 7, b"\x38\x40"))
    bad_crc[3] ^= 0x10
    requests = [link.frame(link.REQ_GET, 1, 7),                          # session 0 after reset: SESSION
                link.frame(link.REQ_SYNC, 2, 7), link.frame(link.REQ_GET, 3, 7),       # EMPTY
                bytes(bad_crc), link.frame(link.REQ_BEAT, 3, 7, b"\x38\x40"),
                link.frame(link.REQ_BEAT, 3, 7, b"\x38\x40"),            # repeated: DUPLICATE
                link.frame(link.REQ_GET, 4, 7), link.frame(link.REQ_GET, 4, 7),         # OUT twice, same word
                link.frame(link.REQ_GET, 5, 7), b"\x99", link.frame(link.REQ_BEAT, 6, 8, b"\x00\x00")]
    for req in requests:
        assert port.exchange(req, 6) == model.feed(req), req


@pytest.mark.parametrize("n_words", [3, pytest.param(16, marks=pytest.mark.slow)])
def test_faults_never_give_a_wrong_result(n_words):
    """3e-3 bit errors (three times the worst rate of the model sweep: about one frame in four is hit), 1 % lost
    and 1 % doubled bytes each way, a board reset before exchange 8: the job finishes with the golden results
    (retries, then a restart after the reset). At 1e-2 a request fails all 16 tries about once in 600, which
    the host reports as a LinkError: allowed, but not what this test is about."""
    manifest, port, make_host = lmul_link(3e-3, 1e-2, 1e-2, seed=5, reset_at={8})
    words, want = lmul_job(manifest, n_words, 2)
    hosts = []

    def host():
        hosts.append(make_host())
        return hosts[-1]
    got, restarts = link.run_program(host, words, len(words))
    assert outputs(manifest, got) == want and restarts == 1
    assert sum(h.stats["retries"] for h in hosts) > 0


def test_a_dead_board_stops_with_a_clear_error():
    manifest, port, make_host = lmul_link(ber=0.5)
    with pytest.raises(link.LinkError, match=r"link: request S seq \d+ failed 3 times; last: "):
        make_host(tries=3).sync()
