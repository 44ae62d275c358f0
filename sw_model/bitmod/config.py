"""Config and presets of the BitMoD family: a rows x cols output-stationary array of bit-serial PEs (a single
PE is the 1 x 1 array) that runs INT8 / INT6 / FP4 / FP3 weight groups, mixed per group, on INT8 activations
(`act = "int8"`, exact integer datapath) or FP16 activations (`act = "fp16"`, exponent-aligned dot products with
`guard_bits` truncation and a block-floating-point accumulator; see sw_model/bitmod/fp16.py).

Datatypes and special-value (SV) tables are data: `DTYPES` below and the `sv_fp4` / `sv_fp3` config fields."""
from __future__ import annotations

from dataclasses import dataclass

from sw_model.config import ConfigError, check_choice, check_int


@dataclass(frozen=True)
class DType:
    """One per-group weight datatype of the hardware: its 2-bit code on the `dtype` field, the width of a
    weight code, how many signed power-of-two terms a weight becomes (= cycles per beat), and for FP kinds
    the magnitude grid indexed by the magnitude bits of the code (the all-zero code with the sign set is the
    per-group special value)."""
    name: str
    code: int
    bits: int
    terms: int
    kind: str                        # "int" (two's complement, radix-4 Booth) or "fp" (sign + magnitude grid)
    grid: tuple = ()


DTYPES = {
    "int8": DType("int8", 0, 8, 4, "int"),
    "int6": DType("int6", 1, 6, 3, "int"),
    "fp4": DType("fp4", 2, 4, 2, "fp", (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)),   # E2M1
    "fp3": DType("fp3", 3, 3, 2, "fp", (0.0, 1.0, 2.0, 4.0)),
}
DTYPE_BY_CODE = {d.code: d for d in DTYPES.values()}
SV_FP4_DEFAULT = (5.0, -5.0, 8.0, -8.0)      # ER+, ER-, EA+, EA-  (selector 0..3)
SV_FP3_DEFAULT = (3.0, -3.0, 6.0, -6.0)
ACTIVATIONS = ("int8", "fp16")
ALIGNS = ("product", "row")                  # FP16 alignment rule (sw_model/bitmod/fp16.py, bitmod_fp16_row.py)
DEQUANTS = ("pe", "column")                  # one bit-serial dequantizer per PE, or one per column serving its rows
ACT_BITS = 8
ACT_BITS_FP16 = 16
EXP_BITS = 6                                 # block exponent of the FP16-activation accumulators (max 40)
CODE_BITS = 8                                # every weight code travels in an 8-bit field
SCALE_BITS = 8                               # unsigned group scale code (the quantizer emits 0..127)
LANE_SHIFT_MAX = 4                           # per-lane term shift in half units: FP values up to 2^4 / 2 = 8


def check_sv_table(field: str, table) -> tuple:
    """SVs are in weight units; in half units (the datapath's fixed point, 1 fraction bit) each must be an
    integer below 32 in magnitude with at most two ones, so that leading-one detection yields <= 2 terms."""
    if not isinstance(table, (tuple, list)) or len(table) != 4:
        raise ConfigError(f"{field}: got {table!r}, allowed: a list of 4 special values (selector 0..3)")
    out = []
    for v in table:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{field}: got {v!r}, allowed: a number")
        h = v * 2
        if h != int(h) or not 0 < abs(h) < 32 or bin(int(abs(h))).count("1") > 2:
            raise ConfigError(f"{field}: got {v!r}, allowed: a nonzero multiple of 0.5 below 16 in magnitude "
                              f"whose half-unit magnitude has at most two one bits (e.g. 5, -8, 3, 6)")
        out.append(float(v))
    return tuple(out)


