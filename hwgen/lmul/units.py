"""The L-Mul unit family: `LMul`, the exact `FMul` of the same format, and the N-lane `LMulDot`.

All three take one beat per cycle on stream `i` and produce results on stream `o` in order; valid never waits
for ready and payloads stay stable while stalled. Latency is the config's `pipeline` register count (LMulDot: +1
for the accumulator register).
"""
from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.blocks import float_ops as fo
from hwgen.blocks.pipeline import cut_points, staged_pipeline
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
    `i.payload.{a,b}` -> `o.payload.p`. Five steps, cut into `config.pipeline` register slices spread evenly:
    significand multiply, leading-zero count (the normalising shift), shift, round, overflow/zero/NaN policy.
    II = 1, latency = `config.pipeline` cycles."""

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.config, self.config.format
        width = 2 * (fmt.man_bits + 1)

        def amount(m, v):
            return dict(v, e=v["e"] + 1, t=fo.normalize_amount(m, v["p"], v["e"] + 1, width))

        def shift(m, v):
            x, sticky, e = fo.normalize_shift(m, v["p"], v["e"], v["t"], width)
            return {k: v[k] for k in ("sign", "nan", "inf")} | dict(x=x, sticky=sticky, e=e, zero=v["p"] == 0)

        def round_(m, v):
            r = fo.round_code(v["x"], v["sticky"], v["e"], fmt, extra=fmt.man_bits + 1)
            return {k: v[k] for k in ("sign", "nan", "inf", "zero")} | {"r": r}

        def finish(m, v):
            return {"p": fo.finish(m, v["sign"], v["r"], v["nan"], v["inf"], v["zero"], fmt, cfg.overflow,
                                   subnormals=True)}

        stages = [lambda m, v: fo.fmul_product(v["a"], v["b"], fmt), amount, shift, round_, finish]
        self._run(m, stages)
        return m


class LMulDot(wiring.Component):
    """N-lane L-Mul dot product with accumulation over the beats of a vector (`mode="exact"`: exact lane
    multipliers, the comparison engine).

    Each beat carries `lanes` operand pairs (`i.payload.a[k]`, `i.payload.b[k]`) and `last`. The lane products are
    L-Mul codes, widened exactly to `acc_fmt`, and summed by a pairwise adder tree (adjacent pairs per level, an
    odd last lane passes up); the beat sums of one vector are accumulated in order and the total leaves on
    `o.payload.sum` with the beat that has `last` set.

    Pipelining: the tree is a list of `config.tree_steps` combinational steps (the products, then per tree level
    the five steps of a float add: order, align, sum, normalize, round) cut into `pipeline` register slices spread evenly
    (`pipeline = tree_steps` registers every step). The accumulator's float add takes `acc_stages` cycles; it is a
    loop (each beat adds to the previous total), so it takes a tree beat every `acc_stages` cycles.
    Timing: latency from a lone vector's last beat to `o.valid` is `pipeline + acc_stages`; II = `acc_stages`
    (a run of n beats ends (n - 1) * II + latency cycles after its first beat enters).
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
        """Latency counts from the handshake of a lone vector's last beat; `lanes` multiplies per II cycles."""
        cfg = self.config
        ops = cfg.lanes / cfg.acc_stages
        return {"latency": cfg.latency, "ii": cfg.acc_stages, "ops_per_cycle": int(ops) if ops.is_integer() else ops}

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

        step_fns = [None, fo.float_add_align, fo.float_add_sum, fo.float_add_normalize, fo.float_add_round]

        def add_step(step):
            # one step of every float add of a tree level; step 0 pairs the terms as the golden model does (float
            # adds don't associate), later steps carry each add's partial state along (an odd term passes up)
            def stage(m, v):
                items = _level_items(v)
                if step == 0:
                    items = pair_level(items, lambda a, b: fo.float_add_order(m, a, b, acc))
                else:
                    items = [step_fns[step](m, it, acc) if isinstance(it, dict) else it for it in items]
                return _level_dict(items, v["last"])
            return stage

        levels = (cfg.lanes - 1).bit_length()
        stages = [products] + [add_step(step) for _ in range(levels) for step in range(fo.FLOAT_ADD_STEPS)]
        beat_valid, beat_ready = Signal(), Signal()
        inputs = {"a": self.i.payload.a, "b": self.i.payload.b, "last": self.i.payload.last}
        beat = staged_pipeline(m, stages, inputs, self.i.valid, self.i.ready, beat_valid, beat_ready, cfg.pipeline)

        # Accumulator: ((t0 + t1) + t2) + ... over the beats of one vector; the add is cut into acc_stages cycles
        # and takes a new beat only when the previous one has landed in `total`.
        total, first = Signal(acc.bits), Signal(init=1)
        steps = [lambda m, v: dict(fo.float_add_order(m, v["total"], v["t0"], acc), t0=v["t0"]),
                 lambda m, v: dict(fo.float_add_align(m, v, acc), t0=v["t0"]),
                 lambda m, v: dict(fo.float_add_sum(m, v, acc), t0=v["t0"]),
                 lambda m, v: dict(fo.float_add_normalize(m, v, acc), t0=v["t0"]),
                 lambda m, v: {"sum": fo.float_add_round(m, v, acc), "t0": v["t0"]}]
        busy = [Signal(name=f"acc_busy{k}") for k in range(cfg.acc_stages - 1)]
        accept = Signal()
        m.d.comb += [beat_ready.eq(~Cat(*busy).any() & (~self.o.valid | self.o.ready)),
                     accept.eq(beat_valid & beat_ready)]
        values = {"total": total, "t0": beat["t0"], "first": first, "last": beat["last"]}
        cuts = cut_points(len(steps), cfg.acc_stages)
        done, valid = 0, accept
        for k, cut in enumerate(cuts):
            flags = {"first": values["first"], "last": values["last"]}
            for step in steps[done:cut]:
                values = dict(step(m, values), **flags)
            done = cut
            if k == len(cuts) - 1:
                break
            registered = {}
            for key, value in values.items():
                value = Value.cast(value)
                registered[key] = reg = Signal(value.shape(), name=f"acc{k}_{key}")
                m.d.sync += reg.eq(value)
            m.d.sync += busy[k].eq(valid)
            values, valid = registered, busy[k]

        value = Signal(acc.bits)
        m.d.comb += value.eq(Mux(values["first"], values["t0"], values["sum"]))
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(valid):
            with m.If(values["last"]):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.sum.eq(value), first.eq(1)]
            with m.Else():
                m.d.sync += [total.eq(value), first.eq(0)]
        return m


def _level_items(v: dict) -> list:
    """The terms of a tree-level dict in order: a code (key t<k>) or a partial add's state (keys a<k>_<field>)."""
    items = {}
    for key, value in v.items():
        if key.startswith("t"):
            items[int(key[1:])] = value
        elif key.startswith("a"):
            k, _, field = key[1:].partition("_")
            items.setdefault(int(k), {})[field] = value
    return [items[k] for k in sorted(items)]


def _level_dict(items: list, last) -> dict:
    out = {"last": last}
    for k, item in enumerate(items):
        if isinstance(item, dict):
            out.update({f"a{k}_{field}": value for field, value in item.items()})
        else:
            out[f"t{k}"] = item
    return out
