"""What a ReconnectingClient delivers after a reconnect (ringex/client/reconcile.py merge,
tracker.py), without sockets: the order of missed trades, states and live pushes, and
nothing said twice (docs/sdk.md, "Reconnecting")."""
from __future__ import annotations

from decimal import Decimal

from ringex.client import MyTrade, OrderState, parse
from ringex.client.reconcile import Findings, merge
from ringex.client.tracker import OrderTracker

D = Decimal
ORDER = {"symbol": "BTC-USD", "client_order_id": "c1", "side": "buy", "price": "100.00"}


def ack(order_id: int, qty: str = "0.0300", ts: int = 5):
    return parse({"type": "ack", "order_id": order_id, **ORDER, "qty": qty, "ts": ts})


def fill(order_id: int, trade_id: int, qty: str, leaves: str, cid: str | None = "c1"):
    return parse({"type": "fill", "seq": trade_id + 1, "trade_id": trade_id, **ORDER,
                  "client_order_id": cid, "order_id": order_id, "qty": qty, "leaves": leaves,
                  "liquidity": "maker", "fee": "0.01", "fee_asset": "USD"})


def mytrade(order_id: int, trade_id: int, qty: str) -> MyTrade:
    return parse({"type": "my_trades", "symbol": "BTC-USD", "trades": [
        {"trade_id": trade_id, "order_id": order_id, "side": "buy", "price": "100.00",
         "qty": qty, "liquidity": "maker", "fee": "0.01", "fee_asset": "USD", "ts": 9}]})[0]


def state(order_id: int, status: str, leaves: str, filled: str) -> OrderState:
    return parse({"type": "order_status", **ORDER, "order_id": order_id, "qty": "0.0300",
                  "leaves": leaves, "filled": filled, "status": status, "reason": None})


def cancelled(order_id: int):
    return parse({"type": "cancelled", **ORDER, "order_id": order_id, "qty": "0.0100",
                  "reason": "user"})


def test_should_put_missed_trades_then_the_state_where_the_status_answer_came():
    book = parse({"type": "book_snapshot", "symbol": "BTC-USD", "seq": 3, "bids": [],
                  "asks": []})
    later = fill(1, 30, "0.0100", "0.0000")
    found = Findings(states={1: state(1, "partially_filled", "0.0100", "0.0200")},
                     trades={1: [mytrade(1, 10, "0.0100"), mytrade(1, 20, "0.0100")]})
    out = list(merge([("push", book), ("status", 1), ("push", later)], found))
    assert out == [book, *found.trades[1], found.states[1], later]


def test_should_leave_a_missed_trade_that_also_came_live_to_the_live_fill():
    live = fill(1, 20, "0.0100", "0.0100")
    found = Findings(states={1: state(1, "partially_filled", "0.0100", "0.0200")},
                     trades={1: [mytrade(1, 10, "0.0100"), mytrade(1, 20, "0.0100")]})
    out = list(merge([("push", live), ("status", 1)], found))
    assert out == [live, found.trades[1][0], found.states[1]]


def test_should_drop_an_orders_pushes_after_its_state_said_it_ended():
    found = Findings(states={1: state(1, "cancelled", "0.0000", "0.0000")})
    other = fill(2, 40, "0.0100", "0.0200")
    out = list(merge([("status", 1), ("push", cancelled(1)), ("push", other)], found))
    assert out == [found.states[1], other]


def test_should_say_nothing_of_an_unchanged_order():
    assert list(merge([("status", 1)], Findings())) == []


def test_tracker_should_follow_an_order_from_ack_to_its_last_fill():
    t = OrderTracker()
    t.observe(ack(1))
    t.observe(fill(1, 10, "0.0100", "0.0200"))
    assert (t.open[1].leaves, t.open[1].filled, t.open[1].since_ts) == (D("0.02"), D("0.01"), 5)
    assert t.last_trade == {"BTC-USD": 10}
    t.observe(mytrade(1, 12, "0.0100"))
    t.observe(state(1, "partially_filled", "0.0100", "0.0200"))
    assert (t.open[1].leaves, t.open[1].filled, t.last_trade["BTC-USD"]) == \
        (D("0.01"), D("0.02"), 12)
    t.observe(fill(1, 14, "0.0100", "0.0000"))
    assert t.open == {}


def test_tracker_should_forget_cancelled_and_ended_orders_and_ignore_lists():
    t = OrderTracker()
    t.observe(ack(1))
    t.observe(ack(2))
    t.observe([mytrade(1, 99, "0.0100")])        # a my_trades reply the user asked for
    t.observe(cancelled(1))
    t.observe(state(2, "filled", "0.0000", "0.0300"))
    assert t.open == {} and t.last_trade == {}


def test_a_reconnect_subscribes_each_book_again_at_the_depth_it_was_asked_with():
    import asyncio

    from ringex.client import Backoff, ReconnectingClient

    class Recorder:
        def __init__(self):
            self.asked: list[tuple] = []

        async def subscribe(self, channel, symbols=None, depth=None):
            self.asked.append((channel, list(symbols or []), depth))

    async def go():
        rc = ReconnectingClient("ws://unused", None, login="header", cancel_on_disconnect=False,
                                timeout=1.0, max_events=10, backoff=Backoff())
        rc._subs = {"book": {"BTC-USD", "ETH-USD", "ETH-BTC"}, "trades": {"BTC-USD"}}
        rc._depth = {"BTC-USD": 10, "ETH-USD": None, "ETH-BTC": 10}
        rec = Recorder()
        await rc._restore(rec)           # type: ignore[arg-type]
        return rec.asked
    assert asyncio.run(go()) == [("trades", ["BTC-USD"], None),
                                 ("book", ["ETH-USD"], None),
                                 ("book", ["BTC-USD", "ETH-BTC"], 10)]
