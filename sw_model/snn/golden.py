"""Golden model of the event-driven LIF core (`hwgen.snn.core.SNNCore`), integer numpy, bit-exact.

Two levels:
- `LIFCore`: the neuron array. `spike(axon)` adds weight row `axon` to every non-refractory neuron (saturating or
  wrapping, one event at a time, in arrival order); `tick()` ends a timestep: for each neuron, in this order,
  refractory neurons count down and do nothing else; the others add the bias, fire iff `v >= threshold` (or `>`),
  fired neurons reset (hard: 0, soft: `v - threshold`) and start `refractory` silent timesteps; then every
  non-refractory neuron leaks. The tick returns the fired neuron addresses in ascending order. This is
  `H[t] = leak(V[t-1]) + X[t]` with the spike decided on H[t] (spec section 5, I-LIF/spikingjelly form with an
  integer leak). With `model = "cuba"` the events sum into `a` and the tick runs the Lava bit-accurate
  current/voltage update with Loihi's bias and refractory period (`tick_state`).
- The stream level (what the gateware sees): beats with an opcode `Op` (SPIKE, TICK, WRITE weights, CLEAR state);
  `stream_model` returns the output beats (`Out` kind SPIKE / TICK end-of-timestep marker / ERROR) and the cycle
  cost of every input beat (the event-driven cycle model of docs/snn.md). `run_events` is the driver-level
  entry point: (address, timestep) events in, (neuron, timestep) events out, with clear errors for bad input.
"""
from __future__ import annotations

import enum

import numpy as np

from sw_model.snn.config import SNNCoreConfig


class Op(enum.IntEnum):
    """Opcode field `op` of an input beat."""
    SPIKE = 0   # input spike on axon `addr`: add weight row `addr` to the membrane potentials
    TICK = 1    # timestep boundary: fire, reset, leak; emits the spikes then one TICK marker
    WRITE = 2   # weight write: row `addr`, group `group` (neurons group*lanes ...) <- `w[0..lanes-1]`
    CLEAR = 3   # membrane potentials, refractory counters and the timestep counter <- 0 (weights kept)


class Out(enum.IntEnum):
    """Kind field `kind` of an output beat."""
    SPIKE = 0   # neuron `addr` fired at timestep `t`
    TICK = 1    # end of timestep `t` (all its spikes came before)
    ERROR = 2   # an input beat had an out-of-range address `addr`; it was ignored


def _fix(cfg: SNNCoreConfig, x, symmetric=False):
    """Bring an integer array into the signed state range: clip (saturate) or wrap. `symmetric` clips to
    +-(2^(s-1) - 1), the Loihi/Lava voltage range."""
    lo, hi = cfg.state_range
    if cfg.saturate:
        return np.clip(x, lo + symmetric, hi)
    return ((x - lo) & ((1 << cfg.state_bits) - 1)) + lo


def _wrap_u(cfg: SNNCoreConfig, x):
    """Lava's current wrap: into (-2^(s-1), 2^(s-1)] (the value +2^(s-1) stays, -2^(s-1) becomes +2^(s-1)). Lava
    subtracts or adds 2^s once; this is the same wherever one correction suffices (always for Lava's 16-bit a_in and
    24-bit u), and stays in range otherwise."""
    h = 1 << (cfg.state_bits - 1)
    return (x + h - 1) % (2 * h) - h + 1


def _decay(x, factor: int):
    """trunc0(x * factor / 4096): the Loihi multiplicative decay, rounding toward zero."""
    mag = (np.abs(x) * factor) >> 12
    return np.where(x < 0, -mag, mag)


def leak(cfg: SNNCoreConfig, v):
    """The LIF leak of one timestep, applied to non-refractory neurons after fire/reset."""
    v = np.asarray(v, dtype=np.int64)
    if cfg.leak == "shift":
        return v - (v >> cfg.leak_shift)                     # arithmetic shift: floor(v / 2^k)
    if cfg.leak == "mult":
        return _decay(v, 4096 - cfg.decay)
    return v


def new_state(cfg: SNNCoreConfig, shape) -> dict:
    """Per-neuron state arrays after reset/CLEAR: v (potential, init_v), ref (refractory count, 0), and for CUBA
    u (current, init_u), a (input sum, 0)."""
    init = {"v": cfg.init_v, "u": cfg.init_u, "ref": 0, "a": 0}
    return {k: np.full(shape, init[k], dtype=np.int64) for k in ("v", "ref", "u", "a")}


def accumulate(cfg: SNNCoreConfig, s: dict, w, hit=True):
    """One input event: add weight row `w` (where `hit`). LIF: into v of non-refractory neurons; CUBA: into a."""
    if cfg.model == "cuba":
        s["a"] = np.where(hit, _fix(cfg, s["a"] + w), s["a"])
    else:
        hit = hit & (s["ref"] == 0)
        s["v"] = np.where(hit, _fix(cfg, s["v"] + w), s["v"])


