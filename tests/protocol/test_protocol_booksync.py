"""Loading a gateway's book mirror from the engine: BookSync + MarketFeed.load_snapshot."""
from __future__ import annotations

import numpy as np

from ringex.protocol.booksync import BookSync
from ringex.protocol.feed import MarketFeed
from ringex import records
from ringex.records import ALL_SYMBOLS, INFO_SELL, CommandKind as CK, EventKind as EK, \
    RejectCode
from tests.protocol.test_protocol import BTC, CONFIG, ETH
from tests.protocol.test_protocol_feed import batch

OWN = (1 << 24) | 0xFFFFFF


def level(seq, price, qty, sell=False, ref=1) -> tuple:
    ev = np.zeros(1, dtype=records.EVENT)
    ev["kind"], ev["symbol"], ev["seq"], ev["price"], ev["qty"] = (EK.BOOK_LEVEL, BTC.id,
                                                                   seq, price, qty)
    ev["info"], ev["session"], ev["ref"] = INFO_SELL if sell else 0, OWN, ref
    return ev[0].item()


def marker(ref) -> tuple:
    ev = np.zeros(1, dtype=records.EVENT)
    ev["kind"], ev["session"], ev["ref"] = EK.REJECT, OWN, ref
    ev["info"] = RejectCode.UNKNOWN_SYMBOL
    return ev[0].item()


def test_should_query_each_book_then_a_marker():
    sync = BookSync(MarketFeed(CONFIG), OWN, clock=lambda: 5)
    recs = sync.request([BTC.id, ETH.id])
    got = [(int(r["kind"][0]), int(r["symbol"][0]), int(r["ref"][0]), int(r["session"][0]))
           for r in recs]
    assert got == [(CK.QUERY_BOOK, BTC.id, 1, OWN), (CK.QUERY_BOOK, ETH.id, 2, OWN),
                   (CK.QUERY_BOOK, ALL_SYMBOLS, 3, OWN)]
    assert sync.pending and sync.feed.syncing("BTC-USD") and sync.feed.syncing("ETH-USD")


def test_should_hold_levels_back_until_the_snapshot_and_replay_only_newer_ones():
    feed = MarketFeed(CONFIG)
    sync = BookSync(feed, OWN)
    sync.request([BTC.id])
    # md seen while loading: one change before the snapshot (seq 5), one after (seq 9)
    out = feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 5, 100, 7, False),
                           (EK.BOOK_LEVEL, BTC.id, 9, 200, 3, True),
                           (EK.TRADE, BTC.id, 8, 200, 1, False)))
    assert [c for c, _, _ in out] == ["trades"]              # no book message yet
    assert not sync.on_event(level(6, 100, 7, ref=1))
    assert not sync.on_event(level(6, 101, 2, ref=1))
    assert sync.on_event(marker(2))
    assert sync.finish() == ["BTC-USD"]
    assert not feed.syncing("BTC-USD") and not sync.pending
    snap = feed.snapshot("BTC-USD")
    assert snap["seq"] == 9
    assert snap["bids"] == [["1.01", "0.0002"], ["1.00", "0.0007"]]
    assert snap["asks"] == [["2.00", "0.0003"]]
    # a late md record at or below the snapshot's seq is ignored; newer ones apply
    assert feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 6, 101, 0, False))) == []
    (upd,) = feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 10, 101, 0, False)))
    assert upd[2]["prev_seq"] == 9 and upd[2]["bids"] == [["1.01", "0.0000"]]


def test_should_replay_everything_held_for_an_empty_book():
    feed = MarketFeed(CONFIG)
    sync = BookSync(feed, OWN)
    sync.request([BTC.id])
    feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 3, 100, 7, False),    # before the query ...
                     (EK.BOOK_LEVEL, BTC.id, 4, 100, 0, False),    # ... gone again
                     (EK.BOOK_LEVEL, BTC.id, 8, 300, 1, True)))    # after it
    assert sync.on_event(marker(2))                                # no level: empty book
    assert sync.finish() == ["BTC-USD"]
    snap = feed.snapshot("BTC-USD")
    assert (snap["seq"], snap["bids"], snap["asks"]) == (8, [], [["3.00", "0.0001"]])


def test_should_ignore_foreign_refs_and_kinds():
    sync = BookSync(MarketFeed(CONFIG), OWN)
    sync.request([BTC.id])
    assert not sync.on_event(level(1, 1, 1, ref=77))
    assert not sync.on_event(marker(1))            # a query ref is not a marker
    assert sync.pending
    assert sync.on_event(marker(2)) and sync.finish() == ["BTC-USD"]


def test_should_serve_books_normally_without_a_sync():
    feed = MarketFeed(CONFIG)
    assert not feed.syncing("BTC-USD")
    (upd,) = feed.apply(batch((EK.BOOK_LEVEL, BTC.id, 1, 100, 1, False)))
    assert upd[0] == "book"
