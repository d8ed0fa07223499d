"""Following the local journal as the engine writes it: whole entries, raw bytes, in order.

    tail = JournalTail(state_dir / "journal", after=42)
    for batch, data in tail.read():      # entries 43, 44, ... that are whole on disk now
        ...
    tail.wait_fd()                       # an inotify fd: readable when the folder changes

Entry ``b`` lives in the segment ``seg-<first>.rxj`` with the largest ``first <= b``
(a snapshot after batch N starts ``seg-<N+1>``). A partly written entry (the engine's
writev in progress) is left for the next read. The bytes are sent as they are on disk:
the stream holds exactly the journal's entries.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ringex.core.journal import HEADER, entry_bounds
from ringex.errors import StorageError

READ_CHUNK = 4 << 20         # > the largest entry (a batch of 63 rings x 64 commands: 258 kB)
IN_MODIFY, IN_CREATE, IN_MOVED_TO = 0x2, 0x100, 0x80


class JournalTail:
    def __init__(self, folder: str | Path, after: int = 0):
        self.folder = Path(folder)
        self.after = after               # last batch returned (0: none yet)
        self._fd: int | None = None
        self._first = 0                  # first batch of the open segment
        self._pos = 0                    # where the next entry starts in it
        self._inotify: int | None = None

    def segments(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.folder.glob("seg-*.rxj"):
            try:
                out.append((int(p.stem.split("-")[1]), p))
            except ValueError:
                continue
        return sorted(out)

    def read(self, limit: int = 256) -> list[tuple[int, bytes]]:
        """Up to ``limit`` whole entries after ``self.after``, in order ([] if none yet)."""
        out: list[tuple[int, bytes]] = []
        while len(out) < limit:
            if self._fd is None and not self._open_segment():
                break
            got = self._read_open(limit - len(out))
            out += got
            if not got and not self._next_segment_started():
                break
        return out

    def _open_segment(self) -> bool:
        want = self.after + 1
        segs = self.segments()
        if not segs:
            return False
        older = [(f, p) for f, p in segs if f <= want]
        if older:
            first, path = older[-1]
        elif not self.after:             # nothing replicated yet: the journal's start
            first, path = segs[0]
        else:
            raise StorageError(f"journal entry {want} is gone from {self.folder} (pruned "
                               "before it was replicated)")
        self._fd, self._first, self._pos = os.open(path, os.O_RDONLY), first, 0
        return True

    def _read_open(self, limit: int) -> list[tuple[int, bytes]]:
        assert self._fd is not None
        buf = os.pread(self._fd, READ_CHUNK, self._pos)
        out: list[tuple[int, bytes]] = []
        pos = 0
        while len(out) < limit:
            end = entry_bounds(buf, pos)
            if end < 0:
                break
            batch = HEADER.unpack_from(buf, pos)[1]
            if batch > self.after:
                if self.after and batch != self.after + 1:
                    raise StorageError(f"journal gap: batch {batch} after {self.after}")
                out.append((batch, bytes(buf[pos:end])))
                self.after = batch
            pos = end
        self._pos += pos
        return out

    def _next_segment_started(self) -> bool:
        """Past the open segment's last whole entry, the next one lives in a newer
        segment once that exists (the open one gets nothing more)."""
        if not any(f > self._first for f, _ in self.segments()):
            return False
        self.close_segment()
        return True

    def close_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def wait_fd(self) -> int:
        """An inotify descriptor on the folder (non-blocking): readable when a segment
        grows or appears. Drain it with ``drain_wait_fd``."""
        if self._inotify is None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            self.folder.mkdir(parents=True, exist_ok=True)
            if libc.inotify_add_watch(fd, bytes(self.folder),
                                      IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0:
                os.close(fd)
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {self.folder}")
            self._inotify = fd
        return self._inotify

    def drain_wait_fd(self) -> None:
        if self._inotify is None:
            return
        try:
            while os.read(self._inotify, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.close_segment()
        if self._inotify is not None:
            os.close(self._inotify)
            self._inotify = None
