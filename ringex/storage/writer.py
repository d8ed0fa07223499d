"""The writer process: trade queue -> projection -> one transaction per group.

    q = TradeQueue()                                    # in the supervisor, before forking
    w = start_writer(q, "ringex.db", config)            # or "postgresql://..."
    ...producers put batches...
    w.stop()                                            # flush everything queued, join

Guarantees:
- A queue ``get`` drains up to ``max_drain_bytes``, written as groups of at most
  ``max_group_bytes``, one transaction each; the next group is projected and encoded
  while the database thread writes the current one.
- Every payload is written exactly once in effect: a payload numbered at or below the last
  committed batch of its producer (table ``meta``) is skipped, and every insert is keyed
  so a replay cannot duplicate a row.
- Database down: the group is kept (copied out of the queue buffer), the writer retries
  with exponential backoff, keeps draining the queue into memory up to
  ``max_backlog_bytes`` and then stops draining (producers block, never drop), and catches
  up completely once the database is back.
- A full disk is one of those failures: logged once (as is any failure with the same
  message as the one before it), counted (``Stat.FAILURES``, ``Stat.DISK_FULL``), retried
  with the same backoff; one more line when writes succeed again.
- ``STOP`` (``stop()``) or SIGTERM or the parent's death: write what is queued, then exit;
  if the database stays down ``stop_timeout_s`` longer, exit 1 and say how much is unwritten
  (the matcher's journal still has it; a restarted writer catches up from ``meta``).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ringex.config import Config
from ringex.logs import setup_logging
from ringex.process import ChildProcess, title_process
from ringex.storage.db_errors import is_disk_full
from ringex.storage.projection import Projector
from ringex.storage.queue_lock import dead_owner
from ringex.storage.repository import Repository
from ringex.storage.stores import open_repository
from ringex.storage.trade_queue import Payload, PayloadKind, TradeQueue
from ringex.storage.writer_stats import (
    EVENT_KINDS, STAT_WORDS, Stat, count_events as _count_events,
)

log = logging.getLogger(__name__)

LOCK_CHECK_S = 0.1           # stop: how often to look for a queue locked by a dead process


@dataclass
class WriterOptions:
    wallets: bool = True               # False: matching-only engine, fees recorded as 0
    max_group_bytes: int = 8 << 20     # payload bytes per transaction
    max_drain_bytes: int = 32 << 20    # payload bytes per queue get (several groups)
    max_backlog_bytes: int = 256 << 20 # held in memory while the DB is down
    retry_min_s: float = 0.05
    retry_max_s: float = 2.0
    idle_wait_s: float = 0.05          # longest wait for the first payload of a group
    min_drain_interval_s: float = 0.01  # at a trickle the engine hands off every 2 ms and
                                       # each group costs ~0.2 ms of projection: take
                                       # what queued up over 10 ms at once (acks never wait
                                       # for the writer; the database is 10 ms later at most)
    stop_timeout_s: float = 30.0       # after STOP, give up on a database that stays down


class Writer:
    def __init__(self, queue: TradeQueue, url: str, config: Config,
                 options: WriterOptions | None = None, stats=None):
        self.queue, self.url, self.config = queue, url, config
        self.opt = options or WriterOptions()
        self.stats = stats if stats is not None else [0] * STAT_WORDS
        self.projector = Projector(config, wallets=self.opt.wallets)
        self.repo: Repository | None = None
        self.last: dict[int, int] = {}
        self.backlog: list[Payload] = []
        self.backlog_bytes = 0
        self.stop_at: float | None = None
        self._delay = self.opt.retry_min_s
        self._next_try = 0.0
        self._last_drain = 0.0                       # monotonic time of the last queue get
        self._failing_since: float | None = None     # first failure of the current streak
        self._failures = 0                           # ... and how many since
        self._last_failure = ""                      # message last logged
        self._db = ThreadPoolExecutor(1, thread_name_prefix="ringex-db")   # writes groups

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        ppid = os.getppid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)       # the supervisor sends STOP
        signal.signal(signal.SIGTERM, lambda *_: self._request_stop("SIGTERM"))
        self.stats[Stat.CPU_NS] = time.process_time_ns()
        self.stats[Stat.RUNNING] = 1
        try:
            while True:
                if self.repo is None and time.monotonic() >= self._next_try:
                    self._connect()
                fresh = self._drain()
                self._write(self._select(self.backlog + fresh), keep=fresh)
                if self.stop_at is None and os.getppid() != ppid:
                    self._request_stop("parent died")
                if self.stop_at is not None:
                    overdue = time.monotonic() > self.stop_at + self.opt.stop_timeout_s
                    if not self.backlog and (self.queue.qsize() == 0 or overdue):
                        return 0
                    if overdue:
                        log.error("writer: database %s still down; exiting with %d payloads "
                                  "(%d bytes) unwritten", self.url, len(self.backlog),
                                  self.backlog_bytes)
                        return 1
                if self.repo is None:
                    time.sleep(max(0.0, min(self._next_try - time.monotonic(), 0.05)))
        finally:
            self.stats[Stat.RUNNING] = 0
            self._db.shutdown()
            if self.repo is not None:
                self.repo.close()

    def _request_stop(self, why: str) -> None:
        if self.stop_at is None:
            log.info("writer: stopping (%s)", why)
            self.stop_at = time.monotonic()

    # ------------------------------------------------------------------ steps
    def _connect(self) -> None:
        try:
            self.repo = open_repository(self.url, self.config)
            self.last = self.repo.last_batches()
        except Exception as exc:                         # noqa: BLE001 - any failure: retry
            self._failed(f"cannot open {self.url}: {exc}", exc)
            return
        self.stats[Stat.CONNECTED] = 1
        self.stats[Stat.CPU_NS] = time.process_time_ns()
        self._delay = self.opt.retry_min_s

    def _drain(self) -> list[Payload]:
        """Payloads from the queue (views!), unless stopping or the backlog is full."""
        if self.backlog_bytes >= self.opt.max_backlog_bytes:
            return []
        if self.stop_at is not None and self.queue.qsize() == 0:
            return []
        wait = 0.0 if (self.backlog and self.repo is not None) else self.opt.idle_wait_s
        if self.stop_at is None:
            pause = self._last_drain + self.opt.min_drain_interval_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self._last_drain = time.monotonic()
        room = max(self.opt.max_drain_bytes, self.opt.max_group_bytes)
        if self.repo is None:                   # overshoot the backlog by one payload at most
            room = min(room, self.opt.max_backlog_bytes - self.backlog_bytes)
        got = self.queue.get(timeout=wait, max_bytes=room)
        out = []
        for p in got:
            if p.kind == PayloadKind.STOP:
                self._request_stop("STOP")
            else:
                out.append(p)
        return out

    def _select(self, payloads: list[Payload]) -> list[Payload]:
        """Drop payloads already committed (batch <= meta) or repeated within the list."""
        seen = dict(self.last)
        out = []
        for p in payloads:
            if p.batch <= seen.get(p.producer, 0):
                self.stats[Stat.SKIPPED] += 1
                continue
            seen[p.producer] = p.batch
            out.append(p)
        return out

    def _write(self, work: list[Payload], keep: list[Payload]) -> None:
        """Write ``work`` in groups of at most max_group_bytes; keep the rest on failure.

        Two stages: while the database thread writes group k (SQLite and psycopg release
        the GIL), this thread projects and encodes group k + 1. Every group is settled
        before returning, so the payload views stay valid while they are needed.
        """
        groups: list[list[Payload]] = []
        group: list[Payload] = []
        size = 0
        for p in work:
            if group and size + p.nbytes > self.opt.max_group_bytes:
                groups.append(group)
                group, size = [], 0
            group.append(p)
            size += p.nbytes
        if group:
            groups.append(group)
        done, inflight = 0, None                  # groups committed; (future, rows, group)
        for group in groups:
            if self.repo is None:
                break
            rows = self.projector.project(group)
            prepared = self.repo.prepare(rows)
            if inflight is not None:
                if not self._settle(*inflight):
                    inflight = None
                    break
                done += 1
            inflight = (self._db.submit(self.repo.write, rows, prepared), rows, group)
        if inflight is not None and self._settle(*inflight):
            done += 1
        pending = [p for g in groups[done:] for p in g]
        # whatever is left must outlive the queue's receive buffer
        kept = {id(p) for p in keep}
        self.backlog = [p.detach() if id(p) in kept else p for p in pending]
        self.backlog_bytes = sum(p.nbytes for p in self.backlog)
        self.stats[Stat.BACKLOG_BYTES] = self.backlog_bytes

    def _settle(self, future, rows, group) -> bool:
        """Wait for one group's transaction; count it, or drop the connection on failure."""
        try:
            future.result()
        except Exception as exc:                         # noqa: BLE001 - DB errors: retry
            self._failed(f"write to {self.url} failed: {exc}", exc)
            try:
                if self.repo is not None:
                    self.repo.close()
            except Exception:                            # noqa: BLE001
                pass
            self.repo = None
            return False
        for producer, batch in rows.meta.items():
            self.last[producer] = max(self.last.get(producer, 0), batch)
        self._succeeded()
        s = self.stats
        s[Stat.GROUPS] += 1
        s[Stat.PAYLOADS] += len(group)
        s[Stat.TRADES] += len(rows.trades)
        s[Stat.ROWS] += rows.count()
        s[Stat.DEAD_LETTERS] += len(rows.dead_letters)
        s[Stat.LAST_COMMIT_NS] = time.time_ns()
        s[Stat.CPU_NS] = time.process_time_ns()
        _count_events(s, group)
        if rows.dead_letters:
            log.error("writer: %d malformed payloads stored in dead_letters: %s",
                      len(rows.dead_letters), [d[:3] for d in rows.dead_letters])
        return True

    def _failed(self, message: str, exc: BaseException | None = None) -> None:
        """Count a failed connect or write and schedule the retry; log it unless the
        failure before it said the same (a full disk or an outage retries for long)."""
        full = exc is not None and is_disk_full(exc)
        self.stats[Stat.FAILURES] += 1
        self.stats[Stat.CONNECTED] = 0
        self.stats[Stat.DISK_FULL] = int(full)
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._failures += 1
        if message != self._last_failure:
            if full:
                log.error("writer: database disk full: %s; retrying with backoff up to "
                          "%.1f s, holding up to %d MiB in memory (the journal keeps "
                          "everything; acknowledgements go on)", message,
                          self.opt.retry_max_s, self.opt.max_backlog_bytes >> 20)
            else:
                log.warning("writer: %s; retrying in %.2f s (further identical failures "
                            "are not logged)", message, self._delay)
            self._last_failure = message
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.opt.retry_max_s)

    def _succeeded(self) -> None:
        """A transaction committed: end a failure streak (one line) if there was one."""
        if self._failing_since is None:
            return
        log.warning("writer: %s is back: writes succeed again after %d failed attempts in "
                    "%.1f s; catching up %d payloads", self.url, self._failures,
                    time.monotonic() - self._failing_since, len(self.backlog))
        self.stats[Stat.DISK_FULL] = 0
        self._failing_since, self._failures, self._last_failure = None, 0, ""


