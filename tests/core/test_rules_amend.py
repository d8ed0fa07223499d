"""Rules for changing resting orders: cancel, modify, cancel-all, client order ids."""
from __future__ import annotations

from ringex import records
from ringex.records import CancelReason, EventKind as EK, RejectCode as RC, Side, TimeInForce as TIF
from tests.util.exchange import Exchange

BUY, SELL = Side.BUY, Side.SELL


def fill_makers(ex, ev):
    return list(ex.of(ev, EK.FILL)[1::2]["order_id"])


def test_should_cancel_resting_order_and_release_its_funds():
    ex = Exchange()
    oid = ex.rest(1, BUY, 100, 5)
    assert ex.balance(1)[1] > 0
    ev = ex.cancel(1, order_id=oid)
    assert ex.kinds(ev) == ["CANCELLED"] and ex.reason(ev[0]) == CancelReason.USER
    assert ev[0]["qty"] == 5 and ev[0]["leaves"] == 0
    assert ex.balance(1) == (10**15, 0) and ex.bid() is None


def test_should_cancel_by_client_order_id():
    ex = Exchange()
    oid = ex.rest(1, BUY, 100, 5, client_order_id=77)
    ev = ex.cancel(1, client_order_id=77)
    assert ex.kinds(ev) == ["CANCELLED"] and ev[0]["order_id"] == oid and ev[0]["other_id"] == 77


def test_should_reject_cancel_of_filled_order():
    ex = Exchange()
    oid = ex.rest(2, SELL, 100, 1)
    ex.buy(1, 100, 1)
    assert ex.reject_code(ex.cancel(2, order_id=oid)) == RC.UNKNOWN_ORDER


def test_should_reject_cancel_of_cancelled_order():
    ex = Exchange()
    oid = ex.rest(1, BUY, 100, 1)
    ex.cancel(1, order_id=oid)
    assert ex.reject_code(ex.cancel(1, order_id=oid)) == RC.UNKNOWN_ORDER


def test_should_reject_cancel_of_another_accounts_order():
    ex = Exchange()
    oid = ex.rest(1, BUY, 100, 1, client_order_id=5)
    assert ex.reject_code(ex.cancel(2, order_id=oid)) == RC.UNKNOWN_ORDER
    assert ex.reject_code(ex.cancel(2, client_order_id=5)) == RC.UNKNOWN_ORDER
    assert ex.reject_code(ex.modify(2, oid, 99, 1)) == RC.UNKNOWN_ORDER
    assert ex.depth(BUY, 100) == 1


def test_should_reject_cancel_of_never_assigned_id():
    ex = Exchange()
    for oid in (0, -1, 12345, 2**62):
        assert ex.reject_code(ex.cancel(1, order_id=oid)) == RC.UNKNOWN_ORDER


def test_should_reject_cancel_in_the_wrong_symbol():
    ex = Exchange()
    oid = ex.rest(1, BUY, 100, 1)
    assert ex.reject_code(ex.cancel(1, order_id=oid, symbol=1)) == RC.UNKNOWN_ORDER


def test_should_cancel_head_of_deep_fifo_then_sweep_in_order():
    ex = Exchange()
    ids = [ex.rest(2, SELL, 100, 1) for _ in range(50)]
    ex.cancel(2, order_id=ids[0])
    assert fill_makers(ex, ex.buy(1, 100, 49)) == ids[1:]


def test_should_cancel_middle_and_tail_of_deep_fifo_then_sweep_in_order():
    ex = Exchange()
    ids = [ex.rest(2, SELL, 100, 1) for _ in range(50)]
    for i in (25, 26, 49):
        ex.cancel(2, order_id=ids[i])
    expect = [x for i, x in enumerate(ids) if i not in (25, 26, 49)]
    assert fill_makers(ex, ex.buy(1, 100, 47)) == expect
    assert ex.ask() is None


def test_should_not_show_best_price_after_its_level_is_cancelled():
    ex = Exchange()
    a = ex.rest(2, SELL, 100, 1)
    b = ex.rest(2, SELL, 100, 1)
    ex.rest(2, SELL, 103, 1)
    ex.cancel(2, order_id=a)
    assert ex.ask() == 100
    ex.cancel(2, order_id=b)
    assert ex.ask() == 103 and ex.depth(SELL, 100) == 0
    ev = ex.buy(1, 103, 1)
    assert ex.of(ev, EK.FILL)[0]["price"] == 103


