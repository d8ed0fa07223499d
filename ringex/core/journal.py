"""Append-only command journal: every accepted batch, in processing order, checksummed.

File format (little-endian), one entry per batch:

    magic   u32  0x334A5852 ("RXJ3")
    batch   u64  batch number, 1, 2, 3 ... (strictly increasing, assigned by the journal)
    count   u32  COMMAND records in the payload
    check   u32  CRC32C of the entry's first 16 bytes (magic, batch, count) followed by
                 the payload (ringex/core/checksum.py)
    payload count x 64 bytes of records.COMMAND records

Entries written before RXJ3 have magic 0x324A5852 ("RXJ2"), the same layout, and a check
of the payload only, ``fnv_check``. Readers take both, entry by entry, so a segment begun
by an older engine and continued by this one (RXJ2 entries, then RXJ3) replays whole.
RXJ3's check also covers the header: a flipped bit in a batch number or a count is caught.

One implementation writes entries, ``append_entry``, a numba kernel: the matcher's hot
loop calls it directly (one writev per batch, no copy of the records) before any result
of the batch leaves the process, and ``Journal.append`` calls the same kernel from
Python. ``fsync="batch"`` also fsyncs each entry: an acknowledged order then survives a
power cut, at the cost of one disk flush per batch. ``fsync="none"`` leaves flushing to
the OS: it survives any process crash (the data is in the page cache) but not a machine
crash. A crash mid-write leaves a torn tail; ``Journal.open`` and ``read_entries`` detect
it (short header, short payload, bad magic or checksum) and cut the file back to the last
whole entry, never replaying garbage.

Reading (``read_entries``; ``read_journal`` gives the same as a list of entries) is one
more kernel, ``scan_entries``: it checks every RXJ3 entry of a segment and copies the
payloads asked for back to back into one COMMAND array, about 1 µs an entry where the
Python loop took ~20 (recovery replays up to a snapshot interval of journal at start);
RXJ2 entries are read in Python, one at a time.

A full disk (ENOSPC, EDQUOT; a short write counts as one) is the one failure worth
waiting out: ``append_entry`` returns -1 and notes why (``J_FAILED``, ``J_ERRNO``),
``Journal.cut_back`` removes whatever part of the entry reached the file, and the same
entry can be appended again later (the engine does that: core/engine/disk_full.py).

Disk blocks are reserved ``PREALLOC`` bytes at a time past the end of the file
(fallocate, keeping the file's size): a write into reserved blocks skips ext4's per-block
delayed-allocation work (4-6 µs of ~45 µs per 64 KiB entry here). The file ends at its
last entry; ``Journal.open`` and ``close`` give back what is left of the reservation.
"""
from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ringex.jit import njit
from ringex import records
from ringex.core.checksum import CRC_INIT, crc32c_update
from ringex.core.sysio import clock_ns, sys_errno, sys_fallocate, sys_fsync, sys_writev
from ringex.errors import StorageError

MAGIC = 0x334A5852           # "RXJ3", written
MAGIC_RXJ2 = 0x324A5852      # "RXJ2", read only
HEADER = struct.Struct("<IQII")
FSYNC_POLICIES = ("none", "batch")
REC = records.COMMAND.itemsize
PREALLOC = 16 << 20          # bytes of disk reserved past the end at a time
FALLOC_FL_KEEP_SIZE = 1

# kernel state, one int64 array of J_WORDS per open journal; J_SIZE: the file's size
# (where the last whole entry ends), J_RESERVED: where the fallocate reservation ends,
# J_FSYNC_NS: time spent in fsync; after a failed append, J_FAILED says which call failed
# (FAILED_WRITE, FAILED_FSYNC) and J_ERRNO why
(J_FD, J_LAST, J_FSYNC, J_BYTES, J_ENTRIES, J_SIZE, J_RESERVED, J_FSYNC_NS, J_FAILED,
 J_ERRNO, J_WORDS) = range(11)
FAILED_WRITE, FAILED_FSYNC = 1, 2
ENOSPC = errno.ENOSPC        # a short write to a regular file: its space ran out


