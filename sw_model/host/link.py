"""The reliable host link (protocol version 2): frames with a sequence number, a session and a CRC-16, a
stop-and-wait host that retries and resynchronises, the board side's reference model, and a bit-level 8N1 serial
line with fault injection. Pure Python: the specification that `hwgen.system.link.LinkBridge` implements in
gateware (docs/system.md, "Host link").

Frames (every multi-byte field little-endian except the CRC, which is sent high byte first so that the CRC of a
whole frame, CRC included, is 0):

    host -> board   type  seq  session  [payload: IN_BYTES for BEAT]  crc_hi crc_lo
                    BEAT 'B' one word for the unit's input stream; GET 'G' fetch one reply word;
                    SYNC 'S' start a session: reset the unit, the board adopts `session`
    board -> host   ACK 'A'  seq session status crc        status: OK, DUPLICATE, EMPTY (GET: no reply yet),
                                                           BUSY (BEAT: the unit is not ready, send it again)
                    OUT 'O'  seq session payload crc       the reply word for GET `seq`
                    ERR 'E'  seq session code crc          code: SHORT, UNKNOWN, FRAMING, CRC, SESSION

CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF) over every byte before the CRC. The board answers
every frame it parses and holds the answer's content until a request with a new sequence number comes: a request
repeated with the same number (its answer was lost) is answered again and never executed twice. A board reset
sets the board's session to 0, which no host uses, so the next request gets ERR SESSION and the host knows the
unit lost its state. A frame that stops for the board's idle timeout is dropped with ERR SHORT; after ERR UNKNOWN
or FRAMING the board ignores bytes until the line has been idle for the timeout.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

VERSION = 2
REQ_BEAT, REQ_GET, REQ_SYNC = 0x42, 0x47, 0x53            # 'B', 'G', 'S'
RSP_ACK, RSP_OUT, RSP_ERR = 0x41, 0x4F, 0x45               # 'A', 'O', 'E'
ACK_OK, ACK_DUPLICATE, ACK_EMPTY, ACK_BUSY = 0, 1, 2, 3
ERR_SHORT, ERR_UNKNOWN, ERR_FRAMING, ERR_CRC, ERR_SESSION = 1, 2, 3, 5, 6
ERROR_NAMES = {ERR_SHORT: "short frame (line idle mid-frame)", ERR_UNKNOWN: "unknown frame type",
               ERR_FRAMING: "UART framing error (stop bit 0)", ERR_CRC: "CRC mismatch",
               ERR_SESSION: "session mismatch (the board was reset)"}
HEADER_BYTES, CRC_BYTES = 3, 2


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE, bit by bit (the gateware does the same 8 steps per byte)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def frame(kind: int, seq: int, session: int, body: bytes = b"") -> bytes:
    head = bytes([kind, seq & 0xFF, session & 0xFF]) + bytes(body)
    return head + crc16(head).to_bytes(2, "big")


def request_size(kind: int, in_bytes: int) -> int | None:
    return {REQ_BEAT: HEADER_BYTES + in_bytes + CRC_BYTES, REQ_GET: HEADER_BYTES + CRC_BYTES,
            REQ_SYNC: HEADER_BYTES + CRC_BYTES}.get(kind)


def response_size(kind: int, out_bytes: int) -> int | None:
    return {RSP_ACK: 6, RSP_ERR: 6, RSP_OUT: HEADER_BYTES + out_bytes + CRC_BYTES}.get(kind)


@dataclass
class Response:
    kind: int
    seq: int
    session: int
    value: int            # ACK status, ERR code or the OUT payload


def parse_responses(data: bytes, out_bytes: int) -> list[Response]:
    """Every well-formed response frame in `data` (a valid type byte, the right length, CRC 0); bytes that start
    no such frame are skipped one at a time, which is how the host resynchronises after garbage."""
    found, k = [], 0
    while k < len(data):
        size = response_size(data[k], out_bytes)
        if size is not None and k + size <= len(data) and crc16(data[k:k + size]) == 0:
            body = data[k + HEADER_BYTES:k + size - CRC_BYTES]
            value = int.from_bytes(body, "little") if data[k] == RSP_OUT else body[0]
            found.append(Response(data[k], data[k + 1], data[k + 2], value))
            k += size
        else:
            k += 1
    return found


class LinkError(RuntimeError):
    """The link gave up: the message names the request, how often it was tried and the last thing that went wrong."""


class BoardReset(LinkError):
    """The board answered with another session: it was reset and the unit lost its state."""


class LinkHost:
    """Stop-and-wait host side. `port.exchange(data, answer_bytes)` sends `data` and returns the bytes that came
    back before the port's timeout (at most what an answer of `answer_bytes` bytes takes, plus slack).

    Every request is sent until a well-formed answer with its sequence number and this session comes back, at
    most `tries` times; ERR answers and garbage count as failed tries. Counts what it did in `stats`."""

    def __init__(self, port, in_bytes: int, out_bytes: int, *, session: int | None = None, tries: int = 16,
                 rng: random.Random | None = None):
        self.port, self.in_bytes, self.out_bytes, self.tries = port, in_bytes, out_bytes, tries
        rng = rng or random.Random()
        self.session = session if session is not None else rng.randrange(1, 256)
        if not 1 <= self.session <= 255:
            raise ValueError(f"session: got {self.session}, allowed: 1 to 255 (0 is a board after reset)")
        self.seq = rng.randrange(256)
        self.stats = {"requests": 0, "sent": 0, "retries": 0, "bytes_out": 0, "bytes_in": 0, "busy": 0,
                      "empty": 0, "errors": {}}

    def _request(self, kind: int, body: bytes = b"") -> Response:
        self.seq = (self.seq + 1) & 0xFF
        self.stats["requests"] += 1
        data = frame(kind, self.seq, self.session, body)
        answer = max(response_size(RSP_ACK, self.out_bytes), response_size(RSP_OUT, self.out_bytes))
        last = "no answer before the timeout"
        for attempt in range(self.tries):
            if attempt:
                self.stats["retries"] += 1
            self.stats["sent"] += 1
            self.stats["bytes_out"] += len(data)
            got = self.port.exchange(data, answer)
            self.stats["bytes_in"] += len(got)
            mine = [r for r in parse_responses(got, self.out_bytes)
                    if r.kind == RSP_ERR or r.seq == self.seq]
            for r in mine:
                if r.kind == RSP_ERR:
                    self.stats["errors"][r.value] = self.stats["errors"].get(r.value, 0) + 1
                    if r.value == ERR_SESSION and r.seq == self.seq:
                        raise BoardReset(f"link: the board answered session {r.session} to request "
                                         f"{chr(kind)} seq {self.seq} of session {self.session}: it was reset")
                    last = f"the board answered ERR {ERROR_NAMES.get(r.value, r.value)}"
                elif r.session != self.session:
                    raise BoardReset(f"link: the board answered session {r.session} to request {chr(kind)} seq "
                                     f"{self.seq} of session {self.session}: it was reset")
                else:
                    return r
            if got and not mine:
                last = f"{len(got)} bytes that hold no valid answer"
        raise LinkError(f"link: request {chr(kind)} seq {self.seq} failed {self.tries} times; last: {last}")

    def sync(self):
        """Start the session: the board resets the unit and adopts this session."""
        r = self._request(REQ_SYNC)
        if r.kind != RSP_ACK:
            raise LinkError(f"link: SYNC answered with 0x{r.kind:02x}, expected ACK")

    def send_word(self, word: int, on_busy=None) -> None:
        """Deliver one word to the unit; while the unit is busy, `on_busy()` runs before the word is offered again
        (the driver reads replies there, which is what frees the unit)."""
        body = word.to_bytes(self.in_bytes, "little")
        for _ in range(1 << 20):
            r = self._request(REQ_BEAT, body)
            if r.kind == RSP_ACK and r.value in (ACK_OK, ACK_DUPLICATE):
                return
            if r.kind == RSP_ACK and r.value == ACK_BUSY:
                self.stats["busy"] += 1
                if on_busy:
                    on_busy()
                continue
            raise LinkError(f"link: BEAT answered with 0x{r.kind:02x} status {r.value}, expected ACK OK")
        raise LinkError("link: the unit never took the word")

    def get_word(self) -> int | None:
        """One reply word, or None if the unit has none yet."""
        r = self._request(REQ_GET)
        if r.kind == RSP_OUT:
            return r.value
        if r.kind == RSP_ACK and r.value == ACK_EMPTY:
            self.stats["empty"] += 1
            return None
        raise LinkError(f"link: GET answered with 0x{r.kind:02x} status {r.value}, expected OUT or ACK EMPTY")


def run_words(host: LinkHost, words: list[int], n_replies: int, *, polls: int = 10_000) -> list[int]:
    """A whole command program over the link: SYNC, every word (reading replies whenever the unit is busy), then
    the remaining replies. Raises LinkError if the replies stop coming (`polls` empty GETs in a row)."""
    replies: list[int] = []

    def poll():
        if len(replies) < n_replies:
            word = host.get_word()
            if word is not None:
                replies.append(word)

    host.sync()
    for w in words:
        host.send_word(w, on_busy=poll)
    empty = 0
    while len(replies) < n_replies:
        word = host.get_word()
        if word is None:
            empty += 1
            if empty >= polls:
                raise LinkError(f"link: {len(replies)} of {n_replies} reply words, then {polls} empty GETs")
        else:
            empty = 0
            replies.append(word)
    return replies


def run_program(make_host, words: list[int], n_replies: int, *, restarts: int = 3) -> tuple[list[int], int]:
    """`run_words` that restarts the whole program (new session, unit reset) after a board reset, at most
    `restarts` times; returns (replies, restarts used). `make_host()` gives a fresh LinkHost."""
    for attempt in range(restarts + 1):
        try:
            return run_words(make_host(), words, n_replies), attempt
        except BoardReset as e:
            last = e
    raise LinkError(f"{last} ({restarts} restarts of the program did not finish it)")


# ------------------------------------------------------------------------------------------------------------
# The board side's reference model and a bit-level serial line with faults
# ------------------------------------------------------------------------------------------------------------

class BridgeModel:
    """What `LinkBridge` does with the bytes of one burst from the host, frame by frame; `unit` is any object
    with `push(word)` (returns False when it cannot take the word: BUSY), `pop()` (a reply word or None) and
    `reset()`. `feed(data)` returns the answer bytes; the line is idle after each burst (the host waits)."""

    def __init__(self, unit, in_bytes: int, out_bytes: int):
        self.unit, self.in_bytes, self.out_bytes = unit, in_bytes, out_bytes
        self.reset()

    def reset(self):
        """A board reset: session 0, no last request."""
        self.session, self.last_seq, self.last_answer = 0, None, None

    def _answer(self, kind, seq, value: int, body: bytes | None = None) -> bytes:
        return frame(kind, seq, self.session, body if body is not None else bytes([value]))

    def feed(self, data: bytes, framing_errors: set[int] = frozenset()) -> bytes:
        """`framing_errors`: indices of bytes received with a 0 stop bit."""
        out, k = b"", 0
        while k < len(data):
            if k in framing_errors:
                out += self._answer(RSP_ERR, 0, ERR_FRAMING)
                break                                       # ignore the rest of the burst (until idle)
            size = request_size(data[k], self.in_bytes)
            if size is None:
                out += self._answer(RSP_ERR, 0, ERR_UNKNOWN)
                break
            if k + size > len(data):
                out += self._answer(RSP_ERR, 0, ERR_SHORT)
                break
            bad = [j for j in range(k + 1, k + size) if j in framing_errors]
            if bad:
                out += self._answer(RSP_ERR, 0, ERR_FRAMING)
                break
            chunk = data[k:k + size]
            k += size
            out += self._request(chunk) if crc16(chunk) == 0 else self._answer(RSP_ERR, 0, ERR_CRC)
        return out

    def _request(self, chunk: bytes) -> bytes:
        kind, seq, session = chunk[0], chunk[1], chunk[2]
        if kind == REQ_SYNC:
            self.unit.reset()
            self.session, self.last_seq = session, seq
            self.last_answer = (RSP_ACK, ACK_OK, None)
        elif session != self.session:
            return self._answer(RSP_ERR, seq, ERR_SESSION)
        elif seq == self.last_seq:                          # a repeated request: answer again, do nothing
            kind_a, value, body = self.last_answer
            dup = ACK_DUPLICATE if kind_a == RSP_ACK and value == ACK_OK and kind == REQ_BEAT else value
            return self._answer(kind_a, seq, dup, body)
        elif kind == REQ_BEAT:
            word = int.from_bytes(chunk[HEADER_BYTES:-CRC_BYTES], "little")
            if not self.unit.push(word):
                return self._answer(RSP_ACK, seq, ACK_BUSY)     # not remembered: the host sends it again
            self.last_seq, self.last_answer = seq, (RSP_ACK, ACK_OK, None)
        else:
            word = self.unit.pop()
            self.last_seq = seq
            self.last_answer = (RSP_ACK, ACK_EMPTY, None) if word is None else \
                (RSP_OUT, 0, word.to_bytes(self.out_bytes, "little"))
        kind_a, value, body = self.last_answer
        return self._answer(kind_a, seq, value, body)


@dataclass
class LineFaults:
    """Faults of one direction of the serial line: each bit flips with probability `ber`; each byte is lost with
    probability `drop` or sent twice with probability `dup`."""
    ber: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def transmit(self, data: bytes) -> tuple[bytes, set[int]]:
        """The bytes an 8N1 receiver decodes from `data` sent over this line, and which of them had a framing
        error (`decode(bits(data))`)."""
        return decode_bits(self.bits(data))

    def bits(self, data: bytes) -> list[int]:
        """The line's bits for `data`, one per bit time: each byte is start 0, 8 data bits LSB first, stop 1,
        followed by 10 idle 1s; lost and repeated bytes, then bit flips."""
        sent = bytearray()
        for b in data:
            if self.rng.random() < self.drop:
                continue
            sent.append(b)
            if self.rng.random() < self.dup:
                sent.append(b)
        bits = []
        for b in sent:
            bits += [0] + [(b >> i) & 1 for i in range(8)] + [1]
        bits += [1] * 10
        if self.ber:
            k = 0
            while True:                                 # geometric gaps between flips: fast at low rates
                k += int(self.rng.expovariate(self.ber)) + 1 if self.ber < 1 else 1
                if k > len(bits):
                    break
                bits[k - 1] ^= 1
        return bits


def decode_bits(bits: list[int]) -> tuple[bytes, set[int]]:
    """An 8N1 receiver at bit level: a byte starts at any 0 while idle (so a flipped start or data bit can shift
    the framing); a 0 stop bit is a framing error, after which the receiver waits for the line to return to 1."""
    out, errors, k = bytearray(), set(), 0
    while k + 10 <= len(bits):
        if bits[k]:
            k += 1
            continue
        value = sum(bits[k + 1 + i] << i for i in range(8))
        if not bits[k + 9]:
            errors.add(len(out))
            k += 10
            while k < len(bits) and not bits[k]:
                k += 1
        else:
            k += 10
        out.append(value)
    return bytes(out), errors


class ModelPort:
    """A port for LinkHost onto a BridgeModel over two faulty lines; `reset_at` resets the board just before the
    exchange of that number (counting from 0). Counts the line's bit times in `bits` (10 per byte; both
    directions share the time: the host waits for each answer)."""

    def __init__(self, bridge: BridgeModel, down: LineFaults, up: LineFaults, reset_at: set[int] = frozenset()):
        self.bridge, self.down, self.up, self.reset_at = bridge, down, up, set(reset_at)
        self.exchanges, self.bits = 0, 0

    def exchange(self, data: bytes, answer_bytes: int) -> bytes:
        if self.exchanges in self.reset_at:
            self.bridge.reset()
            self.bridge.unit.reset()
        self.exchanges += 1
        got, ferr = self.down.transmit(data)
        answer = self.bridge.feed(got, ferr)
        back, _ = self.up.transmit(answer)
        # line time: the request, then the answer, or the host's timeout (the longest answer + 2 bytes) if none
        self.bits += 10 * (len(data) + (len(answer) if answer else answer_bytes + 2))
        return back
