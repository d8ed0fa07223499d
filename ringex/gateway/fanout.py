"""Frames to clients: each connection's queue and its one socket write per round, the
subscriptions of every (channel, symbol), book snapshots, and the closing of a client that
does not read (``slow_consumer``, 1013).

The pump and the frame path queue frames (``queue``) and call ``flush`` (every dirty
connection) or ``send`` (one) at the end of their round; a frame made once (a market-data
message, a snapshot) is the same bytes for every subscriber.
"""
from __future__ import annotations

import orjson

from ringex.config import GatewayLimits
from ringex.gateway.audit import AuditLog
from ringex.gateway.connection import Connection
from ringex.gateway.stats import GatewayStat, GatewayStats
from ringex.protocol.actions import Close, Reply
from ringex.protocol.book_views import BOOK_KEYS, channel_depth, is_book_channel
from ringex.protocol.codes import ERROR_NUMBERS, CloseCode, ErrorCode
from ringex.protocol.feed import MarketFeed
from ringex.records import AuditKind

CLOSE_TIMEOUT_S = 2.0             # closing handshake, then the TCP connection is cut


class Fanout:
    def __init__(self, feed: MarketFeed, limits: GatewayLimits, audit: AuditLog,
                 stats: GatewayStats):
        self.feed = feed
        self.stats = stats
        self.limits = limits
        self.audit = audit
        self._subs: dict[tuple[str, str], set[Connection]] = {}
        self._dirty: list[Connection] = []

    # ------------------------------------------------------------ subscriptions
    def subscribers(self, channel: str, symbol: str) -> set[Connection] | None:
        return self._subs.get((channel, symbol))

    def subscribe(self, conn: Connection, channel: str, symbol: str) -> None:
        """Add ``conn``; a book subscriber (``book``, ``book/10``, ...) gets the book's
        snapshot next (or once the book is loaded from the engine: ``book_loaded``). The
        caller has brought the mirror up to date first (``EventPump.catch_up``)."""
        conns = self._subs.setdefault((channel, symbol), set())
        if not is_book_channel(channel):
            conns.add(conn)
            return
        depth = channel_depth(channel)
        if depth is not None and not conns:
            self.feed.watch(symbol, depth)
        conns.add(conn)
        if not self.feed.syncing(symbol):
            self.queue(conn, self.feed.snapshot_frame(symbol, depth))

    def unsubscribe(self, conn: Connection, channel: str, symbol: str) -> None:
        conns = self._subs.get((channel, symbol))
        if conns is None:
            return
        conns.discard(conn)
        if not conns:
            del self._subs[(channel, symbol)]
            depth = channel_depth(channel) if is_book_channel(channel) else None
            if depth is not None:
                self.feed.unwatch(symbol, depth)   # nobody holds that view any more

    def subscription_count(self) -> int:
        return sum(len(conns) for conns in self._subs.values())

    def forget(self, conn: Connection) -> None:
        """``conn`` is gone: out of every fan-out, nothing more to send."""
        for channel, symbol in conn.session.subscriptions:
            self.unsubscribe(conn, channel, symbol)
        conn.out.clear()

    def book_loaded(self, symbol: str) -> None:
        """The mirror of ``symbol`` was loaded from the engine: every book subscriber
        (of every depth) gets the new snapshot."""
        for key in BOOK_KEYS:
            conns = self._subs.get((key, symbol))
            if conns:
                data = self.feed.snapshot_frame(symbol, channel_depth(key))
                for conn in conns:
                    self.queue(conn, data)

    # ------------------------------------------------------------ output
    def queue(self, conn: Connection, frame: bytes) -> None:
        if not conn.out:
            self._dirty.append(conn)
        conn.out.append(frame)

    def flush(self) -> None:
        """Write every connection's queued frames (one write each)."""
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            self.send(conn)

    def send(self, conn: Connection) -> None:
        """Write ``conn``'s queued frames now; close a client that does not read."""
        if conn.out and not conn.flush(self.limits.max_output_bytes) and not conn.closed:
            self.close_slow(conn, "too slow: the output buffer is full")

    def close_slow(self, conn: Connection, reason: str) -> None:
        """``slow_consumer`` and a 1013 close (a client that does not read, or does not
        answer pings)."""
        actions = conn.session.close(CloseCode.TRY_AGAIN_LATER, ErrorCode.SLOW_CONSUMER,
                                     reason)
        for a in actions:
            if type(a) is Reply:
                conn.out.append(orjson.dumps(a.message))
        self.audit.record(AuditKind.CLOSED_ABUSE, conn.session.session_id,
                          conn.session.account or 0, conn.addr, conn.port,
                          ERROR_NUMBERS["slow_consumer"])
        self.stats.add(GatewayStat.SLOW_CONSUMER_CLOSES)
        close = actions[-1]
        assert type(close) is Close                 # session.close() ends with it
        conn.close_now(close.code, close.reason, CLOSE_TIMEOUT_S)