@njit(cache=True)
def entry_check(head_address, payload_address, payload_bytes):
    """RXJ3's check: CRC32C of the header's first 16 bytes, then of the payload."""
    reg = crc32c_update(np.uint64(CRC_INIT), head_address, 16)
    reg = crc32c_update(reg, payload_address, payload_bytes)
    return np.int64(reg ^ np.uint64(CRC_INIT))


@njit(cache=True)
def fnv_check(words):
    """RXJ2's check of a payload given as uint64 words (reading old entries only):
    FNV-1a over words in 8 lanes, folded to 32 bits."""
    prime = np.uint64(0x100000001B3)
    lanes = np.full(8, np.uint64(0xCBF29CE484222325))
    n = words.shape[0]
    for i in range(0, n - n % 8, 8):
        for k in range(8):
            lanes[k] = (lanes[k] ^ words[i + k]) * prime
    h = np.uint64(0xCBF29CE484222325)
    for i in range(n - n % 8, n):
        h = (h ^ words[i]) * prime
    for k in range(8):
        h = (h ^ lanes[k]) * prime
    return np.int64((h ^ (h >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


@njit(cache=True)
def append_failed(jst, call, written):
    """Note why an append failed (J_FAILED, J_ERRNO); -1. Out of the hot path."""
    jst[J_FAILED] = call
    # a short write sets no errno: on a regular file it means the space ran out
    jst[J_ERRNO] = sys_errno() if written < 0 else ENOSPC
    return -1


@njit(cache=True)
def append_entry(jst, head, iov, cmds, c0, c1):
    """Append cmds[c0:c1] as the next entry; returns its batch number, or -1 on a failed
    or short write (J_FAILED and J_ERRNO say why). The file may then hold part of the
    entry past J_SIZE: cut it back (``Journal.cut_back``) before writing again, or stop.

    ``head`` is a 20-byte scratch buffer and ``iov`` an int64[4] scratch array."""
    n = c1 - c0
    base = cmds.ctypes.data + c0 * REC
    batch = jst[J_LAST] + 1
    for k in range(4):
        head[k] = (MAGIC >> (8 * k)) & 0xFF
        head[12 + k] = (n >> (8 * k)) & 0xFF
    for k in range(8):
        head[4 + k] = (batch >> (8 * k)) & 0xFF
    check = entry_check(head.ctypes.data, base, n * REC)
    for k in range(4):
        head[16 + k] = (check >> (8 * k)) & 0xFF
    iov[0], iov[1] = head.ctypes.data, 20
    iov[2], iov[3] = base, n * REC
    want = 20 + n * REC
    if jst[J_SIZE] + want > jst[J_RESERVED]:
        # best effort: where fallocate fails the write still allocates (or fails) itself
        sys_fallocate(jst[J_FD], FALLOC_FL_KEEP_SIZE, jst[J_SIZE], PREALLOC)
        jst[J_RESERVED] = jst[J_SIZE] + PREALLOC
    written = sys_writev(jst[J_FD], iov.ctypes.data, 2)
    if written != want:
        return append_failed(jst, FAILED_WRITE, written)
    if jst[J_FSYNC] != 0:
        t0 = clock_ns()
        if sys_fsync(jst[J_FD]) != 0:
            return append_failed(jst, FAILED_FSYNC, -1)
        jst[J_FSYNC_NS] += clock_ns() - t0
    jst[J_LAST] = batch
    jst[J_BYTES] += want
    jst[J_SIZE] += want
    jst[J_ENTRIES] += 1
    return batch


# scan_entries state words: where it is, what it kept, why it stopped
SC_POS, SC_LAST, SC_OUT, SC_KEPT, SC_SEEN, SC_FIRST, SC_CODE, SC_BATCH = range(8)
(SCAN_END, SCAN_FULL, SCAN_RXJ2, SCAN_SHORT_HEADER, SCAN_BAD_MAGIC, SCAN_SHORT_PAYLOAD,
 SCAN_CHECKSUM, SCAN_ORDER) = range(8)
SCAN_CHUNK = 1 << 16         # entries recorded per scan_entries call


@njit(cache=True, inline="always")
def _le(buf, pos, nbytes):
    v = np.int64(0)
    for k in range(nbytes):
        v |= np.int64(buf[pos + k]) << (8 * k)
    return v


@njit(cache=True)
def scan_entries(buf, after, st, out, batches, counts):
    """Walk whole RXJ3 entries of ``buf`` (a segment's bytes) from ``st[SC_POS]``: check
    each, and copy the payloads of those with batch > ``after`` to ``out`` (uint8, from
    ``st[SC_OUT]``), recording their batch and count. Stops at the end (SCAN_END), when
    ``batches`` is full (SCAN_FULL), at an RXJ2 entry (SCAN_RXJ2: the caller reads it and
    calls again) or at a bad entry (its code; ``st[SC_POS]`` is then where it starts)."""
    size, cap = buf.shape[0], batches.shape[0]
    pos = st[SC_POS]
    while pos < size:
        if st[SC_KEPT] >= cap:
            st[SC_CODE] = SCAN_FULL
            return
        if size - pos < 20:
            st[SC_CODE] = SCAN_SHORT_HEADER
            return
        magic = _le(buf, pos, 4)
        if magic != MAGIC:
            st[SC_CODE] = SCAN_RXJ2 if magic == MAGIC_RXJ2 else SCAN_BAD_MAGIC
            return
        batch, count, check = _le(buf, pos + 4, 8), _le(buf, pos + 12, 4), _le(buf, pos + 16, 4)
        st[SC_BATCH] = batch
        nbytes = count * REC
        if pos + 20 + nbytes > size:
            st[SC_CODE] = SCAN_SHORT_PAYLOAD
            return
        if entry_check(buf.ctypes.data + pos, buf.ctypes.data + pos + 20, nbytes) != check:
            st[SC_CODE] = SCAN_CHECKSUM
            return
        if batch <= st[SC_LAST]:
            st[SC_CODE] = SCAN_ORDER
            return
        if batch > after:
            o = st[SC_OUT]
            out[o:o + nbytes] = buf[pos + 20:pos + 20 + nbytes]
            batches[st[SC_KEPT]], counts[st[SC_KEPT]] = batch, count
            st[SC_OUT] = o + nbytes
            st[SC_KEPT] += 1
        if st[SC_FIRST] == 0:
            st[SC_FIRST] = batch
        st[SC_SEEN] += 1
        st[SC_LAST] = batch
        pos += 20 + nbytes
        st[SC_POS] = pos
    st[SC_CODE] = SCAN_END


@dataclass
class JournalScan:
    """What reading a journal found: its good length and how much tail was cut."""
    path: Path
    entries: int = 0
    first_batch: int = 0
    last_batch: int = 0
    good_bytes: int = 0
    torn_bytes: int = 0
    reason: str = ""


@dataclass
class Entries:
    """Whole entries of a segment: their commands back to back in one array (a copy)."""
    cmds: np.ndarray             # records.COMMAND
    batches: np.ndarray          # int64, one per entry, increasing
    ends: np.ndarray             # int64: entry i's commands are cmds[ends[i-1]:ends[i]]

    def __len__(self) -> int:
        return len(self.batches)

    def entry(self, i: int) -> np.ndarray:
        return self.cmds[(int(self.ends[i - 1]) if i else 0):int(self.ends[i])]


def _rxj2_entry(buf: np.ndarray, pos: int, last: int) -> tuple[int, int, str]:
    """(batch, end, problem) of the RXJ2 entry at pos (read only, entry by entry)."""
    _magic, batch, count, check = HEADER.unpack_from(buf.data, pos)
    end = pos + HEADER.size + count * REC
    if end > len(buf):
        return batch, end, f"short payload at byte {pos}"
    if fnv_check(np.frombuffer(buf[pos + HEADER.size:end].tobytes(), np.uint64)) != check:
        return batch, end, f"checksum mismatch at byte {pos} (batch {batch})"
    if batch <= last:
        return batch, end, f"batch {batch} after {last} at byte {pos}"
    return batch, end, ""


_PROBLEMS = {SCAN_SHORT_HEADER: "short header at byte {pos}",
             SCAN_BAD_MAGIC: "bad magic at byte {pos}",
             SCAN_SHORT_PAYLOAD: "short payload at byte {pos}",
             SCAN_CHECKSUM: "checksum mismatch at byte {pos} (batch {batch})",
             SCAN_ORDER: "batch {batch} after {last} at byte {pos}"}


def _refuse_newer(buf: np.ndarray, pos: int, path: Path) -> None:
    """A segment that begins with an entry of a later format ("RXJ4".."RXJ9") was written
    by a newer ringex: refuse it rather than cut it as a torn tail. (Further in, such a
    magic is read as corruption: one flipped bit turns "RXJ3" into "RXJ7".)"""
    head = bytes(buf[pos:pos + 4])
    if pos == 0 and len(head) == 4 and head[:3] == b"RXJ" and ord("4") <= head[3] <= ord("9"):
        raise StorageError(f"{path}: journal entry at byte {pos} has format "
                           f"{head.decode()}, written by a newer ringex; this one reads RXJ2 "
                           "and RXJ3: upgrade ringex (nothing was cut)")


def _scan(buf: np.ndarray, path: Path, after: int) -> tuple[Entries, JournalScan]:
    """Every whole entry of ``buf`` (checked; the payloads of those with batch > after
    copied), up to the first bad one."""
    out = np.empty(len(buf) // REC + 1, records.COMMAND)
    out8 = out.view(np.uint8)
    st = np.zeros(8, np.int64)
    cap = min(SCAN_CHUNK, len(buf) // HEADER.size + 1)
    batches, counts, reason = [], [], ""
    while True:
        b, c = np.empty(cap, np.int64), np.empty(cap, np.int64)
        st[SC_KEPT] = 0
        scan_entries(buf, after, st, out8, b, c)
        batches.append(b[:st[SC_KEPT]])
        counts.append(c[:st[SC_KEPT]])
        code, pos = int(st[SC_CODE]), int(st[SC_POS])
        if code == SCAN_FULL:
            continue
        if code == SCAN_BAD_MAGIC:
            _refuse_newer(buf, pos, path)
        if code != SCAN_RXJ2:
            if code != SCAN_END:
                reason = _PROBLEMS[code].format(pos=pos, batch=int(st[SC_BATCH]),
                                                last=int(st[SC_LAST]))
            break
        batch, end, reason = _rxj2_entry(buf, pos, int(st[SC_LAST]))
        if reason:
            break
        if batch > after:
            o, n = int(st[SC_OUT]), end - pos - HEADER.size
            out8[o:o + n] = buf[pos + HEADER.size:end]
            st[SC_OUT] = o + n
            batches.append(np.array([batch], np.int64))
            counts.append(np.array([n // REC], np.int64))
        st[SC_FIRST] = st[SC_FIRST] or batch
        st[SC_SEEN] += 1
        st[SC_LAST], st[SC_POS] = batch, end
    pos = int(st[SC_POS])
    scan = JournalScan(path, int(st[SC_SEEN]), int(st[SC_FIRST]), int(st[SC_LAST]), pos,
                       len(buf) - pos, reason)
    ends = np.cumsum(np.concatenate(counts))
    return Entries(out[:int(st[SC_OUT]) // REC], np.concatenate(batches), ends), scan


def read_entries(path: str | Path, after: int = 0) -> tuple[Entries, JournalScan]:
    """Every whole entry with batch > after, and the scan report (does not modify the file)."""
    path = Path(path)
    if not path.exists():
        empty = np.zeros(0, np.int64)
        return Entries(records.commands(0), empty, empty), JournalScan(path)
    return _scan(np.fromfile(path, np.uint8), path, after)


def check_entry(data: bytes) -> tuple[int, np.ndarray]:
    """(batch, commands) of ``data``, which must be exactly one whole, valid RXJ3 entry (as
    the replicated journal carries them); StorageError says what is wrong otherwise."""
    # a writable copy: the kernels are compiled for writable arrays only
    entries, scan = _scan(np.frombuffer(bytearray(data), np.uint8), Path("<entry>"), 0)
    if scan.reason or scan.entries != 1 or scan.good_bytes != len(data):
        raise StorageError(f"not one whole journal entry ({len(data)} bytes): "
                           f"{scan.reason or f'{scan.entries} entries'}")
    if HEADER.unpack_from(data)[0] != MAGIC:
        raise StorageError("not an RXJ3 entry")
    return int(entries.batches[0]), entries.cmds


def entry_bounds(buf: bytes | memoryview, pos: int = 0) -> int:
    """Where the entry that starts at ``pos`` of ``buf`` ends, or -1 when ``buf`` does not
    hold all of it yet (a journal being written; nothing here checks the entry)."""
    if len(buf) - pos < HEADER.size:
        return -1
    end = pos + HEADER.size + HEADER.unpack_from(buf, pos)[2] * REC
    return end if end <= len(buf) else -1


def read_journal(path: str | Path,
                 after: int = 0) -> tuple[list[tuple[int, np.ndarray]], JournalScan]:
    """``read_entries`` as a list of (batch, commands), one per entry."""
    entries, scan = read_entries(path, after)
    return [(int(b), entries.entry(i)) for i, b in enumerate(entries.batches)], scan


class Journal:
    """An open journal segment. Use ``Journal.open``; one writer at a time.

    ``state``, ``head`` and ``iov`` are what a kernel passes to ``append_entry``."""

    def __init__(self, path: Path, fd: int, fsync: str, scan: JournalScan, last_batch: int):
        self.path, self.fsync, self.scan = path, fsync, scan
        self.state = np.zeros(J_WORDS, np.int64)
        self.state[J_FD], self.state[J_LAST] = fd, last_batch
        self.state[J_FSYNC] = fsync == "batch"
        self.state[J_SIZE] = self.state[J_RESERVED] = scan.good_bytes
        self.head = np.zeros(20, np.uint8)
        self.iov = np.zeros(4, np.int64)

    @classmethod
    def open(cls, path: str | Path, fsync: str = "none", next_batch: int = 1) -> "Journal":
        """Open for appending; cut a torn tail first (``journal.scan`` says what was cut).

        An empty segment numbers its first entry ``next_batch``."""
        if fsync not in FSYNC_POLICIES:
            raise StorageError(f"journal fsync policy must be one of {FSYNC_POLICIES}, "
                               f"not {fsync!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _, scan = read_entries(path, after=1 << 62)     # checks every entry, copies none
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.ftruncate(fd, scan.good_bytes)    # also frees blocks a crash left reserved
        if scan.torn_bytes:
            os.fsync(fd)
        return cls(path, fd, fsync, scan, scan.last_batch or next_batch - 1)

    @property
    def last_batch(self) -> int:
        return int(self.state[J_LAST])

    def append(self, cmds: np.ndarray) -> int:
        """Write one batch as one entry; returns its batch number."""
        cmds = np.ascontiguousarray(cmds, dtype=records.COMMAND)
        batch = append_entry(self.state, self.head, self.iov, cmds, 0, len(cmds))
        if batch < 0:
            if self.disk_full():
                self.cut_back()
            raise StorageError(f"{self.path}: journal {self.failure()}")
        return int(batch)

    def disk_full(self) -> bool:
        """The last append's write failed for want of space (ENOSPC, EDQUOT): it can be
        tried again once there is room. A failed fsync is not: its data may be lost."""
        return int(self.state[J_FAILED]) == FAILED_WRITE and \
            int(self.state[J_ERRNO]) in (errno.ENOSPC, errno.EDQUOT)

    def failure(self) -> str:
        """What the last failed append met, in words."""
        call = "write" if int(self.state[J_FAILED]) == FAILED_WRITE else "fsync"
        return f"{call} failed: {os.strerror(int(self.state[J_ERRNO]))}"

    def cut_back(self) -> None:
        """Cut what a failed append left past the last whole entry, and the reservation
        with it (the next append reserves again: a full disk may refuse that first)."""
        fd, size = int(self.state[J_FD]), int(self.state[J_SIZE])
        os.ftruncate(fd, size)
        self.state[J_RESERVED] = size

    def sync(self) -> None:
        os.fsync(int(self.state[J_FD]))

    def close(self, sync: bool = True) -> None:
        """Give back the reservation and close; ``sync`` also fsyncs first (a segment a
        snapshot has just covered needs no flush of its own: ``StateStore`` rotations)."""
        fd = int(self.state[J_FD])
        if fd >= 0:
            os.ftruncate(fd, os.fstat(fd).st_size)    # frees the unused reservation
            if sync:
                os.fsync(fd)
            os.close(fd)
            self.state[J_FD] = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
