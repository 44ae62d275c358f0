"""Cycle model of the attention array (hwgen.attention.array) and of an unfused three-pass schedule on the same array.

`cycle_model` predicts the handshake cycle of every output beat (cycle 0 = handshake of the first input beat)
when the input offers a beat every cycle and the output is always ready. Per key tile: the tile starts (its
rows move from the fill buffer to the compute buffer) in the first cycle in which the fill buffer is full and
the array is idle or in the last PV cycle of the previous tile; then S (E cycles), G1 (1 + max_pipe), G2
(1 + exp_pipe), PV (F cycles): `cfg.tile_cycles`. While the fill buffer is full the input is not ready. The
lanes trail PV by `cfg.lane_delay` = 2 + sum_pipe cycles and rotate `cfg.norm_cycles` = F + 1 + lane_pipe
times. The reciprocal (recip_bits cycles) starts `cfg.rd_delay` + 1 cycles after the first PV cycle of the last
tile (when RD is final); normalisation (norm_cycles rotations) follows once it is done and the lanes are idle,
then one output row per cycle; the next query tile's first beat is taken in the cycle after the last output.
"""
from __future__ import annotations

from sw_model.attention.config import AttentionConfig


def cycle_model(cfg: AttentionConfig, tiles: list[tuple[int, int]]) -> dict:
    """tiles: (query rows, keys) per query tile, in stream order. Returns in_cycles and out_cycles (lists) and
    `busy`: cycles in which the 2D array does a multiply (S and PV phases)."""
    d = cfg.head_dim
    tile_cycles = cfg.tile_cycles
    cycle, ins, outs, busy = 0, [], [], 0
    for n_q, n_keys in tiles:
        ins += list(range(cycle, cycle + n_q))
        cycle += n_q                                  # cycle of the first K/V beat
        recip_start = drain = cycle - 1                # zero keys: the last Q beat starts the drain
        free = 0
        for t0 in range(0, n_keys, cfg.m0):
            rows = min(cfg.m0, n_keys - t0)
            ins += list(range(cycle, cycle + rows))
            full = cycle + rows                        # fill_full visible
            start = max(full, free)                    # the swap cycle
            end = start + tile_cycles                  # last PV cycle
            recip_start, drain, free = end - d + 2 + cfg.rd_delay, end, end
            busy += 2 * d
            cycle = start + 1                          # input ready again
        # the reciprocal starts rd_delay + 1 cycles after the first PV cycle of the last tile (RD is final
        # then) and takes recip_bits cycles; normalisation starts once it is done and the lanes rotated for the
        # last time (lane_delay cycles behind PV, plus 1 + lane_pipe bubble rotations); it takes norm_cycles
        # rotations of the pipelined ring
        norm = max(drain + cfg.lane_delay + 1 + cfg.lane_pipe, recip_start + cfg.recip_bits + 1) + 1
        first_out = norm + cfg.norm_cycles
        outs += list(range(first_out, first_out + n_q))
        cycle = first_out + n_q if n_q else first_out
    return {"in_cycles": ins, "out_cycles": outs, "busy": busy}


def useful_macs(cfg: AttentionConfig, tiles: list[tuple[int, int]]) -> int:
    """Q.K and prob.V multiply-accumulates of the real (unpadded) rows: 2 * P * N * E per query tile."""
    return sum(2 * n_q * n_keys * cfg.head_dim for n_q, n_keys in tiles)


def unfused_cycles(cfg: AttentionConfig, n_q: int, n_keys: int) -> dict:
    """Three-pass cascade on the same arrays, each pass finishing before the next (FuseMax's 'unfused'
    baseline): pass 1 the 2D array computes the score tiles (E cycles per key tile) into an N x P0 buffer while
    the 1D array takes the running max; pass 2 the 1D array (P0 lanes, one element per lane per cycle) computes
    exp and the sum (N cycles); pass 3 the 1D array divides (N cycles) and the 2D array computes A.V (F cycles
    per key tile, overlapped with the division, so max(N, tiles * F)). Fill/drain as the fused array (G1/G2
    per tile in pass 1, reciprocal + one row per cycle at the end). Returns cycles and the buffer size."""
    d = cfg.head_dim
    tiles = -(-n_keys // cfg.m0)
    pass1 = n_q + tiles * (cfg.tile_cycles - d)
    pass2 = n_keys
    pass3 = max(n_keys, tiles * d) + cfg.recip_bits + n_q
    return {"cycles": pass1 + pass2 + pass3, "buffer_words": n_keys * cfg.p0}