def test_should_keep_priority_on_quantity_decrease():
    ex = Exchange()
    first, second = ex.rest(2, SELL, 100, 5), ex.rest(3, SELL, 100, 5)
    ev = ex.submit(records.modify(0, 2, first, 100, 2))
    assert ex.kinds(ev) == ["MODIFIED"] and ev[0]["qty"] == 2
    assert ex.depth(SELL, 100) == 7
    assert fill_makers(ex, ex.buy(1, 100, 3)) == [first, second]


def test_should_lose_priority_on_quantity_increase():
    ex = Exchange()
    first, second = ex.rest(2, SELL, 100, 1), ex.rest(3, SELL, 100, 1)
    assert ex.kinds(ex.modify(2, first, 100, 2)) == ["MODIFIED"]
    assert fill_makers(ex, ex.buy(1, 100, 3)) == [second, first]


def test_should_lose_priority_on_reprice():
    ex = Exchange()
    first = ex.rest(2, SELL, 101, 1)
    second = ex.rest(3, SELL, 100, 1)
    ex.modify(2, first, 100, 1)
    assert fill_makers(ex, ex.buy(1, 100, 2)) == [second, first]


def test_should_match_crossing_modify_at_the_makers_price():
    ex = Exchange()
    ask = ex.rest(2, SELL, 100, 2)
    bid = ex.rest(1, BUY, 95, 3)
    ev = ex.modify(1, bid, 102, 3)
    assert ex.kinds(ev) == ["MODIFIED", "FILL", "FILL"]
    assert ev[1]["price"] == 100 and ev[1]["order_id"] == bid and ev[2]["order_id"] == ask
    assert ex.bid() == 102 and ex.depth(BUY, 102) == 1
    # what is still held is exactly what 1 lot at 102 needs (price improvement released)
    assert ex.balance(1)[1] == 102 * 10_000 + 102 * 10_000 * 20 // 10_000


def test_should_reject_modify_of_unknown_order():
    ex = Exchange()
    assert ex.reject_code(ex.modify(1, 999, 100, 1)) == RC.UNKNOWN_ORDER


def test_should_reject_modify_to_zero_quantity_or_out_of_band():
    ex = Exchange()
    oid = ex.rest(1, BUY, 100, 1)
    assert ex.reject_code(ex.modify(1, oid, 100, 0)) == RC.INVALID_QTY
    assert ex.reject_code(ex.modify(1, oid, 0, 1)) == RC.INVALID_PRICE
    assert ex.reject_code(ex.modify(1, oid, 1001, 1)) == RC.INVALID_PRICE
    assert ex.depth(BUY, 100) == 1


def test_should_reject_modify_without_funds_and_keep_the_order():
    ex = Exchange(fund=False)
    ex.svc.deposit(1, "USD", 1_000_000 + 2_000)        # exactly 1 lot at 100 plus taker fee
    oid = ex.rest(1, BUY, 100, 1)
    assert ex.reject_code(ex.modify(1, oid, 100, 2)) == RC.INSUFFICIENT_FUNDS
    assert ex.depth(BUY, 100) == 1 and ex.balance(1) == (0, 1_002_000)


def test_should_reject_post_only_modify_that_would_take():
    ex = Exchange()
    ex.rest(2, SELL, 100, 1)
    oid = ex.rest(1, BUY, 90, 1, post_only=True)
    assert ex.reject_code(ex.modify(1, oid, 100, 1)) == RC.POST_ONLY_WOULD_TAKE
    assert ex.depth(BUY, 90) == 1


def test_should_cancel_all_orders_of_an_account_oldest_first():
    ex = Exchange()
    mine = [ex.rest(1, BUY, 90 + i, 1) for i in range(3)] + [ex.rest(1, SELL, 200, 1, symbol=1)]
    other = ex.rest(2, BUY, 95, 1)
    ev = ex.submit(records.cancel_all(1))
    assert list(ev["order_id"]) == mine
    assert all(ex.reason(e) == CancelReason.CANCEL_ALL for e in ev)
    assert ex.bid() == 95 and ex.svc.open_orders(2)[0]["order_id"] == other
    assert ex.balance(1) == (10**15, 0) and ex.balance(1, "X") == (10**15, 0)


