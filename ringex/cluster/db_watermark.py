"""How far the exchange's database holds the journal, as a standby reads it.

    held = DatabaseWatermark(db_url, config)
    held()        # the engine's last batch the database committed; None: cannot tell
    held.close()

A standby that will serve after a takeover shares the primary's database (the exchange's
accounts and API keys live there). The engine that then starts on the standby's data dir
resends every journal entry past this batch to its writer (``engine.process._recover``),
so the standby must keep its snapshots and journal back to it: it prunes with this, as a
primary prunes with its own writer's. The database is opened read-only and opened again
after an error (a restarted PostgreSQL, a SQLite file not created yet).
"""
from __future__ import annotations

import logging
import threading

from ringex.config import Config
from ringex.core.engine.start import ENGINE_PRODUCER
from ringex.storage.repository import Repository
from ringex.storage.stores import open_repository

log = logging.getLogger("ringex.cluster.standby")


class DatabaseWatermark:
    def __init__(self, db_url: str, config: Config):
        self.db_url, self.config = db_url, config
        self._repo: Repository | None = None
        self._failing = False
        self._lock = threading.Lock()       # the snapshot thread asks too

    def __call__(self) -> int | None:
        with self._lock:
            return self._read()

    def _read(self) -> int | None:
        try:
            if self._repo is None:
                self._repo = open_repository(self.db_url, self.config, readonly=True)
            batch = self._repo.last_batches().get(ENGINE_PRODUCER, 0)
        except Exception as exc:            # noqa: BLE001 - unknown is an answer: keep all
            if not self._failing:
                log.warning("standby: cannot read the database's last batch (%s: %s); "
                            "pruning nothing until it answers", type(exc).__name__, exc)
            self._failing = True
            self._close()
            return None
        if self._failing:
            log.info("standby: the database answers again (last batch %d)", batch)
        self._failing = False
        return batch

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._repo is not None:
            try:
                self._repo.close()
            except Exception:               # noqa: BLE001 - a lost connection
                pass
            self._repo = None
