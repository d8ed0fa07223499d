"""ReconnectingClient against a live exchange, through a relay the test cuts: it comes
back, subscribes again, and tells what its open orders did while it was away
(docs/sdk.md, "Reconnecting")."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from ringex.client import (
    Backoff, BookSnapshot, Cancelled, ClientError, Fill, MyTrade, OrderState, Reconnected,
    ReconnectingClient, Trade, connect,
)
from tests.e2e.live_fixtures import bids_become, funded, run, trader
from tests.e2e.relay import Relay

D = Decimal
FAST = Backoff(first=0.02, cap=0.2)


async def collect(c: ReconnectingClient, done: Callable[[list], bool]) -> list:
    """Events in order until ``done(events so far)``."""
    got: list = []
    while not done(got):
        got.append(await c.next_event(timeout=30))
    return got


def after_reconnect(events: list) -> list:
    marks = [i for i, ev in enumerate(events) if isinstance(ev, Reconnected)]
    return events[marks[0] + 1:] if marks else []


def test_a_dropped_link_comes_back_resubscribed_with_the_fills_it_missed(exchange):
    async def go():
        relay = await Relay(exchange.port).start()
        key, _ = await funded(exchange, USD="100000")
        taker = await trader(exchange, BTC="1", ETH="1")
        mk = await connect(relay.url, key, reconnect=FAST)
        try:
            await mk.subscribe("book", "BTC-USD")
            await mk.subscribe("trades", "BTC-USD")
            await mk.next_event(BookSnapshot)
            a = await mk.place("BTC-USD", "buy", "0.03", "1000", client_order_id="ra")
            b = await mk.place("ETH-USD", "buy", "0.01", "100", client_order_id="rb")
            c = await mk.place("BTC-USD", "buy", "0.01", "970", client_order_id="rc")
            await taker.place("BTC-USD", "sell", "0.01", "1000")
            seen = await mk.next_event(Fill)
            assert (seen.order_id, seen.leaves) == (a.order_id, D("0.0200"))

            relay.refuse()
            relay.cut()
            # while it is away: a fills a little more, b completely
            await taker.place("BTC-USD", "sell", "0.01", "1000")
            await taker.place("ETH-USD", "sell", "0.01", "100")
            await relay.refusals(1)                  # it tried, and backs off
            relay.admit()

            def reconciled(evs):
                back = after_reconnect(evs)
                return {e.order_id for e in back if isinstance(e, OrderState)} == \
                    {a.order_id, b.order_id} and any(isinstance(e, BookSnapshot) for e in back)
            events = await collect(mk, reconciled)
            note = next(e for e in events if isinstance(e, Reconnected))
            assert (note.close_code, mk.reconnects) == (1006, 1)     # no close frame came
            assert note.attempts >= 2                                # one was refused
            back = after_reconnect(events)
            states = {e.order_id: (i, e) for i, e in enumerate(back) if isinstance(e, OrderState)}
            missed = {e.order_id: (i, e) for i, e in enumerate(back) if isinstance(e, MyTrade)}
            assert set(missed) == {a.order_id, b.order_id}
            for order_id in (a.order_id, b.order_id):
                assert missed[order_id][0] < states[order_id][0]      # the fill, then the state
            sa, sb = states[a.order_id][1], states[b.order_id][1]
            assert (sa.status, sa.leaves) == ("partially_filled", D("0.0100"))
            assert (sb.status, sb.leaves, sb.symbol) == ("filled", D("0.000"), "ETH-USD")
            mt = missed[a.order_id][1]
            assert (mt.symbol, mt.qty, mt.price, mt.liquidity) == ("BTC-USD", D("0.0100"),
                                                                   D("1000.00"), "maker")
            assert mt.trade_id > seen.trade_id
            assert (missed[b.order_id][1].symbol, missed[b.order_id][1].qty) == \
                ("ETH-USD", D("0.010"))
            assert c.order_id not in states                     # unchanged: nothing to say
            book = next(e for e in back if isinstance(e, BookSnapshot))
            await bids_become(mk, book, [(D("1000.00"), D("0.0100")),
                                         (D("970.00"), D("0.0100"))])

            # a, placed on the old connection, still reports: the last fill, with its
            # client id, and the public trade of the resubscribed channel
            await taker.place("BTC-USD", "sell", "0.01", "1000")
            # (market data and order pushes take separate paths: either may come first)
            last = await collect(mk, lambda evs: {Fill, Trade} <= {type(e) for e in evs})
            fill = next(e for e in last if isinstance(e, Fill))
            trade = next(e for e in last if isinstance(e, Trade))
            assert (fill.order_id, fill.client_order_id, fill.leaves) == (a.order_id, "ra",
                                                                          D("0.0000"))
            assert trade.trade_id == fill.trade_id
            assert [o.order_id for o in await mk.open_orders()] == [c.order_id]
        finally:
            await mk.close()
            await taker.close()
            await relay.close()
    run(go())


def test_requests_in_flight_fail_closed_and_later_ones_wait_for_the_reconnect(exchange):
    async def go():
        relay = await Relay(exchange.port).start()
        key, _ = await funded(exchange, USD="10")
        rc = await connect(relay.url, key, reconnect=FAST)
        try:
            relay.stall()                            # the reply cannot come back
            in_flight = asyncio.ensure_future(rc.balances())
            await asyncio.sleep(0)                   # let it send
            relay.refuse()
            relay.cut()
            with pytest.raises(ClientError) as e:
                await in_flight
            assert e.value.code == "closed"
            waiting = asyncio.ensure_future(rc.ping())
            await relay.refusals(1)
            assert not waiting.done() and rc.connection is None
            relay.admit()
            assert (await waiting)["type"] == "pong"
            assert rc.reconnects == 1
            assert isinstance(await rc.next_event(Reconnected), Reconnected)
        finally:
            await rc.close()
            await relay.close()
    run(go())


def test_a_client_that_cannot_get_back_gives_up_after_its_attempts(exchange):
    async def go():
        relay = await Relay(exchange.port).start()
        key, _ = await funded(exchange)
        rc = await connect(relay.url, key, reconnect=Backoff(first=0.01, attempts=3))
        try:
            relay.refuse()
            relay.cut()
            assert [ev async for ev in rc.events()] == []        # ends once it gives up
            assert rc.failure is not None and rc.failure.code == "closed"
            with pytest.raises(ClientError) as e:
                await rc.ping()
            assert e.value.code == "closed"
            await relay.refusals(3)
        finally:
            await rc.close()
            await relay.close()
    run(go())


def test_with_cancel_on_disconnect_the_orders_come_back_cancelled(exchange):
    async def go():
        relay = await Relay(exchange.port).start()
        key, _ = await funded(exchange, USD="1000")
        watcher = await connect(exchange.url, key)
        rc = await connect(relay.url, key, cancel_on_disconnect=True, reconnect=FAST)
        try:
            await watcher.subscribe("orders")
            ack = await rc.place("BTC-USD", "buy", "0.01", "900")
            relay.refuse()
            relay.cut()
            gone = await watcher.next_event(Cancelled)     # the gateway saw the drop
            assert (gone.order_id, gone.reason) == (ack.order_id, "disconnect")
            relay.admit()
            st = await rc.next_event(OrderState)
            assert (st.order_id, st.status, st.reason) == (ack.order_id, "cancelled",
                                                           "disconnect")
            assert await rc.open_orders() == []
        finally:
            await rc.close()
            await watcher.close()
            await relay.close()
    run(go())
