"""The reliable host link (sw_model.host.link) on its reference board model and a bit-level serial line with
faults: bit errors, lost and repeated bytes, board and host resets. Every program either returns exactly the golden
system's replies or stops with a LinkError that names what failed; never a wrong result. One error rate in the
default suite, all of them under `-m slow`."""
import random

import numpy as np
import pytest

from hwgen.host.system_backend import SystemBackend
from sw_model.host import link
from sw_model.registry import PRESETS
from sw_model.system.golden import GoldenStream, GoldenSystem

BACKEND = SystemBackend("system-default", "golden")
MANIFEST = BACKEND.manifest
WORD_BYTES = MANIFEST["system"]["host_width"] // 8


def inference(seed: int):
    """A small int8 GEMM program on the sparse-chain engine (WRITE/RUN/READ chunks, COUNTERS) and its replies."""
    rng = np.random.default_rng(seed)
    chain = PRESETS["sparse-chain-8"]
    from sw_model.sparse.golden import pack_gemm
    beats = pack_gemm(rng.integers(-127, 128, (3, 16)), rng.integers(-128, 128, (16, 2)), "dense", chain.stages,
                      chain.x_width, weight_bits=chain.weight_bits)
    program, _ = BACKEND.program(chain, beats)
    want = [w or 0 for w in GoldenSystem(MANIFEST).execute(program.words)]     # counters: 0 in the model
    return program.words, want, program.reply_words()


def make_link(ber=0.0, drop=0.0, dup=0.0, seed=1, reset_at=()):
    unit = GoldenStream(MANIFEST)
    bridge = link.BridgeModel(unit, WORD_BYTES, WORD_BYTES)
    rng = random.Random(seed)
    port = link.ModelPort(bridge, link.LineFaults(ber, drop, dup, random.Random(rng.random())),
                          link.LineFaults(ber, drop, dup, random.Random(rng.random())), reset_at)
    return port, lambda: link.LinkHost(port, WORD_BYTES, WORD_BYTES, rng=rng)