# ---------------------------------------------------------------------- process handle
def _main(queue, url, config, options, stats) -> None:
    setup_logging()
    title_process()
    raise SystemExit(Writer(queue, url, config, options, stats).run())


class WriterProcess(ChildProcess):
    """A started writer process; ``stop()`` flushes and joins it."""

    def __init__(self, queue: TradeQueue, url: str, config: Config,
                 options: WriterOptions | None = None, ctx=None):
        ctx = ctx or multiprocessing.get_context()
        self.queue = queue
        self._stats = ctx.RawArray("q", STAT_WORDS)
        self.process = ctx.Process(target=_main, name="ringex-writer",
                                   args=(queue, str(url), config, options, self._stats))

    def start(self, timeout: float = 30.0) -> "WriterProcess":
        """Start and wait until its loop runs (not until the database is reachable)."""
        self.process.start()
        return self.wait_running(timeout)

    def wait_running(self, timeout: float = 30.0) -> "WriterProcess":
        """After ``process.start()``: return once its loop runs."""
        self._wait_ready(lambda: bool(self._stats[Stat.RUNNING]), timeout, "writer process")
        return self

    def stats(self) -> dict[str, int]:
        return {s.name.lower(): int(self._stats[s]) for s in Stat}

    def event_counts(self) -> tuple[list[int], list[int]]:
        """Events committed by EVENT.kind and rejects by reject code (index = the number)."""
        s, k = self._stats, len(Stat)
        return list(s[k:k + EVENT_KINDS]), list(s[k + EVENT_KINDS:STAT_WORDS])

    def wait_payloads(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until ``n`` payloads are written or skipped (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._stats[Stat.PAYLOADS] + self._stats[Stat.SKIPPED] < n:
            if time.monotonic() > deadline or not self.process.is_alive():
                return False
            time.sleep(0.002)
        return True

    def stop(self, timeout: float = 60.0) -> int | None:
        """STOP through the queue (after everything already queued), join; kill if stuck.

        Bounded by ``timeout`` even when STOP cannot be queued: a full queue nobody drains,
        or a queue left locked by a process killed inside put/get (faster-fifo's mutex is
        not robust; every later put/get blocks for good). The put then runs in a daemon
        thread that is abandoned, and the writer is killed: at once when the queue's lock
        is held by a dead process (``queue_lock``), which nothing can release."""
        if self.process.is_alive():
            deadline = time.monotonic() + timeout
            put = threading.Thread(target=self.queue.put_stop, name="ringex-writer-stop",
                                   daemon=True)
            put.start()
            owner = None
            while put.is_alive() and time.monotonic() < deadline and owner is None:
                put.join(LOCK_CHECK_S)
                owner = dead_owner(self.queue)
            if owner is not None:
                log.error("writer: the trade queue is locked by thread %d, which died inside "
                          "a put or get; killing the writer now (the journal refills the "
                          "database at the next start)", owner)
            elif put.is_alive():
                log.error("writer: STOP could not be queued within %.0f s (queue full or "
                          "locked by a dead producer); killing the writer", timeout)
            else:
                self.process.join(max(0.0, deadline - time.monotonic()))
        self.kill()
        return self.process.exitcode



def start_writer(queue: TradeQueue, url: str, config: Config, **options) -> WriterProcess:
    """Start the writer process for ``url`` (SQLite path or postgresql:// URL)."""
    return WriterProcess(queue, url, config, WriterOptions(**options)).start()
