"""Golden model of a multi-core spiking fabric: a `rows` x `cols` mesh of identical spiking cores (`SNNCoreConfig`)
joined by AER packet routers with source-keyed multicast routing tables.

Semantics (the spec the gateware fabric must meet):
- Every core runs the golden core model (`sw_model.snn.golden`). Core `c` sits at mesh position
  (x, y) = (c % cols, c // cols).
- A spike of neuron `n` of core `c` at timestep t becomes one AER packet per entry of the routing table row
  (c, n): each entry (dst core, dst axon) delivers an input event on that axon of that core at timestep t + 1
  (Loihi's one-timestep axon delay; a timestep barrier makes every core see the same tick). External input
  events (core, axon, t) arrive at timestep t.
- Within a timestep a core's input events may arrive in any order (packets from different links interleave).
  The result is order-independent whenever addition is: always with `saturate = false` (wrapping sums), and with
  saturation as long as no partial input sum leaves the state range inside a timestep. The model delivers each
  timestep's events in a canonical order: external events first (as given), then routed ones by (source core,
  source neuron, table entry).
- Packets travel dimension-ordered (X then Y) through the mesh; `hops` counts link traversals for traffic reports.

`FabricConfig` holds the mesh; `RoutingTable` the multicast entries; `run_fabric` runs a whole input; and
`reference_network` runs the same network as one big neuron array (every core's neurons and a global weight
matrix over external + internal axons), the independent statement the split run must equal spike for spike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_model.config import ConfigError, check_int
from sw_model.snn import golden as snn
from sw_model.snn.config import SNNCoreConfig


@dataclass(frozen=True)
class FabricConfig:
    """A `rows` x `cols` mesh of identical cores `core`; each routing-table row holds at most `fanout` entries."""
    rows: int = 2
    cols: int = 2
    core: SNNCoreConfig = SNNCoreConfig(neurons=16, lanes=4, axons=16, addr_bits=4)
    fanout: int = 4
    unit = "snn_fabric"

    def __post_init__(self):
        check_int("rows", self.rows, 1, 16)
        check_int("cols", self.cols, 1, 16)
        check_int("fanout", self.fanout, 1, 64)
        if not isinstance(self.core, SNNCoreConfig):
            raise ConfigError(f"core: got {type(self.core).__name__}, allowed: an SNNCoreConfig")

    @property
    def cores(self) -> int:
        return self.rows * self.cols

    def position(self, core: int) -> tuple[int, int]:
        return core % self.cols, core // self.cols

    def hops(self, src: int, dst: int) -> int:
        """Links an X-then-Y routed packet crosses from core `src` to core `dst` (0 for a core's own neurons)."""
        (x0, y0), (x1, y1) = self.position(src), self.position(dst)
        return abs(x1 - x0) + abs(y1 - y0)


class RoutingTable:
    """Source-keyed multicast table: (source core, source neuron) -> list of (destination core, destination axon)."""

    def __init__(self, cfg: FabricConfig):
        self.cfg = cfg
        self.entries: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def add(self, src_core: int, src_neuron: int, dst_core: int, dst_axon: int):
        c = self.cfg
        for field, value, top in (("src_core", src_core, c.cores), ("src_neuron", src_neuron, c.core.neurons),
                                  ("dst_core", dst_core, c.cores), ("dst_axon", dst_axon, c.core.axons)):
            if not isinstance(value, (int, np.integer)) or not 0 <= value < top:
                raise ValueError(f"routing entry: {field} got {value!r}, allowed 0..{top - 1}")
        row = self.entries.setdefault((int(src_core), int(src_neuron)), [])
        if len(row) == c.fanout:
            raise ValueError(f"routing entry: source (core {src_core}, neuron {src_neuron}) already has "
                             f"{c.fanout} destinations (fanout={c.fanout})")
        row.append((int(dst_core), int(dst_axon)))

    def targets(self, src_core: int, src_neuron: int) -> list[tuple[int, int]]:
        return self.entries.get((src_core, src_neuron), [])


def run_fabric(cfg: FabricConfig, weights, table: RoutingTable, events, timesteps: int) -> dict:
    """Run the fabric from cleared cores. `weights`: one (axons, neurons) matrix per core; `events`: (n, 3) external
    (core, axon, timestep) with non-decreasing timesteps. Returns `spikes` (m, 3) of (core, neuron, timestep) in
    emission order (core by core within a timestep, neurons ascending), `packets` (routed events delivered),
    `hops` (link traversals) and `v` (cores x neurons final potentials)."""
    if len(weights) != cfg.cores:
        raise ValueError(f"weights: got {len(weights)} matrices, allowed: one per core ({cfg.cores})")
    cores = [snn.LIFCore(cfg.core, w) for w in weights]
    ev = np.asarray(events, dtype=np.int64).reshape(-1, 3)
    bad = np.nonzero((ev[:, 0] < 0) | (ev[:, 0] >= cfg.cores))[0]
    if len(bad):
        raise ValueError(f"events: event {bad[0]} has core {ev[bad[0], 0]}, allowed 0..{cfg.cores - 1}")
    for c in range(cfg.cores):                  # axon and timestep checks with the core's own messages
        snn.check_events(cfg.core, ev[ev[:, 0] == c][:, 1:], timesteps)
    routed: list[tuple[int, int]] = []          # (core, axon) events for the current timestep
    spikes, packets, hops = [], 0, 0
    for t in range(timesteps):
        inbox = [[] for _ in range(cfg.cores)]
        for c, a in ev[ev[:, 2] == t][:, :2].tolist():
            inbox[c].append(a)
        for c, a in routed:
            inbox[c].append(a)
        routed = []
        for c, core in enumerate(cores):
            for a in inbox[c]:
                core.spike(a)
        for c, core in enumerate(cores):
            for n in core.tick().tolist():
                spikes.append((c, n, t))
                for dc, da in table.targets(c, n):
                    routed.append((dc, da))
                    packets += 1
                    hops += cfg.hops(c, dc)
    return {"spikes": np.array(spikes, dtype=np.int64).reshape(-1, 3), "packets": packets, "hops": hops,
            "v": np.stack([core.v for core in cores])}


def reference_network(cfg: FabricConfig, weights, table: RoutingTable, events, timesteps: int) -> np.ndarray:
    """The same network as one neuron array: neuron (c, n) is global neuron c * neurons + n; its inputs are the
    core's external axons (global axon c * axons + a, this timestep) and the routed spikes of the previous timestep
    (global axon cores * axons + source neuron), with one weight matrix over all of them. Returns the (core,
    neuron, timestep) spikes sorted like `run_fabric`'s. Uses only the core's per-neuron update (`accumulate`,
    `tick_state`), not the fabric's routing loop."""
    k, n_ax, n_n = cfg.cores, cfg.core.axons, cfg.core.neurons
    big = np.zeros((k * n_ax + k * n_n, k * n_n), dtype=np.int64)
    for c, w in enumerate(weights):
        big[c * n_ax:(c + 1) * n_ax, c * n_n:(c + 1) * n_n] = w
    for (sc, sn), row in table.entries.items():
        for dc, da in row:              # a routed spike adds the destination axon's weight row (multicast sums)
            big[k * n_ax + sc * n_n + sn, dc * n_n:(dc + 1) * n_n] += np.asarray(weights[dc])[da]
    state = snn.new_state(cfg.core, k * n_n)
    ev = np.asarray(events, dtype=np.int64).reshape(-1, 3)
    prev = np.zeros(k * n_n, dtype=bool)
    out = []
    for t in range(timesteps):
        for c, a in ev[ev[:, 2] == t][:, :2].tolist():
            snn.accumulate(cfg.core, state, big[c * n_ax + a])
        for g in np.nonzero(prev)[0]:
            snn.accumulate(cfg.core, state, big[k * n_ax + g])
        prev = snn.tick_state(cfg.core, state)
        out += [(g // n_n, g % n_n, t) for g in np.nonzero(prev)[0]]
    return np.array(out, dtype=np.int64).reshape(-1, 3)


# ------------------------------------------------------------------------------------------------------------
# The routing-table unit (gateware: hwgen.snn.router.MulticastRouter)
# ------------------------------------------------------------------------------------------------------------

ROUTE_SPIKE, ROUTE_WRITE = 0, 1


@dataclass(frozen=True)
class RouterConfig:
    """The multicast routing-table unit of a fabric node: 2^src_bits source neurons (global ids), `fanout` table
    entries per source, each (valid, destination core < 2^core_bits, destination axon < 2^axon_bits)."""
    src_bits: int = 6
    fanout: int = 4
    core_bits: int = 2
    axon_bits: int = 4
    unit = "snn_router"

    def __post_init__(self):
        check_int("src_bits", self.src_bits, 1, 12)
        check_int("fanout", self.fanout, 1, 64)
        check_int("core_bits", self.core_bits, 1, 8)
        check_int("axon_bits", self.axon_bits, 1, 12)

    def cycles(self, op: int) -> int:
        """Cycles an input beat holds the input stream without output stalls: WRITE 1; SPIKE 2 per table entry
        (read the entry, then send it or skip it)."""
        return 1 if op == ROUTE_WRITE else 2 * self.fanout


def route_stream(cfg: RouterConfig, inp: dict, table: dict | None = None):
    """Beats through the routing-table unit. Input fields: op (ROUTE_SPIKE / ROUTE_WRITE), src, entry, valid, core,
    axon. A WRITE sets table[src][entry] = (valid, core, axon); a SPIKE from `src` sends one output beat
    (core, axon, src) per valid entry of its row, in entry order. Returns (out, cost, table); the table starts
    empty (all entries invalid) unless given."""
    table = {} if table is None else table
    core, axon, src, cost = [], [], [], []
    for op, s, e, v, c, a in zip(*(np.asarray(inp[k]).tolist() for k in ("op", "src", "entry", "valid", "core",
                                                                          "axon"))):
        if op == ROUTE_WRITE:
            if not 0 <= e < cfg.fanout:
                raise ValueError(f"entry: got {e}, allowed 0..{cfg.fanout - 1}")
            table[(s, e)] = (v, c, a)
        else:
            for k in range(cfg.fanout):
                ok, dc, da = table.get((s, k), (0, 0, 0))
                if ok:
                    core.append(dc), axon.append(da), src.append(s)
        cost.append(cfg.cycles(op))
    out = {k: np.array(x, dtype=np.int64) for k, x in (("core", core), ("axon", axon), ("src", src))}
    return out, np.array(cost, dtype=np.int64), table
