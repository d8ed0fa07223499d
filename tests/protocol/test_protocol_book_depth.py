"""Depth-limited book subscriptions (docs/protocol.md, section 5, "Depth"): a holder of
the snapshot and the updates of ``book/N`` always has the N best levels of each side."""
from __future__ import annotations

import zlib
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from ringex.protocol.book_views import DepthView
from ringex.protocol.feed import MarketFeed
from ringex.protocol.symbols import tables_for
from ringex.records import EventKind as EK
from tests.protocol.test_protocol import BTC, CONFIG, anon, send
from tests.protocol.test_protocol_feed import batch

BID0, ASK0 = 3_000_000, 3_000_100     # ticks: 30000.00 and 30001.00
FMT = tables_for(CONFIG).symbols[BTC.id]    # the wire's decimals of BTC-USD


def levels(*rows) -> list[tuple]:
    """(seq, price, qty, sell) -> BOOK_LEVEL rows of BTC-USD."""
    return [(EK.BOOK_LEVEL, BTC.id, seq, p, q, sell) for seq, p, q, sell in rows]


def bids_book(n: int, seq0: int = 1) -> list[tuple]:
    """n bid levels, one tick apart below BID0, 1 lot each... n lots at the n-th."""
    return levels(*((seq0 + i, BID0 - i, i + 1, False) for i in range(n)))


def messages(out, channel) -> list[dict]:
    return [m for ch, _, m in out if ch == channel]


class Holder:
    """A client's book of one depth subscription, kept from its messages."""

    def __init__(self, snapshot: dict):
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.seq = snapshot["seq"]

    def apply(self, update: dict) -> None:
        assert update["prev_seq"] == self.seq, "a hole in the depth channel's prev_seq chain"
        for side, book in (("bids", self.bids), ("asks", self.asks)):
            for p, q in update[side]:
                if Decimal(q):
                    book[p] = q
                else:
                    book.pop(p)
        self.seq = update["seq"]

    def checksum(self) -> int:
        bids = sorted(self.bids.items(), key=lambda x: -Decimal(x[0]))[:10]
        asks = sorted(self.asks.items(), key=lambda x: Decimal(x[0]))[:10]
        text = "|".join(",".join(f"{p}:{q}" for p, q in side) for side in (bids, asks))
        return zlib.crc32(text.encode())


def test_depth_snapshot_holds_the_best_n_levels_a_side():
    feed = MarketFeed(CONFIG)
    feed.apply(batch(*bids_book(12)))
    feed.watch("BTC-USD", 10)
    snap = feed.snapshot("BTC-USD", 10)
    assert [p for p, _ in snap["bids"]] == [FMT.price.format(BID0 - i) for i in range(10)]
    assert snap["seq"] == 12 and snap["checksum"] == feed.snapshot("BTC-USD")["checksum"]


def test_depth_update_brings_in_the_next_level_when_a_top_one_leaves():
    feed = MarketFeed(CONFIG)
    feed.apply(batch(*bids_book(12)))
    feed.watch("BTC-USD", 10)
    (update,) = messages(feed.apply(batch(*levels((20, BID0, 0, False)))), "book/10")
    assert update["bids"] == [[FMT.price.format(BID0), "0.0000"],
                              [FMT.price.format(BID0 - 10), FMT.qty.format(11)]]
    assert update["prev_seq"] == 12 and update["seq"] == 20


def test_depth_change_deeper_than_the_view_sends_nothing():
    feed = MarketFeed(CONFIG)
    feed.apply(batch(*bids_book(12)))
    feed.watch("BTC-USD", 10)
    out = feed.apply(batch(*levels((20, BID0 - 11, 5, False))))
    assert messages(out, "book") and not messages(out, "book/10")
    # and the next update chains to the last one the view sent, not to the skipped change
    (update,) = messages(feed.apply(batch(*levels((21, BID0, 7, False)))), "book/10")
    assert update["prev_seq"] == 12
    assert feed.snapshot("BTC-USD", 10)["seq"] == 21


def test_depth_level_that_leaves_the_view_is_sent_as_zero():
    feed = MarketFeed(CONFIG)
    feed.apply(batch(*bids_book(10)))
    feed.watch("BTC-USD", 10)
    (update,) = messages(feed.apply(batch(*levels((20, BID0 + 1, 3, False)))), "book/10")
    assert update["bids"] == [[FMT.price.format(BID0 + 1), FMT.qty.format(3)],
                              [FMT.price.format(BID0 - 9), "0.0000"]]


