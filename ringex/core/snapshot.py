"""Snapshots of the engine's state, journal segments, pruning, and recovery at start.

Layout of the state folder (``<data-dir>/state``):

    snapshots/snap-<batch>.npz    the state after batch <batch> (ringex/core/snapshot_format.py)
    journal/seg-<first>.rxj       journal entries from batch <first> on (journal.py)

Taking a snapshot after batch N captures the live parts of the state (``capture``: in the
engine's thread, between batches), starts a new journal segment at N + 1, and writes
``snap-N.npz`` (to a temp name, fsync, rename; ``write``), either at once
(``save_snapshot``: at a clean stop) or in a helper thread while the engine goes on
(``save_snapshot_async``: the periodic snapshots, ringex/core/engine/snapshots.py).

Nothing is deleted when a snapshot is taken: ``prune_before(held)`` deletes only what no
recovery can need once the database holds batch ``held``: recovery starts from the newest
valid snapshot at or below the database's last batch, so the newest ``keep_snapshots``
recovery points at or below ``held`` are kept (the empty engine before batch 1 counts as
one while the journal still starts there), with every snapshot above ``held`` and every
journal segment holding an entry after the oldest point kept. A corrupted newest snapshot
or a database that lost its last commits still recovers, from an older point and more of
the journal. Recovery = that snapshot + replay of every journal entry after it, which
gives exactly the state an uninterrupted run would have had (the engine is deterministic).

Snapshot files: an ``.npz`` whose ``__meta__`` (JSON) gives the format, the batch, the
market configuration's fingerprint and a sha256 of everything else. FORMAT 2 (written)
stores the live slots and pages only; FORMAT 1 (every array whole, written before) is
still read.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ringex.config import Config, StateOptions, parse_state
from ringex.core import snapshot_format as fmt
from ringex.core.journal import J_BYTES, J_ENTRIES, J_FSYNC_NS, Entries, Journal, read_entries
from ringex.core.order_service import OrderService
from ringex.core.state_layout import JOURNAL, SEGMENT_GLOB, SNAPSHOT_GLOB, SNAPSHOTS, numbered
from ringex.errors import StorageError

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 2.0          # a replay that runs longer says how far it is this often
FORMAT = fmt.FORMAT            # compact (written)
FORMAT_FULL = 1                 # every state array whole (read only)
config_fingerprint = fmt.config_fingerprint
STATE_ENV = "RINGEX_STATE"      # "snapshot_every_bytes=65536,keep_snapshots=10": tests, perf


def state_options(config: Config, text: str | None = None) -> StateOptions:
    """The config's ``[state]`` with the overrides of ``RINGEX_STATE`` (or ``text``)."""
    text = os.environ.get(STATE_ENV, "") if text is None else text
    spec = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        try:
            spec[key.strip()] = int(value)
        except ValueError:
            raise StorageError(f"{STATE_ENV}: bad item {item!r}; want name=integer") from None
    return parse_state(spec, STATE_ENV, config.state) if spec else config.state


@dataclass
class Recovery:
    """What recovery did, for the log and the tests."""
    snapshot_batch: int = 0                 # 0: started from an empty engine
    snapshot_format: int = 0                # FORMAT of that snapshot (0: none)
    replayed_batches: int = 0
    last_batch: int = 0
    problems: list[str] = field(default_factory=list)    # corrupt snapshots, torn tails
    entries: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    # (batch, commands, events) of every replayed entry, when asked for (keep_events)
    load_s: float = 0.0                     # reading and loading the snapshot
    replay_s: float = 0.0                   # reading and replaying the journal