def test_crc16_is_ccitt_false_and_a_frame_checks_to_zero():
    assert link.crc16(b"123456789") == 0x29B1                      # the catalogue's check value
    f = link.frame(link.REQ_BEAT, 7, 9, b"\x01\x02")
    assert f[:5] == b"B\x07\x09\x01\x02" and link.crc16(f) == 0
    for k in range(len(f) * 8):                                     # every single-bit error is detected
        bad = bytearray(f)
        bad[k // 8] ^= 1 << (k % 8)
        assert link.crc16(bytes(bad)) != 0


def test_clean_line_runs_the_program_with_no_retries():
    words, want, n = inference(0)
    port, make_host = make_link()
    host = make_host()
    got = link.run_words(host, words, n)
    assert got == want and host.stats["retries"] == 0
    assert host.stats["requests"] == 1 + len(words) + n + host.stats["empty"]


def test_parser_resynchronises_after_garbage_and_keeps_only_whole_frames():
    ack = link.frame(link.RSP_ACK, 3, 4, bytes([link.ACK_OK]))
    out = link.frame(link.RSP_OUT, 4, 4, (0x1234).to_bytes(2, "little"))
    data = b"\x41\x03" + ack[:-1] + b"\xff" + ack + b"O" + out + out[:4]
    got = link.parse_responses(data, 2)
    assert [(r.kind, r.seq, r.value) for r in got] == [(link.RSP_ACK, 3, link.ACK_OK), (link.RSP_OUT, 4, 0x1234)]


def test_repeated_requests_are_answered_again_but_run_once():
    """A BEAT or GET whose answer is lost comes again with the same number: the word is not pushed twice and
    the same reply word comes back."""
    pushed = []

    class Unit:
        def push(self, w):
            pushed.append(w)
            return True

        def pop(self):
            return 42 + len(pushed)

        def reset(self):
            pushed.clear()

    bridge = link.BridgeModel(Unit(), 1, 1)
    bridge.feed(link.frame(link.REQ_SYNC, 0, 5))
    beat = link.frame(link.REQ_BEAT, 1, 5, b"\x07")
    first, again = bridge.feed(beat), bridge.feed(beat)
    assert pushed == [7] and link.parse_responses(again, 1)[0].value == link.ACK_DUPLICATE
    assert link.parse_responses(first, 1)[0].value == link.ACK_OK
    get = link.frame(link.REQ_GET, 2, 5)
    a, b = (link.parse_responses(bridge.feed(get), 1)[0] for _ in range(2))
    assert a.kind == b.kind == link.RSP_OUT and a.value == b.value == 43
    assert link.parse_responses(bridge.feed(link.frame(link.REQ_GET, 2, 6)), 1)[0].value == link.ERR_SESSION
    bad = bytearray(get)
    bad[1] ^= 4
    assert link.parse_responses(bridge.feed(bytes(bad)), 1)[0].value == link.ERR_CRC


def run_faulty(ber, drop, dup, seeds, reset_every=None):
    """Programs over a faulty line; returns counts of correct, stopped (LinkError) and WRONG results and the
    retries per request."""
    counts = {"correct": 0, "stopped": 0, "wrong": 0, "retries": 0, "requests": 0, "restarts": 0}
    for seed in seeds:
        words, want, n = inference(seed)
        reset_at = {reset_every + 7 * seed} if reset_every else set()
        port, make_host = make_link(ber, drop, dup, seed, reset_at)
        hosts = []

        def tracked():
            hosts.append(make_host())
            return hosts[-1]
        try:
            got, restarts = link.run_program(tracked, words, n)
            counts["restarts"] += restarts
            counts["correct" if got == want else "wrong"] += 1
        except link.LinkError as e:
            assert str(e).startswith("link: ") and "seq" in str(e)
            counts["stopped"] += 1
        counts["retries"] += sum(h.stats["retries"] for h in hosts)
        counts["requests"] += sum(h.stats["requests"] for h in hosts)
    return counts


def test_faults_at_one_rate_never_give_a_wrong_result():
    """BER 1e-4 each way, 0.2 % lost and 0.2 % doubled bytes, a board reset in some programs: every program
    finishes with the golden replies (the host retries, resynchronises and restarts after the reset)."""
    c = run_faulty(1e-4, 2e-3, 2e-3, range(6), reset_every=10)
    assert c["wrong"] == 0 and c["correct"] == 6 and c["retries"] > 0 and c["restarts"] >= 6


@pytest.mark.slow
@pytest.mark.parametrize("ber", [1e-6, 1e-5, 1e-4, 1e-3])
def test_faults_at_every_rate_never_give_a_wrong_result(ber):
    c = run_faulty(ber, ber, ber, range(20), reset_every=10)
    assert c["wrong"] == 0 and c["correct"] + c["stopped"] == 20 and c["correct"] >= 18


def test_a_board_reset_mid_program_restarts_it():
    words, want, n = inference(3)
    port, make_host = make_link(reset_at={25})
    got, restarts = link.run_program(make_host, words, n)
    assert got == want and restarts == 1


def test_a_host_reset_mid_program_starts_a_new_session():
    """A host dies after half the program (the unit holds a half-done WRITE); a new host's SYNC resets the unit
    and its run gives the golden replies."""
    words, want, n = inference(4)
    port, make_host = make_link()
    first = make_host()
    first.sync()
    for w in words[:len(words) // 2 + 1]:
        first.send_word(w)
    assert link.run_words(make_host(), words, n) == want


def test_a_dead_line_stops_with_an_error_naming_the_request():
    words, _, n = inference(5)
    port, make_host = make_link(ber=0.3)
    with pytest.raises(link.LinkError, match=r"link: request S seq \d+ failed 16 times; last: "):
        link.run_words(make_host(), words, n)


def test_a_board_that_never_answers_stops_with_an_error():
    class Silent:
        def exchange(self, data, answer_bytes):
            return b""
    host = link.LinkHost(Silent(), 4, 4, tries=3)
    with pytest.raises(link.LinkError, match="failed 3 times; last: no answer before the timeout"):
        host.get_word()


def test_the_line_model_decodes_8n1_and_shows_framing_slips():
    data = bytes([0x00, 0xFF, 0x5A, 0x42])
    assert link.LineFaults().transmit(data) == (data, set())
    bits = link.LineFaults().bits(data)
    assert bits[:10] == [0] * 9 + [1] and len(bits) == 10 * len(data) + 10
    stop = list(bits)
    stop[19] = 0                                          # byte 1's stop bit: a framing error on byte 1
    got, errors = link.decode_bits(stop)
    assert got[:2] == data[:2] and errors == {1}
    start = list(bits)
    start[20] = 1                                         # byte 2's start bit lost: the receiver slips
    got, _ = link.decode_bits(start)
    assert got[2] != data[2] and got != data
    lost = link.LineFaults(drop=1.0).transmit(data)
    doubled = link.LineFaults(dup=1.0).transmit(data)
    assert lost == (b"", set()) and doubled == (bytes(b for b in data for _ in range(2)), set())
