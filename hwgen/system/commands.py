"""The system's command format, shared by the top, the command decoder and the manifest: opcodes, the header
layout (the low bits of a command word), the INFO and STATUS reply fields, the error codes and the word count of
a beat."""
from __future__ import annotations

from amaranth.lib import data, enum

from sw_model.system.config import HEADER_ENGINE_BITS, HEADER_OP_BITS, SystemConfig

INFO_MAGIC = 0x48574731                     # "HWG1"
INFO_FIELDS = {"magic": (0, 32), "version": (32, 8), "engines": (40, 8), "errors": (48, 16)}
VERSION = 1
# STATUS reply (one word; host_width >= 64): the error count since the last STATUS (saturating), the first error
# since then (code, its opcode and engine fields), engine e's busy flag in bit busy + e, and the number of headers
# the decoder has taken (modulo 2^16, the STATUS itself included) so a host can tell which commands ran.
STATUS_FIELDS = {"errors": (0, 16), "error_code": (16, 4), "error_op": (20, 4), "error_engine": (24, 4),
                 "busy": (32, 16), "commands": (48, 16)}
# Why a header was dropped. RANGE: addr + count > spad_depth (WRITE, READ, RUN input) or addr2 + count2 >
# spad_depth (RUN output); such a WRITE's data words are taken and discarded.
ERROR_CODES = {"NONE": 0, "OPCODE": 1, "ENGINE": 2, "RANGE": 3}


class Opcode(enum.Enum, shape=HEADER_OP_BITS):
    NOP = 0
    INFO = 1
    WRITE = 2
    RUN = 3
    READ = 4
    COUNTERS = 5
    CLEAR = 6
    WAIT = 7
    STATUS = 8


def header_layout(config: SystemConfig) -> data.StructLayout:
    return data.StructLayout({"op": Opcode, "engine": HEADER_ENGINE_BITS, "addr": config.addr_bits,
                              "count": config.count_bits, "addr2": config.addr_bits, "count2": config.count_bits})


def words(width: int, host_width: int) -> int:
    """Host words per beat of `width` bits."""
    return -(-width // host_width)
