"""After a reconnect: what happened to the orders a client knew to be open while it was
away, asked with ``order_status`` (the order now) and ``my_trades`` (the fills missed)
(``reconcile``), and how that merges with what the new connection pushed meanwhile
(``merge``, no I/O).

``my_trades`` reads the database, which stores a trade milliseconds after its fills, and
a live order's ``filled`` may trail the engine the same way: so the missed trades of an
order are fetched again (briefly, up to ``TRADES_WAIT_S``) until they add up to what its
state says it filled since. Fills pushed live on the new connection count too.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ringex.client.errors import ClientError
from ringex.client.requests import Requests
from ringex.client.results import Ack, Cancelled, Fill, Modified, MyTrade, OrderState
from ringex.client.tracker import OrderTracker, Tracked
from ringex.client.types import ENDED

log = logging.getLogger("ringex.client")

TRADES_WAIT_S = 3.0          # the database is milliseconds behind; this bounds a surprise
PAGE = 1000                  # my_trades' largest page
CONCURRENT = 50              # order_status requests in flight at once
# an order's trades are stored after its ack; their stored ts is within milliseconds of
# the fills' (protocol.md), so an ack's ts less this bounds the pages to read, safely
SINCE_MARGIN_NS = 60 * 10**9


# what the new connection brought while reconciling, in arrival order: ("push", event),
# or ("status", order_id) where an order_status answer came
Held = tuple[str, Any]


@dataclass
class Findings:
    states: dict[int, OrderState] = field(default_factory=dict)       # changed orders only
    trades: dict[int, list[MyTrade]] = field(default_factory=dict)    # per order, oldest first
    gone: list[int] = field(default_factory=list)      # known to us, unknown to the server


async def reconcile(c: Requests, tracker: OrderTracker,
                    live_fills: Callable[[int], dict[int, Decimal]]) -> Findings:
    """Ask about every order ``tracker`` knows to be open. ``live_fills(order_id)``: the
    fills of that order the new connection pushed meanwhile, trade_id -> qty."""
    out = Findings()
    known = dict(tracker.open)
    gate = asyncio.Semaphore(CONCURRENT)

    async def status(order_id: int) -> None:
        async with gate:
            st = await _order_status(c, order_id)
        if st is None:
            out.gone.append(order_id)
        elif st.status in ENDED or st.leaves != known[order_id].leaves:
            out.states[order_id] = st

    await asyncio.gather(*(status(o) for o in known))
    by_symbol: dict[str, list[int]] = {}
    for order_id in out.states:
        by_symbol.setdefault(known[order_id].symbol, []).append(order_id)
    for symbol, orders in by_symbol.items():
        want = {o: _missed_qty(known[o], out.states[o]) for o in orders}
        since = max(min(known[o].since_ts for o in orders) - SINCE_MARGIN_NS, 0)
        after = tracker.last_trade.get(symbol, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRADES_WAIT_S
        delay = 0.02
        while True:
            trades = await _trades(c, symbol, after + 1, since, set(orders))
            short = [o for o in orders if _covered(trades, live_fills(o), o) < want[o]]
            if not short or loop.time() > deadline:
                break
            await asyncio.sleep(delay)           # the database is catching up
            delay = min(delay * 2, 0.5)
        if short:
            log.warning("my_trades in %s still misses fills of orders %s after %.1f s",
                        symbol, short, TRADES_WAIT_S)
        for t in trades:
            out.trades.setdefault(t.order_id, []).append(t)
    return out


def _missed_qty(t: Tracked, st: OrderState) -> Decimal:
    """What the order filled while we were away: an ended order's stored ``filled`` is
    final; a live one's may trail, its ``leaves`` (the engine's) does not."""
    missed = st.filled - t.filled
    if st.status not in ENDED:
        missed = max(missed, t.leaves - st.leaves)
    return missed


def _covered(trades: list[MyTrade], live: dict[int, Decimal], order_id: int) -> Decimal:
    got = dict(live)
    got.update((t.trade_id, t.qty) for t in trades if t.order_id == order_id)
    return sum(got.values(), Decimal(0))


async def _order_status(c: Requests, order_id: int) -> OrderState | None:
    delay = 0.05
    for _ in range(10):
        try:
            return await c.order_status(order_id)
        except ClientError as exc:
            if exc.code == "unknown_order":
                log.warning("order %d was open before the reconnect; the server does "
                            "not know it", order_id)
                return None
            if exc.code not in ("overloaded", "rate_limited"):
                raise
        await asyncio.sleep(delay)               # the server asked us to come back later
        delay = min(delay * 2, 1.0)
    raise ClientError("overloaded", f"order_status {order_id} kept failing")


async def _trades(c: Requests, symbol: str, first: int, since_ts: int,
                  orders: set[int]) -> list[MyTrade]:
    """Every trade of ``orders`` in ``symbol`` from trade id ``first`` on, all pages."""
    out: list[MyTrade] = []
    while True:
        page = await c.my_trades(symbol, first, since_ts, PAGE)
        out += [t for t in page if t.order_id in orders]
        if len(page) < PAGE:
            return out
        first = page[-1].trade_id + 1


def merge(held: list[Held], found: Findings) -> Iterator[Any]:
    """The events to deliver after a reconnect: the held pushes in arrival order, with each
    changed order's missed trades and then its state where its order_status answer came.
    Nothing is said twice: a missed trade that also came live as a Fill is left to the
    Fill, and an order's pushes after its state said it ended are dropped."""
    live = {(ev.trade_id, ev.order_id) for kind, ev in held
            if kind == "push" and isinstance(ev, Fill)}
    ended: set[int] = set()
    for kind, x in held:
        if kind == "status":
            st = found.states.get(x)
            if st is None:
                continue                          # unchanged: nothing to say
            yield from (t for t in found.trades.get(x, ()) if (t.trade_id, x) not in live)
            yield st
            if st.status in ENDED:
                ended.add(x)
        elif not (isinstance(x, (Ack, Fill, Cancelled, Modified)) and x.order_id in ended):
            yield x
