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
copy may be torn or newer: it is discarded, never returned. The Python methods below do
this with numpy over a whole batch (every stamp read, then every record copied, then every
stamp read again: each record's checks still bracket its copy, and x86-64 keeps loads in
order and stores in order), so readers need no numba; the matcher publishes with
``ringex.ring.kernels.bcast_write``, the same rules one record at a time.

Overrun semantics: ``read()`` returns ``(records, lost)``. ``records`` are consecutive
records, oldest first; ``lost`` is how many records the reader missed immediately before
``records[0]`` (or before whatever the next read returns, when ``records`` is empty)
because the producer overwrote them. After an overrun the reader resynchronises to the
oldest record still in the ring. A reader that is not lapped always gets ``lost == 0``.
"""
from __future__ import annotations

import os

import numpy as np

from ringex.ring.shm import (CACHE_LINE, CAPACITY, HEAD, HEADER_BYTES, KIND_BROADCAST,
                             PID_CLOSED, PRODUCER_PID, Segment)
from ringex.ring.spsc import ByteSlots, RecordArena, copy_in, copy_out
from ringex.ring.wait import Gate, WaitStrategy

FEW = 16          # reads of up to this many records go one record at a time


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
        self._ramp = np.arange(0, 2 * cap, 2, dtype=np.int64)   # 2j: stamps of a batch
        self._stamp_words = self.stamps.data                    # cheap single reads
        self._slot_bytes = ByteSlots(self.slots)
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
        if records.ndim != 1:
            raise ValueError(f"records must be a 1-D array, not {records.ndim}-D")
        total = len(records)
        head = self._words[HEAD]
        src, item = memoryview(records.tobytes()), self.dtype.itemsize
        for at in range(0, total, self.capacity):       # a batch never laps itself
            k = min(self.capacity, total - at)
            c = head + at
            stamps = 2 * c + self._ramp[:k]
            self._set_stamps(c, stamps + 1)             # in progress
            self._slot_bytes.put(c & self.mask, src[at * item:(at + k) * item])
            self._set_stamps(c, stamps + 2)             # complete
        self._words[HEAD] = head + total
        return total

    def _set_stamps(self, c: int, values: np.ndarray) -> None:
        copy_in(self.stamps, c & self.mask, values)

    def _stamps(self, r: int, k: int) -> np.ndarray:
        """A copy of the stamps of records r .. r+k-1 (k <= capacity)."""
        out = np.empty(k, np.int64)
        copy_out(self.stamps, r & self.mask, out)
        return out

    def read_batch(self, cursor: int, out: np.ndarray, limit: int,
                   out_bytes: memoryview | None = None) -> tuple[int, int, int]:
        """(Reader) up to ``limit`` consecutive records from ``cursor`` into ``out``:
        ``(n, lost, new cursor)`` with the overrun semantics of ``BroadcastReader.read``.
        ``out_bytes``: the same memory as a byte memoryview, if the caller has one."""
        cap = self.capacity
        r, lost = cursor, 0
        head = self._words[HEAD]
        if head - r > cap:
            lost, r = head - cap - r, head - cap
        if out_bytes is None:
            out_bytes = out.view(np.uint8).data
        if min(limit, head - r) <= FEW:
            return self._read_few(r, head, out_bytes, limit, lost)
        item = self.dtype.itemsize
        while (k := min(limit, head - r)) > 0:
            want = 2 * r + 2 + self._ramp[:k]
            before = self._stamps(r, k)
            self._slot_bytes.get(r & self.mask, out_bytes[:k * item])
            ok = (before == want) & (self._stamps(r, k) == want)
            n = k if ok.all() else int(ok.argmin())
            if n:                            # a gap after them is reported next call
                return n, lost, r + n
            head = self._words[HEAD]         # record r was overwritten: skip past it
            skip = max(r + 1, head - cap) - r
            lost += skip
            r += skip
        return 0, lost, r

    def _read_few(self, r: int, head: int, dst: memoryview, limit: int,
                  lost: int) -> tuple[int, int, int]:
        """``read_batch`` one record at a time, as the matcher's kernel does it: for a few
        records, a dozen numpy calls over the batch would cost ten times more."""
        stamps, slots, item = self._stamp_words, self._slot_bytes, self._slot_bytes.item
        n = 0
        while n < limit and r < head:
            s = r & self.mask
            want = 2 * r + 2
            if stamps[s] == want:
                slots.get(s, dst[n * item:(n + 1) * item])
                if stamps[s] == want:
                    n += 1
                    r += 1
                    continue
            if n:                            # a gap after them is reported next call
                break
            head = self._words[HEAD]         # record r was overwritten: skip past it
            skip = max(r + 1, head - self.capacity) - r
            lost += skip
            r += skip
        return n, lost, r

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
        self._slot_bytes.release()
        self._stamp_words.release()
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

    ``cursor_arr`` (int64[1]) holds the cursor so numba code (``bcast_read_into`` in
    ``ringex.ring.kernels``) and the Python methods can share it."""

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
        out, dst = self._arena.take_bytes(ready)   # may be empty: still reports an overrun
        n, lost = self._read(out, ready, dst)
        return self._arena.give_back(out, n), lost

    def read_into(self, out: np.ndarray) -> tuple[int, int]:
        """Like ``read(len(out))`` but copies into ``out``: returns ``(n, lost)``."""
        ring = self.ring
        if out.dtype is not ring.dtype and out.dtype != ring.dtype:
            raise TypeError(f"out has dtype {out.dtype}, ring holds {ring.dtype}")
        if out.ndim != 1:
            raise ValueError(f"out must be a 1-D array, not {out.ndim}-D")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        if out.flags.c_contiguous:
            return self._read(out, len(out))
        tmp = self._arena.take(len(out))
        n, lost = self._read(tmp, len(out))
        out[:n] = tmp[:n]
        return n, lost

    def _read(self, out: np.ndarray, limit: int,
              out_bytes: memoryview | None = None) -> tuple[int, int]:
        n, lost, cursor = self.ring.read_batch(self.cursor_arr.item(0), out,
                                               min(limit, len(out)), out_bytes)
        self.cursor_arr[0] = cursor
        return n, lost

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
