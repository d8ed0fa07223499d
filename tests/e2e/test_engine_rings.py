"""The engine process through its rings only (no WebSocket): routing, market data, snapshots."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ringex import records
from ringex.records import CommandKind as CK, EventKind as EV
from tests.e2e.engine_rig import EngineRig, book_from_levels

BTC_USD, USD, BTC = 0, 0, 1
BUY, SELL = records.Side.BUY, records.Side.SELL
S0, S1 = EngineRig.session(0, 7), EngineRig.session(1, 3)


@pytest.fixture  # per test: the hygiene fixture allows no process across tests
def rig():
    with EngineRig(gateways=2) as r:
        r.send(0, records.deposit(1, USD, 10**15), records.deposit(1, BTC, 10**12),
               records.deposit(2, USD, 10**15), records.deposit(2, BTC, 10**12),
               records.deposit(3, USD, 10**15), records.deposit(3, BTC, 10**12))
        assert r.md_until_quiet(0.2).size == 0          # session-0 replies go nowhere
        yield r


@pytest.mark.timeout(300)
def test_should_route_replies_and_fills_to_each_sessions_gateway(rig):
    rig.send(1, records.new_order(BTC_USD, 2, SELL, 3_000_000, 4, session=S1, ref=11))
    ack = rig.events(1, 1)[0]
    assert (ack["kind"], ack["session"], ack["ref"]) == (EV.ACK, S1, 11)
    rig.send(0, records.new_order(BTC_USD, 1, BUY, 3_000_000, 3, session=S0, ref=5))
    taker = rig.events(0, 2)
    assert list(taker["kind"]) == [EV.ACK, EV.FILL]
    assert set(taker["ref"]) == {5} and set(taker["session"]) == {S0}
    maker = rig.events(1, 1)[0]                          # the maker's fill goes to ITS gateway
    assert (maker["kind"], maker["session"], maker["order_id"]) == (EV.FILL, S1, ack["order_id"])
    assert maker["info"] & records.INFO_MAKER and maker["leaves"] == 1
    assert rig.events_until_quiet(0, 0.1).size == 0 and rig.events_until_quiet(1, 0.1).size == 0
    # clean up the resting lot for the other tests
    rig.send(1, records.cancel(BTC_USD, 2, order_id=int(ack["order_id"]), session=S1, ref=12))
    assert rig.events(1, 1)[0]["kind"] == EV.CANCELLED
    rig.md_until_quiet(0.2)


@pytest.mark.timeout(300)
def test_should_publish_trades_then_touched_levels_with_sequences(rig):
    rig.md_until_quiet(0.1)
    rig.send(1, records.new_order(BTC_USD, 2, SELL, 3_100_000, 5, session=S1, ref=1),
             records.new_order(BTC_USD, 2, SELL, 3_100_100, 2, session=S1, ref=2))
    acks = rig.events(1, 2)
    md = rig.md(2)
    assert list(md["kind"]) == [EV.BOOK_LEVEL, EV.BOOK_LEVEL]
    assert [(int(m["price"]), int(m["qty"]), int(m["leaves"])) for m in md] == \
        [(3_100_000, 5, 1), (3_100_100, 2, 1)]
    assert all(m["info"] == records.INFO_SELL and m["account"] == 0 and m["session"] == 0
               for m in md)
    assert md["seq"].max() == acks["seq"].max()          # the symbol's seq after the batch

    rig.send(0, records.new_order(BTC_USD, 1, BUY, 3_100_100, 6, session=S0, ref=9))
    ev = rig.events(0, 3)                                # ACK, FILL, FILL
    fills = ev[ev["kind"] == EV.FILL]
    md = rig.md(4)                                       # 2 trades, 2 levels
    trades, levels = md[:2], md[2:]
    assert list(trades["kind"]) == [EV.TRADE, EV.TRADE]
    assert list(trades["seq"]) == list(fills["seq"])
    assert list(trades["order_id"]) == list(fills["order_id"])
    assert list(trades["other_id"]) == list(fills["other_id"])
    assert [(int(t["price"]), int(t["qty"])) for t in trades] == [(3_100_000, 5), (3_100_100, 1)]
    assert all(t["info"] == 0 for t in trades)           # the taker bought
    assert [(int(m["price"]), int(m["qty"]), int(m["leaves"])) for m in levels] == \
        [(3_100_000, 0, 0), (3_100_100, 1, 1)]
    rig.events(1, 2)                                     # the maker fills
    assert set(levels["seq"]) == {rig_seq_after(rig, 1)}
    rig.send(1, records.cancel_all(2, session=S1, ref=3))
    rig.events(1, 1)
    rig.md_until_quiet(0.2)


def _raw(read, n: int, timeout: float = 10.0) -> np.ndarray:
    """n records from ``read`` as they are on the ring, CLOCKs included."""
    got = EngineRig._collect(read, n, timeout)
    assert len(got) == n, got
    return got


@pytest.mark.timeout(300)
def test_should_stamp_each_group_with_its_wall_clock_before_its_records_on_every_ring(rig):
    rig.md_until_quiet(0.1)
    before = time.time_ns()
    rig.send(1, records.new_order(BTC_USD, 2, SELL, 3_200_000, 1, session=S1, ref=1))
    clock, ack = _raw(lambda m: rig.evt[1].read(m), 2)
    assert (clock["kind"], clock["session"], ack["kind"]) == (EV.CLOCK, 1 << 24, EV.ACK)
    md_clock, level = _raw(lambda m: rig.md_reader.read(m)[0], 2)
    after = time.time_ns()
    assert (md_clock["kind"], level["kind"]) == (EV.CLOCK, EV.BOOK_LEVEL)
    assert before <= clock["order_id"] == md_clock["order_id"] <= after
    # a group with nothing for a gateway sends it no CLOCK (routing ends before publishing)
    assert len(rig.evt[0]) == 0
    rig.send(1, records.cancel_all(2, session=S1, ref=2))
    clock2, cancelled = _raw(lambda m: rig.evt[1].read(m), 2)
    assert (clock2["kind"], cancelled["kind"]) == (EV.CLOCK, EV.CANCELLED)
    assert clock2["order_id"] >= clock["order_id"]
    rig.md_until_quiet(0.2)


@pytest.mark.timeout(300)
def test_should_copy_an_accounts_events_to_the_gateways_streaming_it(rig):
    g0_own = EngineRig.session(0, 0)
    rig.send(0, records.account_stream(2, True, session=g0_own))
    rig.send(1, records.new_order(BTC_USD, 2, SELL, 3_300_000, 2, session=S1, ref=1))
    ack = rig.events(1, 1)[0]
    copy = rig.events(0, 1)[0]                       # the same ACK, on gateway 0 too
    assert (copy["kind"], copy["session"], copy["order_id"]) == \
        (EV.ACK, S1, ack["order_id"])
    # a trade of account 3 against it: only account 2's events are copied to gateway 0
    rig.send(1, records.new_order(BTC_USD, 3, BUY, 3_300_000, 1, session=S1, ref=2))
    assert len(rig.events(1, 3)) == 3                # ACK, taker FILL, maker FILL
    (maker,) = rig.events(0, 1)
    assert (maker["kind"], maker["account"], maker["info"] & records.INFO_MAKER) == \
        (EV.FILL, 2, records.INFO_MAKER)
    rig.send(0, records.account_stream(2, False, session=g0_own))
    rig.send(1, records.cancel_all(2, session=S1, ref=3))
    assert rig.events(1, 1)[0]["kind"] == EV.CANCELLED
    assert rig.events_until_quiet(0, 0.1).size == 0  # not copied any more
    rig.md_until_quiet(0.2)


def rig_seq_after(rig, g: int) -> int:
    """The symbol's current seq, from a QUERY_BOOK answered on gateway g."""
    rig.send(g, records.query_book(BTC_USD, session=EngineRig.session(g, 99), ref=77))
    return int(rig.events(g, 1)[0]["seq"])


