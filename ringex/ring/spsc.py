"""Single-producer/single-consumer ring of fixed-size records in shared memory.

Layout: the common 512-byte header (``ringex.ring.shm``), then ``capacity`` record slots.
The producer owns HEAD (records ever written), the consumer owns TAIL (records ever read);
record ``c`` lives in slot ``c & (capacity - 1)``; ``HEAD - TAIL`` records are readable and
``capacity - (HEAD - TAIL)`` slots are free. A full ring refuses writes; nothing unread is
ever overwritten.

Ordering: a side copies records, then publishes its own cursor; it reads the peer's cursor
before touching the slots. x86-64 keeps stores in order and loads in order, and every numpy
call is an opaque C call no compiler moves code across, so the Python side needs no fence
here (docs/rings.md; the eventfd handshake does: ``ringex.ring.fence``).

Two APIs over the same memory (they can be mixed; each side must be one process):
  * Python: ``SpscRing.write / write_all / read / read_into / read_wait / len() / free()``:
    numpy only, so gateways, the writer and the supervisor never load numba. Records are
    copied as bytes (at most two slices per call: the ring wraps once); a call costs
    ~1-2 us plus the copy. Structured-dtype slice assignment would copy field by field.
  * numba: ``ring_available, ring_free, ring_read_into, ring_write, ring_wait_available``
    in ``ringex.ring.kernels``, over ``ring.hdr`` (int64 header) and ``ring.slots``
    (structured array), for the matcher's hot loops.
"""
from __future__ import annotations

import os

import numpy as np

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
        self._bytes = ByteSlots(self.slots)
        self._words = seg.words                              # same header, cheap Python reads
        self._arena = RecordArena(self.dtype)
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
        if records.ndim != 1:
            raise ValueError(f"records must be a 1-D array, not {records.ndim}-D")
        w = self._words
        head = w[HEAD]
        k = min(len(records), self.capacity - (head - w[TAIL]))
        if k <= 0:
            return 0
        self._bytes.put(head & self.mask, records[:k].tobytes())
        w[HEAD] = head + k                   # after the copy: x86 keeps stores in order
        return k

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
        out, dst = self._arena.take_bytes(n)             # C-contiguous, aligned, writeable
        self._take(dst)                                  # n records are there: HEAD only grows
        return out

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` records into ``out``; return how many."""
        if out.dtype is not self.dtype and out.dtype != self.dtype:
            raise TypeError(f"out has dtype {out.dtype}, ring holds {self.dtype}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        if out.ndim != 1:
            raise ValueError(f"out must be a 1-D array, not {out.ndim}-D")
        w = self._words
        n = min(w[HEAD] - w[TAIL], len(out))
        if n <= 0:
            return 0
        if out.flags.c_contiguous:
            self._take(out[:n].view(np.uint8).data)
        else:
            tmp, dst = self._arena.take_bytes(n)
            self._take(dst)
            out[:n] = tmp
        return n

    def _take(self, dst: memoryview) -> None:
        """Copy the next records (there are enough) into ``dst``, whole records; free them."""
        w = self._words
        tail = w[TAIL]
        self._bytes.get(tail & self.mask, dst)
        w[TAIL] = tail + len(dst) // self.dtype.itemsize    # after the copy: reusable

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
        self._bytes.release()
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


class ByteSlots:
    """A ring's slots as one flat byte memoryview: records copied in and out by slot,
    wrapping once. A memoryview slice assignment costs ~0.1 us; making numpy byte views of
    structured records ~0.5 us each, which doubled a one-record ring round trip."""

    def __init__(self, slots: np.ndarray):
        self.item = slots.dtype.itemsize
        self.size = slots.nbytes
        self.mv = slots.view(np.uint8).data

    def put(self, slot: int, data: bytes | memoryview) -> None:
        """Whole records ``data`` into the slots from ``slot`` on."""
        a = slot * self.item
        end = a + len(data)
        if end <= self.size:
            self.mv[a:end] = data
        else:
            first = self.size - a
            src = memoryview(data)
            self.mv[a:] = src[:first]
            self.mv[:end - self.size] = src[first:]

    def get(self, slot: int, dst: memoryview) -> None:
        """``len(dst)`` bytes of whole records from ``slot`` on into ``dst``."""
        a = slot * self.item
        end = a + len(dst)
        if end <= self.size:
            dst[:] = self.mv[a:end]
        else:
            first = self.size - a
            dst[:first] = self.mv[a:]
            dst[first:] = self.mv[:end - self.size]

    def release(self) -> None:
        self.mv.release()


def copy_in(slots: np.ndarray, start: int, src: np.ndarray) -> None:
    """``src`` rows into ``slots`` (byte views) from slot ``start``, wrapping once."""
    k = len(src)
    first = min(k, len(slots) - start)
    slots[start:start + first] = src[:first]
    if first < k:
        slots[:k - first] = src[first:]


def copy_out(slots: np.ndarray, start: int, dst: np.ndarray) -> None:
    """``len(dst)`` rows of ``slots`` (byte views) from slot ``start`` into ``dst``."""
    k = len(dst)
    first = min(k, len(slots) - start)
    dst[:first] = slots[start:start + first]
    if first < k:
        dst[first:] = slots[:k - first]


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
        self._new_block()

    def _new_block(self) -> None:
        self._block = np.empty(self.size, self.dtype)
        self._block_bytes = self._block.view(np.uint8).data
        self._used = 0

    def take(self, n: int) -> np.ndarray:
        """A fresh array of ``n`` records (contents undefined)."""
        if n > self.size // 4:
            return np.empty(n, self.dtype)
        k = self._used
        if k + n > self.size:
            self._new_block()
            k = 0
        self._used = k + n
        return self._block[k:k + n]

    def take_bytes(self, n: int) -> tuple[np.ndarray, memoryview]:
        """``take(n)`` and the same memory as a byte memoryview, to copy records into."""
        if n > self.size // 4:
            out = np.empty(n, self.dtype)
            return out, out.view(np.uint8).data
        out = self.take(n)
        k, item = self._used - n, self.dtype.itemsize
        return out, self._block_bytes[k * item:(k + n) * item]

    def give_back(self, out: np.ndarray, used: int) -> np.ndarray:
        """Return the unused tail of the last ``take`` to the arena; ``out[:used]``."""
        if out.base is self._block and self._used >= len(out):
            self._used -= len(out) - used
        return out[:used]


def _check_role(role: str | None) -> None:
    if role not in _ROLE_WORD:
        raise ValueError(f"role must be 'producer', 'consumer' or None, got {role!r}")
