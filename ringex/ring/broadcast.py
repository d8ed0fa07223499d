"""One producer, many readers: a ring the producer never waits on (market data).

Layout: the common 512-byte header (``ringex.ring.shm``; HEAD and PRODUCER_PID used), then
``capacity`` int64 stamps (one per slot), then the record slots at the next 64-byte line.

Record ``c`` (0, 1, 2, ...) goes to slot ``c & (capacity - 1)``. Its stamp is a seqlock:

    stamp = 2c + 1   the producer is writing record c into the slot (in progress)
    stamp = 2c + 2   record c is complete in the slot
    (0: the slot was never written)

The producer writes: stamp odd, release fence, record, stamp even (release), and after a
batch it release-stores HEAD = records ever written. Each reader keeps its own cursor (in
the reader object, never shared) and checks, for record ``r``, that the slot's stamp is
exactly ``2r + 2`` both before and after copying the record (acquire fence between the
copy and the second check). Any other stamp means the producer lapped the reader and the
copy may be torn or newer: it is discarded, never returned. The Python methods call the
numba functions at the bottom of this module: one implementation of these rules.

Overrun semantics: ``read()`` returns ``(records, lost)``. ``records`` are consecutive
records, oldest first; ``lost`` is how many records the reader missed immediately before
``records[0]`` (or before whatever the next read returns, when ``records`` is empty)
because the producer overwrote them. After an overrun the reader resynchronises to the
oldest record still in the ring. A reader that is not lapped always gets ``lost == 0``.
"""
from __future__ import annotations

import os

import numpy as np
from numba import typeof, types

from ringex.jit import njit
from ringex.ring.atomics import (fence_acquire, fence_release, load_acquire, load_relaxed,
                                 store_relaxed, store_release)
from ringex.ring.shm import (CACHE_LINE, CAPACITY, HEAD, HEADER_BYTES, KIND_BROADCAST,
                             PID_CLOSED, PRODUCER_PID, Segment)
from ringex.ring.spsc import RecordArena, compiled_entry
from ringex.ring.wait import Gate, WaitStrategy


