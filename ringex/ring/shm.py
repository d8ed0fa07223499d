"""Shared-memory segments for rings: naming, the common header, create/attach/close.

Every ring segment starts with a 512-byte header of eight 64-byte cache lines, viewed as
``int64`` words (``hdr`` for numba; ``words``, a memoryview, for cheap Python reads).
Line 0 is written once by the creator; every other line holds one word that one side
writes, so two processes never write the same cache line (docs/rings.md has the table):

    word  line  name               written by
       0   0    MAGIC              creator (last, so a half-made segment never validates)
       1   0    VERSION            creator
       2   0    KIND               creator: KIND_SPSC or KIND_BROADCAST
       3   0    CAPACITY           creator: slots, a power of two
       4   0    RECORD_SIZE        creator: dtype.itemsize
       5   0    DATA_OFFSET        creator: byte offset of the record slots
       6   0    DTYPE_HASH         creator: crc32 of the dtype description
       7   0    TRACKER            creator: its resource-tracker pipe inode (see attach)
       8   1    HEAD               producer: records ever written
      16   2    TAIL               consumer (SPSC only): records ever read
      24   3    PRODUCER_PID       producer: its pid; PID_CLOSED after a clean close
      32   4    CONSUMER_PID       consumer (SPSC only): its pid; PID_CLOSED after close
      40   5    CONSUMER_SLEEPING  consumer: 1 while blocked on its eventfd
      48   6    PRODUCER_SLEEPING  producer: 1 while blocked on its eventfd (ring full)
      56   7    CREATOR_PID        creator (diagnostics only)

Cursors are unsigned counters in spirit but are held as int64: they would need 292 years at
10^9 records/s to reach 2^63, and numba turns ``uint64 op int64`` into float64 arithmetic.

Ownership: a ``Segment`` keeps the ``SharedMemory`` object alive while
it hands out numpy views; ``close()`` drops its own views before unmapping, and if the caller
still holds a view the mapping is left to the garbage collector (freed with the last view)
instead of being unmapped under it. Only the creator unlinks the name.
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import zlib
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory

import numpy as np
from numpy.typing import DTypeLike

from ringex.errors import RingError, RingNotFound

NAME_PREFIX = "ringex"
CACHE_LINE = 64
HEADER_BYTES = 8 * CACHE_LINE
HEADER_WORDS = HEADER_BYTES // 8

MAGIC_VALUE = int.from_bytes(b"RINGEXrb", "little")
VERSION_VALUE = 1
KIND_SPSC = 1
KIND_BROADCAST = 2

MAGIC, VERSION, KIND, CAPACITY, RECORD_SIZE, DATA_OFFSET, DTYPE_HASH, TRACKER = range(8)
HEAD = 8
TAIL = 16
PRODUCER_PID = 24
CONSUMER_PID = 32
CONSUMER_SLEEPING = 40
PRODUCER_SLEEPING = 48
CREATOR_PID = 56

PID_NONE = 0          # nobody registered for the role yet
PID_CLOSED = -1       # the role's process closed the ring cleanly

_counter = itertools.count()


def segment_name(purpose: str, n: int | None = None) -> str:
    """A fresh ring name: ``ringex-<pid>-<purpose>-<n>`` (n counts up per process)."""
    if n is None:
        n = next(_counter)
    return f"{NAME_PREFIX}-{os.getpid()}-{purpose}-{n}"


_CREATOR = re.compile(rf"{NAME_PREFIX}-(\d+)(?:-|x\d+-)")


def creator_pid(name: str) -> int | None:
    """The pid a ringex segment is named after (``ringex-<pid>-...`` from segment_name and
    the supervisor's run ids, ``ringex-<pid>x<n>-...`` from tests), or None."""
    m = _CREATOR.match(name)
    return int(m.group(1)) if m else None


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name.startswith(NAME_PREFIX) or "/" in name:
        raise ValueError(f"ring name must start with {NAME_PREFIX!r} and have no '/': {name!r}")


def check_capacity(capacity: int) -> int:
    capacity = int(capacity)
    if capacity < 2 or capacity & (capacity - 1):
        raise ValueError(f"ring capacity must be a power of two >= 2, got {capacity}")
    return capacity


def dtype_hash(dtype: np.dtype) -> int:
    """A stable fingerprint of a record layout (tells COMMAND from EVENT: both 64 bytes)."""
    return zlib.crc32(repr(np.dtype(dtype).descr).encode())


def _tracker_token() -> int:
    """Inode of this process's resource-tracker pipe; processes sharing a tracker agree."""
    try:
        fd = resource_tracker.getfd()
        if fd is None:
            return -1
        return os.fstat(fd).st_ino
    except Exception:  # no tracker available: treat as unshared
        return -1


class Segment:
    """One named shared-memory segment with a ring header; hands out views into it."""

    def __init__(self, shm: SharedMemory, owner: bool):
        self._shm: SharedMemory | None = shm
        self.name = shm.name.lstrip("/")
        self.owner = owner
        self.hdr: np.ndarray | None = self.view(0, np.int64, HEADER_WORDS)
        # The same words as a memoryview: Python reads a cursor in ~40 ns (numpy: ~100 ns).
        self.words = _buf(shm)[:HEADER_BYTES].cast("q")

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, name: str, kind: int, dtype: np.dtype, capacity: int,
               data_offset: int) -> Segment:
        """Create and initialise a segment; the caller owns it (``close()`` unlinks)."""
        check_name(name)
        capacity = check_capacity(capacity)
        dtype = np.dtype(dtype)
        size = data_offset + capacity * dtype.itemsize
        try:
            shm = SharedMemory(name=name, create=True, size=size)
        except FileExistsError:
            raise RingError(f"shared memory {name!r} already exists") from None
        seg = cls(shm, owner=True)
        hdr = seg.header()
        hdr[:] = 0
        hdr[VERSION] = VERSION_VALUE
        hdr[KIND] = kind
        hdr[CAPACITY] = capacity
        hdr[RECORD_SIZE] = dtype.itemsize
        hdr[DATA_OFFSET] = data_offset
        hdr[DTYPE_HASH] = dtype_hash(dtype)
        hdr[TRACKER] = _tracker_token()
        hdr[CREATOR_PID] = os.getpid()
        hdr[MAGIC] = MAGIC_VALUE      # last: x86 keeps stores in order
        return seg

    @classmethod
    def attach(cls, name: str, kind: int, dtype: np.dtype,
               capacity: int | None = None) -> Segment:
        """Map an existing segment and validate its header against what the caller expects."""
        check_name(name)
        shm = _open_untracked(name)
        seg = cls(shm, owner=False)
        try:
            seg._validate(kind, np.dtype(dtype), capacity, shm.size)
        except BaseException:
            seg.close()
            raise
        return seg

    def _validate(self, kind: int, dtype: np.dtype, capacity: int | None, size: int) -> None:
        h = self.header()
        if size < HEADER_BYTES or h[MAGIC] != MAGIC_VALUE:
            raise RingError(f"{self.name!r} is not an initialised ringex ring")
        if h[VERSION] != VERSION_VALUE:
            raise RingError(f"{self.name!r}: ring version {h[VERSION]}, expected {VERSION_VALUE}")
        if h[KIND] != kind:
            raise RingError(f"{self.name!r}: ring kind {h[KIND]}, expected {kind}")
        if h[RECORD_SIZE] != dtype.itemsize:
            raise RingError(f"{self.name!r}: record size {h[RECORD_SIZE]} bytes, "
                            f"dtype has {dtype.itemsize}")
        if h[DTYPE_HASH] != dtype_hash(dtype):
            raise RingError(f"{self.name!r}: record layout differs from the given dtype")
        cap = int(h[CAPACITY])
        if cap < 2 or cap & (cap - 1) or (capacity is not None and cap != capacity):
            raise RingError(f"{self.name!r}: capacity {cap}, expected {capacity}")
        if h[DATA_OFFSET] + cap * dtype.itemsize > size:
            raise RingError(f"{self.name!r}: segment too small for its header")

    def header(self) -> np.ndarray:
        """``hdr`` of an open segment (it is None once closed)."""
        hdr = self.hdr
        assert hdr is not None, "segment is closed"
        return hdr

    def view(self, offset: int, dtype: DTypeLike, count: int) -> np.ndarray:
        """A numpy view of ``count`` items at byte ``offset``.

        Made through a memoryview slice, so the view holds a buffer export on the mmap:
        the mapping cannot be closed under it. (``np.ndarray(buffer=shm.buf)`` would hold
        only a reference to the mmap object, which ``SharedMemory.close()`` happily unmaps:
        the next access segfaults.)"""
        dtype = np.dtype(dtype)
        nbytes = count * dtype.itemsize
        shm = self._shm
        assert shm is not None, "segment is closed"
        return np.asarray(_buf(shm)[offset:offset + nbytes]).view(dtype)

    @property
    def closed(self) -> bool:
        return self._shm is None

    def close(self) -> None:
        """Unmap (and unlink if owner). Idempotent. Drop your own views first."""
        shm, self._shm = self._shm, None
        if shm is None:
            return
        self.hdr = None
        self.words.release()
        try:
            shm.close()
        except BufferError:
            # Someone still holds a view: leave the mapping alive for it. The memoryview
            # that view hangs on keeps the mmap until the last view dies, then unmaps it.
            # Private on purpose: drop our references without unmapping.
            shm._buf = None   # type: ignore[attr-defined]
            shm._mmap = None  # type: ignore[attr-defined]
            shm.close()   # now only closes the file descriptor
        if self.owner:
            try:
                shm.unlink()
            except FileNotFoundError:   # someone removed the name: still forget it
                if sys.version_info < (3, 13) or getattr(shm, "_track", False):
                    # _name: the registered name ("/"-prefixed); private, not in the stubs
                    resource_tracker.unregister(shm._name,  # type: ignore[attr-defined]
                                                "shared_memory")

    def __del__(self):
        # Garbage-collected without close(): same cleanup (the creator still unlinks).
        try:
            if getattr(self, "_shm", None) is not None:
                self.close()
        except Exception:      # interpreter shutdown: modules may be gone already
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("owner" if self.owner else "attached")
        return f"<Segment {self.name!r} {state}>"