def tick_state(cfg: SNNCoreConfig, s: dict) -> np.ndarray:
    """The timestep boundary for every neuron; returns the fire mask. A refractory neuron (ref > 0) keeps v,
    counts down and does not fire; a neuron that fires resets and starts `refractory` silent steps.
    LIF: v += bias (saturate/wrap), fire on v, reset, leak.
    CUBA (Lava bit-accurate order): u = wrapu(trunc0(u (4096 - (du + 1)) / 4096) + (a << input_shift)) for every
    neuron; v = clip(trunc0(v (4096 - decay) / 4096) + u + bias) for the non-refractory ones; fire on v; reset;
    a = 0."""
    cmp = (lambda x: x >= cfg.threshold) if cfg.compare == "ge" else (lambda x: x > cfg.threshold)
    refr = s["ref"] > 0
    if cfg.model == "cuba":
        u = _wrap_u(cfg, _decay(s["u"], 4095 - cfg.du) + (s["a"] << cfg.input_shift))
        v = np.where(refr, s["v"], _fix(cfg, _decay(s["v"], 4096 - cfg.decay) + u + cfg.bias, symmetric=True))
        s["u"], s["a"] = u, np.zeros_like(u)
    else:
        v = np.where(refr, s["v"], _fix(cfg, s["v"] + cfg.bias))
    fire = ~refr & cmp(v)
    v = np.where(fire, 0 if cfg.reset == "hard" else v - cfg.threshold, v)
    s["v"] = v if cfg.model == "cuba" else np.where(refr, v, leak(cfg, v))
    s["ref"] = np.where(refr, s["ref"] - 1, np.where(fire, cfg.refractory, 0))
    return fire


def check_weights(cfg: SNNCoreConfig, weights) -> np.ndarray:
    """(axons, neurons) integer weights that fit `weight_bits`, or a ValueError naming the first bad one."""
    w = np.asarray(weights)
    if w.shape != (cfg.axons, cfg.neurons):
        raise ValueError(f"weights: got shape {w.shape}, allowed: (axons, neurons) = ({cfg.axons}, {cfg.neurons})")
    if not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"weights: got dtype {w.dtype}, allowed: integers")
    lo, hi = cfg.weight_range
    bad = np.argwhere((w < lo) | (w > hi))
    if len(bad):
        a, n = bad[0]
        raise ValueError(f"weights: value {int(w[a, n])} at (axon {a}, neuron {n}) does not fit weight_bits="
                         f"{cfg.weight_bits} (allowed {lo}..{hi})")
    return w.astype(np.int64)


class LIFCore:
    """The neuron array of one core: potentials `v`, refractory counters `ref`, timestep counter `t`."""

    def __init__(self, cfg: SNNCoreConfig, weights=None):
        self.cfg = cfg
        self.w = np.zeros((cfg.axons, cfg.neurons), dtype=np.int64)
        if weights is not None:
            self.w = check_weights(cfg, weights)
        self.clear()

    def clear(self):
        self.s = new_state(self.cfg, self.cfg.neurons)
        self.t = 0

    @property
    def v(self) -> np.ndarray:
        return self.s["v"]

    def spike(self, axon: int):
        if not 0 <= axon < self.cfg.axons:
            raise ValueError(f"spike: axon address {axon} is outside the core (allowed 0..{self.cfg.axons - 1})")
        accumulate(self.cfg, self.s, self.w[axon])

    def tick(self) -> np.ndarray:
        fire = tick_state(self.cfg, self.s)
        self.t += 1
        return np.nonzero(fire)[0]


def run_events(cfg: SNNCoreConfig, weights, events, timesteps: int):
    """Driver-level run from a cleared core: `events` is an (n, 2) array of (axon address, timestep) with
    non-decreasing timesteps < `timesteps`; returns (out, v) where out is an (m, 2) array of (neuron, timestep)
    in emission order and v the final potentials."""
    core = LIFCore(cfg, weights)
    ev = check_events(cfg, events, timesteps)
    out, k = [], 0
    for t in range(timesteps):
        while k < len(ev) and ev[k, 1] == t:
            core.spike(int(ev[k, 0]))
            k += 1
        out.extend((int(n), t) for n in core.tick())
    return np.array(out, dtype=np.int64).reshape(-1, 2), core.v


