"""A client that survives dropped connections: ``connect(url, key, reconnect=True)``.

When its connection ends (network, gateway restart, a close from either side but
``close()``), it connects again with a :class:`Backoff`, logs in the same way, subscribes
to every channel and symbol it had (``book`` sends a fresh BookSnapshot), then
reconciles (``reconcile.py``) and delivers ``Reconnected``, then the new connection's
pushes with, for each order it knew to be open whose state changed, the fills it missed
(``MyTrade``) and the order now (``OrderState``) where its order_status answer came. The
whole contract is docs/sdk.md, "Reconnecting".

Requests in flight when the link drops fail with ClientError("closed") and are never
retried (a resent ``place`` could trade twice); requests made while it reconnects wait
for it (within their timeout). Orders placed on an earlier connection report on the
``orders`` channel, which it subscribes to for that (showing you only those orders'
events unless you subscribed to ``orders`` yourself).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from ringex.client.backoff import Backoff
from ringex.client.connection import Client, open_client
from ringex.client.errors import ClientError
from ringex.client.events import EventStream, ReadsEvents, Reconnected
from ringex.client.reconcile import Findings, Held, merge, reconcile
from ringex.client.requests import Requests
from ringex.client.results import (
    Ack, Cancelled, Fill, Modified, OrderState, Subscribed, Unsubscribed,
)
from ringex.client.tracker import OrderTracker
from ringex.client.types import BookDepth, Channel

log = logging.getLogger("ringex.client")

E = TypeVar("E")
ORDER_EVENTS = (Ack, Fill, Cancelled, Modified)
FATAL = ("auth_failed", "http_400", "http_403", "http_404")    # retrying cannot help
BOOK_BATCH = 10                   # book snapshots one subscribe may ask for


class ReconnectingClient(ReadsEvents, Requests):
    """The requests of :class:`Client`, over whichever connection is up. Make it with
    ``connect(..., reconnect=True)``; ``reconnects`` counts the reconnections so far."""

    def __init__(self, url: str, api_key: str | None, *, login: str,
                 cancel_on_disconnect: bool, timeout: float, max_events: int,
                 backoff: Backoff):
        self.url, self._key, self._login = url, api_key, login
        self._cod = cancel_on_disconnect
        self.timeout = timeout
        self.backoff = backoff
        self._max_events = max_events
        self._stream = EventStream(max_events)
        self._tracker = OrderTracker()
        self._subs: dict[Channel, set[str]] = {}     # as asked by the user; orders: {""}
        self._depth: dict[str, BookDepth | None] = {}   # each book symbol's depth
        self._internal_orders = False    # subscribed to orders for old orders' sake only
        self._client: Client | None = None
        self._gen = 0                    # which connection the listeners may hear
        self._held: list[Held] | None = None     # what arrives while reconciling
        self._ready = asyncio.Event()
        self._closing = False
        self._watcher: asyncio.Task | None = None
        self.failure: ClientError | None = None
        self.reconnects = 0

    @classmethod
    async def open(cls, url: str, api_key: str | None, **kw: Any) -> "ReconnectingClient":
        """The first connection must succeed: its errors are raised as ``connect``'s."""
        rc = cls(url, api_key, **kw)
        rc._client = await rc._connect()
        rc._ready.set()
        rc._watcher = asyncio.get_running_loop().create_task(rc._watch())
        return rc

    # ------------------------------------------------------------ the connection
    async def _connect(self) -> Client:
        self._gen += 1
        gen = self._gen
        c = await open_client(self.url, self._key, login=self._login,
                              cancel_on_disconnect=self._cod, timeout=self.timeout,
                              max_events=self._max_events,
                              on_push=lambda ev: self._on_push(gen, ev),
                              on_reply=lambda ev: self._on_reply(gen, ev),
                              on_close=lambda: self._on_close(gen))
        if c.account is not None:
            self.account, self.admin = c.account, c.admin
        return c

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            old = self._client
            assert old is not None
            await old.wait_closed()
            if self._closing:
                return
            self._ready.clear()
            dropped = loop.time()
            log.warning("connection to %s lost (close code %s %s); reconnecting", self.url,
                        old.close_code, old.close_reason or "")
            try:
                attempts, found = await self._reconnect()
            except Exception as exc:          # ClientError: gave up; anything else: a bug
                log.error("giving up on %s: %r", self.url, exc,
                          exc_info=not isinstance(exc, ClientError))
                self.failure = exc if isinstance(exc, ClientError) else \
                    ClientError("closed", f"reconnecting failed: {exc!r}")
                self._stream.end()
                self._ready.set()             # waiting requests see the failure
                return
            self.reconnects += 1
            held, self._held = self._held or [], None
            self._deliver(Reconnected(attempts, loop.time() - dropped, old.close_code),
                          found, held)
            self._ready.set()
            log.info("reconnected to %s after %d attempt(s)", self.url, attempts)

    async def _reconnect(self) -> tuple[int, Findings]:
        delays = self.backoff.delays()
        attempts = 0
        while True:
            attempts += 1
            c: Client | None = None
            self._held = []
            try:
                c = await self._connect()
                await self._restore(c)
                found = await reconcile(c, self._tracker, self._live_fills)
                self._client = c
                return attempts, found
            except (ClientError, OSError) as exc:
                if c is not None:
                    await c.close()
                if isinstance(exc, ClientError) and exc.code in FATAL:
                    raise
                if self.backoff.attempts is not None and attempts >= self.backoff.attempts:
                    raise ClientError("closed", f"no connection after {attempts} "
                                      f"attempts: {exc}") from None
                log.info("reconnect attempt %d failed: %s", attempts, exc)
            except BaseException:                 # cancelled by close(): no stray socket
                if c is not None:
                    await c.close()
                raise
            await asyncio.sleep(next(delays))

    async def _restore(self, c: Client) -> None:
        """Subscribe again: ``orders`` first (so that order_status answers come after it:
        nothing falls between), then trades and book, at most 10 books per request."""
        user_orders = "orders" in self._subs
        self._internal_orders = not user_orders and bool(self._tracker.open)
        if user_orders or self._internal_orders:
            await c.subscribe("orders")
        trades = sorted(self._subs.get("trades", ()))
        for i in range(0, len(trades), BOOK_BATCH):
            await _subscribe_patiently(c, "trades", trades[i:i + BOOK_BATCH])
        books = sorted(self._subs.get("book", ()))
        for depth in sorted({self._depth.get(s) for s in books}, key=lambda d: d or 0):
            symbols = [s for s in books if self._depth.get(s) == depth]
            for i in range(0, len(symbols), BOOK_BATCH):
                await _subscribe_patiently(c, "book", symbols[i:i + BOOK_BATCH], depth)

    # ------------------------------------------------------------ what arrives
    def _on_push(self, gen: int, ev: Any) -> None:
        if gen != self._gen:
            return
        if self._held is not None:
            self._held.append(("push", ev))
        else:
            self._push(ev)

    def _on_close(self, gen: int) -> None:
        if gen == self._gen and not self._closing:
            self._ready.clear()          # from now on requests wait for the next connection

    def _on_reply(self, gen: int, ev: Any) -> None:
        if gen != self._gen:
            return
        if self._held is None:
            self._tracker.observe(ev)
        elif isinstance(ev, OrderState):          # where reconcile's answer goes in order
            self._held.append(("status", ev.order_id))

    def _push(self, ev: Any) -> None:
        if isinstance(ev, ORDER_EVENTS):
            if self._internal_orders and not self._tracker.knows(ev.order_id):
                return                            # another connection's order
            t = self._tracker.open.get(ev.order_id)
            if isinstance(ev, Fill) and ev.client_order_id is None and t is not None:
                ev = dataclasses.replace(ev, client_order_id=t.client_order_id)
        self._put(ev)

    def _put(self, ev: Any) -> None:
        self._tracker.observe(ev)
        self._stream.put(ev)

    def _live_fills(self, order_id: int) -> dict[int, Decimal]:
        return {ev.trade_id: ev.qty for kind, ev in self._held or ()
                if kind == "push" and isinstance(ev, Fill) and ev.order_id == order_id}

    def _deliver(self, note: Reconnected, found: Findings, held: list[Held]) -> None:
        self._stream.put(note)
        for order_id in found.gone:
            self._tracker.open.pop(order_id, None)
        for ev in merge(held, found):
            self._push(ev)

    # ------------------------------------------------------------ requests
    async def _current(self, timeout: float) -> Client:
        if not self._ready.is_set() and not self._closing:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                raise ClientError("timeout", "still reconnecting") from None
        if self._closing or self.failure is not None or self._client is None:
            raise ClientError("closed", str(self.failure or "the client is closed"))
        return self._client

    async def request(self, msg: dict[str, Any], timeout: float | None = None,
                      raw: bool = False) -> Any:
        c = await self._current(self.timeout if timeout is None else timeout)
        return await c.request(msg, timeout, raw)

    async def subscribe(self, channel: Channel, symbol: str | Sequence[str] | None = None, *,
                        resync: bool = False, depth: BookDepth | None = None) -> Subscribed:
        res = await super().subscribe(channel, symbol, resync=resync, depth=depth)
        self._subs.setdefault(channel, set()).update(_names(symbol))
        if channel == "book":
            self._depth.update((name, depth) for name in _names(symbol))
        if channel == "orders":
            self._internal_orders = False
        return res

    async def unsubscribe(self, channel: Channel,
                          symbol: str | Sequence[str] | None = None) -> Unsubscribed:
        res = await super().unsubscribe(channel, symbol)
        self._subs.get(channel, set()).difference_update(_names(symbol))
        if channel == "book":
            for name in _names(symbol):
                self._depth.pop(name, None)
        if not self._subs.get(channel):
            self._subs.pop(channel, None)
        return res

    # ------------------------------------------------------------ events, closing
    @property
    def dropped_events(self) -> int:
        return self._stream.dropped

    @property
    def connection(self) -> Client | None:
        """The connection in use now (None while there is none); for tests and metrics."""
        return self._client if self._ready.is_set() and not self._closing else None

    async def close(self) -> None:
        self._closing = True
        self._ready.set()
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except asyncio.CancelledError:
                pass
        if self._client is not None:
            await self._client.close()
        self._stream.end()

    async def __aenter__(self) -> "ReconnectingClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _subscribe_patiently(c: Client, channel: Channel, symbols: list[str],
                               depth: BookDepth | None = None) -> None:
    """Book snapshots have a budget (docs/protocol.md section 7): wait as told, then ask
    again."""
    while True:
        try:
            await c.subscribe(channel, symbols, depth=depth)
            return
        except ClientError as exc:
            if exc.code != "rate_limited":
                raise
            await asyncio.sleep((exc.reply or {}).get("retry_after_ms", 1000) / 1000)


def _names(symbol: str | Iterable[str] | None) -> set[str]:
    if symbol is None:
        return {""}
    return {symbol} if isinstance(symbol, str) else set(symbol)
