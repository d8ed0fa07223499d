"""Subscribing to several symbols in one request (docs/protocol.md, subscribe)."""
from __future__ import annotations

import zlib

from ringex.config import GatewayLimits
from ringex.protocol.actions import Reply, Subscribe, Unsubscribe
from tests.protocol.test_protocol import anon, err, send
from tests.protocol.test_protocol_docs import REPLIES

BOTH = ["BTC-USD", "ETH-USD"]


def test_should_subscribe_a_list_of_symbols_with_one_reply_naming_them():
    s = anon()
    acts = send(s, {"op": "subscribe", "channel": "book", "symbols": BOTH, "req_id": 1})
    assert acts == [Reply({"type": "subscribed", "channel": "book", "symbols": BOTH,
                           "req_id": 1}),
                    Subscribe("book", "BTC-USD"), Subscribe("book", "ETH-USD")]
    assert s.subscriptions == {("book", "BTC-USD"), ("book", "ETH-USD")}
    # a list overlapping what the connection has: only the new symbol is subscribed
    acts = send(s, {"op": "subscribe", "channel": "book", "symbols": ["ETH-BTC", "BTC-USD"]})
    assert acts[1:] == [Subscribe("book", "ETH-BTC")]
    acts = send(s, {"op": "unsubscribe", "channel": "book", "symbols": BOTH, "req_id": 2})
    assert acts == [Unsubscribe("book", "BTC-USD"), Unsubscribe("book", "ETH-USD"),
                    Reply({"type": "unsubscribed", "channel": "book", "symbols": BOTH,
                           "req_id": 2})]
    assert s.subscriptions == {("book", "ETH-BTC")}


def test_should_refuse_a_bad_symbol_list_and_subscribe_nothing():
    s = anon()
    for symbols, code in ((["BTC-USD", "NOPE"], "unknown_symbol"),
                          (["BTC-USD", "BTC-USD"], "bad_request"),
                          ([], "bad_request"), ("BTC-USD", "bad_request"),
                          ([1], "bad_request"), (["BTC-USD"] * 4, "bad_request")):
        assert err(send(s, {"op": "subscribe", "channel": "trades",
                            "symbols": symbols})) == code, symbols
    assert err(send(s, {"op": "subscribe", "channel": "trades", "symbol": "BTC-USD",
                        "symbols": BOTH})) == "bad_request"
    assert s.subscriptions == set()


def test_should_spend_a_snapshot_each_for_a_book_list_all_or_nothing():
    s = anon()
    burst = GatewayLimits().snapshot_burst
    for _ in range(burst - 1):
        send(s, {"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "resync": True})
    # one token left, two needed: refused whole, nothing subscribed from the list
    assert err(send(s, {"op": "subscribe", "channel": "book", "symbols": ["ETH-USD",
                                                                          "ETH-BTC"]})) \
        == "rate_limited"
    assert s.subscriptions == {("book", "BTC-USD")}
    acts = send(s, {"op": "subscribe", "channel": "book", "symbols": ["ETH-USD"]})
    assert acts[1:] == [Subscribe("book", "ETH-USD")]


def test_book_examples_checksums_follow_the_documented_rule():
    """The snapshot and the update of docs/protocol.md, applied as a client would, give
    the checksums they show."""
    snap = next(m for m in REPLIES if m["type"] == "book_snapshot")
    update = next(m for m in REPLIES if m["type"] == "book_update")
    book = {side: dict(snap[side]) for side in ("bids", "asks")}

    def crc() -> int:
        bids = sorted(book["bids"].items(), key=lambda lv: -float(lv[0]))[:10]
        asks = sorted(book["asks"].items(), key=lambda lv: float(lv[0]))[:10]
        text = "|".join(",".join(f"{p}:{q}" for p, q in side) for side in (bids, asks))
        return zlib.crc32(text.encode())

    assert snap["checksum"] == crc()
    for side in ("bids", "asks"):
        for price, qty in update[side]:
            if float(qty) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = qty
    assert update["checksum"] == crc()
