"""The gateway's event pump: engine events and market data -> frames for connections.

One task per gateway process. Each round reads every record ready on the gateway's event
ring and on the market-data ring, turns them into messages, and sends them right away
(one socket write per connection per round). Between rounds it yields to the loop so
sockets are served; after ``wait.spin`` empty polls it waits cold (``pump_wait``).

Routing: an event goes to the connection whose session number it carries; events of a
connection that is gone are dropped (the writer persisted them anyway). Events of the
gateway's own session (connection 0) answer its book queries (``BookSync``). An order
event of an account that connections here stream (``orders`` channel, AccountStreams)
also goes to each of them, whichever session it carries. Market data
goes through the gateway's ``MarketFeed`` to the subscribers of each (channel, symbol),
each message encoded once. A CLIENT_ID event (the text of a long client id, right before
the order that uses it) only teaches the gateway's ``ClientIdTexts``.
"""
from __future__ import annotations

import asyncio
import logging

import numpy as np
import orjson

from ringex.gateway.account_streams import AccountStreams
from ringex.gateway.pump_wait import PumpWait
from ringex.protocol.booksync import BookSync
from ringex.protocol.client_texts import ClientIdTexts
from ringex.protocol.feed import MarketFeed
from ringex.ring.broadcast import BroadcastReader
from ringex.protocol.events import LOOKUP, EngineClock
from ringex.records import EVENT, EventKind
from ringex.ring.spsc import SpscRing

log = logging.getLogger("ringex.gateway")

EVT_BATCH = 4096          # event records per read
MD_BATCH = 8192           # market-data records per read
COLD_TIMEOUT_S = 0.05     # a cold wait wakes at least this often (stop checks)
CLOCK = int(EventKind.CLOCK)
CLIENT_ID = int(EventKind.CLIENT_ID)
assert CLIENT_ID > CLOCK and max(EventKind) == CLIENT_ID   # one test for both in _on_events


class EventPump:
    """``router`` is the gateway: ``router.conns`` (session id -> connection with a
    ``session``), ``router.subscribers(channel, symbol)`` (connections), ``router.queue(
    conn, frame)`` (buffer a frame), ``router.flush()`` (write the buffered frames),
    ``router.book_loaded(symbol)`` (send fresh snapshots) and ``router.write_internal(
    records)`` (commands of the gateway's own session)."""

    def __init__(self, evt: SpscRing, md: BroadcastReader, feed: MarketFeed, sync: BookSync,
                 engine_clock: EngineClock, streams: AccountStreams, router, wait: PumpWait,
                 client_ids: ClientIdTexts | None = None):
        self.evt, self.md, self.feed, self.sync = evt, md, feed, sync
        self.client_ids = client_ids if client_ids is not None else ClientIdTexts()
        self.engine_clock = engine_clock
        self.streams = streams
        self.router = router
        self.wait = wait
        self._evt_buf = np.zeros(EVT_BATCH, dtype=EVENT)
        self._idle = 0               # empty polls since the last activity
        self._stopping = False
        self.lost_md = 0          # market-data records this gateway was lapped on

    # ---------------------------------------------------------------- control
    def kick(self) -> None:
        """A command was written: stay hot (its reply is due) and end a cold wait."""
        self._idle = 0
        self.wait.kick()

    def stop(self) -> None:
        self._stopping = True
        self.wait.kick()

    def catch_up(self) -> None:
        """Apply every market-data record published so far, and send what that gives the
        current subscribers."""
        if self._drain_md():
            self.router.flush()

    def ready(self) -> int:
        """Records waiting on either ring (any thread may call it)."""
        return len(self.evt) + len(self.md)

    async def run(self) -> None:
        spin = self.wait.spin
        while not self._stopping:
            if self.poll():
                self._idle = 0
            elif self._idle < spin:
                self._idle += 1
            else:
                # woken by records or a kick: hot again; by the timeout: stay cold
                if await self.wait.wait(self.ready, COLD_TIMEOUT_S):
                    self._idle = 0
                continue
            await asyncio.sleep(0)

    # ---------------------------------------------------------------- one round
    def poll(self) -> int:
        """Read and dispatch everything ready on both rings; returns records handled."""
        n = self.evt.read_into(self._evt_buf)
        if n:
            self._on_events(self._evt_buf[:n].tolist())
        m = self._drain_md()
        if n or m:
            self.router.flush()
        return n + m

    def _on_events(self, events: list[tuple]) -> None:
        conns = self.router.conns
        queue = self.router.queue
        dumps = orjson.dumps
        own = self.sync.session_id
        engine_clock = self.engine_clock
        streams = self.streams.by_account
        for ev in events:
            if ev[10] >= CLOCK:                 # not for any session: CLOCK or CLIENT_ID
                if ev[10] == CLOCK:             # the time of the group whose events follow
                    engine_clock.ts = ev[1]
                else:
                    self.client_ids.learn_event(ev)
                continue
            sid = ev[7]
            conn = conns.get(sid)
            if conn is not None:
                for msg in conn.session.event_to_messages(ev):
                    if msg["type"] == LOOKUP:       # order_status: the database's turn
                        self.router.order_lookup(conn, msg)
                    else:
                        queue(conn, dumps(msg))
            elif sid == own and self.sync.on_event(ev):
                self._drain_md()
                for name in self.sync.finish():
                    self.router.book_loaded(name)
            streaming = streams.get(ev[6]) if streams else None   # its account's orders channel
            if streaming:
                for other in streaming:
                    for msg in other.session.account_event_to_messages(ev):
                        queue(other, dumps(msg))

    def _drain_md(self) -> int:
        total = 0
        while True:
            records, lost = self.md.read(MD_BATCH)
            if lost:
                self.lost_md += lost
                log.warning("market-data ring lapped this gateway (%d records lost): "
                            "reloading the books", lost)
                self.router.write_internal(self.sync.request(self.feed.symbol_ids))
            if not len(records):
                return total
            total += len(records)
            self._on_md(records)
            if len(records) < MD_BATCH:
                return total

    def _on_md(self, records) -> None:
        subscribers = self.router.subscribers
        queue = self.router.queue
        for channel, symbol, msg in self.feed.apply(records):
            conns = subscribers(channel, symbol)
            if conns:
                data = orjson.dumps(msg)
                for conn in conns:
                    queue(conn, data)

