"""Host side of the accelerator top: command programs built from the manifest, and the system's golden model.

`Program` turns engine operations into host words (WRITE the input beats to a scratchpad, RUN the engine, READ
the results) using only what the generated design's manifest says: header field offsets and widths, opcodes,
words per beat, scratchpad depth. `decode_replies` splits the reply words back into per-command results.
`GoldenSystem` executes the same words on numpy models of the scratchpads and engines, bit-exact with the RTL
except for the performance counters (cycle-level, so it reports them as None).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sw_model.attention.golden import KIND_QUERY, attention
from sw_model.bitmod import fp16 as bitmod_fp16
from sw_model.bitmod import fp16_row as bitmod_fp16_row
from sw_model.bitmod.golden import array_outputs
from sw_model.host.beats import pack_beats, unpack_beats
from sw_model.lmul.golden import lmul_dot
from sw_model.registry import config_from_dict
from sw_model.snn.golden import Op, Out, stream_model
from sw_model.sparse.group import group_chain_model


class ProgramError(ValueError):
    """A command does not fit the system; the message names the field, the value and what is allowed."""


@dataclass
class Program:
    """Host words of one command program for a system described by `manifest["system"]`, and what each reply
    holds (`replies`: one (kind, engine, beats) per command that answers)."""
    manifest: dict
    words: list = field(default_factory=list)
    replies: list = field(default_factory=list)
    reply_at: list = field(default_factory=list)      # index of the word after each answering command

    def __post_init__(self):
        if "system" not in self.manifest:
            raise ProgramError(f"manifest: {self.manifest.get('name')!r} is not a system (unit "
                               f"{self.manifest.get('unit')!r}); generate a system preset such as system-default")
        self.sys = self.manifest["system"]
        self.width = self.sys["host_width"]
        self.depth = self.sys["spad_depth"]

    def engine(self, e: int) -> dict:
        engines = self.sys["engines"]
        if not isinstance(e, int) or not 0 <= e < len(engines):
            raise ProgramError(f"engine: got {e!r}, allowed: 0..{len(engines) - 1} "
                               f"({', '.join(x['preset'] for x in engines)})")
        return engines[e]

    def engine_index(self, unit_or_preset: str) -> int:
        for x in self.sys["engines"]:
            if unit_or_preset in (x["unit"], x["preset"]):
                return x["index"]
        raise ProgramError(f"engine: got {unit_or_preset!r}, allowed: one of this system's engines "
                           f"({', '.join(x['preset'] for x in self.sys['engines'])})")

    def _header(self, op: str, engine: int = 0, **values) -> int:
        word = 0
        for f in self.sys["header"]:
            v = self.sys["opcodes"][op] if f["name"] == "op" else engine if f["name"] == "engine" \
                else values.get(f["name"], 0)
            if not 0 <= v < 1 << f["width"]:
                raise ProgramError(f"{f['name']}: got {v}, allowed: 0..{(1 << f['width']) - 1}")
            word |= v << f["offset"]
        return word

    def _range(self, what: str, addr: int, count: int):
        if not 0 <= count <= self.depth or not 0 <= addr or addr + count > self.depth:
            raise ProgramError(f"{what}: got addr {addr} count {count}, allowed: addr + count <= spad_depth "
                               f"{self.depth}")

    def write(self, e: int, addr: int, beats) -> "Program":
        eng = self.engine(e)
        beats = [int(b) for b in beats]
        self._range("write", addr, len(beats))
        if any(not 0 <= b < 1 << eng["in_width"] for b in beats):
            raise ProgramError(f"write: a beat does not fit engine {e}'s {eng['in_width']}-bit input payload")
        self.words.append(self._header("WRITE", e, addr=addr, count=len(beats)))
        mask = (1 << self.width) - 1
        for b in beats:
            self.words += [(b >> (k * self.width)) & mask for k in range(eng["in_words"])]
        return self

    def run(self, e: int, src: int, n_in: int, dst: int, n_out: int) -> "Program":
        self.engine(e)
        self._range("run input", src, n_in)
        self._range("run output", dst, n_out)
        self.words.append(self._header("RUN", e, addr=src, count=n_in, addr2=dst, count2=n_out))
        return self

    def wait(self, e: int) -> "Program":
        self.engine(e)
        self.words.append(self._header("WAIT", e))
        return self

    def read(self, e: int, addr: int, count: int) -> "Program":
        self.engine(e)
        self._range("read", addr, count)
        self.words.append(self._header("READ", e, addr=addr, count=count))
        self._answers(("read", e, count))
        return self

    def counters(self, e: int) -> "Program":
        self.engine(e)
        self.words.append(self._header("COUNTERS", e))
        self._answers(("counters", e, 1))
        return self

    def clear(self) -> "Program":
        self.words.append(self._header("CLEAR"))
        return self

    def info(self) -> "Program":
        self.words.append(self._header("INFO"))
        self._answers(("info", 0, 1))
        return self

    def status(self) -> "Program":
        """STATUS: errors since the last STATUS (and the first one's cause), busy engines, headers taken."""
        self.words.append(self._header("STATUS"))
        self._answers(("status", 0, 1))
        return self

    def nop(self) -> "Program":
        self.words.append(self._header("NOP"))
        return self

    def raw(self, words, reply: tuple | None = None) -> "Program":
        """Words appended unchecked (tests of malformed commands); `reply` is what they answer, if anything."""
        self.words += [int(x) for x in words]
        if reply is not None:
            self._answers(reply)
        return self

    def _answers(self, reply: tuple):
        self.replies.append(reply)
        self.reply_at.append(len(self.words))

    def _reply_size(self, reply: tuple) -> int:
        kind, e, count = reply
        return count * self.engine(e)["out_words"] if kind == "read" else \
            len(self.sys["counters"]) if kind == "counters" else 1        # info, status: one word

    def reply_words(self) -> int:
        return sum(self._reply_size(r) for r in self.replies)

    def replies_before(self) -> list[int]:
        """For each word: how many reply words the commands before it send (a host on a link that buffers one
        word waits for them before it sends the word)."""
        out, done, r = [], 0, 0
        for k in range(len(self.words)):
            while r < len(self.reply_at) and self.reply_at[r] <= k:
                done += self._reply_size(self.replies[r])
                r += 1
            out.append(done)
        return out


def decode_replies(program: Program, words: list[int]) -> list:
    """Reply words -> one result per answering command: read -> list of beat payloads; counters -> dict
    (None values from the untimed golden model); info / status -> dict of the INFO / STATUS fields."""
    if len(words) != program.reply_words():
        raise ProgramError(f"replies: got {len(words)} words, expected {program.reply_words()}: the run is incomplete")
    out, pos, w = [], 0, program.width
    for kind, e, count in program.replies:
        if kind == "read":
            k = program.engine(e)["out_words"]
            beats = []
            for _ in range(count):
                beats.append(sum(int(words[pos + j]) << (j * w) for j in range(k)))
                pos += k
            out.append(beats)
        elif kind == "counters":
            names = program.sys["counters"]
            out.append(dict(zip(names, words[pos:pos + len(names)])))
            pos += len(names)
        else:
            fields = program.sys["info" if kind == "info" else "status"]
            out.append({k: (words[pos] >> f["offset"]) & ((1 << f["width"]) - 1)
                        for k, f in fields.items() if isinstance(f, dict)})
            pos += 1
    return out


def _signed(codes, bits):
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes)


