"""Single-producer/single-consumer ring of fixed-size records in shared memory.

Layout: the common 512-byte header (``ringex.ring.shm``), then ``capacity`` record slots.
The producer owns HEAD (records ever written), the consumer owns TAIL (records ever read);
record ``c`` lives in slot ``c & (capacity - 1)``; ``HEAD - TAIL`` records are readable and
``capacity - (HEAD - TAIL)`` slots are free. A full ring refuses writes; nothing unread is
ever overwritten.

Ordering: a side copies records, then publishes its own cursor with a release store; it
reads the peer's cursor with an acquire load before touching the slots (the numba functions
below, with ``ringex.ring.atomics``). Python only ever *reads* cursors directly (``len``,
``free``); every copy and cursor store goes through the same numba functions.

Two APIs over the same memory (they can be mixed; each side must be one process):
  * Python: ``SpscRing.write / write_all / read / read_into / read_wait / len() / free()``:
    thin calls into the numba functions (one call per batch, ~0.15 us through the compiled
    entry point; a compiled loop copies the records, ~500 M records/s in cache). numpy
    slice assignment of a structured dtype would cost ~3 us per record, and even a
    void-dtype view of the records ~0.25 us just to make.
  * numba: ``ring_available, ring_free, ring_read_into, ring_write, ring_wait_available``
    over ``ring.hdr`` (int64 header) and ``ring.slots`` (structured array), for hot loops.
"""
from __future__ import annotations

import os

import numpy as np
from numba import typeof, types

from ringex.jit import njit
from ringex.ring.atomics import cpu_relax, load_acquire, load_relaxed, store_release
from ringex.ring.shm import (CAPACITY, CONSUMER_PID, CONSUMER_SLEEPING, HEAD, HEADER_BYTES,
                             KIND_SPSC, PID_CLOSED, PRODUCER_PID, PRODUCER_SLEEPING, TAIL,
                             Segment)
from ringex.ring.wait import Gate, WaitStrategy

PRODUCER = "producer"
CONSUMER = "consumer"
_ROLE_WORD = {PRODUCER: PRODUCER_PID, CONSUMER: CONSUMER_PID, None: None}