def _open_untracked(name: str) -> SharedMemory:
    """Attach to ``name`` without letting a resource tracker unlink it behind the creator.

    Python < 3.13 registers every attach with the resource tracker, which unlinks the
    segment when this process's tracker exits. Processes started by multiprocessing share
    their parent's tracker, where the creator already registered the name (registering
    twice is harmless, unregistering would drop the creator's entry). So: unregister only if
    this process's tracker is not the creator's (compared by pipe inode, header word 7).
    """
    try:
        if sys.version_info >= (3, 13):
            return SharedMemory(name=name, track=False)
        shm = SharedMemory(name=name)
    except FileNotFoundError:
        raise RingNotFound(name) from None
    creator_token = -2
    if shm.size >= HEADER_BYTES:
        creator_token = int.from_bytes(_buf(shm)[8 * TRACKER:8 * TRACKER + 8], "little",
                                       signed=True)
    if creator_token != _tracker_token():
        # _name: the registered name ("/"-prefixed); private, not in the stubs
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    return shm


def _buf(shm: SharedMemory) -> memoryview:
    """``shm.buf``, which is None only after ``shm.close()``."""
    buf = shm.buf
    assert buf is not None, "shared memory is closed"
    return buf


def unlink(name: str) -> bool:
    """Remove a ring name left behind by a crashed creator; True if something was removed."""
    check_name(name)
    try:
        shm = SharedMemory(name=name)   # registers with our tracker; unlink() unregisters
    except FileNotFoundError:
        return False
    shm.close()
    try:
        shm.unlink()
    except FileNotFoundError:
        return False
    return True