class StateStore:
    """Owns ``<data-dir>/state``: the open journal segment and the snapshots."""

    def __init__(self, root: str | Path, config: Config, fsync: str = "none"):
        self.root = Path(root)
        self.config = config
        self.fsync = fsync
        self.options = state_options(config)
        self.snap_dir = self.root / SNAPSHOTS
        self.journal_dir = self.root / JOURNAL
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.snap_dir.glob("snap-*.tmp"):   # a write a crash interrupted
            tmp.unlink(missing_ok=True)
        self.journal: Journal | None = None
        self.bad: set[int] = set()          # snapshots found invalid (not recovery points)
        self.written: set[int] = set()      # snapshots written through this store
        self._marks: weakref.WeakKeyDictionary[OrderService, fmt.Mark] = \
            weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self.last_write: dict = {}          # the helper thread's last write (or error)

    # -- snapshots
    def snapshots(self) -> list[tuple[int, Path]]:
        return numbered(self.snap_dir, SNAPSHOT_GLOB)

    def capture(self, svc: OrderService, batch: int) -> fmt.Capture:
        """Copy the live state out of ``svc`` (which must be between batches: no command
        half-done). Also resets svc's dead order slots (``snapshot_format.canonicalize``),
        so the state loaded back is byte for byte svc's own."""
        t0 = time.perf_counter()
        arrays = svc.state_arrays()
        mark = fmt.canonicalize(arrays, self._marks.get(svc))
        self._marks[svc] = mark
        try:
            stored, layout = fmt.encode(arrays, mark)
        except ValueError as exc:
            raise StorageError(f"snapshot of batch {batch}: {exc}") from None
        return fmt.Capture(batch, stored, layout, time.perf_counter() - t0)

    def write(self, cap: fmt.Capture) -> Path:
        """Store a capture as ``snap-<batch>.npz`` (temp name, fsync, rename)."""
        t0 = time.perf_counter()
        meta = {"format": FORMAT, "batch": cap.batch,
                "config": fmt.config_fingerprint(self.config), "layout": cap.layout}
        meta["sha256"] = fmt.digest(cap.stored, fmt.signed_json(meta))
        final = self.snap_dir / f"snap-{cap.batch:020d}.npz"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            fmt.write_npz(f, {"__meta__": np.frombuffer(json.dumps(meta).encode(), np.uint8),
                           **cap.stored})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.snap_dir)
        self.written.add(cap.batch)
        self.last_write = {"batch": cap.batch, "bytes": final.stat().st_size,
                           "capture_s": cap.seconds, "write_s": time.perf_counter() - t0}
        return final

    def save_snapshot(self, svc: OrderService, batch: int) -> Path:
        """Snapshot after ``batch`` now (waits for a periodic one still being written),
        and start a new journal segment."""
        self.wait()
        final = self.snap_dir / f"snap-{batch:020d}.npz"
        if batch in self.written and final.exists():    # a periodic one, nothing since
            return final
        cap = self.capture(svc, batch)
        old = self._rotate_journal(batch)
        if old is not None:
            old.close(sync=False)
        return self.write(cap)

    def save_snapshot_async(self, svc: OrderService, batch: int,
                            held: Callable[[], int | None] | None = None,
                            done: Callable[[dict], None] | None = None) -> fmt.Capture | None:
        """Capture now and start a new journal segment; write the file in a helper thread,
        then prune with ``held()`` (the database's last batch, or None: unknown) and call
        ``done(report)``. Returns None, doing nothing, while the previous one is still
        being written."""
        if self.busy():
            return None
        cap = self.capture(svc, batch)
        old = self._rotate_journal(batch)

        def work() -> None:
            report: dict = {"batch": cap.batch}
            try:
                t0 = time.perf_counter()
                if old is not None:
                    old.close(sync=False)
                report["close_s"] = time.perf_counter() - t0
                self.write(cap)
                report.update(self.last_write)
                confirmed = held() if held is not None else None
                if confirmed is not None:
                    report["held"] = confirmed
                    report["pruned"] = [p.name for p in self.prune_before(confirmed)]
            except Exception as exc:            # noqa: BLE001 - reported, engine goes on
                report["error"] = f"{type(exc).__name__}: {exc}"
            if done is not None:
                done(report)

        self._thread = threading.Thread(target=work, name="ringex-snapshot", daemon=True)
        self._thread.start()
        return cap

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Until the snapshot being written in the helper thread (if any) is on disk."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def load_snapshot(self, path: Path, svc: OrderService) -> int:
        """Load into svc; returns its batch. Raises StorageError when it is not valid
        (checked before anything is copied: svc is then untouched)."""
        return self._load(path, svc)[0]

    def _load(self, path: Path, svc: OrderService) -> tuple[int, int]:
        """(batch, format) of the snapshot loaded into svc (``load_snapshot``)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["__meta__"]).decode())
                arrays = {k: z[k] for k in z.files if k != "__meta__"}
        except Exception as exc:  # a damaged zip raises many kinds of errors
            raise StorageError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from None
        form = meta.get("format")
        if form not in (FORMAT_FULL, FORMAT):
            raise StorageError(f"{path.name}: unknown format {form} (this ringex reads "
                               f"formats {FORMAT_FULL} and {FORMAT}; written by a newer one?)")
        if meta.get("config") != fmt.config_fingerprint(self.config):
            raise StorageError(f"{path.name}: taken with a different market configuration")
        signed = {k: v for k, v in meta.items() if k != "sha256"}
        extra = b"" if form == FORMAT_FULL else fmt.signed_json(signed)
        if fmt.digest(arrays, extra) != meta.get("sha256"):
            raise StorageError(f"{path.name}: checksum mismatch")
        try:
            if form == FORMAT_FULL:
                svc.load_state_arrays(arrays)
                self._marks.pop(svc, None)      # its dead slots: whatever was saved
            else:
                self._marks[svc] = fmt.decode_into(svc.state_arrays(), arrays,
                                                   meta["layout"], self._marks.get(svc))
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{path.name}: {exc}") from None
        return int(meta["batch"]), form

    # -- journal segments
    def segments(self) -> list[tuple[int, Path]]:
        return numbered(self.journal_dir, SEGMENT_GLOB)

    def open_journal(self, next_batch: int) -> Journal:
        """Append to the newest segment (cutting a torn tail), or start one at next_batch."""
        segs = self.segments()
        path = segs[-1][1] if segs else self.journal_dir / f"seg-{next_batch:020d}.rxj"
        self.journal = Journal.open(path, self.fsync, next_batch)
        return self.journal

    def _rotate_journal(self, batch: int) -> Journal | None:
        """Start ``seg-<batch + 1>`` (the run's byte and entry counters carry over) and
        return the previous segment, still open, for the caller to close, without fsync:
        the snapshot after ``batch`` covers it (with ``fsync="batch"`` every entry is on
        disk already). An fsync of a 64 MiB segment took ~190 ms here, and from another
        thread it still stalled the loop by ~30 ms several times. The old segment keeps
        its own state words: the engine's (``Engine.use_journal``) go on with the new one."""
        old = self.journal
        if old is None:
            return None
        new = Journal.open(self.journal_dir / f"seg-{batch + 1:020d}.rxj", self.fsync,
                           batch + 1)             # (a full disk may refuse it: nothing changed)
        old.state = old.state.copy()
        for word in (J_BYTES, J_ENTRIES, J_FSYNC_NS):          # counters of the whole run
            new.state[word] = old.state[word]
        self.journal = new
        return old

    def prune_before(self, held: int) -> list[Path]:
        """Delete what no recovery can need once the database holds batch ``held``
        (module docstring); returns the files deleted.

        Safe beside the engine's thread: the newest segment (the open one) is never
        deleted, nor a snapshot it could be writing (newer than every point)."""
        snaps = self.snapshots()
        points = [0] + [b for b, _ in snaps if b <= held and b not in self.bad]
        base = points[max(0, len(points) - self.options.keep_snapshots)]
        gone = [p for b, p in snaps if b < base]
        segs = self.segments()
        for (_first, p), (nxt, _) in zip(segs, segs[1:]):
            if nxt <= base + 1:                 # the next segment starts by base + 1
                gone.append(p)
        for p in gone:
            p.unlink(missing_ok=True)
        return gone

    # -- recovery
    def recover(self, svc: OrderService, keep_events: bool = False,
                upto: int | None = None, keep_after: int | None = None) -> Recovery:
        """Bring a fresh svc to the last journaled batch: newest valid snapshot + replay.

        ``upto``: use only snapshots taken at or before that batch (the database's last
        batch), so that every entry the database lacks is replayed and its events kept.
        ``keep_events``: keep (batch, commands, events) of every replayed entry, or only of
        those after ``keep_after``, in ``rec.entries``; entries whose events are not kept
        are replayed many at a time (the state does not depend on how commands are
        grouped), which is what makes replaying a long journal fast."""
        rec = Recovery()
        t0 = time.perf_counter()
        for batch, path in reversed(self.snapshots()):
            if upto is not None and batch > upto:
                continue
            try:
                rec.snapshot_batch, rec.snapshot_format = self._load(path, svc)
                break
            except StorageError as exc:    # validated before copying: svc is untouched
                self.bad.add(batch)
                rec.problems.append(f"snapshot skipped: {exc}")
        rec.last_batch = rec.snapshot_batch
        t1 = time.perf_counter()
        rec.load_s = t1 - t0
        if not keep_events:
            keep_after = 1 << 62
        segments = self.segments()
        said = t1
        for k, (first, path) in enumerate(segments, 1):
            if time.perf_counter() - said >= PROGRESS_EVERY_S:
                said = time.perf_counter()
                log.info("recovery: replaying journal segment %d/%d (%s), %d entries "
                         "replayed, %.0f s so far", k, len(segments), path.name,
                         rec.replayed_batches, said - t1)
            ent, scan = read_entries(path, after=rec.last_batch)
            if scan.torn_bytes:
                rec.problems.append(f"{path.name}: {scan.reason}; {scan.torn_bytes} bytes cut")
            if first == rec.last_batch + 1 and rec.last_batch > rec.snapshot_batch:
                # a segment starts where the engine took a snapshot (newer than the one
                # loaded): it reset its dead slots there (capture), and so does the replay
                self._marks[svc] = fmt.canonicalize(svc.state_arrays(), self._marks.get(svc))
            gap = np.flatnonzero(ent.batches != np.arange(len(ent)) + rec.last_batch + 1)
            _replay(svc, ent, int(gap[0]) if len(gap) else len(ent), keep_after or 0, rec)
            if len(gap):
                rec.problems.append(f"journal gap: batch {rec.last_batch} then "
                                    f"{int(ent.batches[gap[0]])}; recovered up to the gap")
                break
        rec.replay_s = time.perf_counter() - t1
        return rec

    def close(self) -> None:
        self.wait()
        if self.journal is not None:
            self.journal.close()
            self.journal = None


REPLAY_RUN = 1 << 16          # commands per call when replaying entries whose events go


def _replay(svc: OrderService, ent: Entries, n: int, keep_after: int, rec: Recovery) -> None:
    """Replay entries 0..n-1 of ``ent`` into svc: one call per run of up to REPLAY_RUN
    commands while their events are not wanted, one per entry after ``keep_after``."""
    batched = int(np.searchsorted(ent.batches[:n], keep_after, "right"))
    end = int(ent.ends[batched - 1]) if batched else 0      # their commands, back to back
    for c in range(0, end, REPLAY_RUN):
        svc.submit(ent.cmds[c:min(c + REPLAY_RUN, end)])
    for i in range(batched, n):
        cmds = ent.entry(i)
        rec.entries.append((int(ent.batches[i]), cmds, svc.submit(cmds)))
    if n:
        rec.replayed_batches += n
        rec.last_batch = int(ent.batches[n - 1])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
