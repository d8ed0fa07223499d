"""The compact snapshot format (FORMAT 2): only the parts of the state arrays in use.

A state array is stored in one of five ways (``KINDS``), chosen by its name:

    pool    book.o_*: one row per order slot; only the resting orders' slots are stored
            (``~slots``, ascending), the others read back as the field's fill value
    pages   book.lv_*: one row of PAGE levels per level page; only the pages in use
            (``~pages``: page_live > 0) are stored, whole
    stack   book.free_slots, book.free_pages: a stack whose first ``top`` entries are
            valid; its bottom ``prefix`` entries are still as new_book made them
            (n-1, n-2, ...), so only entries ``prefix .. top`` are stored
    sparse  page_table, page_live, bm, coid_tab, acct_head/acct_tail, wallets: the
            positions and values of the entries that differ from the fill value
    whole   anything else (markets, meta, best, the bitmap layout, ...; small), as is

Of the default config's 157 MB of arrays, an empty book with 2,000 funded accounts takes
116 kB (the wallets) and each resting order ~110 bytes. Nothing is compressed: zlib would
cut a book of 100k orders from 10.8 to 3.1 MB but costs 15-20 times the write
(perf/restart.py measures both).

Dead entries. What a freed order slot still holds (the fields of the order that last used
it), and the stack entries above ``top``, are never read by the kernels, so the snapshot
does not store them: loading sets them to their fill values. For the restored state to be
*byte-identical* to the engine that took the snapshot, taking it also resets them in the
engine itself (``canonicalize``), which costs in proportion to the orders allocated since
the previous snapshot, not to the pool: the free slots that can hold a former order's
fields all sit at stack positions ``>= top_then - allocations_since`` (entries below the
lowest point the stack reached are untouched; every allocation pops one and adds one to
the order sequence), and a ``Mark`` remembers where the stack and the order sequence
stood when the pool was last clean (without one: a new book's, sequence 1). A journal
segment starts at every snapshot the engine took, so a replay that crosses the start of
a segment resets the dead entries there too (``StateStore.recover``), and recovering
from an older snapshot gives the same bytes as from the newest.

Level pages that are free hold only fill values (a page is freed when its last level
empties: head = tail = -1, count = qty = 0), so they need no reset.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass

import numpy as np
from numpy.lib import format as npy

from ringex.config import Config
from ringex.core.order_book import COID_MASK, FREE_TOP, LIVE, ORDER_SEQ, PAGE, PAGE_TOP

FORMAT = 2
KINDS = ("pool", "pages", "stack", "sparse", "whole")

# fill values: what new_book/new_wallets put there, and what a dead entry reads back as
POOL_FILL = {"book.o_prev": -1, "book.o_next": -1, "book.o_aprev": -1, "book.o_anext": -1}
PAGE_FILL = {"book.lv_head": -1, "book.lv_tail": -1, "book.lv_qty": 0, "book.lv_count": 0}
SPARSE_FILL = {"book.page_table": -1, "book.page_live": 0, "book.bm": 0, "book.coid_tab": 0,
               "book.acct_head": -1, "book.acct_tail": -1,
               "wallets.avail": 0, "wallets.locked": 0}
STACK_TOP = {"book.free_slots": FREE_TOP, "book.free_pages": PAGE_TOP}   # meta word of top
SLOTS, PAGES = "~slots", "~pages"      # stored index arrays shared by pool / pages arrays


@dataclass(frozen=True)
class Mark:
    """Where the free-slot stack and the order sequence stood when every free slot last
    held only fill values; ``prefix``: stack entries still as new_book left them."""
    top: int
    seq: int
    prefix: int


@dataclass
class Capture:
    """The live state after ``batch``, copied out of the engine (what a snapshot file
    stores: ``encode``'s arrays and layout)."""
    batch: int
    stored: dict[str, np.ndarray]
    layout: dict[str, dict]
    seconds: float                          # how long capturing paused the caller

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.stored.values())


def kind_of(name: str, arr: np.ndarray, n_slots: int, n_pages: int) -> str:
    if name.startswith("book.o_") and arr.ndim == 1 and len(arr) == n_slots:
        return "pool"
    if name in PAGE_FILL and arr.size == n_pages * PAGE:
        return "pages"
    if name in STACK_TOP:
        return "stack"
    if name in SPARSE_FILL:
        return "sparse"
    return "whole"


def fill_of(name: str) -> int:
    return POOL_FILL.get(name, PAGE_FILL.get(name, SPARSE_FILL.get(name, 0)))


