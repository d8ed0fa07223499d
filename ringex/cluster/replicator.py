"""The replicator process: the local journal, entry by entry, onto the stream.

    rep = ReplicatorProcess(opts, state_dir, words, stop).start()   # in the supervisor
    ...                          # words[Repl.THROUGH]: replicated through this batch
    rep.stop()                   # after the engine stopped: every journaled entry sent

It keeps nats and asyncio out of the matcher: the engine journals a group (one writev),
then, with durability ``replicated``, waits for ``words[THROUGH]`` to reach that group's
batch before anything of it leaves (``ringex/core/engine/loop.py``). Here an inotify
watch on the journal folder wakes the loop, ``JournalTail`` gives the new entries, and
``StreamAppender`` appends them, ``window`` in flight, acknowledged in order.

At start the stream's last entry must be ours: the same bytes as the local journal's
entry of that batch. A stream that is ahead of the local journal, or holds another
entry there, means another writer owns it: the replicator sets ``words[FENCED]``, logs
why, and exits with FENCED_EXIT; the engine sees the word and stops too. Any other failure
exits 1 and the supervisor starts a new replicator (the engine keeps waiting meanwhile).

It also holds the primary's lease (``lease.py``): taken after that check, written every
third of ``lease_ttl_ms``; finding another holder there is fenced too.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path

import nats

from ringex.cluster.appender import NeedsResync, StreamAppender
from ringex.cluster.lease import PrimaryLease, holder_id, lease_bucket, release_lease
from ringex.cluster.settings import ClusterOptions
from ringex.cluster.stream import (connect, ensure_stream, retrying, stored_entry,
                                   stream_end)
from ringex.cluster.tail import JournalTail
from ringex.core.engine.replication import Repl, ReplState, as_array
from ringex.errors import Fenced
from ringex.logs import setup_logging
from ringex.process import ChildProcess, SharedFlag, title_process

log = logging.getLogger("ringex.cluster.replicator")

FENCED_EXIT = 3
IDLE_WAKE_S = 0.05           # a turn at least this often (heartbeat, acks' timeouts, stop)


async def _verify_start(js, opts: ClusterOptions, folder: Path):
    """(stream end, tail after it): the stream's last entry must be the local journal's."""
    end = await retrying("stream state", lambda: stream_end(js, opts),
                         opts.connect_timeout_ms / 1000)
    if not end.last_seq:
        return end, JournalTail(folder, 0)
    tail = JournalTail(folder, end.last_batch - 1)
    mine = tail.read(1)
    theirs = await stored_entry(js, opts, end.last_seq)
    if not mine or mine[0][0] != end.last_batch:
        local = max((b for b, _ in mine), default=end.last_batch - 1)
        raise Fenced(f"cluster: fenced: the stream {opts.stream_name} is at batch "
                     f"{end.last_batch}, past this data dir's journal (batch {local}): "
                     "another primary wrote it")
    if mine[0][1] != theirs:
        raise Fenced(f"cluster: fenced: the stream's entry at batch {end.last_batch} is "
                     "not this journal's: another primary wrote it")
    return end, tail


async def _stream_not_past(js, opts: ClusterOptions, app: StreamAppender) -> None:
    """Fenced when the stream holds entries past the last one this primary sent: another
    writer (a standby that took over while this one could not reach NATS, or was stopped)."""
    end = await stream_end(js, opts)
    sent = app.in_flight[-1][0] if app.in_flight else app.through
    if end.last_batch > sent:
        raise Fenced(f"cluster: fenced: the stream {opts.stream_name} is at batch "
                     f"{end.last_batch}, past this primary's {sent}: another writer took over")


class Replicator:
    def __init__(self, opts: ClusterOptions, state_dir: str | Path, words, stop: SharedFlag,
                 markets: str = ""):
        self.opts, self.words, self.stop = opts, as_array(words), stop
        self.markets = markets                      # lease.markets_id of the config
        self.folder = Path(state_dir) / "journal"
        self.holder = holder_id(state_dir)
        self.wake = asyncio.Event()
        self.lease_task: asyncio.Task | None = None

    async def run(self) -> None:
        w, opts = self.words, self.opts
        nc = await retrying("connect", lambda: connect(opts, "ringex-replicator"),
                            opts.connect_timeout_ms / 1000)
        try:
            js = nc.jetstream(timeout=opts.ack_timeout_ms / 1000)
            await retrying("stream set-up", lambda: ensure_stream(js, opts),
                           opts.connect_timeout_ms / 1000)
            end, tail = await _verify_start(js, opts, self.folder)
            lease = await self._lease(js)
            app = StreamAppender(nc, opts, end.last_batch, end.offset)
            app.on_reply = self.wake.set
            lease.on_retake = lambda: _stream_not_past(js, opts, app)
            await app.start()
            w[Repl.THROUGH] = w[Repl.SENT] = end.last_batch
            w[Repl.STATE] = ReplState.RUNNING
            log.info("replicator: %s on %s, stream %s at batch %d (durability %s)",
                     opts.subject, opts.url, opts.stream_name, end.last_batch,
                     opts.durability)
            loop = asyncio.get_running_loop()
            loop.add_reader(tail.wait_fd(), self._journal_changed, tail)
            self.lease_task = asyncio.create_task(lease.keep(self.stop))
            try:
                stopped = await self._pump(app, tail)
            finally:
                self.lease_task.cancel()
                loop.remove_reader(tail.wait_fd())
                tail.close()
            if stopped:
                await self._release(lease)
        finally:
            await nc.close()

    async def _release(self, lease: PrimaryLease) -> None:
        """A clean stop, the whole journal stored: let the lease go, so that a standby
        takes over at once instead of ``lease_ttl_ms`` later (a planned switch-over)."""
        try:
            released = await asyncio.wait_for(release_lease(lease.kv, lease.revision),
                                              self.opts.ack_timeout_ms / 1000)
        except (asyncio.TimeoutError, nats.errors.Error, OSError) as exc:
            log.warning("replicator: lease %s not released (%r); it lapses in %d ms",
                        self.opts.lease_bucket, exc, self.opts.lease_ttl_ms)
            return
        if released:
            log.info("replicator: lease %s released; a standby may take over now",
                     self.opts.lease_bucket)

    async def _lease(self, js) -> PrimaryLease:
        """The primary's lease taken (Fenced if another holder has it; lease.py)."""
        timeout = self.opts.connect_timeout_ms / 1000
        kv = await retrying("lease bucket", lambda: lease_bucket(js, self.opts), timeout)
        lease = PrimaryLease(kv, self.opts, self.holder, markets=self.markets)
        await retrying("lease", lease.acquire, timeout)
        log.info("replicator: lease %s held by %s (TTL %d ms)", self.opts.lease_bucket,
                 self.holder, self.opts.lease_ttl_ms)
        return lease

    def _journal_changed(self, tail: JournalTail) -> None:
        tail.drain_wait_fd()
        self.wake.set()

    async def _pump(self, app: StreamAppender, tail: JournalTail) -> bool:
        """Append the journal's new entries until stopped (True, everything stored) or
        orphaned (False)."""
        w = self.words
        ppid = os.getppid()
        while True:
            self.wake.clear()
            w[Repl.HEARTBEAT_NS] = time.monotonic_ns()
            lease = self.lease_task
            failed = lease.exception() if lease is not None and lease.done() else None
            if failed is not None:
                raise failed                        # Fenced: another holder has the lease
            try:
                stored = app.settle()
                if stored:
                    w[Repl.THROUGH] = app.through
                    w[Repl.PUBLISHED] += stored
            except NeedsResync as why:
                log.warning("replicator: %s; asking the stream where it stands", why)
                await app.resync(self.stop)
                w[Repl.THROUGH], w[Repl.RESYNCS] = app.through, app.resyncs
                continue
            new = tail.read(app.room) if app.room > 0 else []
            for batch, data in new:
                await app.send(batch, data)
            if new:
                w[Repl.SENT] = new[-1][0]
                continue
            if self.stop.is_set() and not app.in_flight:
                log.info("replicator: stopped; stream at batch %d", app.through)
                return True
            if os.getppid() != ppid:
                log.error("replicator: the supervisor died; exiting")
                return False
            try:
                await asyncio.wait_for(self.wake.wait(), IDLE_WAKE_S)
            except asyncio.TimeoutError:
                pass