class SpscRing:
    """One direction between two processes. ``create`` in one, ``attach`` in the other.

    ``role`` ("producer", "consumer" or None) registers this process's pid in the header so
    the peer's wait strategy can tell when it dies; closing marks the role closed.
    """

    def __init__(self, seg: Segment, dtype: np.dtype, role: str | None):
        self._seg = seg
        self.name = seg.name
        self.dtype = np.dtype(dtype)
        hdr = seg.header()
        self.capacity = int(hdr[CAPACITY])
        self.mask = self.capacity - 1
        self.hdr = hdr                                       # int64[64], numba-callable
        self.slots = seg.view(HEADER_BYTES, self.dtype, self.capacity)
        self._words = seg.words                              # same header, cheap Python reads
        self._arena = RecordArena(self.dtype)
        argtypes = (typeof(self.hdr), typeof(self.slots), typeof(self.slots), types.int64)
        self._write = compiled_entry(ring_write, argtypes)
        self._read_into = compiled_entry(ring_read_into, argtypes)
        self.data_gate = Gate(self.hdr, CONSUMER_SLEEPING, PRODUCER_PID, self.name)
        self.space_gate = Gate(self.hdr, PRODUCER_SLEEPING, CONSUMER_PID, self.name)
        self.role = role
        if role is not None:
            self.hdr[_ROLE_WORD[role]] = os.getpid()

    @classmethod
    def create(cls, name: str, dtype: np.dtype, capacity: int, *,
               role: str | None = None) -> SpscRing:
        """Create ring ``name`` (must start with "ringex"); this object owns and unlinks it."""
        _check_role(role)
        return cls(Segment.create(name, KIND_SPSC, dtype, capacity, HEADER_BYTES), dtype, role)

    @classmethod
    def attach(cls, name: str, dtype: np.dtype, *, capacity: int | None = None,
               role: str | None = None) -> SpscRing:
        """Attach to an existing ring; RingNotFound if missing, RingError if it differs."""
        _check_role(role)
        return cls(Segment.attach(name, KIND_SPSC, dtype, capacity), dtype, role)

    # ---------------------------------------------------------------- producer side
    def write(self, records: np.ndarray) -> int:
        """Copy as many of ``records`` as fit; return how many (0: ring full)."""
        if records.dtype is not self.dtype and records.dtype != self.dtype:
            raise TypeError(f"records have dtype {records.dtype}, ring holds {self.dtype}")
        fn = self._write if records.ndim == 1 and records.flags.carray else ring_write
        return fn(self.hdr, self.slots, records, len(records))

    def write_all(self, records: np.ndarray, wait: WaitStrategy, *,
                  timeout: float | None = None, notify: WaitStrategy | None = None) -> int:
        """Write every record, waiting with ``wait`` while the ring is full.

        Returns ``len(records)``, or fewer if ``timeout`` seconds passed without room.
        ``notify`` is the consumer's strategy, signalled after each partial write (pass the
        consumer's ``EventfdWait``). Raises PeerGone if the consumer died or closed.
        """
        done = 0
        total = len(records)
        while done < total:
            done += self.write(records[done:])
            if notify is not None:
                notify.signal(self.data_gate)
            if done < total and not wait.wait(self.free, self.space_gate, timeout):
                break
        return done

    def free(self) -> int:
        """Slots the producer can fill now."""
        w = self._words
        return self.capacity - (w[HEAD] - w[TAIL])

    # ---------------------------------------------------------------- consumer side
    def __len__(self) -> int:
        """Records available to read."""
        w = self._words
        return w[HEAD] - w[TAIL]

    def read(self, max_n: int) -> np.ndarray:
        """A copy of up to ``max_n`` records, oldest first (empty if none).

        The result shares memory with neither the ring nor any other result (it is a
        slice of a process-local arena: see ``RecordArena``)."""
        w = self._words
        n = min(w[HEAD] - w[TAIL], max_n)
        if n <= 0:
            return self._arena.empty
        out = self._arena.take(n)                        # C-contiguous, aligned, writeable
        self._read_into(self.hdr, self.slots, out, n)    # n records are there: HEAD only grows
        return out

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` records into ``out``; return how many."""
        if out.dtype is not self.dtype and out.dtype != self.dtype:
            raise TypeError(f"out has dtype {out.dtype}, ring holds {self.dtype}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        fn = self._read_into if out.ndim == 1 and out.flags.carray else ring_read_into
        return fn(self.hdr, self.slots, out, len(out))

    def read_wait(self, max_n: int, wait: WaitStrategy, *, timeout: float | None = None,
                  notify: WaitStrategy | None = None) -> np.ndarray:
        """Wait with ``wait`` until records arrive, then ``read(max_n)``.

        Returns an empty array on timeout. Raises PeerGone once the producer is dead or
        closed and every record it wrote has been read. ``notify`` is the producer's
        strategy, signalled after reading (if the producer may block on a full ring).
        """
        if not wait.wait(self.__len__, self.data_gate, timeout):
            return self._arena.empty
        out = self.read(max_n)
        if notify is not None:
            notify.signal(self.space_gate)
        return out

    # ---------------------------------------------------------------- lifecycle
    @property
    def owner(self) -> bool:
        return self._seg.owner

    @property
    def closed(self) -> bool:
        return self._seg.closed

    def close(self) -> None:
        """Mark this side closed, drop the views, unmap; the creator also unlinks."""
        if self._seg.closed:
            return
        if self.role is not None and self.hdr[_ROLE_WORD[self.role]] == os.getpid():
            self.hdr[_ROLE_WORD[self.role]] = PID_CLOSED
        # Drop the views so the segment can unmap. Typed as always set: the hot paths use
        # them unchecked, and a closed ring must not be used.
        self.hdr = self.slots = self._words = None  # type: ignore[assignment]
        self.data_gate = self.space_gate = None  # type: ignore[assignment]
        self._seg.close()

    def __enter__(self) -> SpscRing:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<SpscRing {self.name!r} closed>"
        return f"<SpscRing {self.name!r} {len(self)}/{self.capacity} {self.dtype.itemsize}B>"


def compiled_entry(dispatcher, argtypes: tuple):
    """The machine-code entry of ``dispatcher`` for exactly ``argtypes``.

    Calling it skips numba's per-call type dispatch (~0.3 us with record arrays). It checks
    nothing beyond array item sizes (and would overrun its argument struct on an array of
    more dimensions), so callers pass only arrays of the very types given: same dtype,
    ``a.ndim == 1 and a.flags.carray`` (C-contiguous, aligned, writeable); anything else
    goes through the dispatcher."""
    try:
        dispatcher.compile(argtypes)
        return dispatcher.overloads[argtypes].entry_point
    except Exception:        # numba internals changed: the dispatcher is always correct
        return dispatcher


class RecordArena:
    """Fresh record arrays without paying for ``np.empty`` of a structured dtype each time.

    Creating an array of a 12-field dtype costs ~0.7 us (a slice of one: ~0.1 us). The arena
    hands out consecutive, never-reused slices of a ``size``-record block and starts a new
    block when one is used up; a result keeps its block alive (up to ``size`` records, 256
    KB for 64-byte records) as long as the caller holds it. Large requests get their own
    array."""

    def __init__(self, dtype: np.dtype, size: int = 4096):
        self.dtype = np.dtype(dtype)
        self.size = size
        self.empty = np.empty(0, self.dtype)
        self._block = np.empty(size, self.dtype)
        self._used = 0

    def take(self, n: int) -> np.ndarray:
        """A fresh array of ``n`` records (contents undefined)."""
        if n > self.size // 4:
            return np.empty(n, self.dtype)
        k = self._used
        if k + n > self.size:
            self._block = np.empty(self.size, self.dtype)
            k = 0
        self._used = k + n
        return self._block[k:k + n]

    def give_back(self, out: np.ndarray, used: int) -> np.ndarray:
        """Return the unused tail of the last ``take`` to the arena; ``out[:used]``."""
        if out.base is self._block and self._used >= len(out):
            self._used -= len(out) - used
        return out[:used]


def _check_role(role: str | None) -> None:
    if role not in _ROLE_WORD:
        raise ValueError(f"role must be 'producer', 'consumer' or None, got {role!r}")


# -------------------------------------------------------------------- numba side
# hdr: the ring's int64 header (ring.hdr); slots: its structured slot array (ring.slots).
# Each function is one side's operation; never call a producer function from two processes.

@njit(cache=True)
def ring_available(hdr):
    """(Consumer) records ready to read."""
    return load_acquire(hdr, HEAD) - load_relaxed(hdr, TAIL)


@njit(cache=True)
def ring_free(hdr):
    """(Producer) slots free to write."""
    return hdr[CAPACITY] - (load_relaxed(hdr, HEAD) - load_acquire(hdr, TAIL))


@njit(cache=True)
def ring_read_into(hdr, slots, out, max_n):
    """(Consumer) copy up to ``max_n`` records into ``out[0:]``; return how many."""
    tail = load_relaxed(hdr, TAIL)
    n = min(load_acquire(hdr, HEAD) - tail, max_n, len(out))
    if n <= 0:
        return 0
    mask = len(slots) - 1
    for j in range(n):
        out[j] = slots[(tail + j) & mask]
    store_release(hdr, TAIL, tail + n)
    return n


@njit(cache=True)
def ring_write(hdr, slots, recs, n):
    """(Producer) copy up to ``n`` of ``recs`` into the ring; return how many (0: full)."""
    head = load_relaxed(hdr, HEAD)
    cap = len(slots)
    k = min(n, cap - (head - load_acquire(hdr, TAIL)), len(recs))
    if k <= 0:
        return 0
    mask = cap - 1
    for j in range(k):
        slots[(head + j) & mask] = recs[j]
    store_release(hdr, HEAD, head + k)
    return k


@njit(cache=True)
def ring_wait_available(hdr, max_spins):
    """(Consumer) spin with PAUSE until records are ready, at most ``max_spins`` times.

    Returns the count ready (0 after ``max_spins``: go back to Python to check for
    shutdown or a dead peer, then call again)."""
    tail = load_relaxed(hdr, TAIL)
    for _ in range(max_spins):
        n = load_acquire(hdr, HEAD) - tail
        if n > 0:
            return n
        cpu_relax()
    return 0
