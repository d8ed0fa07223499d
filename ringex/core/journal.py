"""Append-only command journal: every accepted batch, in processing order, checksummed.

File format (little-endian), one entry per batch:

    magic   u32  0x314A5852 ("RXJ1")
    batch   u64  the matcher's batch number (strictly increasing)
    count   u32  COMMAND records in the payload
    crc     u32  zlib.crc32 of the payload
    payload count x 64 bytes of layout.COMMAND records

The matcher appends a batch *before* any of its results leave the process (group commit:
one write per batch). ``fsync="batch"`` also fsyncs each append: an acknowledged order
then survives a power cut, at the cost of one disk flush per batch. ``fsync="none"``
leaves flushing to the OS: it survives any process crash (the data is in the page cache)
but not a machine crash. A crash mid-write leaves a torn tail; ``Journal.open`` and
``read_journal`` detect it (short header, short payload, bad magic or checksum) and cut
the file back to the last whole entry, never replaying garbage.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ringex.errors import StorageError
from ringex.ring import layout

MAGIC = 0x314A5852
HEADER = struct.Struct("<IQII")
FSYNC_POLICIES = ("none", "batch")


@dataclass
class JournalScan:
    """What reading a journal found: its good length and how much tail was cut."""
    path: Path
    entries: int = 0
    last_batch: int = 0
    good_bytes: int = 0
    torn_bytes: int = 0
    reason: str = ""


def _scan(data: memoryview, path: Path, after: int, out: list | None) -> JournalScan:
    scan, pos, n = JournalScan(path), 0, len(data)
    while pos < n:
        if n - pos < HEADER.size:
            scan.reason = f"short header at byte {pos}"
            break
        magic, batch, count, crc = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + count * layout.COMMAND.itemsize
        if magic != MAGIC:
            scan.reason = f"bad magic at byte {pos}"
            break
        if end > n:
            scan.reason = f"short payload at byte {pos}"
            break
        payload = data[pos + HEADER.size:end]
        if zlib.crc32(payload) != crc:
            scan.reason = f"checksum mismatch at byte {pos} (batch {batch})"
            break
        if batch <= scan.last_batch:
            scan.reason = f"batch {batch} after {scan.last_batch} at byte {pos}"
            break
        if out is not None and batch > after:
            out.append((batch, np.frombuffer(payload, dtype=layout.COMMAND).copy()))
        scan.entries += 1
        scan.last_batch = batch
        pos = end
    scan.good_bytes = pos
    scan.torn_bytes = n - pos
    return scan


def read_journal(path: str | Path, after: int = 0) -> tuple[list[tuple[int, np.ndarray]], JournalScan]:
    """Every whole entry with batch > after, and the scan report (does not modify the file)."""
    path = Path(path)
    if not path.exists():
        return [], JournalScan(path)
    data = memoryview(path.read_bytes())
    out: list = []
    return out, _scan(data, path, after, out)


def iter_entries(path: str | Path, after: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    entries, _ = read_journal(path, after)
    yield from entries


class Journal:
    """The matcher's open journal file. Use ``Journal.open``; one writer at a time."""

    def __init__(self, path: Path, fd: int, fsync: str, scan: JournalScan):
        self.path, self._fd, self.fsync, self.scan = path, fd, fsync, scan
        self.last_batch = scan.last_batch

    @classmethod
    def open(cls, path: str | Path, fsync: str = "none") -> "Journal":
        """Open for appending; cut a torn tail first (``journal.scan`` says what was cut)."""
        if fsync not in FSYNC_POLICIES:
            raise StorageError(f"journal fsync policy must be one of {FSYNC_POLICIES}, not {fsync!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _, scan = read_journal(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if scan.torn_bytes:
            os.ftruncate(fd, scan.good_bytes)
            os.fsync(fd)
        return cls(path, fd, fsync, scan)

    def append(self, batch: int, cmds: np.ndarray) -> None:
        """Write one batch as one entry (one write call); fsync per the policy."""
        if batch <= self.last_batch:
            raise StorageError(f"journal batch {batch} is not after {self.last_batch}")
        payload = memoryview(np.ascontiguousarray(cmds, dtype=layout.COMMAND).view(np.uint8))
        head = HEADER.pack(MAGIC, batch, len(cmds), zlib.crc32(payload))
        done = os.writev(self._fd, [head, payload])       # no copies of the batch
        if done < len(head) + len(payload):                # interrupted: finish it
            rest = memoryview(head + payload.tobytes())[done:]
            while rest:
                rest = rest[os.write(self._fd, rest):]
        if self.fsync == "batch":
            os.fsync(self._fd)
        self.last_batch = batch

    def sync(self) -> None:
        os.fsync(self._fd)

    def truncate_all(self) -> None:
        """Empty the journal (after a snapshot has made its entries redundant)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