def _lmuldot_model(cfg, beats: dict, state: dict) -> dict:
    ends = np.flatnonzero(beats["last"]) + 1
    sums, start = [], 0
    for end in ends:
        a, b = beats["a"][start:end][None], beats["b"][start:end][None]
        sums.append(int(lmul_dot(a, b, cfg.format, cfg.acc_format, cfg.mode, cfg.overflow)[0]))
        start = end
    return {"sum": np.array(sums, dtype=np.int64)}


def _sparse_model(cfg, beats: dict, state: dict) -> dict:
    b = dict(beats, w=_signed(beats["w"], cfg.weight_bits), x=_signed(beats["x"], 8))
    if cfg.packed:
        b["x2"] = _signed(beats["x2"], 8)
    out = group_chain_model(b, cfg)
    return {k: np.asarray(v, dtype=np.int64) & ((1 << cfg.acc_bits) - 1) for k, v in out.items()}


def _attention_model(cfg, beats: dict, state: dict) -> dict:
    """Per vector (a query tile: its QUERY beats, then K/V beats up to `last`): one output row per query."""
    x, v = _signed(beats["x"], cfg.data_bits), _signed(beats["v"], cfg.data_bits)
    rows, start = [], 0
    for end in np.flatnonzero(beats["last"]) + 1:
        query = np.asarray(beats["kind"][start:end]) == KIND_QUERY
        pos = np.asarray(beats["pos"][start:end])[query] if cfg.causal else None
        rows.append(attention(cfg, x[start:end][query], x[start:end][~query], v[start:end][~query], q_pos=pos))
        start = end
    out = np.concatenate(rows) if rows else np.zeros((0, cfg.head_dim), dtype=np.int64)
    return {"out": np.asarray(out, dtype=np.int64) & ((1 << cfg.out_width) - 1)}


