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
crash. A crash mid-write leaves a torn tail; ``Journal.open`` and ``read_journal`` detect
it (short header, short payload, bad magic or checksum) and cut the file back to the last
whole entry, never replaying garbage.

Disk blocks are reserved ``PREALLOC`` bytes at a time past the end of the file
(fallocate, keeping the file's size): a write into reserved blocks skips ext4's per-block
delayed-allocation work (4-6 µs of ~45 µs per 64 KiB entry here). The file ends at its
last entry; ``Journal.open`` and ``close`` give back what is left of the reservation.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ringex.jit import njit
from ringex import records
from ringex.core.checksum import CRC_INIT, crc32c_update
from ringex.core.sysio import sys_fallocate, sys_fsync, sys_writev
from ringex.errors import StorageError

MAGIC = 0x334A5852           # "RXJ3", written
MAGIC_RXJ2 = 0x324A5852      # "RXJ2", read only
HEADER = struct.Struct("<IQII")
FSYNC_POLICIES = ("none", "batch")
REC = records.COMMAND.itemsize
PREALLOC = 16 << 20          # bytes of disk reserved past the end at a time
FALLOC_FL_KEEP_SIZE = 1

# kernel state, one int64 array of 8 per open journal; J_SIZE: the file's size,
# J_RESERVED: where the fallocate reservation ends
J_FD, J_LAST, J_FSYNC, J_BYTES, J_ENTRIES, J_SIZE, J_RESERVED = range(7)


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
def append_entry(jst, head, iov, cmds, c0, c1):
    """Append cmds[c0:c1] as the next entry; returns its batch number, or -1 on a failed
    or short write (the caller must stop: the journal no longer matches the engine).

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
    if sys_writev(jst[J_FD], iov.ctypes.data, 2) != want:
        return -1
    if jst[J_FSYNC] != 0 and sys_fsync(jst[J_FD]) != 0:
        return -1
    jst[J_LAST] = batch
    jst[J_BYTES] += want
    jst[J_SIZE] += want
    jst[J_ENTRIES] += 1
    return batch


@njit(cache=True)
def _rxj3_ok(buf, pos, end, check):
    return entry_check(buf.ctypes.data + pos, buf.ctypes.data + pos + 20, end - pos - 20) == check


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


def _scan(data: memoryview, path: Path, after: int, out: list | None) -> JournalScan:
    scan, pos, n = JournalScan(path), 0, len(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    while pos < n:
        if n - pos < HEADER.size:
            scan.reason = f"short header at byte {pos}"
            break
        magic, batch, count, check = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + count * REC
        if magic != MAGIC and magic != MAGIC_RXJ2:
            scan.reason = f"bad magic at byte {pos}"
            break
        if end > n:
            scan.reason = f"short payload at byte {pos}"
            break
        payload = np.frombuffer(data[pos + HEADER.size:end], dtype=np.uint64)
        if not (_rxj3_ok(buf, pos, end, check) if magic == MAGIC
                else fnv_check(payload) == check):
            scan.reason = f"checksum mismatch at byte {pos} (batch {batch})"
            break
        if batch <= scan.last_batch:
            scan.reason = f"batch {batch} after {scan.last_batch} at byte {pos}"
            break
        if out is not None and batch > after:
            out.append((batch, payload.view(records.COMMAND).copy()))
        scan.first_batch = scan.first_batch or batch
        scan.entries += 1
        scan.last_batch = batch
        pos = end
    scan.good_bytes = pos
    scan.torn_bytes = n - pos
    return scan


def read_journal(path: str | Path,
                 after: int = 0) -> tuple[list[tuple[int, np.ndarray]], JournalScan]:
    """Every whole entry with batch > after, and the scan report (does not modify the file)."""
    path = Path(path)
    if not path.exists():
        return [], JournalScan(path)
    out: list = []
    return out, _scan(memoryview(path.read_bytes()), path, after, out)


class Journal:
    """An open journal segment. Use ``Journal.open``; one writer at a time.

    ``state``, ``head`` and ``iov`` are what a kernel passes to ``append_entry``."""

    def __init__(self, path: Path, fd: int, fsync: str, scan: JournalScan, last_batch: int):
        self.path, self.fsync, self.scan = path, fsync, scan
        self.state = np.zeros(8, np.int64)
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
        _, scan = read_journal(path)
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
            raise StorageError(f"{self.path}: journal write failed")
        return int(batch)

    def sync(self) -> None:
        os.fsync(int(self.state[J_FD]))

    def close(self) -> None:
        fd = int(self.state[J_FD])
        if fd >= 0:
            os.ftruncate(fd, os.fstat(fd).st_size)    # frees the unused reservation
            os.fsync(fd)
            os.close(fd)
            self.state[J_FD] = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
