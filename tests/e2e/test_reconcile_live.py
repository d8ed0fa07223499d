"""order_status and my_trades against a live exchange: the engine while an order lives,
the database once it is done (docs/protocol.md)."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from ringex.client import ClientError, Fill
from tests.e2e.live_fixtures import run, trader


@pytest.mark.timeout(120)
def test_order_status_follows_an_order_from_live_to_done_and_my_trades_lists_its_fills(
        exchange):
    async def go():
        maker = await trader(exchange, USD="100000")
        taker = await trader(exchange, BTC="1")
        try:
            ack = await maker.place("BTC-USD", "buy", "0.03", "990", client_order_id="rc-1")
            live = await maker.request({"op": "order_status", "order_id": ack.order_id},
                                       raw=True)
            assert (live["status"], live["leaves"], live["client_order_id"]) == \
                ("open", "0.0300", "rc-1")
            assert live["ts"] >= ack.ts
            await taker.place("BTC-USD", "sell", "0.01", "990")
            fill = await maker.next_event(Fill)
            part = await maker.request({"op": "order_status", "client_order_id": "rc-1"},
                                       raw=True)
            assert (part["order_id"], part["leaves"]) == (ack.order_id, "0.0200")
            await taker.place("BTC-USD", "sell", "0.02", "990")
            await maker.next_event(Fill)
            # no longer live: from the database, once it holds the end
            done = await maker.request({"op": "order_status", "order_id": ack.order_id},
                                       raw=True)
            assert (done["status"], done["leaves"], done["filled"], done["qty"]) == \
                ("filled", "0.0000", "0.0300", "0.0300")
            # my trades: both fills, my side, the ids the fills carried
            deadline = time.monotonic() + 10
            while True:
                page = await maker.request({"op": "my_trades", "symbol": "BTC-USD",
                                            "from_trade_id": fill.trade_id}, raw=True)
                if len(page["trades"]) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            trades = page["trades"]
            assert [(t["order_id"], t["side"], t["liquidity"], t["qty"]) for t in trades] == \
                [(ack.order_id, "buy", "maker", "0.0100"), (ack.order_id, "buy", "maker",
                                                             "0.0200")]
            assert trades[0]["trade_id"] == fill.trade_id
            # the SDK's typed calls: the next page, and the order by client id
            (one,) = await maker.my_trades("BTC-USD", trades[0]["trade_id"] + 1, limit=1)
            assert (one.trade_id, one.qty, one.liquidity) == (trades[1]["trade_id"],
                                                             Decimal("0.0200"), "maker")
            state = await maker.order_status(client_order_id="rc-1")
            assert (state.order_id, state.status, state.filled) == (ack.order_id, "filled",
                                                                    Decimal("0.0300"))
            # the taker's orders are not the maker's
            with pytest.raises(ClientError) as e:
                await taker.request({"op": "order_status", "order_id": ack.order_id})
            assert e.value.code == "unknown_order"
        finally:
            await maker.close()
            await taker.close()
    run(go())