def _bitmod_model(cfg, beats: dict, state: dict) -> dict:
    """One output beat per vector (SV-register write beats give none): the array's golden model. The SV registers
    keep their values from run to run, so the writes of earlier runs are replayed in front of this run's beats."""
    n = len(beats["last"])
    regs = state.setdefault("sv", {})                               # register address -> last value written
    replay = {f: np.zeros((len(regs),) + np.shape(v)[1:], dtype=np.int64) for f, v in beats.items()}
    replay.update(sv_we=np.ones(len(regs), np.int64), sv_addr=np.array(list(regs), np.int64).reshape(-1),
                  sv_val=np.array(list(regs.values()), np.int64).reshape(-1))
    for we, addr, val in zip(beats["sv_we"].tolist(), beats["sv_addr"].tolist(), beats["sv_val"].tolist()):
        if we:
            regs[addr] = val
    beats = {f: np.concatenate([replay[f], np.asarray(v, np.int64).reshape((n,) + np.shape(v)[1:])])
             for f, v in beats.items()}
    if cfg.act == "fp16":
        return (bitmod_fp16_row if cfg.align == "row" else bitmod_fp16).array_outputs(cfg, beats)
    return {"y": array_outputs(cfg, dict(beats, a=_signed(beats["a"], 8)))}


def _snn_model(cfg, beats: dict, state: dict) -> dict:
    """The spiking core's beat-level model; its neuron array (weights, potentials, timestep) outlives the run."""
    out, _, state["core"] = stream_model(cfg, beats, state.get("core"))
    return out


def _sdsa_model(cfg, beats: dict, state: dict) -> dict:
    """K/V rows add k AND v into the saturating counters (`first` restarts them), Q rows read them out; the
    counters outlive the run."""
    bit = np.int64(1) << np.arange(cfg.dim)
    kv = state.setdefault("kv", np.zeros((cfg.dim, cfg.dim), np.int64))
    out = []
    for op, first, a, b in zip(*(np.asarray(beats[f]).tolist() for f in ("op", "first", "a", "b"))):
        av = (a & bit) != 0
        if op == 0:
            kv[:] = np.minimum((0 if first else kv) + np.outer(av, (b & bit) != 0), cfg.count_max)
        else:
            out.append(int(bit @ ((av @ kv >> cfg.scale_shift) >= cfg.vth)))
    return {"s": np.array(out, dtype=np.int64)}


def vector_plan(cfg, beats: dict) -> tuple[list[int], list[int]]:
    """Where a driver may cut the beats between RUNs, and the output beats each piece gives: (end beat of every
    vector, output beats of every vector). A vector ends at `last` (the attention array gives one output per
    query, the others one per vector). The spiking core and SDSA keep their state between runs, so a vector may
    end anywhere: after every SDSA beat (a Q row gives one output) and after every spiking-core TICK (the count
    depends on the data; the beat-level model gives it)."""
    n = len(next(iter(beats.values())))
    if cfg.unit == "snn_core":                  # cut after every TICK; its outputs end with the TICK marker
        ends = (np.flatnonzero(np.asarray(beats["op"]) == Op.TICK) + 1).tolist()
        kinds = stream_model(cfg, beats)[0]["kind"]
        done = (np.flatnonzero(kinds == Out.TICK) + 1).tolist()        # outputs so far after each TICK
        if not ends or ends[-1] != n:
            ends, done = ends + [n], done + [len(kinds)]
        return ends, np.diff([0] + done).tolist()
    if cfg.unit == "sdsa":
        return list(range(1, n + 1)), np.asarray(beats["op"]).tolist()
    ends = (np.flatnonzero(np.asarray(beats["last"])) + 1).tolist()
    if not ends or ends[-1] != n:
        raise ProgramError("beats: the last beat must end a vector (last = 1)")
    if cfg.unit != "attention":
        return ends, [1] * len(ends)
    queries = np.cumsum(np.asarray(beats["kind"]) == KIND_QUERY)
    return ends, np.diff(np.concatenate([[0], queries[np.array(ends) - 1]])).tolist()