def _slots_offset(capacity: int) -> int:
    stamps_end = HEADER_BYTES + 8 * capacity
    return -(-stamps_end // CACHE_LINE) * CACHE_LINE


class BroadcastRing:
    """The shared ring. One process publishes (``role="producer"``: its pid goes in the
    header so readers notice when it dies); every reader process ``attach``es and makes a
    ``reader()``."""

    def __init__(self, seg: Segment, dtype: np.dtype, role: str | None):
        self._seg = seg
        self.name = seg.name
        self.dtype = np.dtype(dtype)
        hdr = seg.header()
        self.capacity = cap = int(hdr[CAPACITY])
        self.mask = cap - 1
        self.hdr = hdr
        self.stamps = seg.view(HEADER_BYTES, np.int64, cap)
        self.slots = seg.view(_slots_offset(cap), self.dtype, cap)
        self._words = seg.words
        hs = (typeof(self.hdr), typeof(self.stamps), typeof(self.slots))
        self._write = compiled_entry(bcast_write, hs + (typeof(self.slots), types.int64))
        self._read_into = compiled_entry(
            bcast_read_into, hs + (typeof(self.stamps), typeof(self.slots), types.int64))
        self.data_gate = Gate(self.hdr, None, PRODUCER_PID, self.name)
        self.role = role
        if role is not None:
            self.hdr[PRODUCER_PID] = os.getpid()

    @classmethod
    def create(cls, name: str, dtype: np.dtype, capacity: int, *,
               role: str | None = None) -> BroadcastRing:
        """Create ring ``name``; this object owns it (``close()`` unlinks). Pass
        ``role="producer"`` if this process also publishes (readers watch its pid)."""
        _check_role(role)
        seg = Segment.create(name, KIND_BROADCAST, dtype, capacity, _slots_offset(capacity))
        return cls(seg, dtype, role)

    @classmethod
    def attach(cls, name: str, dtype: np.dtype, *, capacity: int | None = None,
               role: str | None = None) -> BroadcastRing:
        """Attach (readers: no role); RingNotFound if missing, RingError if it differs."""
        _check_role(role)
        return cls(Segment.attach(name, KIND_BROADCAST, dtype, capacity), dtype, role)

    @property
    def head(self) -> int:
        """Records ever written."""
        return self._words[HEAD]

    # ---------------------------------------------------------------- producer
    def write(self, records: np.ndarray) -> int:
        """Publish all ``records`` (never waits; laps slow readers). Returns ``len(records)``."""
        if records.dtype is not self.dtype and records.dtype != self.dtype:
            raise TypeError(f"records have dtype {records.dtype}, ring holds {self.dtype}")
        fn = self._write if records.ndim == 1 and records.flags.carray else bcast_write
        return fn(self.hdr, self.stamps, self.slots, records, len(records))

    def reader(self, start: str = "latest") -> BroadcastReader:
        """A new reader: ``start="latest"`` sees only records written from now on,
        ``"oldest"`` starts at the oldest record still in the ring."""
        return BroadcastReader(self, start)

    # ---------------------------------------------------------------- lifecycle
    @property
    def owner(self) -> bool:
        return self._seg.owner

    @property
    def closed(self) -> bool:
        return self._seg.closed

    def close(self) -> None:
        """Mark the producer closed (if this is it), drop views, unmap; creator unlinks.
        Readers made from this object must not be used afterwards."""
        if self._seg.closed:
            return
        if self.role is not None and self.hdr[PRODUCER_PID] == os.getpid():
            self.hdr[PRODUCER_PID] = PID_CLOSED
        # Drop the views so the segment can unmap. Typed as always set: the hot paths use
        # them unchecked, and a closed ring must not be used.
        self.hdr = self.stamps = self.slots = None  # type: ignore[assignment]
        self._words = self.data_gate = None  # type: ignore[assignment]
        self._seg.close()

    def __enter__(self) -> BroadcastRing:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"head={self.head} cap={self.capacity}"
        return f"<BroadcastRing {self.name!r} {state}>"


class BroadcastReader:
    """One reader's cursor over a BroadcastRing (process-local, never shared).

    ``cursor_arr`` (int64[1]) holds the cursor so numba code (``bcast_read_into``) and the
    Python methods can share it."""

    def __init__(self, ring: BroadcastRing, start: str = "latest"):
        if start not in ("latest", "oldest"):
            raise ValueError(f"start must be 'latest' or 'oldest', got {start!r}")
        self.ring = ring
        self._arena = RecordArena(ring.dtype)
        head = ring.head
        self.cursor_arr = np.array([head if start == "latest" else max(0, head - ring.capacity)],
                                   dtype=np.int64)

    @property
    def cursor(self) -> int:
        """Index of the next record this reader will get."""
        return self.cursor_arr.item(0)

    def __len__(self) -> int:
        """Records written since the cursor (more than ``capacity`` means overrun)."""
        return self.ring._words[HEAD] - self.cursor_arr.item(0)

    def read(self, max_n: int) -> tuple[np.ndarray, int]:
        """``(records, lost)``: up to ``max_n`` consecutive records and the count missed
        just before them (see module docstring). ``records`` is a fresh array."""
        ring = self.ring
        pending = ring._words[HEAD] - self.cursor_arr.item(0)
        if pending <= 0:
            return self._arena.empty, 0
        ready = max(0, min(pending, max_n, ring.capacity))
        out = self._arena.take(ready)              # may be empty: still reports an overrun
        n, lost = ring._read_into(ring.hdr, ring.stamps, ring.slots, self.cursor_arr, out, ready)
        return self._arena.give_back(out, n), lost

    def read_into(self, out: np.ndarray) -> tuple[int, int]:
        """Like ``read(len(out))`` but copies into ``out``: returns ``(n, lost)``."""
        ring = self.ring
        if out.dtype is not ring.dtype and out.dtype != ring.dtype:
            raise TypeError(f"out has dtype {out.dtype}, ring holds {ring.dtype}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        fn = ring._read_into if out.ndim == 1 and out.flags.carray else bcast_read_into
        return fn(ring.hdr, ring.stamps, ring.slots, self.cursor_arr, out, len(out))

    def read_wait(self, max_n: int, wait: WaitStrategy, *,
                  timeout: float | None = None) -> tuple[np.ndarray, int]:
        """Wait with ``wait`` (busy_spin or spin_then_sleep; a broadcast ring has no
        sleeping flag for eventfd), then ``read``. Empty on timeout; PeerGone once the
        producer is gone and everything it wrote was read."""
        if not wait.wait(self.__len__, self.ring.data_gate, timeout):
            return self._arena.empty, 0
        return self.read(max_n)


def _check_role(role: str | None) -> None:
    if role not in ("producer", None):
        raise ValueError(f"role must be 'producer' or None, got {role!r}")


# -------------------------------------------------------------------- numba side
# hdr, stamps, slots: ring.hdr, ring.stamps, ring.slots; cursor: reader.cursor_arr.

@njit(cache=True)
def bcast_write(hdr, stamps, slots, recs, n):
    """(Producer) publish ``recs[:n]``; never waits. Returns n."""
    n = min(n, len(recs))
    head = load_relaxed(hdr, HEAD)
    mask = len(slots) - 1
    for j in range(n):
        c = head + j
        s = c & mask
        store_relaxed(stamps, s, 2 * c + 1)
        fence_release()
        slots[s] = recs[j]
        store_release(stamps, s, 2 * c + 2)
    store_release(hdr, HEAD, head + n)
    return n


@njit(cache=True)
def bcast_read_into(hdr, stamps, slots, cursor, out, max_n):
    """(Reader) copy up to ``max_n`` consecutive records into ``out``; advance
    ``cursor[0]``. Returns ``(n, lost)`` with the overrun semantics of ``read()``."""
    cap = len(slots)
    mask = cap - 1
    limit = min(max_n, len(out))
    r = cursor[0]
    lost = 0
    n = 0
    head = load_acquire(hdr, HEAD)
    if head - r > cap:
        lost += head - cap - r
        r = head - cap
    while n < limit and r < head:
        s = r & mask
        want = 2 * r + 2
        if load_acquire(stamps, s) == want:
            out[n] = slots[s]
            fence_acquire()
            if load_relaxed(stamps, s) == want:
                n += 1
                r += 1
                continue
        if n > 0:              # keep the batch consecutive: report the gap next call
            break
        head = load_acquire(hdr, HEAD)
        skip = max(r + 1, head - cap) - r
        lost += skip
        r += skip
    cursor[0] = r
    return n, lost
