"""One connection's subscriptions (docs/protocol.md, subscribe): ``book`` (at a depth),
``trades`` and the account's ``orders`` channel, and the snapshot budget that guards the
book.

``keys`` holds (fan-out channel, symbol name) pairs, the ``orders`` channel as
``ORDERS``; the gateway drops them from its fan-out when the connection goes. A book
subscription's fan-out channel names its depth (``book``, ``book/10``: book_views).
"""
from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import ringex.protocol.requests as rq
from ringex.config import GatewayLimits
from ringex.protocol.actions import Action, Reply, Subscribe, Unsubscribe
from ringex.protocol.book_views import BOOK_KEYS, book_channel
from ringex.protocol.codes import ErrorCode as E, Refused
from ringex.protocol.events import EventTranslator, with_req_id
from ringex.protocol.ratelimit import TokenBucket
from ringex.protocol.symbols import Tables

ORDERS = ("orders", "")           # the orders channel as a subscription (no symbol)


def _reply(kind: str, channel: str, symbols: list[str], many: bool) -> dict:
    """``subscribed``/``unsubscribed``: ``symbols`` when the request gave a list."""
    if many:
        return {"type": kind, "channel": channel, "symbols": symbols}
    return {"type": kind, "channel": channel, "symbol": symbols[0]}


class Subscriptions:
    """``stream`` is the orders channel's translator while subscribed (None otherwise);
    ``new_stream`` makes one."""

    def __init__(self, tables: Tables, limits: GatewayLimits, now: int,
                 new_stream: Callable[[], EventTranslator]):
        self.keys: set[tuple[str, str]] = set()
        self.stream: EventTranslator | None = None
        self._t = tables
        self._limits = limits
        self._new_stream = new_stream
        self._snapshots = TokenBucket(Fraction(limits.snapshots_per_min, 60),
                                      limits.snapshot_burst, now)

    def subscribe(self, msg: dict, req_id: object, now: int,
                  logged_in: bool) -> list[Action]:
        """A new subscription (for ``book``, a snapshot follows); a repeated one is only
        answered, unless it asks for ``resync`` (a fresh snapshot). Book snapshots are
        budgeted per connection: they are the gateway's most expensive answer."""
        channel, symbols, many = rq.subscription(msg, self._t)
        if channel == "orders":
            return self._subscribe_orders(req_id, logged_in)
        depth = rq.book_depth(msg, channel)
        answer = _reply("subscribed", channel, symbols, many)
        if depth is not None:
            answer["depth"] = depth
        reply = Reply(with_req_id(answer, req_id))
        resync = rq.bool_field(msg, "resync")
        key = book_channel(depth) if channel == "book" else channel
        new = [s for s in symbols if resync or (key, s) not in self.keys]
        if not new:
            return [reply]
        if channel == "book":
            self._take_snapshots(now, len(new))
        # one book subscription a symbol: another depth replaces the one held
        dropped = [Unsubscribe(k, s) for s in new for k in self._book_keys(s)
                   if k != key] if channel == "book" else []
        for a in dropped:
            self.keys.discard((a.channel, a.symbol))
        self.keys.update((key, s) for s in new)
        return [reply, *dropped, *(Subscribe(key, s) for s in new)]

    def _take_snapshots(self, now: int, n: int) -> None:
        """All or nothing: a list of book symbols needs a snapshot token for each."""
        if n > self._snapshots.burst:
            raise Refused(E.BAD_REQUEST, f"at most {self._snapshots.burst} book symbols "
                          "in one subscribe (each costs a snapshot)")
        if not self._snapshots.try_take(now, n):
            raise Refused(E.RATE_LIMITED, f"at most {self._limits.snapshots_per_min} book "
                          "snapshots a minute per connection",
                          limit="book_snapshots",
                          retry_after_ms=self._snapshots.retry_after_ms(now, n))

    def _book_keys(self, symbol: str) -> list[str]:
        """The fan-out keys of this connection's book subscription of ``symbol``."""
        return [k for k in BOOK_KEYS if (k, symbol) in self.keys]

    def _subscribe_orders(self, req_id: object, logged_in: bool) -> list[Action]:
        """The account's order events, whoever placed them; logged-in connections only."""
        if not logged_in:
            raise Refused(E.NOT_AUTHENTICATED, "log in before subscribing to orders")
        reply = Reply(with_req_id({"type": "subscribed", "channel": "orders"}, req_id))
        if ORDERS in self.keys:
            return [reply]
        self.keys.add(ORDERS)
        self.stream = self._new_stream()
        return [reply, Subscribe(*ORDERS)]

    def unsubscribe(self, msg: dict, req_id: object) -> list[Action]:
        channel, symbols, many = rq.subscription(msg, self._t)
        if channel == "orders":
            self.keys.discard(ORDERS)
            self.stream = None
            return [Unsubscribe(*ORDERS),
                    Reply(with_req_id({"type": "unsubscribed", "channel": "orders"}, req_id))]
        keys = {s: self._book_keys(s) if channel == "book" else [channel] for s in symbols}
        for s in symbols:
            for k in keys[s]:
                self.keys.discard((k, s))
        return [*(Unsubscribe(k, s) for s in symbols for k in keys[s]),
                Reply(with_req_id(_reply("unsubscribed", channel, symbols, many), req_id))]