# unit -> bit-exact model: (config, input beats as field arrays, the engine's state dict, which lives from run to
# run as the engine's registers do) -> output beats as field arrays
ENGINE_MODELS = {"lmuldot": _lmuldot_model, "sparse_chain": _sparse_model, "attention": _attention_model,
                 "bitmod": _bitmod_model, "snn_core": _snn_model, "sdsa": _sdsa_model}


def _taken(marker: dict | None, out: dict, count2: int) -> int | None:
    """Output beats a RUN takes: count2, or for an engine with a run marker all beats up to its count2-th marker
    beat; None if the outputs are too few (the hardware would wait for ever)."""
    n = len(next(iter(out.values())))
    if marker is None:
        return count2 if n >= count2 else None
    marks = np.flatnonzero(np.asarray(out[marker["out_field"]]) == marker["out_value"])
    if count2 == 0:
        return 0
    return int(marks[count2 - 1]) + 1 if len(marks) >= count2 else None


ENGINE_OPS = ("WRITE", "RUN", "WAIT", "READ", "COUNTERS")


def header_fields(sys: dict, word: int) -> dict:
    return {f["name"]: (word >> f["offset"]) & ((1 << f["width"]) - 1) for f in sys["header"]}


def command_error(sys: dict, op: str | None, h: dict) -> str | None:
    """Why the decoder drops this header (a key of the manifest's `errors`), or None: the checks of
    `hwgen.system.decoder.CommandDecoder` in the same order."""
    depth = sys["spad_depth"]
    if op is None:
        return "OPCODE"
    if op in ENGINE_OPS and h["engine"] >= len(sys["engines"]):
        return "ENGINE"
    if op in ("WRITE", "READ", "RUN") and (h["addr"] + h["count"] > depth
                                           or op == "RUN" and h["addr2"] + h["count2"] > depth):
        return "RANGE"
    return None


class CycleModel:
    """The documented cycle model of the decoder, the reply serializer and the engines' busy intervals, with the
    host offering a word every cycle and taking every reply word at once (docs/system.md, "Cycle model").

    Cycles count from the first header's handshake (cycle 0). Call `command` once per header in program order;
    it returns the cycle in which the header is taken and, for a command that replies, the cycle in which the
    serializer loads its beat (the counters and STATUS show the registers of that cycle). `end` is the cycle after
    which the last reply word has been sent so far."""

    def __init__(self, sys: dict):
        self.sys = sys
        self.t = self.end = self.s_free = 0
        self.free: dict[int, int] = {}            # engine -> first cycle its busy flag is low again
        self.ranges: dict[int, tuple] = {}        # engine -> input and output range of its last RUN

    def _overlaps(self, e: int, h: dict, which: int) -> bool:
        if e not in self.ranges or not h["count"]:
            return False
        lo, hi = self.ranges[e][which]
        return lo < hi and h["addr"] < hi and lo < h["addr"] + h["count"]

    def command(self, op: str | None, h: dict, error: str | None, busy_cycles: int = 0) -> tuple[int, int | None]:
        """(cycle taken, cycle the reply beat loads or None). `busy_cycles`: for a RUN, the cycles its engine
        stays busy after the header ((n - 1) * II + L + 3 for n beats on an engine of initiation interval II and
        latency L; 0 for an empty run)."""
        e, eng = h["engine"], None
        if error is None and op in ENGINE_OPS:
            eng = self.sys["engines"][e]
        wait_for = None
        if op == "RUN" and h["engine"] < len(self.sys["engines"]):
            wait_for = e                               # a RUN waits for its engine even when it is dropped
        elif error is None and op == "WRITE" and self._overlaps(e, h, 0):
            wait_for = e
        elif error is None and op == "READ" and (eng.get("run_marker") and e in self.ranges
                                                 or self._overlaps(e, h, 1)):
            wait_for = e
        if wait_for is not None:
            self.t = max(self.t, self.free.get(wait_for, 0))
        taken, load = self.t, None
        if op == "WRITE" and error != "ENGINE" and error != "OPCODE":
            self.t += 2 + h["count"] * self.sys["engines"][e]["in_words"]      # a dropped WRITE takes its words
        elif error is not None:
            self.t += 1
        elif op == "RUN":
            self.free[e] = taken + busy_cycles + 1
            self.ranges[e] = ((h["addr"], h["addr"] + h["count"]), (h["addr2"], h["addr2"] + h["count2"]))
            self.t += 1
        elif op == "WAIT":
            self.t = max(self.t + 1, self.free.get(e, 0)) + 1
        elif op == "READ" and h["count"]:
            k, c = eng["out_words"], h["count"]
            load = max(self.t + 2, self.s_free)
            self.end = self.s_free = load + c * k
            self.t = load + (c - 1) * k + 2
        elif op in ("INFO", "COUNTERS", "STATUS"):
            load = max(self.t + 1, self.s_free)
            self.end = self.s_free = load + (len(self.sys["counters"]) if op == "COUNTERS" else 1)
            self.t = load + 1
        else:
            self.t += 2 if op == "READ" else 1
        return taken, load


