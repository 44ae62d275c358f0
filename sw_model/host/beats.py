"""Stream payloads <-> field arrays, as laid out by a manifest's `fields` (name, offset, width; array fields also
count and elem_width). One implementation for the benches, the bulk testbench, the bridge and the system driver.

Packing goes through a bit matrix so numpy does the per-element work: a network program has hundreds of
thousands of beats."""
from __future__ import annotations

import numpy as np

MAX_ELEM_BITS = 62          # element values travel as int64


def _geometry(f: dict) -> tuple[int, int]:
    ew, cnt = f.get("elem_width", f["width"]), f.get("count", 1)
    if ew > MAX_ELEM_BITS:
        raise ValueError(f"{f['name']}: {ew}-bit elements, allowed: at most {MAX_ELEM_BITS} bits")
    return ew, cnt


def pack_beats(fields: list[dict], values: dict) -> list[int]:
    """Per-field arrays (array fields: shape (beats, count)) -> one payload integer per beat. Each value
    contributes its low elem_width bits, so negative values give their two's complement."""
    n = len(np.asarray(values[fields[0]["name"]]))
    bits = np.zeros((n, max(f["offset"] + f["width"] for f in fields)), dtype=np.uint8)
    for f in fields:
        ew, cnt = _geometry(f)
        v = np.asarray(values[f["name"]], dtype=np.int64).reshape(n, cnt)
        bits[:, f["offset"]:f["offset"] + cnt * ew] = ((v[:, :, None] >> np.arange(ew)) & 1).reshape(n, cnt * ew)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_beats(fields: list[dict], beats: list[int]) -> dict:
    """Payload integers -> per-field int64 arrays of unsigned codes (array fields: shape (beats, count))."""
    n = len(beats)
    width = max(f["offset"] + f["width"] for f in fields)
    nbytes = (width + 7) // 8
    raw = np.frombuffer(b"".join(int(b & ((1 << width) - 1)).to_bytes(nbytes, "little") for b in beats),
                        dtype=np.uint8).reshape(n, nbytes)
    bits = np.unpackbits(raw, axis=1, bitorder="little").astype(np.int64)
    out = {}
    for f in fields:
        ew, cnt = _geometry(f)
        elems = bits[:, f["offset"]:f["offset"] + cnt * ew].reshape(n, cnt, ew) @ (np.int64(1) << np.arange(ew))
        out[f["name"]] = elems if "count" in f else elems[:, 0]
    return out
