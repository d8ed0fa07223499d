"""Row arrays -> an in-memory SQLite database image, for ``INSERT ... SELECT`` in the writer.

Binding a group's rows through Python's sqlite3 costs about as much as SQLite's own insert:
every value becomes a Python int (``tolist``) and then one ``sqlite3_bind_int64`` call,
~40 ns per value, 15 values a trade row. Instead, numpy writes the rows straight in
SQLite's file format (https://www.sqlite.org/fileformat2.html), the
connection ``deserialize``s that image into an attached in-memory schema, and one
``INSERT ... SELECT`` per table copies the rows inside SQLite, in C::

    image = StageImage({"trades": cols, ...})     # once: template with the stage tables
    buf = image.build({"trades": rows2d, ...})    # per group: numpy uint8, the whole file
    conn.deserialize(buf, name="stage")           # then INSERT INTO main.t SELECT ... FROM stage.t

The image is deliberately uniform, so building it is a few array operations: page size
65536, one table b-tree per table rooted at its page in the template; every cell of a table
has the same size (each column gets the one serial type that holds all of its values in
this image: 0, 1, 2, 4 or 8 big-endian bytes; rowids start at 2^14 so their varint is
always 3 bytes), packed at the end of each leaf page; with more than one leaf the root
becomes an interior page over them (one level holds millions of rows; ``build`` refuses
more). SQLite checks what it reads, so a broken image is an error
(``sqlite3.DatabaseError``), not wrong rows; the tests run ``PRAGMA integrity_check`` on
images and compare the writer's result with the ``executemany`` path row for row.
"""
from __future__ import annotations

import sqlite3

import numpy as np

PAGE = 65536                   # bytes per page of the image
_LEAF, _INTERIOR = 0x0D, 0x05  # b-tree page types
_LEAF_HEADER, _INTERIOR_HEADER = 8, 12
_SIZE_OFFSET = 28              # database header: size of the database in pages (big-endian)
FIRST_ROWID = 1 << 14          # rowids 2^14 .. 2^21-1 are all 3-byte varints
MAX_ROWS = (1 << 21) - FIRST_ROWID


def varint(v: int) -> bytes:
    """SQLite varint (big-endian groups of 7 bits, high bit set on all but the last)."""
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


# serial types by the bytes a value needs (type 8 is the constant 0: no bytes at all);
# only numpy's integer widths, so a column is one cast (types 3 and 5 are not used)
_TYPES = ((0, 8), (1, 1), (2, 2), (4, 4), (8, 6))


def _column_range(arr: np.ndarray) -> tuple[list[int], list[int]]:
    """Per-column min and max; folds 16 rows per step (numpy reduces short rows slowly)."""
    n, c = arr.shape
    head = n - n % 16
    lo, hi = [arr[head:]], [arr[head:]]
    if head:
        wide = arr[:head].reshape(-1, 16 * c)
        lo.append(wide.min(axis=0).reshape(16, c))
        hi.append(wide.max(axis=0).reshape(16, c))
    return np.concatenate(lo).min(axis=0).tolist(), np.concatenate(hi).max(axis=0).tolist()


def _widths(arr: np.ndarray) -> tuple[list[int], list[int]]:
    """Per column: the fewest bytes (0, 1, 2, 4 or 8) holding every value, and its serial
    type. One layout per column keeps every cell of the table the same size."""
    widths, types = [], []
    for a, b in zip(*_column_range(arr)):
        for w, t in _TYPES:
            if (w == 0 and a == b == 0) or (w and -(1 << (8 * w - 1)) <= a and
                                            b < (1 << (8 * w - 1))):
                widths.append(w)
                types.append(t)
                break
    return widths, types