def sv_reg_encode(value: float) -> int:
    """An SV (weight units) as the 6-bit register word: sign << 5 | half-unit magnitude."""
    h = 2 * value
    if h != int(h) or abs(h) >= 32 or bin(int(abs(h))).count("1") > 2:
        raise ValueError(f"sv_val: {value!r} is not a multiple of 0.5 below 16 with at most two one bits in half units")
    return (int(h < 0) << 5) | int(abs(h))


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class BitModConfig:
    """BitMoD array: `rows` activation vectors x `cols` output channels, `lanes` weights per PE per cycle
    (the k-way dot product), groups of `group_size` weights along the input channel, at most `max_groups`
    groups per output (sizes the output accumulator), activations `act` ("int8" or "fp16"), for FP16 the
    number of alignment guard bits below the largest product's 11-bit mantissa, SV tables per FP datatype,
    `pipeline` = 1: a register after the term decoders (output latency 10 instead of 9, same cycles per beat),
    `align` (FP16 only): "product" aligns each PE's k products to their largest exponent every cycle;
    "row" aligns the k activations of a beat once per row to the row's running block exponent (shared by
    all PEs of the row; the PEs only shift by their weight terms, exactly), see sw_model/bitmod/fp16_row.py;
    `dequant`: "pe" gives every PE its own bit-serial dequantizer and output accumulator; "column" shares one
    per column, serving the column's rows in turn (8 cycles each, output latency 8 * rows + 1; the same
    results and cycles per beat, as a group then lasts >= 8 * rows cycles), see hwgen/bitmod/dequant.py;
    `shift_step` (align="row" only): 0 shifts the group accumulators by any growth of the row's block exponent
    in one cycle (a full barrel shifter per PE); n > 0 shifts at most n bits per cycle and a larger growth
    inside a group adds stall cycles (the same results; see sw_model/bitmod_fp16_row.cycles_per_beat)."""
    rows: int = 1
    cols: int = 1
    lanes: int = 4
    group_size: int = 128
    max_groups: int = 8
    act: str = "int8"
    guard_bits: int = 3
    pipeline: int = 0
    align: str = "product"
    dequant: str = "pe"
    shift_step: int = 0
    sv_fp4: tuple = SV_FP4_DEFAULT
    sv_fp3: tuple = SV_FP3_DEFAULT
    unit = "bitmod"

    def __post_init__(self):
        check_int("rows", self.rows, 1, 16)
        check_int("cols", self.cols, 1, 16)
        check_int("lanes", self.lanes, 1, 16)
        check_int("group_size", self.group_size, 1, 4096)
        check_int("max_groups", self.max_groups, 1, 1 << 16)
        check_choice("act", self.act, ACTIVATIONS)
        check_int("guard_bits", self.guard_bits, 0, 8)
        check_int("pipeline", self.pipeline, 0, 1)
        check_choice("align", self.align, ALIGNS)
        if self.align == "row" and self.act != "fp16":
            raise ConfigError(f"align: got 'row' with act={self.act!r}, allowed: 'row' only with act='fp16' "
                              f"(INT8 activations need no alignment)")
        check_choice("dequant", self.dequant, DEQUANTS)
        if self.dequant == "column" and self.act == "fp16" and self.align != "row":
            raise ConfigError("dequant: got 'column' with act='fp16', align='product', allowed: 'column' with "
                              "act='int8' or align='row' (the product-aligned PE keeps its own dequantizer)")
        check_int("shift_step", self.shift_step, 0, 30)
        if self.shift_step and self.align != "row":
            raise ConfigError(f"shift_step: got {self.shift_step} with align={self.align!r}, allowed: 0 (the "
                              f"accumulator shift step exists only with act='fp16', align='row')")
        if self.shift_step and self.pipeline:
            raise ConfigError(f"shift_step: got {self.shift_step} with pipeline=1, allowed: 0 (its stalls are "
                              f"decided in the term cycle the decode register delays)")
        if self.group_size % self.lanes:
            raise ConfigError(f"group_size: got {self.group_size}, allowed: a multiple of lanes ({self.lanes})")
        if self.group_size // self.lanes < 4:
            # a group then lasts >= 8 cycles, the length of the bit-serial dequantization: it never stalls
            raise ConfigError(f"group_size: got {self.group_size}, allowed: at least 4 beats per group "
                              f"(>= {4 * self.lanes} for lanes={self.lanes})")
        if self.dequant == "column" and self.group_size // self.lanes < 4 * self.rows:
            # one dequantizer serves the column's rows in turn, 8 cycles each: a group must last >= 8 * rows
            raise ConfigError(f"group_size: got {self.group_size}, allowed with dequant='column': at least "
                              f"4 * rows beats per group (>= {4 * self.rows * self.lanes} for rows={self.rows}, "
                              f"lanes={self.lanes})")
        object.__setattr__(self, "sv_fp4", check_sv_table("sv_fp4", self.sv_fp4))
        object.__setattr__(self, "sv_fp3", check_sv_table("sv_fp3", self.sv_fp3))

    # Derived widths. A product a * w in half units is at most 128 * 256 = 2^15 in magnitude; partial Booth
    # sums stay below 2 * 171 half units per weight, so a group fits in 18 + clog2(G) signed bits.
    @property
    def beats_per_group(self) -> int:
        return self.group_size // self.lanes

    # FP16: an aligned lane is < 2^(11 + guard) in magnitude, a cycle adds < lanes * 2^(11 + guard) and a group
    # has <= 4 * G / lanes cycles, and floor-shifts never grow a magnitude: |group acc| < G * 2^(13 + guard),
    # |group acc * scale| < G * 2^(21 + guard), the output < max_groups times that.
    # FP16 row alignment: a pre-aligned mantissa is < 2^(11 + guard), a weight's partial Booth sum within a beat
    # is <= 340 half units (the final value <= 256), so |group acc| < 2^(11 + guard) * (256 G + 84 lanes)
    # < G * 2^(20 + guard): exact shifts by bsig widen the group accumulator instead of moving its exponent.
    @property
    def group_acc_bits(self) -> int:
        if self.act == "fp16" and self.align == "row":
            return 21 + self.guard_bits + _clog2(self.group_size)
        if self.act == "fp16":
            return 14 + self.guard_bits + _clog2(self.group_size)
        return 18 + _clog2(self.group_size)

    @property
    def out_bits(self) -> int:
        if self.act == "fp16":
            return self.group_acc_bits + SCALE_BITS + _clog2(self.max_groups)
        return self.group_acc_bits + SCALE_BITS + _clog2(self.max_groups) + 1

    @property
    def dequant_cycles(self) -> int:
        """Cycles from a group end until its dequantized sums are in the output accumulators."""
        return SCALE_BITS * (self.rows if self.dequant == "column" else 1)

    @property
    def act_bits(self) -> int:
        return ACT_BITS_FP16 if self.act == "fp16" else ACT_BITS

    def sv_table(self, dtype: str) -> tuple:
        return {"fp4": self.sv_fp4, "fp3": self.sv_fp3}[dtype]


