"""A full journal disk pauses acknowledgements instead of stopping the engine.

    full = DiskFull()
    full.pause(path)               # the loop's journal write failed with ENOSPC/EDQUOT
    if full.due(): ...retry...     # every RETRY_MIN_S..RETRY_MAX_S (doubling)
    full.failed_again() / full.resume()

While paused the engine holds the group it could not journal (processed, not routed, not
handed off: nothing of it has left the process), polls no new commands, and tries the
write again with backoff; the gateways' command rings fill and they answer `overloaded`.
Once a write succeeds the group is released and the loop goes on. One error line when it
starts, one line when space is back; the counters go to the engine's ``Ctl`` words
(JOURNAL_DISK_FULL, JOURNAL_DISK_FULL_PAUSES, JOURNAL_PAUSED_NS) for the metrics.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger("ringex.core.engine.process")

RETRY_MIN_S = 0.1            # first retry of the journal write after a full disk
RETRY_MAX_S = 0.5            # longest wait between retries


class DiskFull:
    """Whether the engine is paused on a full journal disk, since when, and when to retry."""

    def __init__(self) -> None:
        self.path: Path | None = None        # the segment that could not be written
        self.since_ns = 0                    # monotonic, when this pause began
        self.pauses = 0                      # pauses of this run
        self.paused_ns = 0                   # time paused, finished pauses of this run
        self.retries = 0                     # failed retries of the current pause
        self._delay = RETRY_MIN_S
        self._next_ns = 0

    @property
    def active(self) -> bool:
        return self.path is not None

    def pause(self, path: Path) -> None:
        """The first failed write of a pause: log it once."""
        self.path, self.since_ns = Path(path), time.monotonic_ns()
        self.pauses += 1
        self.retries = 0
        self._delay = RETRY_MIN_S
        self._next_ns = self.since_ns + int(self._delay * 1e9)
        log.error("journal: disk full at %s; acknowledgements paused (retrying every "
                  "%.1f-%.1f s; free space on that file system to resume)", self.path,
                  RETRY_MIN_S, RETRY_MAX_S)

    def due(self) -> bool:
        return time.monotonic_ns() >= self._next_ns

    def wait_s(self) -> float:
        """Seconds until the next retry (0 when due)."""
        return max(0.0, (self._next_ns - time.monotonic_ns()) / 1e9)

    def failed_again(self) -> None:
        self.retries += 1
        self._delay = min(self._delay * 2, RETRY_MAX_S)
        self._next_ns = time.monotonic_ns() + int(self._delay * 1e9)

    def resume(self) -> None:
        """A retry succeeded: say so, and count the pause."""
        took = time.monotonic_ns() - self.since_ns
        self.paused_ns += took
        log.warning("journal: space is back at %s; acknowledgements resumed after %.1f s "
                    "(%d retries)", self.path, took / 1e9, self.retries)
        self.path = None

    def total_paused_ns(self) -> int:
        """Time paused in this run, the current pause included."""
        now = time.monotonic_ns() - self.since_ns if self.active else 0
        return self.paused_ns + now