def test_depth_views_are_reset_when_the_book_is_loaded_from_the_engine():
    feed = MarketFeed(CONFIG)
    feed.apply(batch(*bids_book(3)))
    feed.watch("BTC-USD", 10)
    feed.resync(BTC.id)
    feed.load_snapshot(BTC.id, [(30, 0, 0, BID0 - 5, 2, 0, 0, 0, 0, BTC.id,
                                 int(EK.BOOK_LEVEL), 0)])
    snap = feed.snapshot("BTC-USD", 10)
    assert snap["bids"] == [[FMT.price.format(BID0 - 5), FMT.qty.format(2)]]
    assert snap["seq"] == 30


book_changes = st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3),
                                           st.booleans()), min_size=1, max_size=8),
                        min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(book_changes, st.sampled_from((10, 50)), st.integers(0, 5))
def test_depth_holder_always_has_the_top_n_of_the_whole_book(batches, depth, watch_after):
    """Random batches of level changes (prices from a 31-tick band each side, so views
    fill, overflow and drain): after every batch a client of ``book/N`` (subscribed
    after ``watch_after`` batches) holds exactly the N best levels, its prev_seq chain has
    no hole and its checksum is the message's."""
    feed, seq, holder = MarketFeed(CONFIG), 0, None
    for i, changes in enumerate(batches):
        if i == watch_after:
            feed.watch("BTC-USD", depth)
            holder = Holder(feed.snapshot("BTC-USD", depth))
        rows = []
        for off, qty, sell in changes:
            seq += 1
            rows.append((seq, ASK0 + off if sell else BID0 - off, qty, sell))
        out = feed.apply(batch(*levels(*rows)))
        if holder is None:
            continue
        for m in messages(out, f"book/{depth}"):
            holder.apply(m)
            assert holder.checksum() == m["checksum"]
        full = feed.snapshot("BTC-USD")
        assert sorted(holder.bids.items()) == sorted(map(tuple, full["bids"][:depth]))
        assert sorted(holder.asks.items()) == sorted(map(tuple, full["asks"][:depth]))


def test_depth_view_skips_the_selection_for_changes_behind_a_full_view():
    view = DepthView(2, {10: 1, 9: 1, 8: 1}, {}, 1)
    assert view.advance({10: 1, 9: 1, 8: 4}, {}, 2, {8: 4}, {}) is None
    assert view.advance({10: 1, 8: 4}, {}, 3, {9: 0}, {}) == ({9: 0, 8: 4}, {}, 1)


def test_subscribe_with_depth_is_answered_with_it():
    s = anon()
    reply, sub = send(s, {"op": "subscribe", "channel": "book", "symbol": "BTC-USD",
                          "depth": 50, "req_id": 1})
    assert reply.message == {"type": "subscribed", "channel": "book", "symbol": "BTC-USD",
                             "depth": 50, "req_id": 1}
    assert (sub.channel, sub.symbol) == ("book/50", "BTC-USD")


def test_subscribe_with_another_depth_replaces_the_book_subscription():
    s = anon()
    send(s, {"op": "subscribe", "channel": "book", "symbol": "BTC-USD"})
    _, unsub, sub = send(s, {"op": "subscribe", "channel": "book", "symbol": "BTC-USD",
                             "depth": 10})
    assert (unsub.channel, sub.channel) == ("book", "book/10")
    assert s.subscriptions == {("book/10", "BTC-USD")}
    unsub, reply = send(s, {"op": "unsubscribe", "channel": "book", "symbol": "BTC-USD"})
    assert unsub.channel == "book/10" and not s.subscriptions


def test_depth_must_be_10_or_50_and_only_for_book():
    s = anon()
    for msg in ({"channel": "book", "symbol": "BTC-USD", "depth": 7},
                {"channel": "book", "symbol": "BTC-USD", "depth": "10"},
                {"channel": "trades", "symbol": "BTC-USD", "depth": 10}):
        (reply,) = send(s, {"op": "subscribe", **msg})
        assert reply.message["code"] == "bad_request"
        assert "depth" in reply.message["message"]
    assert not s.subscriptions