class StageImage:
    """Builds images holding ``tables`` ({name: [column, ...]}), all columns int64."""

    def __init__(self, tables: dict[str, list[str]]):
        self.columns = {t: list(cols) for t, cols in tables.items()}
        mem = sqlite3.connect(":memory:")
        mem.execute(f"PRAGMA page_size={PAGE}")
        for t, cols in self.columns.items():
            mem.execute(f"CREATE TABLE {t} ({', '.join(cols)})")
        self.root = dict(mem.execute("SELECT name, rootpage FROM sqlite_schema"))
        self.template = np.frombuffer(mem.serialize(), np.uint8).copy()
        mem.close()
        self.template_pages = len(self.template) // PAGE
        assert self.template[16] == 0 and self.template[17] == 1      # 65536 is stored as 1

    def build(self, rows: dict[str, np.ndarray]) -> np.ndarray:
        """The image bytes for these 2-D int64 row arrays (missing tables stay empty)."""
        # (table, rows, first page, leaves, cell layout); rows and layout None if empty
        plan: list[tuple[str, np.ndarray | None, int, int, _Cells | None]] = []
        pages = self.template_pages
        for t, cols in self.columns.items():
            arr = rows.get(t)
            n = 0 if arr is None else len(arr)
            if arr is None or not n:
                plan.append((t, None, self.root[t], 1, None))
                continue
            assert arr.ndim == 2 and arr.shape[1] == len(cols) and arr.dtype == np.int64
            if n > MAX_ROWS:
                raise ValueError(f"{n} rows of {t} do not fit one stage image")
            layout = _Cells(arr)
            leaves = -(-n // layout.per_leaf)
            if leaves - 1 > (PAGE - _INTERIOR_HEADER) // (4 + 3 + 2):   # one root page
                raise ValueError(f"{n} rows of {t} do not fit one stage image")
            first = pages + 1 if leaves > 1 else self.root[t]
            plan.append((t, arr, first, leaves, layout))
            pages += leaves if leaves > 1 else 0
        img = np.zeros(pages * PAGE, np.uint8)
        img[:len(self.template)] = self.template
        img[_SIZE_OFFSET:_SIZE_OFFSET + 4] = np.frombuffer(pages.to_bytes(4, "big"), np.uint8)
        by_page = img.reshape(pages, PAGE)
        for t, arr, first, leaves, cell in plan:
            if arr is None or cell is None:
                _header(by_page[first - 1], _LEAF, 0, PAGE)
                continue
            n, per = len(arr), cell.per_leaf
            full = n // per                             # leaves holding exactly `per` rows
            if full:
                cell.fill(by_page[first - 1:first - 1 + full], arr[:full * per], 0)
            if n > full * per:
                cell.fill(by_page[first - 1 + full:first + full], arr[full * per:], full * per)
            if leaves > 1:
                keys = [FIRST_ROWID + min(n, (j + 1) * per) - 1 for j in range(leaves - 1)]
                _interior(by_page[self.root[t] - 1], first, keys)
        return img


class _Cells:
    """The uniform cell layout of one table in one image, and the leaves it fills."""

    def __init__(self, arr: np.ndarray):
        self.widths, types = _widths(arr)
        ncols = len(types)
        self.header = bytes([1 + ncols, *types])        # record header: its size, types
        self.head = varint(len(self.header) + sum(self.widths))     # the payload's size
        # cell: head | rowid (3-byte varint) | record header | values, each the low
        # widths[c] bytes, big-endian: numpy's >i1 .. >i8 cast them (width 0: no bytes)
        self.dtype = np.dtype([("head", f"V{len(self.head)}"), ("rowid", "3u1"),
                               ("header", f"V{len(self.header)}")]
                              + [(f"c{c}", f">i{w}") for c, w in enumerate(self.widths) if w])
        self.size = self.dtype.itemsize
        self.per_leaf = (PAGE - _LEAF_HEADER) // (self.size + 2)

    def fill(self, pages: np.ndarray, arr: np.ndarray, first_row: int) -> None:
        """Leaves ``pages`` (k x PAGE) with ``arr``'s rows, the same count in each."""
        k = len(pages)
        m = len(arr) // k
        content = PAGE - m * self.size
        for page in pages[:, :_LEAF_HEADER]:
            _header(page, _LEAF, m, content)
        ptr = (content + self.size * np.arange(m)).astype(">u2").view(np.uint8)
        pages[:, _LEAF_HEADER:_LEAF_HEADER + 2 * m] = ptr
        pages[:, content:] = self.cells(arr, FIRST_ROWID + first_row).reshape(k, -1)

    def cells(self, arr: np.ndarray, first_rowid: int) -> np.ndarray:
        """The cells of ``arr``'s rows, numbered from ``first_rowid``, as bytes."""
        out = np.empty(len(arr), self.dtype)
        out["head"], out["header"] = self.head, self.header
        rowid = first_rowid + np.arange(len(arr))
        out["rowid"] = np.stack([0x80 | (rowid >> 14), 0x80 | ((rowid >> 7) & 0x7F),
                                 rowid & 0x7F], axis=1)
        for c, w in enumerate(self.widths):
            if w:
                out[f"c{c}"] = arr[:, c]
        return out.view(np.uint8)


def _header(page: np.ndarray, kind: int, ncells: int, content: int) -> None:
    page[0] = kind
    page[1:3] = 0                                      # no freeblocks
    page[3:5] = (ncells >> 8, ncells & 0xFF)
    c = content if content < PAGE else 0               # 0 stands for 65536
    page[5:7] = (c >> 8, c & 0xFF)
    page[7] = 0                                        # no fragmented bytes


def _interior(page: np.ndarray, first: int, keys: list[int]) -> None:
    """Root over leaves first, first+1, ...: cell j = (leaf j, its largest rowid)."""
    cells = [(first + j).to_bytes(4, "big") + varint(k) for j, k in enumerate(keys)]
    content = PAGE - sum(len(c) for c in cells)
    _header(page, _INTERIOR, len(cells), content)
    page[8:12] = np.frombuffer((first + len(keys)).to_bytes(4, "big"), np.uint8)  # right-most
    body = b"".join(cells)
    page[content:] = np.frombuffer(body, np.uint8)
    offsets, at = [], content
    for c in cells:
        offsets.append(at)
        at += len(c)
    page[_INTERIOR_HEADER:_INTERIOR_HEADER + 2 * len(cells)] = np.frombuffer(
        np.array(offsets, ">u2").tobytes(), np.uint8)
