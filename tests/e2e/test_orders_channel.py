"""The orders channel live, on two gateways: every connection of an account that
subscribes hears of every order of the account, whoever placed it (docs/protocol.md)."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from ringex.client import Ack, Cancelled, Fill, connect
from tests.e2e.live_fixtures import funded, run, trader

WATCHERS = 8


def _connections(exchange) -> dict[str, int]:
    text = urllib.request.urlopen(exchange.http_url + "metrics").read().decode()
    return {g: int(float(v)) for g, v in
            re.findall(r'^ringex_gateway_connections\{gateway="(\d+)"\} (\S+)$', text, re.M)}


def _settled(exchange) -> dict[str, int]:
    """The connection gauges once they hold still for 2.5 s (they are set every second;
    connections of earlier tests may still be closing)."""
    last = _connections(exchange)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(2.5)
        now = _connections(exchange)
        if now == last:
            break
        last = now
    return last


def _spread(exchange, before: dict[str, int]) -> dict[str, int]:
    """Connections each gateway gained since ``before``, once they add up to WATCHERS."""
    deadline = time.monotonic() + 15
    while True:
        now = _connections(exchange)
        gained = {g: now.get(g, 0) - before.get(g, 0) for g in now}
        if sum(gained.values()) == WATCHERS or time.monotonic() > deadline:
            return gained
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_every_streaming_connection_hears_of_the_accounts_orders_on_both_gateways(exchange):
    async def go():
        key, _ = await funded(exchange, USD="100000", BTC="10")
        before = _settled(exchange)
        watchers = [await connect(exchange.url, key) for _ in range(WATCHERS)]
        try:
            for w in watchers:
                sub = await w.subscribe("orders")
                assert (sub.channel, sub.symbol) == ("orders", None)
            spread = _spread(exchange, before)
            assert sum(spread.values()) == WATCHERS and min(spread.values()) > 0, spread
            placer = await connect(exchange.url, key)
            ack = await placer.place("BTC-USD", "buy", "0.01", "1000", client_order_id="w-1")
            taker = await trader(exchange, BTC="1")
            await taker.place("BTC-USD", "sell", "0.004", "1000")
            for w in watchers:
                seen = await w.next_event(Ack)
                assert (seen.order_id, seen.client_order_id, seen.ts) == \
                    (ack.order_id, "w-1", ack.ts)
                fill = await w.next_event(Fill)
                assert (fill.order_id, fill.client_order_id, fill.liquidity, fill.qty) == \
                    (ack.order_id, "w-1", "maker", ack.qty - fill.leaves)
            # the placer hears of its own order once, as before
            assert (await placer.next_event(Fill)).order_id == ack.order_id
            assert not [e for e in placer.pending_events() if isinstance(e, (Ack, Fill))]
            # a watcher that unsubscribes hears nothing of the cancel; the others do
            await watchers[0].unsubscribe("orders")
            assert isinstance(await placer.cancel("BTC-USD", ack.order_id), Cancelled)
            for w in watchers[1:]:
                assert (await w.next_event(Cancelled)).order_id == ack.order_id
            await watchers[0].ping()
            assert not [e for e in watchers[0].pending_events() if isinstance(e, Cancelled)]
            await placer.close()
            await taker.close()
        finally:
            for w in watchers:
                await w.close()
    run(go())