def test_should_cancel_all_in_one_symbol_only():
    ex = Exchange()
    ex.rest(1, BUY, 90, 1)
    keep = ex.rest(1, SELL, 200, 1, symbol=1)
    ev = ex.submit(records.cancel_all(1, symbol=0))
    assert len(ev) == 1 and [o["order_id"] for o in ex.svc.open_orders(1)] == [keep]


def test_should_reject_duplicate_live_client_order_id():
    ex = Exchange()
    ex.rest(1, BUY, 90, 1, client_order_id=42)
    ev = ex.buy(1, 91, 1, client_order_id=42)
    assert ex.reject_code(ev) == RC.DUPLICATE_CLIENT_ORDER_ID and ex.bid() == 90
    assert ex.kinds(ex.buy(2, 91, 1, client_order_id=42)) == ["ACK"]   # other account: fine


def test_should_reuse_client_order_id_after_fill():
    ex = Exchange()
    ex.rest(1, BUY, 90, 1, client_order_id=42)
    ex.sell(2, 90, 1)
    assert ex.kinds(ex.buy(1, 91, 1, client_order_id=42)) == ["ACK"]


def test_should_reuse_client_order_id_after_cancel():
    ex = Exchange()
    ex.rest(1, BUY, 90, 1, client_order_id=42)
    ex.cancel(1, client_order_id=42)
    oid = ex.rest(1, BUY, 91, 1, client_order_id=42)
    assert ex.cancel(1, client_order_id=42)[0]["order_id"] == oid


def test_should_assign_strictly_increasing_order_ids_never_reused():
    ex = Exchange()
    seen = []
    for _ in range(20):
        oid = ex.rest(1, BUY, 90, 1)
        ex.cancel(1, order_id=oid)
        seen.append(oid)
    assert seen == sorted(set(seen))


def test_should_answer_open_orders_query_oldest_first():
    ex = Exchange()
    ids = [ex.rest(1, BUY, 90, 1, client_order_id=7), ex.rest(1, SELL, 110, 2)]
    ev = ex.submit(records.query_orders(1))
    assert ex.kinds(ev) == ["OPEN_ORDER", "OPEN_ORDER"] and list(ev["order_id"]) == ids
    assert ev[0]["other_id"] == 7 and ev[1]["qty"] == 2 and (ev["seq"] == 0).all()


def test_should_ignore_ioc_for_resting_modify_semantics():
    ex = Exchange()
    ex.rest(2, SELL, 100, 1)
    ev = ex.buy(1, 100, 2, tif=TIF.IOC)
    assert ex.kinds(ev)[-1] == "CANCELLED" and ex.bid() is None


def test_should_cancel_only_the_disconnected_sessions_orders():
    ex = Exchange()
    gone = ex.rest(1, BUY, 90, 1, session=7)
    ex.rest(1, BUY, 91, 1, session=8)
    ev = ex.submit(records.cancel_all(1, session=7, disconnect=True))
    assert list(ev["order_id"]) == [gone] and ex.reason(ev[0]) == CancelReason.DISCONNECT
    assert ev[0]["session"] == 7 and ex.bid() == 91


def test_should_snapshot_the_book_as_of_the_current_sequence():
    ex = Exchange()
    ex.rest(1, BUY, 90, 2)
    ex.rest(2, BUY, 90, 1)
    ex.rest(1, BUY, 95, 1)
    ex.rest(3, SELL, 120, 4)
    ev = ex.submit(records.query_book(0))
    assert ex.kinds(ev) == ["BOOK_LEVEL"] * 3
    assert [(e["price"], e["qty"], e["leaves"]) for e in ev] == \
        [(95, 1, 1), (90, 3, 2), (120, 4, 1)]
    assert [bool(e["info"] & records.INFO_SELL) for e in ev] == [False, False, True]
    assert set(ev["seq"]) == {4}
    assert ex.buy(1, 50, 1)[0]["seq"] == 5          # the snapshot did not advance it
