"""Snapshots of the engine's state arrays, journal segments, and recovery at start.

Layout of the state folder (``<data-dir>/state``):

    snapshots/snap-<batch>.npz    every state array after batch <batch>, plus a sha256
    journal/seg-<first>.rxj       journal entries from batch <first> on (journal.py)

Taking a snapshot after batch N writes ``snap-N.npz`` (to a temp name, fsync, rename) and
starts a new journal segment at N + 1. Nothing is deleted then: the engine calls
``prune_before`` at start with the snapshot it recovered from, one the database already
holds, so a corrupted newest snapshot or a lagging database still recovers from an older
snapshot plus more of the journal. Recovery = newest valid snapshot + replay of every
journal entry after it, which gives exactly the state an uninterrupted run would have had
(the engine is deterministic).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ringex.config import Config
from ringex.core.journal import Journal, read_journal
from ringex.core.order_service import OrderService
from ringex.errors import StorageError

FORMAT = 1


@dataclass
class Recovery:
    """What recovery did, for the log and the tests."""
    snapshot_batch: int = 0                 # 0: started from an empty engine
    replayed_batches: int = 0
    last_batch: int = 0
    problems: list[str] = field(default_factory=list)    # corrupt snapshots, torn tails
    entries: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    # (batch, commands, events) of every replayed entry, when asked for (keep_events)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).view(np.uint8).tobytes())
    return h.hexdigest()


def config_fingerprint(config: Config) -> str:
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


class StateStore:
    """Owns ``<data-dir>/state``: the open journal segment and the snapshots."""

    def __init__(self, root: str | Path, config: Config, fsync: str = "none"):
        self.root = Path(root)
        self.config = config
        self.fsync = fsync
        self.snap_dir = self.root / "snapshots"
        self.journal_dir = self.root / "journal"
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.journal: Journal | None = None

    # -- snapshots
    def snapshots(self) -> list[tuple[int, Path]]:
        return _numbered(self.snap_dir, "snap-*.npz")

    def save_snapshot(self, svc: OrderService, batch: int) -> Path:
        arrays = svc.state_arrays()
        meta = {"format": FORMAT, "batch": batch, "config": config_fingerprint(self.config),
                "sha256": _digest(arrays)}
        final = self.snap_dir / f"snap-{batch:020d}.npz"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            # allow_pickle: the default, named so **arrays cannot be taken to set it
            np.savez(f, allow_pickle=True,
                     __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.snap_dir)
        self._rotate_journal(batch)
        return final

    def load_snapshot(self, path: Path, svc: OrderService) -> int:
        """Load into svc; returns its batch. Raises StorageError when it is not valid."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["__meta__"]).decode())
                arrays = {k: z[k] for k in z.files if k != "__meta__"}
        except Exception as exc:  # a damaged zip raises many kinds of errors
            raise StorageError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from None
        if meta.get("format") != FORMAT:
            raise StorageError(f"{path.name}: unknown format {meta.get('format')}")
        if meta.get("config") != config_fingerprint(self.config):
            raise StorageError(f"{path.name}: taken with a different market configuration")
        if _digest(arrays) != meta.get("sha256"):
            raise StorageError(f"{path.name}: checksum mismatch")
        try:
            svc.load_state_arrays(arrays)
        except ValueError as exc:
            raise StorageError(f"{path.name}: {exc}") from None
        return int(meta["batch"])

    # -- journal segments
    def segments(self) -> list[tuple[int, Path]]:
        return _numbered(self.journal_dir, "seg-*.rxj")

    def open_journal(self, next_batch: int) -> Journal:
        """Append to the newest segment (cutting a torn tail), or start one at next_batch."""
        segs = self.segments()
        path = segs[-1][1] if segs else self.journal_dir / f"seg-{next_batch:020d}.rxj"
        self.journal = Journal.open(path, self.fsync, next_batch)
        return self.journal

    def _rotate_journal(self, batch: int) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = Journal.open(self.journal_dir / f"seg-{batch + 1:020d}.rxj",
                                        self.fsync, batch + 1)

    def prune_before(self, batch: int) -> None:
        """Delete snapshots older than ``batch`` and journal segments holding only entries
        at or before it. Call with a snapshot the database already holds (recovery's)."""
        for b, p in self.snapshots():
            if b < batch:
                p.unlink(missing_ok=True)
        segs = self.segments()
        for (_first, p), (nxt, _) in zip(segs, segs[1:]):
            if nxt <= batch + 1:              # the next segment starts at or before batch+1
                p.unlink(missing_ok=True)

    # -- recovery
    def recover(self, svc: OrderService, keep_events: bool = False,
                upto: int | None = None) -> Recovery:
        """Bring a fresh svc to the last journaled batch: newest valid snapshot + replay.

        ``upto``: use only snapshots taken at or before that batch (the database's last
        batch), so that every entry the database lacks is replayed and its events kept."""
        rec = Recovery()
        for batch, path in reversed(self.snapshots()):
            if upto is not None and batch > upto:
                continue
            try:
                rec.snapshot_batch = self.load_snapshot(path, svc)
                break
            except StorageError as exc:    # validated before copying: svc is untouched
                rec.problems.append(f"snapshot skipped: {exc}")
        rec.last_batch = rec.snapshot_batch
        for _, path in self.segments():
            entries, scan = read_journal(path, after=rec.last_batch)
            if scan.torn_bytes:
                rec.problems.append(f"{path.name}: {scan.reason}; {scan.torn_bytes} bytes cut")
            for batch, cmds in entries:
                if batch != rec.last_batch + 1:
                    rec.problems.append(f"journal gap: batch {rec.last_batch} then {batch}; "
                                        "recovered up to the gap")
                    return rec
                events = svc.submit(cmds)
                if keep_events:
                    rec.entries.append((batch, cmds, events))
                rec.replayed_batches += 1
                rec.last_batch = batch
        return rec

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def _numbered(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    """Files named <prefix>-<batch>.<ext>, by batch."""
    out = []
    for p in folder.glob(pattern):
        try:
            out.append((int(p.stem.split("-")[1]), p))
        except ValueError:
            continue
    return sorted(out)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