class GoldenSystem:
    """Executes command words on numpy scratchpads and the engines' golden models; returns the reply words.

    Malformed headers are dropped and counted as the decoder does (`command_error`; STATUS reports and clears
    them). The scratchpads hold what the commands, executed one after the other, leave there: the RTL's hazard
    interlocks make that its behaviour too. With `timed=True` the model also follows `CycleModel` and gives the
    exact performance counters and STATUS busy flags of a host that offers a word every cycle and takes every
    reply at once (the bulk testbench without gaps or backpressure), for engines of fixed latency and II = 1 that
    give one output per `last` beat and RUNs whose `count2` takes every output; otherwise the counters are None
    and the busy flags 0."""

    def __init__(self, manifest: dict, timed: bool = False):
        self.sys = manifest["system"]
        depth = self.sys["spad_depth"]
        self.spad_in = [[0] * depth for _ in self.sys["engines"]]
        self.spad_out = [[0] * depth for _ in self.sys["engines"]]
        for e in self.sys["engines"]:
            if e["unit"] not in ENGINE_MODELS:
                raise ProgramError(f"engine {e['index']}: unit {e['unit']!r} has no golden system model, "
                                   f"allowed: {', '.join(ENGINE_MODELS)}")
        self.configs = [config_from_dict(e["config"]) for e in self.sys["engines"]]
        self.states = [{} for _ in self.sys["engines"]]
        self.errors, self.first_error, self.commands = 0, (0, 0, 0), 0
        self.timed = timed
        self.model = CycleModel(self.sys)
        self.clear_at = None                       # cycle of the last CLEAR (None: the cycle counter is unknown)
        self.runs = [[] for _ in self.sys["engines"]]    # per engine: (busy from, busy to, in from, in to, out cycles)

    def _run_timing(self, eng: dict, h: dict, beats: dict, n_out: int) -> int:
        """Busy cycles of this RUN: its beats enter in the 3rd .. (n+2)-th cycle after the header (the run
        controller's two read stages), the output of a vector L cycles after its `last` beat, and the run is busy
        until both are done. Switches the counters to unknown (None) for a RUN the cycle model does not cover
        (counters are modelled for II = 1 engines only)."""
        n, latency, ii = h["count"], eng.get("latency"), eng.get("ii")
        if not n:
            return 0
        ends = np.flatnonzero(np.asarray(beats["last"])) if "last" in beats else None
        if latency is None or ii != 1 or ends is None or len(ends) != n_out or n_out != h["count2"]:
            self.timed = False
            return (n - 1) * (ii or 1) + (latency or 0) + 3
        return max(n + 2, int(ends[-1]) + 3 + latency) if n_out else n + 2

    def _counters(self, e: int, x: int) -> list[int]:
        lo = -1 << 60 if self.clear_at is None else self.clear_at + 1

        def span(a, b):
            return max(0, min(b, x - 1) - max(a, lo) + 1)
        busy = sum(span(r[0], r[1]) for r in self.runs[e])
        ins = sum(span(r[2], r[3]) for r in self.runs[e])
        outs = sum(lo <= c <= x - 1 for r in self.runs[e] for c in r[4])
        cycles = None if self.clear_at is None else x - self.clear_at - 1
        return [cycles, busy, ins, outs, 0]

    def _error(self, code: str, h: dict):
        if self.errors == 0:
            self.first_error = (self.sys["errors"][code], h["op"], h["engine"])
        self.errors = min(self.errors + 1, 0xFFFF)

    def execute(self, words: list[int]) -> list[int]:
        w, depth = self.sys["host_width"], self.sys["spad_depth"]
        ops = {v: k for k, v in self.sys["opcodes"].items()}
        replies, pos = [], 0
        while pos < len(words):
            word = words[pos]
            pos += 1
            h = header_fields(self.sys, word)
            op, e = ops.get(h["op"]), h["engine"]
            error = command_error(self.sys, op, h)
            eng = self.sys["engines"][e] if e < len(self.sys["engines"]) else None
            self.commands = (self.commands + 1) & 0xFFFF
            busy_cycles, record = 0, None
            if error is None and op == "RUN":
                beats_in = unpack_beats(eng["in_fields"], [self.spad_in[e][h["addr"] + j] for j in range(h["count"])])
                out = ENGINE_MODELS[eng["unit"]](self.configs[e], beats_in, self.states[e])
                out_beats = pack_beats(eng["out_fields"], out) if len(next(iter(out.values()))) else []
                taken = _taken(eng.get("run_marker"), out, h["count2"])
                if taken is None:
                    raise ProgramError(f"run: engine {e} gives {len(out_beats)} output beats for {h['count']} "
                                       f"inputs, the command waits for {h['count2']} "
                                       f"{'markers' if eng.get('run_marker') else 'beats'} (the hardware would hang)")
                for j in range(taken):
                    self.spad_out[e][(h["addr2"] + j) % depth] = out_beats[j]     # marker runs may write past count2
                if self.timed:
                    busy_cycles = self._run_timing(eng, h, beats_in, len(out_beats))
                    ends = np.flatnonzero(np.asarray(beats_in.get("last", [])))
                    record = (ends, eng.get("latency") or 0)
            cycle, load = self.model.command(op, h, error, busy_cycles)
            if record is not None and h["count"]:
                ends, latency = record
                self.runs[e].append((cycle + 1, cycle + busy_cycles, cycle + 3, cycle + h["count"] + 2,
                                     [cycle + 3 + int(j) + latency for j in ends]))
            if error is not None:
                self._error(error, h)
                if op == "WRITE" and error == "RANGE":
                    pos += h["count"] * eng["in_words"]
                continue
            if op == "WRITE":
                k = eng["in_words"]
                if pos + h["count"] * k > len(words):
                    raise ProgramError(f"command word {pos - 1}: WRITE of {h['count']} beats needs "
                                       f"{h['count'] * k} data words, the program has {len(words) - pos} left")
                for j in range(h["count"]):
                    beat = sum(words[pos + i] << (i * w) for i in range(k)) & ((1 << eng["in_width"]) - 1)
                    self.spad_in[e][h["addr"] + j] = beat
                    pos += k
            elif op == "READ":
                k = eng["out_words"]
                for j in range(h["count"]):
                    beat = self.spad_out[e][h["addr"] + j]
                    replies += [(beat >> (i * w)) & ((1 << w) - 1) for i in range(k)]
            elif op == "CLEAR":
                self.clear_at = cycle
            elif op == "COUNTERS":
                replies += self._counters(e, load) if self.timed else [None] * len(self.sys["counters"])
            elif op == "INFO":
                info = self.sys["info"]
                replies.append((info["magic_value"] << info["magic"]["offset"])
                               | (self.sys["version"] << info["version"]["offset"])
                               | (len(self.sys["engines"]) << info["engines"]["offset"])
                               | (self.errors << info["errors"]["offset"]))
            elif op == "STATUS":
                replies.append(self._status(load))
                self.errors, self.first_error = 0, (0, 0, 0)
        return replies

    def _status(self, x: int) -> int:
        f = self.sys["status"]
        busy = 0
        if self.timed:
            busy = sum(1 << e for e, runs in enumerate(self.runs) if runs and runs[-1][0] <= x <= runs[-1][1])
        values = {"errors": self.errors, "error_code": self.first_error[0], "error_op": self.first_error[1],
                  "error_engine": self.first_error[2], "busy": busy, "commands": self.commands}
        return sum(v << f[k]["offset"] for k, v in values.items())


