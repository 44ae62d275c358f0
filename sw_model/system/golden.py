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

    def _answers(self, reply: tuple):
        self.replies.append(reply)
        self.reply_at.append(len(self.words))

    def _reply_size(self, reply: tuple) -> int:
        kind, e, count = reply
        return count * self.engine(e)["out_words"] if kind == "read" else \
            len(self.sys["counters"]) if kind == "counters" else 1

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
    (None values from the golden model); info -> dict of the INFO fields."""
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
            info = program.sys["info"]
            out.append({k: (words[pos] >> f["offset"]) & ((1 << f["width"]) - 1)
                        for k, f in info.items() if isinstance(f, dict)})
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


class GoldenSystem:
    """Executes command words on numpy scratchpads and the engines' golden models; returns the reply words."""

    def __init__(self, manifest: dict):
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

    def execute(self, words: list[int]) -> list[int]:
        w, depth = self.sys["host_width"], self.sys["spad_depth"]
        ops = {v: k for k, v in self.sys["opcodes"].items()}
        hdr = {f["name"]: f for f in self.sys["header"]}
        replies, pos = [], 0
        while pos < len(words):
            word = words[pos]
            pos += 1
            h = {k: (word >> f["offset"]) & ((1 << f["width"]) - 1) for k, f in hdr.items()}
            op, e = ops.get(h["op"]), h["engine"]
            eng = self.sys["engines"][e] if e < len(self.sys["engines"]) else None
            if op is None or (op in ("WRITE", "RUN", "WAIT", "READ", "COUNTERS") and eng is None):
                raise ProgramError(f"command word {pos - 1}: op {h['op']} engine {e} is not valid for this system")
            if op == "WRITE":
                k = eng["in_words"]
                for j in range(h["count"]):
                    beat = sum(words[pos + i] << (i * w) for i in range(k)) & ((1 << eng["in_width"]) - 1)
                    self.spad_in[e][(h["addr"] + j) % depth] = beat
                    pos += k
            elif op == "RUN":
                beats = [self.spad_in[e][(h["addr"] + j) % depth] for j in range(h["count"])]
                out = ENGINE_MODELS[eng["unit"]](self.configs[e], unpack_beats(eng["in_fields"], beats),
                                                 self.states[e])
                out_beats = pack_beats(eng["out_fields"], out) if len(next(iter(out.values()))) else []
                taken = _taken(eng.get("run_marker"), out, h["count2"])
                if taken is None:
                    raise ProgramError(f"run: engine {e} gives {len(out_beats)} output beats for {h['count']} "
                                       f"inputs, the command waits for {h['count2']} "
                                       f"{'markers' if eng.get('run_marker') else 'beats'} (the hardware would hang)")
                for j in range(taken):
                    self.spad_out[e][(h["addr2"] + j) % depth] = out_beats[j]
            elif op == "READ":
                k = eng["out_words"]
                for j in range(h["count"]):
                    beat = self.spad_out[e][(h["addr"] + j) % depth]
                    replies += [(beat >> (i * w)) & ((1 << w) - 1) for i in range(k)]
            elif op == "COUNTERS":
                replies += [None] * len(self.sys["counters"])
            elif op == "INFO":
                info = self.sys["info"]
                replies.append((info["magic_value"] << info["magic"]["offset"])
                               | (self.sys["version"] << info["version"]["offset"])
                               | (len(self.sys["engines"]) << info["engines"]["offset"]))
        return replies


def program_cycles(program: Program) -> int:
    """The documented cycle model of a program on the RTL when the host offers a word every cycle and takes every
    reply word at once: cycles from the first header's handshake to the last reply word's, plus one.

    The decoder takes a command's header at cycle t and is free again at: CLEAR/NOP t+1; WRITE of n beats
    t + 2 + n * in_words. RUN of n beats on an engine e of initiation interval II and latency L is taken at
    a = max(t, free[e]) (it waits for the engine's previous run), frees the decoder at a+1 and keeps the engine
    busy until free[e] = a + (n - 1) * II + L + 4 (its `busy` counter grows by (n - 1) * II + L + 3; with II = 1:
    n + L + 2; the two read stages of the run controller put the first beat into the engine at a + 3). WAIT frees the decoder at
    max(t+1, free[e]) + 1. Replies leave through one serializer, one word per cycle: it loads a beat at cycle
    L0 = max(start, when it last went free) and sends its words in the following cycles. INFO/COUNTERS: start t+1,
    decoder free at L0 + 1. READ of c beats of k words: start t+2, beat j loads at L0 + j*k, decoder free at
    L0 + (c-1)*k + 2 (t+2 when c = 0). None when a RUN uses an engine without a fixed latency and II."""
    hdr = {f["name"]: f for f in program.sys["header"]}
    ops = {v: k for k, v in program.sys["opcodes"].items()}
    t = end = s_free = pos = 0
    free: dict[int, int] = {}
    words = program.words
    while pos < len(words):
        h = {k: (words[pos] >> f["offset"]) & ((1 << f["width"]) - 1) for k, f in hdr.items()}
        op, e = ops[h["op"]], h["engine"]
        eng = program.sys["engines"][e] if e < len(program.sys["engines"]) else None
        pos += 1
        if op == "WRITE":
            pos += h["count"] * eng["in_words"]
            t += 2 + h["count"] * eng["in_words"]
        elif op == "RUN":
            if eng["latency"] is None or eng["ii"] is None:
                return None                     # the model covers engines of fixed latency and II only
            t = max(t, free.get(e, 0))
            free[e] = t + (h["count"] - 1) * eng["ii"] + eng["latency"] + 4
            t += 1
        elif op == "WAIT":
            t = max(t + 1, free.get(e, 0)) + 1
        elif op == "READ" and h["count"]:
            k, c = eng["out_words"], h["count"]
            load = max(t + 2, s_free)
            end = s_free = load + c * k
            t = load + (c - 1) * k + 2
        elif op in ("INFO", "COUNTERS"):
            load = max(t + 1, s_free)
            end = s_free = load + (len(program.sys["counters"]) if op == "COUNTERS" else 1)
            t = load + 1
        else:
            t += 2 if op == "READ" else 1
    return end + 1