def run_replicator(opts: ClusterOptions, state_dir: str, words, stop: SharedFlag,
                   markets: str = "") -> int:
    """Main of the replicator process; its exit code (0 clean, FENCED_EXIT, 1 failed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    w = as_array(words)
    w[Repl.PID] = os.getpid()
    try:
        asyncio.run(Replicator(opts, state_dir, words, stop, markets).run())
        w[Repl.STATE] = ReplState.STOPPED
        return 0
    except Fenced as exc:
        # the engine reads this word and stops; never cleared by a restart
        w[Repl.FENCED] = max(1, int(w[Repl.THROUGH]))
        w[Repl.STATE] = ReplState.FAILED
        log.error("%s; this primary stops", exc)
        return FENCED_EXIT
    except Exception as exc:                        # noqa: BLE001 - report; a new one starts
        w[Repl.STATE] = ReplState.FAILED
        log.error("replicator: %s", exc, exc_info=not isinstance(exc, RuntimeError))
        return 1


def _replicator_main(opts, state_dir, words, stop, markets) -> None:
    setup_logging()
    title_process()
    raise SystemExit(run_replicator(opts, state_dir, words, stop, markets))


class ReplicatorProcess(ChildProcess):
    """A started replicator (spawned): ``start()`` (``launch`` + ``wait_started``) waits
    until it appends."""

    def __init__(self, opts: ClusterOptions, state_dir: str | Path, words, ctx=None,
                 markets: str = ""):
        ctx = ctx or multiprocessing.get_context("spawn")
        self.words = words
        self.stop_flag = SharedFlag(ctx)
        self.process = ctx.Process(target=_replicator_main, name="ringex-replicator",
                                   args=(opts, str(state_dir), words, self.stop_flag,
                                         markets))

    def start(self, timeout: float = 60.0) -> "ReplicatorProcess":
        self.launch()
        self.wait_started(timeout)
        return self

    def launch(self) -> None:
        """Spawn it (``wait_started`` then waits until it appends)."""
        as_array(self.words)[Repl.STATE] = ReplState.STARTING
        self.process.start()

    def wait_started(self, timeout: float = 60.0) -> None:
        w = as_array(self.words)
        self._wait_ready(lambda: w[Repl.STATE] == ReplState.RUNNING, timeout, "replicator")

    @property
    def fenced(self) -> bool:
        return self.process.exitcode == FENCED_EXIT or bool(as_array(self.words)[Repl.FENCED])

    def stop(self, timeout: float = 30.0) -> int | None:
        """Send what the journal still holds, then exit; killed after ``timeout``."""
        self.stop_flag.set()
        return self._join_or_kill(timeout, "replicator")