def status_error(sys: dict, status: dict) -> str | None:
    """The driver's message for a STATUS reply that reports dropped commands, or None if it reports none."""
    if not status["errors"]:
        return None
    codes = {v: k for k, v in sys["errors"].items()}
    ops = {v: k for k, v in sys["opcodes"].items()}
    op = ops.get(status["error_op"], f"unknown opcode {status['error_op']}")
    return (f"system: the command decoder dropped {status['errors']} command(s); the first: "
            f"{codes.get(status['error_code'], status['error_code'])} ({op}, engine {status['error_engine']}); "
            f"allowed: known opcodes, engines 0..{len(sys['engines']) - 1}, addr + count <= spad_depth "
            f"{sys['spad_depth']}")


def program_cycles(program: Program) -> int:
    """The documented cycle model (`CycleModel`) of a program on the RTL when the host offers a word every cycle
    and takes every reply word at once: cycles from the first header's handshake to the last reply word's, plus
    one. A RUN of n > 0 beats on an engine of initiation interval II and latency L keeps it busy (n - 1) * II + L + 3
    cycles (the run controller's two read stages put the first beat into the engine 3 cycles after the header; the
    engine gives its last output L cycles after the last beat enters). None when a RUN uses an engine without a
    fixed latency and II."""
    sys = program.sys
    ops = {v: k for k, v in sys["opcodes"].items()}
    model, pos, words = CycleModel(sys), 0, program.words
    while pos < len(words):
        h = header_fields(sys, words[pos])
        op = ops.get(h["op"])
        error = command_error(sys, op, h)
        pos += 1
        busy = 0
        if op == "WRITE" and error in (None, "RANGE"):
            pos += h["count"] * sys["engines"][h["engine"]]["in_words"]
        elif op == "RUN" and error is None:
            eng = sys["engines"][h["engine"]]
            if eng["latency"] is None or eng["ii"] is None:
                return None                     # the model covers engines of fixed latency and II only
            busy = (h["count"] - 1) * eng["ii"] + eng["latency"] + 3 if h["count"] else 0
        model.command(op, h, error, busy)
    return model.end + 1


