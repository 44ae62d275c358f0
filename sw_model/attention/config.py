"""Config and presets of the attention-array family (FuseMax-style one-pass attention).

Number format (chosen so that gateware and golden model agree bit for bit, see docs/attention.md):
- Q, K, V: signed `data_bits`-bit integers (the driver folds the softmax scale s * log2(e) into Q's scale).
- score S = sum_e Q*K, exact integer; logit t = S >> score_shift (arithmetic shift = floor), read as a
  fixed-point number in log2 units with `logit_frac` fractional bits.
- exponential: exp2(-x) for x >= 0 with `logit_frac` fractional bits = TABLE[frac(x)] >> int(x), TABLE[j] =
  round(2^exp_bits * 2^(-j / 2^logit_frac)); so a probability is an unsigned integer in [0, 2^exp_bits].
- running denominator / numerator: integers, rescaled by (x * PRM) >> exp_bits (floor).
- output: round(RNV * 2^out_frac / RD) computed as (RNV * r + 2^(K-O-1)) >> (K-O), r = floor(2^K / RD).
All sums are exact integer sums, so the reduction order cannot change a bit of the result.
`mult = "lmul"` makes the score, score x V and correction multiplications L-Muls of the fixed-point operands
(sw_model/attention/lmul.py, docs/attention.md); the final normalisation RNV x r stays exact.
`mult = "lmul-products"`: L-Mul for Q.K and score x V only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_int

MULTS = ("exact", "lmul", "lmul-products")


@dataclass(frozen=True)
class AttentionConfig:
    """One-pass attention array: an `m0` x `p0` (keys x queries) 2D PE array plus a `p0`-lane 1D array.

    `head_dim` is E = F (Q/K and V embedding); `max_keys_log2` only sizes the running-sum registers (a runtime
    sequence length up to 2^max_keys_log2 keys cannot overflow them); no buffer depends on the sequence length.
    `causal`: query rows carry their position (`pos` on QUERY beats); key m (counted from 0 in each query tile's
    K/V stream) is masked for a query at position < m.
    `mult`: "exact" integer multipliers, or "lmul": every multiplication of the cascade (Q.K, prob x V, the
    corrections RD x PRM and RNV x PRM) is a fixed-point L-Mul keeping `lmul_man` bits below the leading one;
    "lmul-products": only Q.K and prob x V are L-Muls, the corrections stay exact (see docs/attention.md for
    why: an L-Mul by PRM = 1 is not the identity, so the corrections compound a bias over the tiles).

    Pipelining (each adds register slices and cycles, never changes a value; `sw_model.attention.timing`):
    `mul_pipe` (0 or 1) registers the PE multiplier's operands and strobes (the sequencer's decode no longer
    feeds the multiplier and the score adder in the same cycle): G1 lasts one more cycle, the lanes trail PV one
    more cycle; `max_pipe` register slices in each column's running-max tree (G1 waits max_pipe more cycles per key tile);
    `exp_pipe` registers on the exponential paths (1: after the subtraction RM - logit, 2: also after the table
    lookup; G2 lasts 1 + exp_pipe cycles per key tile); `sum_pipe` register slices in each column's adder trees
    (the lanes trail the PV phase by 2 + sum_pipe cycles); `lane_pipe` register slices more in each lane's
    multipliers (RD x PRM, RNV x PRM / r, built from DSP-sized limb products: the RNV ring gains lane_pipe stages,
    so a pass over it takes head_dim + 1 + lane_pipe rotations, and the RD update waits lane_pipe cycles)."""
    head_dim: int = 8
    m0: int = 4
    p0: int = 4
    data_bits: int = 8
    score_shift: int = 0
    logit_frac: int = 4
    exp_bits: int = 15
    out_frac: int = 8
    max_keys_log2: int = 16
    causal: bool = False
    mult: str = "exact"
    lmul_man: int = 7
    mul_pipe: int = 1
    max_pipe: int = 1
    exp_pipe: int = 1
    sum_pipe: int = 1
    lane_pipe: int = 1
    unit = "attention"

    def __post_init__(self):
        check_int("head_dim", self.head_dim, 1, 256)
        check_int("m0", self.m0, 1, 64)
        check_int("p0", self.p0, 1, 64)
        check_int("data_bits", self.data_bits, 2, 16)
        check_int("score_shift", self.score_shift, 0, 40)
        check_int("logit_frac", self.logit_frac, 0, 8)
        check_int("exp_bits", self.exp_bits, 2, 24)
        check_int("out_frac", self.out_frac, 0, 16)
        check_int("max_keys_log2", self.max_keys_log2, 1, 24)
        if not isinstance(self.causal, bool):
            raise ConfigError(f"causal: got {self.causal!r}, allowed: true or false")
        check_choice("mult", self.mult, MULTS)
        check_int("lmul_man", self.lmul_man, 1, 16)
        check_int("mul_pipe", self.mul_pipe, 0, 1)
        check_int("max_pipe", self.max_pipe, 0, 8)
        check_int("exp_pipe", self.exp_pipe, 0, 2)
        check_int("sum_pipe", self.sum_pipe, 0, 8)
        check_int("lane_pipe", self.lane_pipe, 0, 4)
        # the lanes' last rescaling multiply of a key tile must read its PRM before the next tile's G2 replaces it
        most = self.head_dim + 1 + self.max_pipe + self.exp_pipe
        if self.sum_pipe > most:
            raise ConfigError(f"sum_pipe: got {self.sum_pipe}, allowed: at most head_dim + 1 + max_pipe + exp_pipe "
                              f"({most})")
        # ... and the RD update must read it too (RD x PRM starts sum_pipe + lane_pipe cycles into PV)
        if self.sum_pipe + self.lane_pipe > most + self.head_dim:
            raise ConfigError(f"lane_pipe: got {self.lane_pipe}, allowed: at most 2 * head_dim + 1 + max_pipe + "
                              f"exp_pipe - sum_pipe ({most + self.head_dim - self.sum_pipe})")
        if self.logit_width < 2:
            raise ConfigError(f"score_shift: got {self.score_shift}, allowed: at most {self.score_width - 2} "
                              f"(the {self.score_width}-bit score must keep >= 2 bits)")

    # ---- derived widths (parameters shared by the golden model and the gateware) ----
    @property
    def score_width(self) -> int:
        """Signed width of S = sum of head_dim products of two data_bits integers (never overflows); an L-Mul
        is at most twice the exact product (its offset is <= 1/2), hence one more bit with L-Mul products."""
        return 2 * self.data_bits - 1 + self.head_dim.bit_length() + (self.mult != "exact")

    @property
    def logit_width(self) -> int:
        return self.score_width - self.score_shift

    @property
    def rd_width(self) -> int:
        """Unsigned running denominator: up to 2^max_keys_log2 probabilities of at most 2^exp_bits."""
        return self.exp_bits + self.max_keys_log2 + 1

    @property
    def rnv_width(self) -> int:
        """Signed running numerator."""
        return self.exp_bits + self.max_keys_log2 + self.data_bits + 1

    @property
    def recip_bits(self) -> int:
        """Width R of r = floor(2^K / RD); RD >= 2^exp_bits whenever there is a key, so r < 2^(R-1)."""
        return self.max_keys_log2 + self.data_bits + self.out_frac + 2

    @property
    def recip_shift(self) -> int:
        """K in r = floor(2^K / RD); chosen so that the reciprocal error stays below 1/4 output LSB."""
        return self.exp_bits + self.recip_bits - 1

    @property
    def out_width(self) -> int:
        """Signed width of an output element: V's range with out_frac fractional bits plus rounding."""
        return self.data_bits + self.out_frac + 1

    @property
    def tile_cycles(self) -> int:
        """Cycles of one key tile in the 2D array: S (head_dim), G1 (1 + mul_pipe + max_pipe), G2 (1 + exp_pipe),
        PV (head_dim)."""
        return 2 * self.head_dim + 2 + self.mul_pipe + self.max_pipe + self.exp_pipe

    @property
    def lane_delay(self) -> int:
        """Cycles the lanes trail the PV phase: the mul_pipe operand registers, the registered PE products, the
        sum_pipe slices of the column adder tree and the registered column sum."""
        return 2 + self.mul_pipe + self.sum_pipe

    @property
    def rd_delay(self) -> int:
        """Cycles from the first PV cycle of a key tile to the lanes' rd_step (SLD and RD x PRM sampled)."""
        return self.sum_pipe + self.lane_pipe

    @property
    def norm_cycles(self) -> int:
        """Rotations of a pass over the lanes' RNV ring: head_dim elements, the product register and the
        lane_pipe multiplier slices."""
        return self.head_dim + 1 + self.lane_pipe

    def exp_table(self) -> list[int]:
        """TABLE[j] = round(2^exp_bits * 2^(-j / 2^logit_frac)), j < 2^logit_frac (TABLE[0] = 2^exp_bits)."""
        n = 1 << self.logit_frac
        return [math.floor(2.0 ** self.exp_bits * 2.0 ** (-j / n) + 0.5) for j in range(n)]


PRESETS_ATTENTION = {
    "attention-4x4-d8": AttentionConfig(),
    "attention-8x8-d32": AttentionConfig(head_dim=32, m0=8, p0=8, score_shift=8),
    "attention-8x8-d32-lmul": AttentionConfig(head_dim=32, m0=8, p0=8, score_shift=8, mult="lmul"),
}

