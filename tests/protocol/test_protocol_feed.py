"""Market data: trades, coalesced book updates, snapshots, prev_seq chains."""
from __future__ import annotations

import zlib

import numpy as np

from ringex.protocol.feed import MarketFeed
from ringex.protocol.messages import encode
from ringex import records
from ringex.records import INFO_SELL, EventKind as EK
from tests.protocol.test_protocol import BTC, CONFIG, ETH


def batch(*rows) -> np.ndarray:
    """rows: (kind, symbol, seq, price, qty, sell); a CLOCK row is clock(ts)."""
    ev = np.zeros(len(rows), dtype=records.EVENT)
    for i, (kind, sym, seq, price, qty, sell) in enumerate(rows):
        ev[i]["kind"], ev[i]["symbol"], ev[i]["seq"] = kind, sym, seq
        ev[i]["price"], ev[i]["qty"], ev[i]["info"] = price, qty, INFO_SELL if sell else 0
        if kind == EK.CLOCK:
            ev[i]["order_id"], ev[i]["price"] = price, 0
    return ev


def clock(ts: int) -> tuple:
    return (EK.CLOCK, 0, 0, ts, 0, False)


T1, T2 = 1_764_000_000_000_000_001, 1_764_000_000_000_000_002
TOP = zlib.crc32(b"30000.00:0.3000,29999.50:1.2000|30001.00:0.7500")


def test_should_publish_trades_with_a_prev_seq_chain():
    feed = MarketFeed(CONFIG)
    out = feed.apply(batch(clock(T1), (EK.TRADE, BTC.id, 10, 3_000_000, 2000, True),
                           (EK.ACK, BTC.id, 11, 1, 1, False), clock(T2),
                           (EK.TRADE, BTC.id, 14, 2_999_900, 1, False),
                           (EK.TRADE, ETH.id, 3, 180_000, 500, False)))
    assert out == [
        ("trades", "BTC-USD", {"type": "trade", "symbol": "BTC-USD", "seq": 10, "prev_seq": 0,
                               "trade_id": 10,
                               "price": "30000.00", "qty": "0.2000", "taker_side": "sell",
                               "ts": T1}),
        ("trades", "BTC-USD", {"type": "trade", "symbol": "BTC-USD", "seq": 14, "prev_seq": 10,
                               "trade_id": 14,
                               "price": "29999.00", "qty": "0.0001", "taker_side": "buy",
                               "ts": T2}),
        ("trades", "ETH-USD", {"type": "trade", "symbol": "ETH-USD", "seq": 3, "prev_seq": 0,
                               "trade_id": 3,
                               "price": "1800.00", "qty": "0.500", "taker_side": "buy",
                               "ts": T2})]


def test_should_coalesce_book_levels_per_batch_and_snapshot_them():
    feed = MarketFeed(CONFIG)
    out = feed.apply(batch(clock(T1), (EK.BOOK_LEVEL, BTC.id, 1, 3_000_000, 5000, False),
                           (EK.BOOK_LEVEL, BTC.id, 2, 2_999_950, 12000, False),
                           (EK.BOOK_LEVEL, BTC.id, 3, 3_000_100, 7500, True),
                           (EK.BOOK_LEVEL, BTC.id, 4, 3_000_000, 3000, False)))
    assert out == [("book", "BTC-USD", {
        "type": "book_update", "symbol": "BTC-USD", "seq": 4, "prev_seq": 0,
        "bids": [["30000.00", "0.3000"], ["29999.50", "1.2000"]],
        "asks": [["30001.00", "0.7500"]], "checksum": TOP, "ts": T1})]
    assert feed.snapshot("BTC-USD") == {
        "type": "book_snapshot", "symbol": "BTC-USD", "seq": 4,
        "bids": [["30000.00", "0.3000"], ["29999.50", "1.2000"]],
        "asks": [["30001.00", "0.7500"]], "checksum": TOP, "ts": T1}
    out = feed.apply(batch(clock(T2), (EK.BOOK_LEVEL, BTC.id, 9, 3_000_000, 0, False)))
    assert out[0][2]["prev_seq"] == 4 and out[0][2]["bids"] == [["30000.00", "0.0000"]]
    after = zlib.crc32(b"29999.50:1.2000|30001.00:0.7500")
    assert (out[0][2]["ts"], out[0][2]["checksum"]) == (T2, after)
    snap = feed.snapshot("BTC-USD")
    assert snap["seq"] == 9 and snap["bids"] == [["29999.50", "1.2000"]] and snap["ts"] == T2
    assert snap["checksum"] == after
    assert feed.snapshot("ETH-USD") == {"type": "book_snapshot", "symbol": "ETH-USD",
                                        "seq": 0, "bids": [], "asks": [],
                                        "checksum": zlib.crc32(b"|"), "ts": 0}


def test_should_checksum_the_top_ten_levels_of_each_side_after_every_change():
    """A client's own book gives the same checksum (the rule in docs/protocol.md) only
    from the ten best levels a side, in the wire's decimals."""
    feed = MarketFeed(CONFIG)
    rows = [(EK.BOOK_LEVEL, BTC.id, i + 1, 3_000_000 - 100 * i, 1000 + i, False)
            for i in range(12)]
    rows += [(EK.BOOK_LEVEL, BTC.id, 13, 3_000_100, 5, True)]
    (_, _, update), = feed.apply(batch(*rows))
    bids = ",".join(f"{(3_000_000 - 100 * i) // 100}.00:0.{1000 + i:04d}" for i in range(10))
    assert update["checksum"] == zlib.crc32(f"{bids}|30001.00:0.0005".encode())
    assert feed.snapshot("BTC-USD")["checksum"] == update["checksum"]
    # a change below the top ten leaves the checksum as it was
    (_, _, deeper), = feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 14, 2_998_900, 0, False)))
    assert deeper["checksum"] == update["checksum"]


def test_should_ignore_unknown_symbols_and_empty_batches():
    feed = MarketFeed(CONFIG)
    assert feed.apply(batch()) == []
    assert feed.apply(batch((EK.TRADE, 999, 1, 1, 1, False))) == []


def test_should_produce_encodable_messages():
    feed = MarketFeed(CONFIG)
    for _, _, m in feed.apply(batch((EK.TRADE, BTC.id, 1, 10**7, 2**40, True),
                                    (EK.BOOK_LEVEL, BTC.id, 2, 1, 1, True))):
        encode(m)


def test_should_encode_a_book_snapshot_once_per_version():
    """Every subscriber of an unchanged book gets the same bytes: a flood of subscribers
    costs the gateway one encoding, not one each."""
    feed = MarketFeed(CONFIG)
    feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 1, 3_000_000, 5000, False)))
    first = feed.snapshot_frame("BTC-USD")
    assert feed.snapshot_frame("BTC-USD") is first
    assert first == encode(feed.snapshot("BTC-USD"))
    feed.apply(batch((EK.TRADE, BTC.id, 2, 3_000_000, 1, True)))      # no book change
    assert feed.snapshot_frame("BTC-USD") is first
    feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 3, 3_000_000, 4000, False)))
    second = feed.snapshot_frame("BTC-USD")
    assert second is not first and second == encode(feed.snapshot("BTC-USD"))
    feed.resync(BTC.id)
    feed.load_snapshot(BTC.id, [])                                     # reloaded: empty
    assert feed.snapshot_frame("BTC-USD") == encode(feed.snapshot("BTC-USD")) != second