class GoldenStream:
    """`GoldenSystem` as a word stream, for the host link's board model (`sw_model.host.link.BridgeModel`):
    `push(word)` takes one command or data word and runs each command as soon as its words are complete (always
    ready); `pop()` gives the next reply word or None (a counter value, unknown to the untimed model, is 0);
    `reset()` is a reset of the unit (the scratchpads keep their contents, as memories do)."""

    def __init__(self, manifest: dict):
        self.manifest, self.golden = manifest, GoldenSystem(manifest)
        self.sys = manifest["system"]
        self.ops = {v: k for k, v in self.sys["opcodes"].items()}
        self.pending, self.replies = [], []

    def reset(self):
        spads = self.golden.spad_in, self.golden.spad_out
        self.golden = GoldenSystem(self.manifest)
        self.golden.spad_in, self.golden.spad_out = spads
        self.pending, self.replies = [], []

    def push(self, word: int) -> bool:
        self.pending.append(word)
        h = header_fields(self.sys, self.pending[0])
        op = self.ops.get(h["op"])
        need = 1
        if op == "WRITE" and command_error(self.sys, op, h) in (None, "RANGE"):
            need += h["count"] * self.sys["engines"][h["engine"]]["in_words"]
        if len(self.pending) == need:
            self.replies += [w or 0 for w in self.golden.execute(self.pending)]
            self.pending = []
        return True

    def pop(self) -> int | None:
        return self.replies.pop(0) if self.replies else None
