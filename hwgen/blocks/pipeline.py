"""A stream pipeline built from a list of combinational stages, with a configurable number of registers.

`staged_pipeline` cuts the stage list into `depth` register slices spread evenly (extra registers beyond the
stage count go at the end). The whole pipeline stalls together: it advances when its last slot is empty or the
consumer is ready, so it accepts one beat per cycle at full throughput and holds every payload stable while the
consumer stalls (the stream rules: valid never waits for ready; payload stable while valid and not ready).
Latency from the input handshake to output valid: `depth` cycles (0 = combinational, ready passes through).
"""
from amaranth.hdl import Signal, Value


def cut_points(n_stages: int, depth: int) -> list[int]:
    """For each register slice, after how many stages it sits (non-decreasing, the last one at the end)."""
    return [max(1, (n_stages * (k + 1)) // depth) if n_stages else 0 for k in range(depth)]


def staged_pipeline(m, stages, inputs: dict, i_valid, i_ready, o_valid, o_ready, depth: int) -> dict:
    """Run `inputs` through `stages` (each a function `(m, dict) -> dict`) with `depth` register slices.

    Drives i_ready and o_valid; returns the output dict of the last stage (registered when depth > 0)."""
    if depth == 0:
        values = inputs
        for stage in stages:
            values = stage(m, values)
        m.d.comb += [o_valid.eq(i_valid), i_ready.eq(o_ready)]
        # Keep a (dead) flop so that every generated design has clk and rst ports: benches and the system
        # top then drive all units alike. Synthesis removes it.
        m.d.sync += Signal(name="keep_clock").eq(1)
        return values

    valids = [Signal(name=f"pipe_valid{k}") for k in range(depth)]
    advance = Signal()
    m.d.comb += [advance.eq(~valids[-1] | o_ready), i_ready.eq(advance), o_valid.eq(valids[-1])]

    cuts = cut_points(len(stages), depth)
    values, done = inputs, 0
    for k, cut in enumerate(cuts):
        for stage in stages[done:cut]:
            values = stage(m, values)
        done = cut
        registered = {}
        for key, value in values.items():
            value = Value.cast(value)
            reg = Signal(value.shape(), name=f"p{k}_{key}")
            with m.If(advance):
                m.d.sync += reg.eq(value)
            registered[key] = reg
        values = registered
        with m.If(advance):
            m.d.sync += valids[k].eq(i_valid if k == 0 else valids[k - 1])
    for stage in stages[done:]:
        values = stage(m, values)
    return values
