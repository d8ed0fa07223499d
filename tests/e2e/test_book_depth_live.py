"""A depth-limited book subscription on a live gateway (docs/protocol.md, section 5)."""
from __future__ import annotations

from tests.e2e.live_fixtures import Raw, run, trader
from tests.protocol.test_protocol_book_depth import Holder


def test_depth_10_subscriber_keeps_the_ten_best_bids_as_orders_come_and_go(exchange):
    async def go():
        a = await trader(exchange, USD="100000")
        d = await Raw.open(exchange.url)
        try:
            reply = await d.ask({"op": "subscribe", "channel": "book", "symbol": "BTC-USD",
                                 "depth": 10, "req_id": 1})
            assert reply == {"type": "subscribed", "channel": "book", "symbol": "BTC-USD",
                             "depth": 10, "req_id": 1}
            snap = await d.recv()
            assert snap["type"] == "book_snapshot" and not snap["bids"] and not snap["asks"]
            holder = Holder(snap)
            acks = [await a.place("BTC-USD", "buy", "0.01", f"{100 + i}.00")
                    for i in range(12)]
            await a.cancel("BTC-USD", acks[-1].order_id)     # the best bid leaves
            # 100.00 and 101.00 fell out as better bids came; 101.00 is back once
            # 111.00 leaves: the holder must end with exactly 101.00 ... 110.00
            want = {f"{p}.00": "0.0100" for p in range(101, 111)}
            while holder.bids != want:
                m = await d.recv()
                assert m["type"] == "book_update"
                holder.apply(m)
                assert len(holder.bids) <= 10 and holder.checksum() == m["checksum"]
        finally:
            await d.close()
            await a.close()
    run(go())
