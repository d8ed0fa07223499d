"""Periodic snapshots while the engine runs, and pruning once the database holds them.

    snaps = PeriodicSnapshots(eng, store)    # after recovery, the journal open
    snaps.poll()                             # in the loop's housekeeping, between steps

``poll`` takes a snapshot once the open journal segment has grown past
``[state] snapshot_every_bytes`` (``RINGEX_STATE`` overrides it): in the engine's thread it
captures the live state and starts a new segment (the stall: ``capture_s``), then a helper
thread writes the file and prunes (``StateStore.save_snapshot_async``), so a crash
replays at most about that much journal. Pruning needs the database's last batch of the
engine (``DatabaseProgress``): without it nothing is pruned until the next start (which
prunes with the batch the supervisor read from the database).
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ringex.core.engine.start import ENGINE_PRODUCER
from ringex.core.journal import J_FD, J_LAST, J_SIZE
from ringex.core.snapshot import StateStore
from ringex.errors import StorageError

if TYPE_CHECKING:
    from ringex.core.engine.front import Engine

log = logging.getLogger("ringex.core.engine.process")

RUN_FILE = "ringex.run"      # the supervisor's run file in the data dir (ringex/ops/datadir.py)


class DatabaseProgress:
    """The database's last batch of the engine, or None when it cannot be known.

    The database is the one named (``db``) in the run file the supervisor writes into the
    data dir once every child runs, trusted only when that supervisor is this process's
    parent. Called from the snapshot thread: it opens the database read-only, asks, and
    closes it (storage is imported then, not by the engine's start)."""

    def __init__(self, state_dir: str | Path):
        self.run_file = Path(state_dir).parent / RUN_FILE

    def __call__(self) -> int | None:
        try:
            info = json.loads(self.run_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or info.get("pid") != os.getppid() or not info.get("db"):
            return None
        from ringex.storage.stores import open_repository
        try:
            with open_repository(info["db"], readonly=True) as repo:
                return int(repo.last_batches().get(ENGINE_PRODUCER, 0))
        except Exception as exc:                 # noqa: BLE001 - no pruning this time
            log.warning("engine: could not read the database's progress (%s); "
                        "nothing pruned", exc)
            return None


class PeriodicSnapshots:
    """Snapshots every ``every_bytes`` of journal (module docstring)."""

    def __init__(self, eng: "Engine", store: StateStore, every_bytes: int | None = None,
                 held=None):
        self.eng, self.store = eng, store
        self.every = every_bytes or store.options.snapshot_every_bytes
        self.held = held if held is not None else DatabaseProgress(store.root)
        self.taken = 0
        self.postponed_to = 0                   # journal size of the next try after a failure
        self.capture_s: list[float] = []        # the loop's stall per snapshot
        self.reports: list[dict] = []           # what the snapshot thread did, per snapshot

    def due(self) -> bool:
        j = self.eng.arrays.journal
        return bool(j[J_FD] >= 0 and j[J_SIZE] >= max(self.every, self.postponed_to))

    def poll(self) -> bool:
        """Take a snapshot if one is due and the previous one is written; True if taken.
        Call between loop steps: the state then matches the journal's last batch."""
        if not self.due() or self.store.busy():
            return False
        t0 = time.perf_counter()
        batch = int(self.eng.arrays.journal[J_LAST])
        try:
            cap = self.store.save_snapshot_async(self.eng.svc, batch, self.held, self._done)
        except StorageError as exc:
            log.error("engine: periodic snapshots off: %s (the journal keeps everything)", exc)
            self.every = 1 << 62
            return False
        except OSError as exc:      # a full disk refused the new segment: try again later
            self.postponed_to = int(self.eng.arrays.journal[J_SIZE]) + self.every
            log.error("engine: snapshot of batch %d not taken: %s; next try after %d more "
                      "bytes of journal (the journal keeps everything)", batch, exc, self.every)
            return False
        if cap is None:
            return False
        assert self.store.journal is not None            # the new segment
        self.eng.use_journal(self.store.journal)
        self.postponed_to = 0
        stall = time.perf_counter() - t0
        self.capture_s.append(stall)
        self.taken += 1
        log.info("engine: snapshot of batch %d captured (%d live bytes, the loop paused "
                 "%.1f ms); journal segment %d on", batch, cap.nbytes, stall * 1e3, batch + 1)
        return True

    def _done(self, report: dict) -> None:
        """In the snapshot thread, once the file is written (or failed)."""
        self.reports.append(report)
        if "error" in report:
            log.error("engine: snapshot of batch %d not written: %s (the journal keeps "
                      "everything)", report["batch"], report["error"])
            return
        log.info("engine: snapshot %d written (%d bytes in %.1f ms); database at %s; "
                 "pruned %s", report["batch"], report["bytes"], report["write_s"] * 1e3,
                 report.get("held", "unknown"), report.get("pruned") or "nothing")