def _sizes(arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    return len(arrays["book.o_id"]), len(arrays["book.page_live"])


def _pristine(n: int, a: int, b: int) -> np.ndarray:
    """Entries a..b of a stack as new_book made it: n-1-i at position i."""
    return np.arange(n - 1 - a, n - 1 - b, -1, dtype=np.int32)


def _prefix(stack: np.ndarray, start: int, top: int) -> int:
    """The number of bottom entries still pristine, knowing the first ``start`` are."""
    diff = np.flatnonzero(stack[start:top] != _pristine(len(stack), start, top))
    return start + int(diff[0]) if len(diff) else top


def canonicalize(arrays: dict[str, np.ndarray], mark: Mark | None) -> Mark:
    """Reset the dead entries of the pool and of both stacks to their fill values, in
    place; returns the new mark. ``mark`` None: nothing known but the state's own order
    sequence, so the mark of a new book (sequence 1, nothing popped) bounds what may be
    dead: every slot popped since, which for an old state is all of them."""
    n_slots, n_pages = _sizes(arrays)
    meta, slots = arrays["book.meta"], arrays["book.free_slots"]
    top, seq = int(meta[FREE_TOP]), int(meta[ORDER_SEQ])
    mark = mark or Mark(n_slots, 1, n_slots)
    lo = max(0, min(mark.top - (seq - mark.seq), top))
    start = min(mark.prefix, lo)
    dirty = slots[lo:top]              # free slots that may hold a former order's fields
    if len(dirty):
        for name, arr in arrays.items():
            if kind_of(name, arr, n_slots, n_pages) == "pool":
                arr[dirty] = fill_of(name)
    slots[top:] = _pristine(n_slots, top, n_slots)
    pages, page_top = arrays["book.free_pages"], int(meta[PAGE_TOP])
    pages[page_top:] = _pristine(n_pages, page_top, n_pages)
    return Mark(top, seq, _prefix(slots, start, top))


def encode(arrays: dict[str, np.ndarray],
           mark: Mark) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """(stored arrays, layout) of canonical state arrays (``canonicalize`` first; ``mark``
    is what it returned). The stored arrays are copies: the state may change after."""
    n_slots, n_pages = _sizes(arrays)
    meta = arrays["book.meta"]
    # resting orders (between commands): slots with an id, none of them among the
    # pristine bottom of the free stack (slots n-1, n-2, ...: free, so not looked at)
    live = np.flatnonzero(arrays["book.o_id"][:n_slots - mark.prefix])
    if len(live) != meta[LIVE]:
        raise ValueError(f"{len(live)} order slots in use but {int(meta[LIVE])} live orders")
    used = np.flatnonzero(arrays["book.page_live"])
    stored: dict[str, np.ndarray] = {SLOTS: live, PAGES: used}
    layout: dict[str, dict] = {}
    for name, arr in arrays.items():
        kind = kind_of(name, arr, n_slots, n_pages)
        entry: dict = {"kind": kind, "dtype": arr.dtype.str, "shape": list(arr.shape),
                       "fill": fill_of(name)}
        if kind == "pool":
            stored[name] = arr[live]
        elif kind == "pages":
            stored[name] = arr.reshape(-1, PAGE)[used]
        elif kind == "stack":
            top = int(meta[STACK_TOP[name]])
            prefix = mark.prefix if name == "book.free_slots" else _prefix(arr, 0, top)
            entry.update(top=top, prefix=prefix)
            stored[name] = arr[prefix:top].copy()
        elif kind == "sparse":
            flat = arr.reshape(-1)
            found = _coid_entries(arrays, live) if name == "book.coid_tab" else None
            if found is None:
                idx = _differing(flat, entry["fill"])
                found = idx, flat[idx]
            stored[name + "~idx"], stored[name] = found
        else:
            stored[name] = arr.copy()
        layout[name] = entry
    return stored, layout


def decode_into(target: dict[str, np.ndarray], stored: dict[str, np.ndarray],
                layout: dict[str, dict], mark: Mark | None) -> Mark:
    """Write a snapshot's arrays into ``target`` (a service's state arrays, ``mark`` its
    mark or None): every entry, fill values where nothing is stored. Checks everything
    before writing anything (ValueError), so a bad snapshot leaves ``target`` as it was.
    Returns the new mark.

    Only what may differ is written: ``target``'s dead entries are reset
    (``canonicalize``), then its live slots, pages in use and sparse entries, so loading
    into a fresh service touches little more than the snapshot's own entries (a fresh
    service's arrays are mostly untouched zero pages)."""
    _check(target, stored, layout)
    n_slots, n_pages = _sizes(target)
    canonicalize(target, mark)
    live_t = np.flatnonzero(target["book.o_id"])
    used_t = np.flatnonzero(target["book.page_live"])
    live, used = stored[SLOTS], stored[PAGES]
    prefix = 0
    for name, arr in target.items():
        entry, fill = layout[name], layout[name]["fill"]
        kind = entry["kind"]
        if kind == "pool":
            arr[live_t] = fill
            arr[live] = stored[name]
        elif kind == "pages":
            rows = arr.reshape(-1, PAGE)
            rows[used_t] = fill
            rows[used] = stored[name]
        elif kind == "stack":
            n, top, p = len(arr), entry["top"], entry["prefix"]
            arr[:p] = _pristine(n, 0, p)
            arr[p:top] = stored[name]
            arr[top:] = _pristine(n, top, n)
            if name == "book.free_slots":
                prefix = p
        elif kind == "sparse":
            flat = arr.reshape(-1)
            flat[_differing(flat, fill)] = fill
            flat[stored[name + "~idx"]] = stored[name]
        else:
            np.copyto(arr, stored[name])
    meta = target["book.meta"]
    return Mark(int(meta[FREE_TOP]), int(meta[ORDER_SEQ]), prefix)


# client_ids._home's multipliers: where a (account, client order id) starts probing
_HASH_COID, _HASH_ACCOUNT = np.int64(-7046029254386353131), np.int64(-4417276706812531889)
PROBES = 64


def _coid_entries(arrays: dict[str, np.ndarray],
                  live: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(positions, values) of ``coid_tab``'s entries, ascending: where the resting orders'
    client ids sit, found by probing from each one's hash as ``client_ids.coid_find``
    does, vectorised (a scan of the whole table costs more, and reads 16 MB for the
    default config). None if an entry is not found within PROBES steps (then the caller
    scans)."""
    tab, mask = arrays["book.coid_tab"], int(arrays["book.meta"][COID_MASK])
    slots = live[arrays["book.o_coid"][live] != 0]
    h = (arrays["book.o_coid"][slots] * _HASH_COID) ^ (arrays["book.o_account"][slots]
                                                       * _HASH_ACCOUNT)
    pos = (h ^ (h >> 29)) & mask
    want = slots + 1
    todo = np.arange(len(slots))
    for _ in range(PROBES):
        hit = tab[pos[todo]] == want[todo]
        todo = todo[~hit]
        if not len(todo):
            order = np.argsort(pos)
            return pos[order], want[order].astype(tab.dtype)
        pos[todo] = (pos[todo] + 1) & mask
    return None


def _differing(flat: np.ndarray, fill: int) -> np.ndarray:
    """Positions of the entries that are not ``fill``."""
    return np.flatnonzero(flat) if fill == 0 else np.flatnonzero(flat != fill)


def _check(target: dict[str, np.ndarray], stored: dict[str, np.ndarray],
           layout: dict[str, dict]) -> None:
    if set(layout) != set(target):
        raise ValueError(f"state arrays differ: {sorted(set(layout) ^ set(target))}")
    n_slots, n_pages = _sizes(target)
    live, used = _index(stored, SLOTS, n_slots), _index(stored, PAGES, n_pages)
    for name, arr in target.items():
        entry = layout[name]
        kind = entry.get("kind")
        if entry.get("dtype") != arr.dtype.str or tuple(entry.get("shape", ())) != arr.shape:
            raise ValueError(f"{name}: saved {entry.get('dtype')}{entry.get('shape')}, "
                             f"have {arr.dtype.str}{list(arr.shape)}")
        if kind != kind_of(name, arr, n_slots, n_pages) or kind not in KINDS:
            raise ValueError(f"{name}: stored as {kind!r}")
        rows: tuple[int, ...]
        if kind == "pool":
            rows = (len(live),)
        elif kind == "pages":
            rows = (len(used), PAGE)
        elif kind == "stack":
            top, p = entry.get("top", -1), entry.get("prefix", -1)
            if not 0 <= p <= top <= len(arr):
                raise ValueError(f"{name}: prefix {p}, top {top} of {len(arr)}")
            rows = (top - p,)
        elif kind == "sparse":
            rows = (len(_index(stored, name + "~idx", arr.size)),)
        else:
            rows = arr.shape
        got = stored.get(name)
        if got is None or got.dtype != arr.dtype or got.shape != rows:
            raise ValueError(f"{name}: stored {None if got is None else got.shape}, "
                             f"want {rows} of {arr.dtype}")


def _index(stored: dict[str, np.ndarray], key: str, size: int) -> np.ndarray:
    """An ascending array of positions below ``size``."""
    idx = stored.get(key)
    if idx is None or idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"{key}: missing or not an index array")
    if len(idx) and (idx[0] < 0 or idx[-1] >= size or np.any(np.diff(idx) <= 0)):
        raise ValueError(f"{key}: positions out of order or out of range (size {size})")
    return idx


# ---------------------------------------------------------------- the file
def digest(arrays: dict[str, np.ndarray], extra: bytes = b"") -> str:
    """sha256 over the arrays (by name) and ``extra`` (FORMAT 2: the rest of the meta)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).reshape(-1).view(np.uint8).data)
    h.update(extra)
    return h.hexdigest()


def signed_json(obj) -> bytes:
    """The bytes of a JSON object that a digest covers (key order fixed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def config_fingerprint(config: Config) -> str:
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


def write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """What ``np.savez`` writes (uncompressed; ``np.load`` reads it), without copying:
    savez copies each array through ``tobytes`` holding the GIL, which from the snapshot
    thread stalled the engine loop for milliseconds at a time."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            with z.open(name + ".npy", "w", force_zip64=True) as out:
                npy.write_array_header_1_0(out, npy.header_data_from_array_1_0(arr))
                out.write(arr.reshape(-1).view(np.uint8).data)
