"""Reduction trees, written once: adjacent pairs per level, an odd last value passes up unchanged.

`pair_level` is one level (for trees cut into pipeline stages, e.g. the L-Mul dot product's float adder tree);
`reduce_tree` applies levels until one value remains (combinational; depth ceil(log2 n)). `adder_tree` and
`max_tree` are the two trees the units use; `registered_tree` is a tree cut into free-running register slices. The operand order (x[0] op x[1], ...) is fixed because the golden
models fix it (a float adder tree is not associative)."""
from __future__ import annotations

from amaranth.hdl import Mux, Signal, Value


def pair_level(values: list, op) -> list:
    """[op(v0, v1), op(v2, v3), ...] plus the last value when the count is odd."""
    values = list(values)
    out = [op(values[j], values[j + 1]) for j in range(0, len(values) - 1, 2)]
    return out + ([values[-1]] if len(values) % 2 else [])


def reduce_tree(values: list, op):
    """The pairwise tree of `op` over `values` (at least one)."""
    values = list(values)
    if not values:
        raise ValueError("reduce_tree: got no values, allowed: at least one")
    while len(values) > 1:
        values = pair_level(values, op)
    return values[0]


def maximum(a, b):
    """The larger of two values (b on a tie, where both are equal anyway)."""
    return Mux(a > b, a, b)


def adder_tree(values: list):
    return reduce_tree(values, lambda a, b: a + b)


def max_tree(values: list):
    return reduce_tree(values, maximum)


def registered_tree(m, values: list, op, slices: int, name: str, consumer_levels: int = 0):
    """The pairwise tree of `op` over `values` with `slices` register slices that cut its ceil(log2 n) levels,
    plus `consumer_levels` levels of logic the consumer adds after the tree, into slices + 1 runs of nearly
    equal length (no slice goes past the tree's output; more slices than levels stack up). The registers load
    every cycle (no enable): the result follows its inputs `slices` cycles later. slices = 0 is `reduce_tree`."""
    values = list(values)
    if not values:
        raise ValueError(f"registered_tree {name}: got no values, allowed: at least one")
    if slices < 0:
        raise ValueError(f"registered_tree {name}: got slices={slices}, allowed: >= 0")
    levels = max(1, (len(values) - 1).bit_length())       # a single value still gets its registers
    span = levels + consumer_levels
    cuts = [min(levels, span * (k + 1) // (slices + 1)) for k in range(slices)]
    for k in range(slices):
        for _ in range(cuts[k - 1] if k else 0, cuts[k]):
            values = pair_level(values, op)
        regs = []
        for j, value in enumerate(values):
            reg = Signal(Value.cast(value).shape(), name=f"{name}_s{k}_{j}")
            m.d.sync += reg.eq(value)
            regs.append(reg)
        values = regs
    return reduce_tree(values, op)