@pytest.mark.timeout(300)
def test_should_give_a_snapshot_that_md_updates_after_its_seq_keep_exact(rig):
    rig.md_until_quiet(0.1)
    rng = np.random.default_rng(7)

    def orders(account, n, ref0, session, g):
        recs = []
        for i in range(n):
            side = int(rng.integers(0, 2))
            price = 2_000_000 + int(rng.integers(-20, 21)) + (15 if side else -15)
            recs.append(records.new_order(BTC_USD, account, side, price, int(rng.integers(1, 9)),
                                         session=session, ref=ref0 + i))
        rig.send(g, *recs)

    orders(1, 60, 1000, S0, 0)
    rig.events_until_quiet(0, 0.2)
    rig.events_until_quiet(1, 0.1)
    everything = rig.md_until_quiet(0.2)
    # a subscriber asks for a snapshot while more orders stream in on the other gateway
    snap_session = EngineRig.session(1, 50)
    orders(3, 40, 2000, S0, 0)
    rig.send(1, records.query_book(BTC_USD, session=snap_session, ref=1))
    orders(3, 40, 3000, S0, 0)
    rig.events_until_quiet(0, 0.3)
    g1 = rig.events_until_quiet(1, 0.3)
    snap = g1[(g1["session"] == snap_session) & (g1["kind"] == EV.BOOK_LEVEL)]
    assert len(snap) and len(set(snap["seq"])) == 1
    snap_seq = int(snap["seq"][0])
    updates = rig.md_until_quiet(0.3)
    book = book_from_levels(snap)
    book = book_from_levels(updates[updates["seq"] > snap_seq], book)
    # the truth: a fresh snapshot now; and md alone from an empty book agrees too
    rig.send(1, records.query_book(BTC_USD, session=snap_session, ref=2))
    final = rig.events_until_quiet(1, 0.3)
    assert book == book_from_levels(final) != {}
    assert book_from_levels(np.concatenate([everything, updates])) == book
    for account in (1, 3):
        rig.send(0, records.cancel_all(account, session=S0, ref=9))
    rig.events_until_quiet(0, 0.3)
    rig.events_until_quiet(1, 0.1)
    rig.md_until_quiet(0.2)


@pytest.mark.timeout(300)
def test_should_serve_gateways_fairly_in_order(rig):
    n = 300
    for g, s in ((0, S0), (1, S1)):
        rig.send(g, *[records.query_balances(1, session=s, ref=r) for r in range(1, n + 1)])
    for g in (0, 1):
        ev = rig.events(g, 3 * n)                        # 3 assets each
        assert list(ev["ref"]) == [r for r in range(1, n + 1) for _ in range(3)]
        assert set(ev["kind"]) == {EV.BALANCE}


@pytest.mark.timeout(300)
def test_should_reject_garbage_and_stay_up(rig):
    bad = records.commands(3)
    bad["kind"] = [0, 200, CK.NEW]
    bad["symbol"] = [0, 0, 999]
    bad["session"], bad["ref"] = S0, [1, 2, 3]
    rig.send(0, bad)
    ev = rig.events(0, 3)
    assert set(ev["kind"]) == {EV.REJECT}
    assert [records.info_code(int(i)) for i in ev["info"]] == [
        records.RejectCode.UNKNOWN_COMMAND, records.RejectCode.UNKNOWN_COMMAND,
        records.RejectCode.UNKNOWN_SYMBOL]
