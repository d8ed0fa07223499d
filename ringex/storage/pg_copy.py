"""PostgreSQL binary COPY streams built from the projection's int64 row arrays, in bulk.

A stream (https://www.postgresql.org/docs/15/sql-copy.html, "Binary Format") is the
signature, flags and extension length, then per row an int16 field count and per field an
int32 length (8) and the big-endian int64, then the int16 trailer -1. Every column is a
NOT NULL BIGINT, so every row has the same bytes but for its values: the rows are a
template row broadcast over the buffer, then the values, cast to ``>i8`` in one contiguous
pass, copied into place as opaque 8-byte items: ~3x faster than assigning through a strided
``>i8`` field view (a cast per value into unaligned memory).
"""
from __future__ import annotations

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8       # signature, flags, extension length
TRAILER = b"\xff\xff"
_HEAD = len(SIGNATURE)
_templates: dict[int, np.ndarray] = {}


def _template(columns: int) -> np.ndarray:
    """One row with every value zero: field count, then (length 8, 0) per column."""
    t = _templates.get(columns)
    if t is None:
        t = np.zeros(2 + 12 * columns, np.uint8)
        t[0], t[1] = columns >> 8, columns & 0xFF
        t[5::12] = 8                                        # low byte of each big-endian length
        _templates[columns] = t
    return t


def copy_binary(arr: np.ndarray, where: np.ndarray | None = None) -> memoryview:
    """A complete binary COPY stream for a row array of int64 fields (``row_dtype``), or
    for its rows where the bool array ``where`` is true."""
    names = arr.dtype.names
    assert names is not None and arr.dtype == np.dtype([(f, "<i8") for f in names])
    c = len(names)
    flat = np.ascontiguousarray(arr).view(np.int64).reshape(len(arr), c)
    if where is not None and not where.all():
        flat = np.compress(where, flat, axis=0)       # 5x faster than masking the records
    n, width = len(flat), 2 + 12 * c
    buf = np.empty(_HEAD + n * width + len(TRAILER), np.uint8)
    buf[:_HEAD] = np.frombuffer(SIGNATURE, np.uint8)
    buf[_HEAD + n * width:] = np.frombuffer(TRAILER, np.uint8)
    if not n:
        return buf.data
    buf[_HEAD:_HEAD + n * width].reshape(n, width)[:] = _template(c)
    values = np.ndarray((n, c), "V8", buf, _HEAD + 6, (width, 12))   # after count + length
    values[...] = flat.astype(">i8").view("V8")
    return buf.data
