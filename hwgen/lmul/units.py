"""The L-Mul unit family: `LMul`, the exact `FMul` of the same format, and the N-lane `LMulDot`.

All three take one beat per cycle on stream `i` and produce results on stream `o` in order; valid never waits
for ready and payloads stay stable while stalled. Latency is the config's `pipeline` register count (LMulDot: +1
for the accumulator register).
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.blocks import float_ops as fo
from hwgen.blocks.pipeline import staged_pipeline
from hwgen.blocks.trees import pair_level
from sw_model.lmul.config import LMulDotConfig


class _BinaryUnit(wiring.Component):
    """Shared interface of LMul and FMul: stream `i` of {a, b} codes, stream `o` of {p} codes, one per cycle."""

    def __init__(self, config):
        self.config = config
        width = config.format.bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": width, "b": width}))),
            "o": Out(stream.Signature(data.StructLayout({"p": width}))),
        })

    def timing(self) -> dict:
        return {"latency": self.config.pipeline, "ii": 1, "ops_per_cycle": 1}

    def _run(self, m, stages):
        out = staged_pipeline(m, stages, {"a": self.i.payload.a, "b": self.i.payload.b},
                              self.i.valid, self.i.ready, self.o.valid, self.o.ready, self.config.pipeline)
        m.d.comb += self.o.payload.p.eq(out["p"])


class LMul(_BinaryUnit):
    """L-Mul of two codes of `config.fmt` per beat: `i.payload.{a,b}` -> `o.payload.p` (same format).

    Stage 1 is the integer adder (or the formula's renormalisation), stage 2 the zero/underflow/overflow/NaN
    policy. II = 1, latency = `config.pipeline` cycles."""

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.config, self.config.format
        stages = [
            lambda m, v: fo.lmul_raw(v["a"], v["b"], fmt, cfg.mode),
            lambda m, v: {"p": fo.finish(m, v["sign"], v["r"], v["nan"], v["inf"], v["zero"], fmt, cfg.overflow)},
        ]
        self._run(m, stages)
        return m


class FMul(_BinaryUnit):
    """Exact product of two codes of `config.fmt`, rounded to nearest even, subnormals in and out:
    `i.payload.{a,b}` -> `o.payload.p`. Stages: significand multiply, normalise, round + policy.
    II = 1, latency = `config.pipeline` cycles."""

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.config, self.config.format
        width = 2 * (fmt.man_bits + 1)

        def normalize(m, v):
            x, sticky, e = fo.normalize(m, v["p"], v["e"] + 1, width)
            return dict(v, x=x, sticky=sticky, e=e)

        def round_and_finish(m, v):
            r = fo.round_code(v["x"], v["sticky"], v["e"], fmt, extra=fmt.man_bits + 1)
            return {"p": fo.finish(m, v["sign"], r, v["nan"], v["inf"], v["p"] == 0, fmt, cfg.overflow,
                                   subnormals=True)}

        stages = [lambda m, v: fo.fmul_product(v["a"], v["b"], fmt), normalize, round_and_finish]
        self._run(m, stages)
        return m


class LMulDot(wiring.Component):
    """N-lane L-Mul dot product with accumulation over the beats of a vector (`mode="exact"`: exact lane
    multipliers, the comparison engine).

    Each beat carries `lanes` operand pairs (`i.payload.a[k]`, `i.payload.b[k]`) and `last`. The lane products are
    L-Mul codes, widened exactly to `acc_fmt`, and summed by a pairwise adder tree (adjacent pairs per level, an
    odd last lane passes up); the beat sums of one vector are accumulated in order and the total leaves on
    `o.payload.sum` with the beat that has `last` set. The tree is cut into `pipeline` register slices; the
    accumulator adds one register: latency from the last beat's handshake to `o.valid` is `pipeline + 1`, II = 1.
    """

    def __init__(self, config: LMulDotConfig):
        self.config = config
        w, n = config.format.bits, config.lanes
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(w, n), "b": data.ArrayLayout(w, n), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"sum": config.acc_format.bits}))),
        })

    def timing(self) -> dict:
        """Latency counts from the handshake of a vector's last beat; `lanes` multiplies per cycle."""
        return {"latency": self.config.pipeline + 1, "ii": 1, "ops_per_cycle": self.config.lanes}

    def elaborate(self, platform):
        m = Module()
        cfg, fmt, acc = self.config, self.config.format, self.config.acc_format

        def products(m, v):
            out = {"last": v["last"]}
            for k in range(cfg.lanes):
                if cfg.mode == "exact":          # the baseline engine: exact multipliers, same tree
                    out[f"t{k}"] = fo.wire(m, fo.exact_product(m, v["a"][k], v["b"][k], fmt, acc), f"prod{k}")
                    continue
                raw = fo.lmul_raw(v["a"][k], v["b"][k], fmt, cfg.mode)
                code = fo.finish(m, raw["sign"], raw["r"], raw["nan"], raw["inf"], raw["zero"], fmt, cfg.overflow)
                out[f"t{k}"] = fo.wire(m, fo.widen(code, fmt, acc), f"prod{k}")
            return out

        def tree_level(m, v):
            # one level of the pairwise tree per stage; the pairing is the golden model's (float adds don't associate)
            terms = [v[k] for k in sorted((k for k in v if k.startswith("t")), key=lambda k: int(k[1:]))]
            summed = pair_level(terms, lambda a, b: fo.float_add(m, a, b, acc))
            return {"last": v["last"], **{f"t{k}": t for k, t in enumerate(summed)}}

        levels = (cfg.lanes - 1).bit_length()
        stages = [products] + [tree_level] * levels
        beat_valid, beat_ready = Signal(), Signal()
        inputs = {"a": self.i.payload.a, "b": self.i.payload.b, "last": self.i.payload.last}
        beat = staged_pipeline(m, stages, inputs, self.i.valid, self.i.ready, beat_valid, beat_ready, cfg.pipeline)

        # Accumulator: ((t0 + t1) + t2) + ... over the beats of one vector.
        total, first = Signal(acc.bits), Signal(init=1)
        running = fo.float_add(m, total, beat["t0"], acc)
        value = Signal(acc.bits)
        m.d.comb += value.eq(beat["t0"])
        with m.If(~first):
            m.d.comb += value.eq(running)
        m.d.comb += beat_ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(beat_valid & beat_ready):
            with m.If(beat["last"]):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.sum.eq(value), first.eq(1)]
            with m.Else():
                m.d.sync += [total.eq(value), first.eq(0)]
        return m