def check_events(cfg: SNNCoreConfig, events, timesteps: int) -> np.ndarray:
    ev = np.asarray(events, dtype=np.int64).reshape(-1, 2)
    if not isinstance(timesteps, (int, np.integer)) or timesteps < 0:
        raise ValueError(f"timesteps: got {timesteps!r}, allowed: an integer >= 0")
    bad = np.nonzero((ev[:, 0] < 0) | (ev[:, 0] >= cfg.axons))[0]
    if len(bad):
        raise ValueError(f"events: event {bad[0]} has axon address {ev[bad[0], 0]}, outside the core "
                         f"(allowed 0..{cfg.axons - 1})")
    bad = np.nonzero(np.diff(ev[:, 1]) < 0)[0]
    if len(bad):
        j = bad[0] + 1
        raise ValueError(f"events: event {j} has timestep {ev[j, 1]} after timestep {ev[j - 1, 1]}; "
                         f"timesteps must be non-decreasing")
    bad = np.nonzero((ev[:, 1] < 0) | (ev[:, 1] >= timesteps))[0]
    if len(bad):
        raise ValueError(f"events: event {bad[0]} has timestep {ev[bad[0], 1]}, allowed 0..{timesteps - 1}")
    return ev


# ------------------------------------------------------------------------------------------------------------
# Stream level: beats as the gateware sees them
# ------------------------------------------------------------------------------------------------------------

def beats(cfg: SNNCoreConfig, op, addr=None, group=None, w=None) -> dict:
    """Input beat arrays (fields op, addr, group, w[lanes]) with zeros where a field is unused."""
    op = np.asarray(op, dtype=np.int64).ravel()
    n = len(op)
    z = np.zeros(n, dtype=np.int64)
    return {"op": op, "addr": z if addr is None else np.asarray(addr, dtype=np.int64).ravel(),
            "group": z if group is None else np.asarray(group, dtype=np.int64).ravel(),
            "w": np.zeros((n, cfg.lanes), dtype=np.int64) if w is None else np.asarray(w, dtype=np.int64)}


def concat(*parts: dict) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def weight_beats(cfg: SNNCoreConfig, weights) -> dict:
    """WRITE beats that load a whole (axons, neurons) weight matrix, row by row, group by group."""
    w = check_weights(cfg, weights)
    g, m = cfg.groups, cfg.lanes
    padded = np.zeros((cfg.axons, g * m), dtype=np.int64)
    padded[:, :cfg.neurons] = w
    axon, group = np.divmod(np.arange(cfg.axons * g), g)
    return beats(cfg, np.full(len(axon), Op.WRITE), axon, group, padded.reshape(-1, m))


def event_beats(cfg: SNNCoreConfig, events, timesteps: int) -> dict:
    """SPIKE beats for (axon, timestep) events with a TICK beat closing every timestep."""
    ev = check_events(cfg, events, timesteps)
    ticks_before = np.searchsorted(ev[:, 1], np.arange(timesteps), side="right")   # events up to step t
    op, addr = [], []
    k = 0
    for t in range(timesteps):
        op += [Op.SPIKE] * (ticks_before[t] - k) + [Op.TICK]
        addr += ev[k:ticks_before[t], 0].tolist() + [0]
        k = ticks_before[t]
    return beats(cfg, op, addr)


def stream_model(cfg: SNNCoreConfig, inp: dict, core: LIFCore | None = None):
    """Run input beats through the core the way the gateware does. Returns (out, cost, core): `out` the output beat
    arrays (kind, addr, t), `cost` the cycles each input beat holds the input stream when the output is never
    stalled (the cycle model), and the core (to continue a run). Out-of-range addresses give ERROR beats."""
    core = core or LIFCore(cfg)
    g = cfg.groups
    tmask = (1 << cfg.time_bits) - 1
    kind, addr, tout, cost = [], [], [], []
    for op, a, grp, w in zip(inp["op"].tolist(), inp["addr"].tolist(), inp["group"].tolist(), inp["w"]):
        if op == Op.SPIKE:
            if a >= cfg.axons:
                kind.append(Out.ERROR), addr.append(a), tout.append(core.t & tmask), cost.append(1)
                continue
            core.spike(a)
            cost.append(cfg.cycles("spike"))
        elif op == Op.TICK:
            t = core.t & tmask
            fired = core.tick().tolist()
            kind += [Out.SPIKE] * len(fired) + [Out.TICK]
            addr += fired + [0]
            tout += [t] * (len(fired) + 1)
            cost.append(cfg.cycles("tick", len(fired)))
        elif op == Op.WRITE:
            if a >= cfg.axons or grp >= g:
                kind.append(Out.ERROR), addr.append(a), tout.append(core.t & tmask), cost.append(1)
                continue
            lanes = min(cfg.lanes, cfg.neurons - grp * cfg.lanes)
            lo, hi = cfg.weight_range
            core.w[a, grp * cfg.lanes:grp * cfg.lanes + lanes] = (np.asarray(w[:lanes]) - lo) % (hi - lo + 1) + lo
            cost.append(1)
        elif op == Op.CLEAR:
            core.clear()
            cost.append(cfg.cycles("clear"))
        else:
            raise ValueError(f"op: got {op}, allowed: {', '.join(f'{o.value} ({o.name})' for o in Op)}")
    out = {k: np.array(v, dtype=np.int64) for k, v in (("kind", kind), ("addr", addr), ("t", tout))}
    return out, np.array(cost, dtype=np.int64), core