PRESETS_BITMOD = {
    "bitmod-pe": BitModConfig(),
    "bitmod-pe-small": BitModConfig(lanes=1, group_size=4, max_groups=4),
    "bitmod-array-4x4": BitModConfig(rows=4, cols=4),
    "bitmod-array-8x8": BitModConfig(rows=8, cols=8),
    "bitmod-array-3x5": BitModConfig(rows=3, cols=5, lanes=3, group_size=12, max_groups=3),
    "bitmod-pe-fp16": BitModConfig(act="fp16"),
    "bitmod-array-4x4-fp16": BitModConfig(rows=4, cols=4, act="fp16"),
    "bitmod-pe-fp16-row": BitModConfig(act="fp16", align="row"),
    "bitmod-array-4x4-fp16-row": BitModConfig(rows=4, cols=4, act="fp16", align="row"),
    "bitmod-array-8x8-fp16-row": BitModConfig(rows=8, cols=8, act="fp16", align="row"),
    # lean: one dequantizer per column (and FP16 accumulator shifts of 1 bit per cycle): fewest LUTs per MAC
    "bitmod-array-4x4-lean": BitModConfig(rows=4, cols=4, dequant="column"),
    "bitmod-array-8x8-lean": BitModConfig(rows=8, cols=8, dequant="column"),
    "bitmod-array-4x4-k8-lean": BitModConfig(rows=4, cols=4, lanes=8, dequant="column"),
    "bitmod-array-4x4-fp16-lean": BitModConfig(rows=4, cols=4, act="fp16", align="row", dequant="column",
                                               shift_step=1),
}

