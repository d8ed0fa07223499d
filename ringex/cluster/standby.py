"""``ringex standby``: follow the primary's stream into a data dir of one's own, watch the
primary's lease, and take over when it lapses (docs/cluster.md, "Hot standby").

    code = asyncio.run(Standby(opts, config, data_dir, takeover=True, stop=event,
                               held=DatabaseWatermark(db_url, config)).run())
    # 0: stopped (stop set); READY_EXIT: took over, ready to serve from data_dir

While following: every entry of the stream, checked (reader.follow_stream), is journaled
and applied (follower.Follower); ``<data-dir>/standby.json`` says the batch applied, how
many entries the stream holds past it, and the lease's state, rewritten a few times a
second; the log says the same every few seconds and every change of the lease.

Taking over (lease lapsed, ``takeover``): take the lease with a revision check (of two
standbys one wins; the other keeps following), keep it written, catch up to the stream's
end, append the takeover marker (takeover.py) right after the last entry applied (if the
stream moved, catch up and try again), journal the marker too, take a snapshot, log
"ready to serve" and exit READY_EXIT; ``ringex standby --db`` then runs the exchange on
the data dir (ringex/cli/standby.py).

``held`` (the shared database's last batch, db_watermark.py) is what pruning counts on,
and no takeover happens while the database holds batches the stream lacks (checked before
taking the lease and again before the marker, letting the lease go then): with durability
``local`` the old primary may have stored groups it never replicated, and an exchange
continuing from the stream would contradict them. The standby follows on meanwhile.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

import nats

from ringex.cluster.db_watermark import DatabaseWatermark
from ringex.cluster.follower import Follower
from ringex.cluster.lease import (Holder, PrimaryLease, holder_id, lease_bucket, lease_status,
                                  markets_id, read_lease, release_lease, take_lease)
from ringex.cluster.reader import StreamEntry, follow_stream
from ringex.cluster.settings import ClusterOptions
from ringex.cluster.stream import connect, ensure_stream, retrying, stored_entry, stream_end
from ringex.cluster.takeover import append_marker, marker_entry
from ringex.config import Config
from ringex import records
from ringex.errors import StorageError

log = logging.getLogger("ringex.cluster.standby")

READY_EXIT = 4              # took over: the data dir is the stream's, through the marker
STATUS_FILE = "standby.json"
STATUS_EVERY_S = 0.2
LOG_EVERY_S = 5.0
LEASE_POLL_S = 0.2          # at most this long from the lease's lapse to the takeover


class Standby:
    def __init__(self, opts: ClusterOptions, config: Config, data_dir: str | Path,
                 takeover: bool, stop: asyncio.Event, held: DatabaseWatermark | None = None):
        self.opts, self.takeover, self.stop = opts, takeover, stop
        self.data_dir = Path(data_dir)
        self.held = held
        self.follower = Follower(config, self.data_dir / "state", held)
        self.holder = holder_id(self.data_dir / "state")
        self.markets = markets_id(config)
        self.failure = ""               # why it stopped itself (other markets than the primary)
        self.refused = False            # a takeover refused: the database is ahead
        self.offset = 0                 # batch - stream sequence
        self.behind = 0                 # entries the stream held past the last one applied
        self.most_behind = 0            # the largest ``behind`` seen while following
        self.lease = "unknown"          # alive | lapsed | none (never held) | ours | unknown
        self.primary = ""               # the last holder seen alive
        self.lapsed = asyncio.Event()   # set while a takeover is due
        self.state = "starting"         # following | taking over | took over | stopped | failed

    def following(self) -> bool:
        return not (self.stop.is_set() or self.lapsed.is_set())

    async def run(self) -> int:
        opts = self.opts
        timeout = opts.connect_timeout_ms / 1000
        nc = await retrying("connect", lambda: connect(opts, "ringex-standby"), timeout)
        tasks: list[asyncio.Task] = []
        try:
            js = nc.jetstream(timeout=opts.ack_timeout_ms / 1000)
            await retrying("stream set-up", lambda: ensure_stream(js, opts), timeout)
            start = await self._start_seq(js)
            kv = await retrying("lease bucket", lambda: lease_bucket(js, opts), timeout)
            held = await retrying("lease", lambda: read_lease(kv), timeout)
            if held is not None and self._other_markets(held):
                raise StorageError(self.failure)
            log.info("standby: following %s on %s from sequence %d (batch %d applied); "
                     "takeover %s", opts.stream_name, opts.url, start, self.follower.batch,
                     "on" if self.takeover else "off")
            self.state = "following"
            tasks = [asyncio.create_task(self._watch_lease(kv)),
                     asyncio.create_task(self._report())]
            while not self.stop.is_set():
                await self._follow(nc, start, self.following)
                if self.lapsed.is_set() and not self.stop.is_set():
                    if await self._take_over(nc, js, kv):
                        return READY_EXIT
                start = self.follower.batch + 1 - self.offset
            if self.failure:
                raise StorageError(self.failure)
            self.state = "stopped"
            return 0
        except BaseException:
            self.state = "failed"
            raise
        finally:
            for t in tasks:
                t.cancel()
            self._write_status()
            await nc.close()
            self.follower.close()
            if self.held is not None:
                self.held.close()

    async def _start_seq(self, js) -> int:
        """Where to read from: the entry after this data dir's last batch, whose own entry
        must be the stream's (the same exchange)."""
        end = await stream_end(js, self.opts)
        batch = self.follower.batch
        if not batch:
            self.offset = end.offset or 0
            if end.offset:
                raise StorageError(f"standby: the stream {self.opts.stream_name} does not "
                                   "start at batch 1 and this data dir holds no snapshot to "
                                   "start from")
            return 1
        if end.offset is None or end.last_batch < batch:
            raise StorageError(f"standby: this data dir is at batch {batch}, past the stream "
                               f"{self.opts.stream_name} (at {end.last_batch}): another "
                               "exchange's, or the stream lost entries")
        self.offset = end.offset
        if await stored_entry(js, self.opts, end.seq(batch)) != self.follower.last_entry():
            raise StorageError(f"standby: the stream's entry at batch {batch} is not this "
                               "data dir's: another exchange's stream")
        return end.seq(batch) + 1

    async def _follow(self, nc, start: int, go_on) -> None:
        """Apply entries from sequence ``start`` while ``go_on()``."""
        async for entry in follow_stream(nc, self.opts, start, _Until(go_on)):
            self._apply(entry)

    def _apply(self, entry: StreamEntry) -> None:
        self.follower.apply(entry)
        self.offset = entry.batch - entry.seq
        self.behind = entry.pending
        self.most_behind = max(self.most_behind, entry.pending)
        self.follower.snapshot_if_due()

    async def _take_over(self, nc, js, kv) -> bool:
        """True once the marker is stored (module docstring); False: another standby
        holds the lease, or the database is ahead of the stream (follow on)."""
        end = await retrying("stream state", lambda: stream_end(js, self.opts), None,
                             self.stop)
        if await self._database_ahead(end.last_batch):
            self.lapsed.clear()
            return False
        rev = await take_lease(kv, self.holder, "primary", self.markets)
        if rev is None:
            log.info("standby: another standby took the lease first; following on")
            self.lapsed.clear()
            return False
        self.state = "taking over"
        lease = PrimaryLease(kv, self.opts, self.holder, markets=self.markets)
        lease.revision = rev
        keeping = asyncio.create_task(lease.keep(self.stop))
        log.info("standby: lease %s taken (revision %d); catching up with the stream",
                 self.opts.lease_bucket, rev)
        try:
            while not self.stop.is_set():
                if keeping.done():             # our lease lapsed and another took it
                    log.warning("standby: lost the lease while taking over (%s); following "
                                "on", keeping.exception())
                    self.state = "following"
                    self.lapsed.clear()
                    return False
                end = await retrying("stream state", lambda: stream_end(js, self.opts),
                                     None, self.stop)
                if end.last_batch > self.follower.batch:
                    def behind(last=end.last_batch) -> bool:
                        return not self.stop.is_set() and self.follower.batch < last
                    await self._follow(nc, self.follower.batch + 1 - self.offset, behind)
                    continue
                if await self._database_ahead(end.last_batch):    # stored meanwhile
                    await release_lease(kv, lease.revision)
                    self.state = "following"
                    self.lapsed.clear()
                    return False
                batch = self.follower.batch + 1
                data = marker_entry(batch)
                after = batch - 1 - self.offset
                try:
                    stored = await append_marker(nc, js, self.opts, after, data, self.holder)
                except (asyncio.TimeoutError, nats.errors.Error, OSError) as exc:
                    log.warning("standby: takeover marker: %r; trying again", exc)
                    await asyncio.sleep(0.2)
                    continue
                if not stored:
                    log.warning("standby: the stream moved past sequence %d; catching up",
                                after)
                    continue
                self._apply(StreamEntry(after + 1, batch, records.commands(0), data))
                if self.follower.last_entry() != data:
                    raise StorageError(f"standby: journaled marker of batch {batch} differs "
                                       "from the stream's")
                self.state = "took over"
                log.info("standby: took over: takeover marker at batch %d (stream sequence "
                         "%d), lease held by %s; ready to serve from %s", batch, after + 1,
                         self.holder, self.data_dir)
                return True
            return False
        finally:
            keeping.cancel()

    async def _database_ahead(self, stream_last: int) -> bool:
        """The shared database holds batches past the stream's end: no takeover (logged
        once per lapse; module docstring)."""
        held = self.held
        stored = await asyncio.to_thread(held) if held is not None else None
        if stored is None or stored <= stream_last:
            self.refused = False
            return False
        if not self.refused:
            log.error("standby: not taking over: the database holds batch %d, past the "
                      "stream's last batch %d: the primary stored groups it has not "
                      "replicated (durability local), and an exchange continuing from the "
                      "stream would contradict them; following on until the stream has "
                      "them (start the primary again on its data dir)", stored, stream_last)
        self.refused = True
        return True

    async def _watch_lease(self, kv) -> None:
        every = min(self.opts.lease_ttl_ms / 3000, LEASE_POLL_S)
        while True:
            try:
                held, released = await lease_status(kv)
            except (asyncio.TimeoutError, nats.errors.Error, OSError):
                self._lease_is("unknown", "NATS does not answer")
            else:
                if held is not None and held.holder == self.holder:
                    self._lease_is("ours", "held by this standby")
                elif held is not None:
                    if self._other_markets(held):
                        self.stop.set()
                    self.primary = held.describe()
                    self.lapsed.clear()
                    self._lease_is("alive", f"lease held by {self.primary}")
                elif self.primary or self.follower.batch:
                    if self.takeover and self.state == "following":
                        self.lapsed.set()
                    last = self.primary or "nobody seen"
                    self._lease_is("lapsed", f"lease released by {last} (a clean stop)"
                                   if released else f"no lease for {self.opts.lease_ttl_ms} "
                                   f"ms (last held by {last})")
                else:
                    self._lease_is("none", "no primary has held the lease yet")
            await asyncio.sleep(every)

    def _other_markets(self, held: Holder) -> bool:
        """The primary runs other markets: replaying its journal here would build another
        state (notes why in ``failure``)."""
        if not held.markets or held.markets == self.markets:
            return False
        self.failure = (f"standby: the primary {held.describe()} runs other markets "
                        f"({held.markets}, this config {self.markets}): give --config the "
                        "primary's config")
        return True

    def _lease_is(self, state: str, why: str) -> None:
        if state != self.lease:
            what = "primary" if state in ("alive", "lapsed") else "lease"
            log.info("standby: %s %s: %s", what, state, why)
            self.lease = state

    async def _report(self) -> None:
        said, said_batch = 0.0, -1
        while True:
            self._write_status()
            now = time.monotonic()
            if now - said >= LOG_EVERY_S and self.follower.batch != said_batch:
                log.info("standby: batch %d applied, %d behind the stream; lease %s",
                         self.follower.batch, self.behind, self.lease)
                said, said_batch = now, self.follower.batch
            await asyncio.sleep(STATUS_EVERY_S)

    def _write_status(self) -> None:
        """standby.json: written whole under another name, then renamed."""
        info = {"pid": os.getpid(), "state": self.state, "batch": self.follower.batch,
                "behind": self.behind, "most_behind": self.most_behind,
                "lease": self.lease, "primary": self.primary, "refused": self.refused,
                "snapshots": self.follower.snapshots}
        path = self.data_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)


class _Until:
    """follow_stream's stop: set once ``go_on()`` turns false."""

    def __init__(self, go_on):
        self.go_on = go_on

    def is_set(self) -> bool:
        return not self.go_on()