def decode_spikes(out: dict) -> np.ndarray:
    """Output beat arrays -> (neuron, timestep) pairs of the SPIKE beats."""
    sel = np.asarray(out["kind"]) == Out.SPIKE
    return np.stack([np.asarray(out["addr"])[sel], np.asarray(out["t"])[sel]], axis=1).astype(np.int64)


def run_batch(cfg: SNNCoreConfig, weights, spikes) -> tuple[np.ndarray, np.ndarray]:
    """Many independent runs at once, bit-exact with `run_events` when each timestep's events arrive in ascending
    axon order (what `spike_events` produces): `spikes` is (batch, timesteps, axons) of 0/1. Returns the output
    spikes (batch, timesteps, neurons) as 0/1 and the final potentials (batch, neurons)."""
    w = check_weights(cfg, weights)
    s = np.asarray(spikes).astype(bool)
    if s.ndim != 3 or s.shape[2] != cfg.axons:
        raise ValueError(f"spikes: got shape {s.shape}, allowed: (batch, timesteps, axons={cfg.axons})")
    b, steps, _ = s.shape
    state = new_state(cfg, (b, cfg.neurons))
    out = np.zeros((b, steps, cfg.neurons), dtype=np.uint8)
    for t in range(steps):
        for a in np.nonzero(s[:, t].any(axis=0))[0]:
            accumulate(cfg, state, w[a], s[:, t, a, None])
        out[:, t] = tick_state(cfg, state)
    return out, state["v"]


def spike_events(spikes) -> np.ndarray:
    """(timesteps, axons) 0/1 -> (axon, timestep) events, timestep-major, ascending axons within a timestep."""
    t, a = np.nonzero(np.asarray(spikes))
    return np.stack([a, t], axis=1).astype(np.int64)


def batch_beats(cfg: SNNCoreConfig, spikes) -> dict:
    """Independent runs back to back: for each (timesteps, axons) spike raster a CLEAR beat, then its events."""
    s = np.asarray(spikes)
    return concat(*[concat(beats(cfg, [Op.CLEAR]), event_beats(cfg, spike_events(r), r.shape[0])) for r in s])


def batch_spikes(cfg: SNNCoreConfig, out: dict, batch: int, timesteps: int) -> np.ndarray:
    """Output beats of `batch_beats` -> (batch, timesteps, neurons) 0/1 spikes (run k = the k-th group of
    `timesteps` TICK markers)."""
    kind, addr = np.asarray(out["kind"]), np.asarray(out["addr"])
    step = np.cumsum(kind == Out.TICK) - (kind == Out.TICK)       # index of the timestep each beat belongs to
    res = np.zeros((batch, timesteps, cfg.neurons), dtype=np.uint8)
    sel = kind == Out.SPIKE
    res[step[sel] // timesteps, step[sel] % timesteps, addr[sel]] = 1
    return res


def ilif_step(v, x, threshold: int, levels: int, beta_shift: int = 2):
    """One I-LIF step (SpikeYOLO integer multi-level spikes, spec section 5) in integers: the spec's
    `H = beta V + X` with beta = 2^-beta_shift (default 0.25) is `H = (V >> beta_shift) + X` (floor),
    `C = round_half_even(clip(H / threshold, 0, levels))`, `V = H - C threshold` (soft reset).
    Returns (C, V): C in 0..levels is the integer spike count of the step."""
    v, x = np.asarray(v, dtype=np.int64), np.asarray(x, dtype=np.int64)
    h = (v >> beta_shift) + x
    hc = np.clip(h, 0, levels * threshold)
    q, r = np.divmod(hc, threshold)
    up = (2 * r > threshold) | ((2 * r == threshold) & (q % 2 == 1))      # ties to even, like torch.round
    c = q + up
    return c, h - c * threshold


def expand_levels(c, levels: int) -> np.ndarray:
    """Integer spike counts (..., n) -> `levels` binary slots (..., levels, n) with slot d = [c > d], so that
    W @ c = sum over slots of W @ slot (accumulate-only inference of I-LIF)."""
    c = np.asarray(c)
    return (c[..., None, :] > np.arange(levels)[:, None]).astype(np.int64)
