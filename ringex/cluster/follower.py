"""A standby's own copy of the exchange: the stream's entries applied, one by one, to an
OrderService and written to its own journal, with snapshots, in its own data dir.

    f = Follower(config, data_dir / "state", held)  # recovers what the data dir holds (N)
    f.apply(entry)                             # entry N + 1 of the stream: journal, then state
    f.snapshot_if_due()                        # every [state] snapshot_every_bytes of journal
    f.close()                                  # a snapshot at the last batch, journal closed

The same kernels and the same order as the primary's engine: journal an entry, then
process its commands; the state is a deterministic function of the journal, so it equals
the primary's after the same batch. The journal is written through ``Journal.append``,
which builds the header and check the way the engine did: the standby's journal is the
stream's entries, byte for byte, and a later takeover recovers from it with
``StateStore.recover`` like any engine start.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ringex.cluster.reader import StreamEntry
from ringex.cluster.tail import JournalTail
from ringex.config import Config
from ringex.core.journal import J_SIZE, Journal
from ringex.core.order_service import OrderService
from ringex.core.snapshot import StateStore
from ringex.errors import StorageError

log = logging.getLogger("ringex.cluster.standby")


class Follower:
    def __init__(self, config: Config, state_dir: str | Path,
                 held: Callable[[], int | None] | None = None):
        """``held()``: the database's last batch, what pruning may count on (None: it
        cannot tell, prune nothing); without it, everything applied counts as held."""
        self.store = StateStore(state_dir, config)
        self.held = held
        self.svc = OrderService(config)
        self.batch = 0                 # the last batch applied (journaled and processed)
        self.snapshots = 0
        if self.store.snapshots() or self.store.segments():
            rec = self.store.recover(self.svc)
            for problem in rec.problems:      # a torn tail (killed mid-write), a bad snapshot
                log.warning("standby: recovery: %s", problem)
            if any("journal gap" in p for p in rec.problems):
                # entries past the gap would follow the ones appended next
                raise StorageError(f"standby: {state_dir}: the journal has a gap "
                                   f"({'; '.join(rec.problems)})")
            self.batch = rec.last_batch
            log.info("standby: recovered batch %d (snapshot %d + %d journal entries)",
                     rec.last_batch, rec.snapshot_batch, rec.replayed_batches)
        self.journal: Journal = self.store.open_journal(self.batch + 1)

    def last_entry(self) -> bytes | None:
        """The journal's entry of ``self.batch`` as stored (None before batch 1)."""
        if not self.batch:
            return None
        tail = JournalTail(self.store.journal_dir, self.batch - 1)
        try:
            got = tail.read(1)
        finally:
            tail.close()
        return got[0][1] if got and got[0][0] == self.batch else None

    def apply(self, entry: StreamEntry) -> None:
        """Journal, then process, the entry after ``self.batch`` (StorageError for any
        other: the stream skipped or repeated one)."""
        if entry.batch != self.batch + 1:
            raise StorageError(f"standby: the stream gave batch {entry.batch} after "
                               f"{self.batch}")
        written = self.journal.append(entry.cmds)
        if written != entry.batch:
            raise StorageError(f"standby: journal wrote batch {written}, not {entry.batch}")
        if len(entry.cmds):
            self.svc.submit(entry.cmds)
        self.batch = entry.batch

    def snapshot_if_due(self) -> bool:
        """A snapshot once the open segment passed ``snapshot_every_bytes``: captured now,
        written and pruned in a helper thread: the standby keeps ``keep_snapshots``
        recovery points at or below ``held()``, as an engine does with its database's."""
        if int(self.journal.state[J_SIZE]) < self.store.options.snapshot_every_bytes:
            return False
        batch = self.batch
        cap = self.store.save_snapshot_async(self.svc, batch, held=self.held or (lambda: batch),
                                             done=self._snapshot_done)
        if cap is None:                # the previous one is still being written
            return False
        assert self.store.journal is not None
        self.journal = self.store.journal          # the new segment
        self.snapshots += 1
        return True

    def _snapshot_done(self, report: dict) -> None:
        if "error" in report:
            log.error("standby: snapshot at batch %d failed: %s", report["batch"],
                      report["error"])
        else:
            log.info("standby: snapshot at batch %d (%d bytes, pruned %s)", report["batch"],
                     report.get("bytes", 0), report.get("pruned") or "nothing")

    def close(self) -> None:
        """A snapshot at the last batch (a restart replays nothing), journal closed."""
        try:
            if self.batch:
                path = self.store.save_snapshot(self.svc, self.batch)
                log.info("standby: snapshot %s", path.name)
        finally:
            self.store.close()
