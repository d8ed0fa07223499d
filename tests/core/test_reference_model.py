"""Pin the reference model (the oracle of the property tests) on hand-computed examples.

Market.small(): BTC-USD, tick 1 USD, lot 1 BTC, USD scale 2, so one tick x lot is 100
cents (tick_lot_value 100) and a lot is 10^8 satoshi; maker 3 bps, taker 7 bps.
"""
from __future__ import annotations

import pytest

from ringex import records
from ringex.records import (INFO_MAKER, INFO_SELL, CancelReason as C, CommandKind as K,
                                EventKind as E, OrderType, RejectCode as R,
                                SelfTradePrevention as STP, Side, TimeInForce as TIF)
from tests.util.generators import Market
from tests.util.reference import ReferenceExchange

BUY, SELL = Side.BUY, Side.SELL
BTC = 10**8
M = Market.small()
USD_, BTC_ = 0, 1


def ex(wallets=True, usd=1_000_00, btc=10 * BTC):
    x = ReferenceExchange(M.config, wallets=wallets)
    if wallets:
        for a in (1, 2, 3):
            x.submit(records.batch(records.deposit(a, USD_, usd), records.deposit(a, BTC_, btc),
                                  records.deposit(a, 2, 10 * BTC)))
    return x


def ev(events):
    """Events as (kind, order_id, other_id, price, qty, leaves, account, code/flags)."""
    return [(E(e["kind"]).name, int(e["order_id"]), int(e["other_id"]), int(e["price"]),
             int(e["qty"]), int(e["leaves"]), int(e["account"]), int(e["info"]))
            for e in events]


def new(x, account, side, price, qty, **kw):
    return ev(x.submit(records.new_order(0, account, side, price, qty, **kw)))


def test_should_trade_at_maker_price_and_charge_both_fees():
    x = ex()
    assert new(x, 2, SELL, 100, 3) == [("ACK", 1, 0, 100, 3, 3, 2, INFO_SELL)]
    assert x.balance(2, "BTC") == (7 * BTC, 3 * BTC)
    # buy 2 @ 101 locks 20200 + 20200*7//10000 = 20214; trades at 100: 20000 + fee 14
    assert new(x, 1, BUY, 101, 2) == [
        ("ACK", 2, 0, 101, 2, 2, 1, 0),
        ("FILL", 2, 1, 100, 2, 0, 1, 0),
        ("FILL", 1, 2, 100, 2, 1, 2, INFO_SELL | INFO_MAKER)]
    assert x.balance(1, "USD") == (100000 - 20014, 0)
    assert x.balance(1, "BTC") == (12 * BTC, 0)
    assert x.balance(2, "USD") == (100000 + 20000 - 6, 0)      # maker fee 20000*3//10000
    assert x.balance(2, "BTC") == (7 * BTC, 1 * BTC)
    assert x.balance(0, "USD") == (20, 0)
    assert x.levels(0, SELL) == [(100, 1, 1)] and x.levels(0, BUY) == []


def test_should_trim_a_resting_buy_lock_on_price_improvement_and_maker_fee():
    x = ex()
    new(x, 1, BUY, 100, 3)                       # lock 30000 + 21 = 30021
    assert x.balance(1, "USD") == (100000 - 30021, 30021)
    new(x, 2, SELL, 99, 1)                       # maker buy fills 1 @ 100, pays 10000 + 3
    assert x.balance(1, "USD") == (100000 - 10003 - 20014, 20014)
    assert x.balance(0, "USD") == (3 + 7, 0)     # seller is the taker: 10000*7//10000


def test_should_fill_fifo_within_a_level_and_best_price_first():
    x = ex()
    new(x, 2, SELL, 101, 1)                      # id 1
    new(x, 2, SELL, 100, 2)                      # id 2
    new(x, 3, SELL, 100, 2)                      # id 3
    out = new(x, 1, BUY, 101, 4)
    assert [(k, i, o, p, q) for k, i, o, p, q, *_ in out if k == "FILL"] == [
        ("FILL", 4, 2, 100, 2), ("FILL", 2, 4, 100, 2),
        ("FILL", 4, 3, 100, 2), ("FILL", 3, 4, 100, 2)]
    assert x.levels(0, SELL) == [(101, 1, 1)]


@pytest.mark.parametrize("stp,expect,bids,asks", [
    (STP.CANCEL_TAKER, [("CANCELLED", 2, C.STP)], [], [(100, 2, 1)]),
    (STP.CANCEL_MAKER, [("CANCELLED", 1, C.STP)], [(100, 1, 1)], []),
    (STP.CANCEL_BOTH, [("CANCELLED", 1, C.STP), ("CANCELLED", 2, C.STP)], [], []),
    (STP.NONE, [("FILL", 2, 0), ("FILL", 1, INFO_MAKER)], [], [(100, 1, 1)]),
])
def test_should_apply_self_trade_prevention(stp, expect, bids, asks):
    x = ex()
    new(x, 1, SELL, 100, 2)
    out = new(x, 1, BUY, 100, 1, stp=stp)
    assert out[0][0] == "ACK"
    assert [(k, i, info & ~INFO_SELL) for k, i, _, _, _, _, _, info in out[1:]] == \
        [(k, i, int(c)) for k, i, c in expect]
    assert x.levels(0, BUY) == bids and x.levels(0, SELL) == asks
    assert x.balance(1, "BTC")[1] == sum(q for _, q, _ in asks) * BTC


def test_should_kill_a_fok_that_cannot_fill_and_leave_the_book_untouched():
    x = ex()
    new(x, 2, SELL, 100, 2)
    new(x, 3, SELL, 101, 2)
    assert new(x, 1, BUY, 101, 5, tif=TIF.FOK) == [
        ("ACK", 3, 0, 101, 5, 5, 1, 0), ("CANCELLED", 3, 0, 101, 5, 0, 1, C.FOK)]
    # own orders are skipped under CANCEL_MAKER: only 2 lots of account 3 would fill
    out = new(x, 2, BUY, 101, 3, tif=TIF.FOK, stp=STP.CANCEL_MAKER)
    assert [r[0] for r in out] == ["ACK", "CANCELLED"] and out[1][7] == C.FOK
    assert x.levels(0, SELL) == [(100, 2, 1), (101, 2, 1)]
    assert x.balance(1, "USD") == (100000, 0)
    out = new(x, 1, BUY, 101, 4, tif=TIF.FOK)
    assert [r[0] for r in out] == ["ACK"] + ["FILL"] * 4
    assert x.levels(0, SELL) == []


def test_should_cancel_ioc_remainder_and_post_only_that_would_take():
    x = ex()
    new(x, 2, SELL, 100, 1)
    out = new(x, 1, BUY, 100, 3, tif=TIF.IOC)
    assert out[-1] == ("CANCELLED", 2, 0, 100, 2, 0, 1, C.IOC_REMAINDER)
    new(x, 2, SELL, 100, 1)
    assert new(x, 1, BUY, 100, 2, post_only=True)[-1] == \
        ("CANCELLED", 4, 0, 100, 2, 0, 1, C.POST_ONLY)
    assert new(x, 1, BUY, 100, 2, post_only=True, tif=TIF.IOC) == \
        [("REJECT", 0, 0, 100, 2, 0, 1, R.INVALID_TIF)]
    assert x.balance(1, "USD")[1] == 0


def test_should_stop_a_market_buy_at_the_funds_limit():
    x = ex(usd=25000)
    new(x, 2, SELL, 100, 1)
    new(x, 3, SELL, 102, 5)
    # 100: 1 lot costs 10000 + 7; 102: 1 lot 10200 + 7, 2 lots 20400 + 14 > 14993 left
    out = new(x, 1, BUY, 0, 10, order_type=OrderType.MARKET, tif=TIF.IOC)
    assert out == [
        ("ACK", 3, 0, 0, 10, 10, 1, 0),
        ("FILL", 3, 1, 100, 1, 9, 1, 0), ("FILL", 1, 3, 100, 1, 0, 2, INFO_SELL | INFO_MAKER),
        ("FILL", 3, 2, 102, 1, 8, 1, 0), ("FILL", 2, 3, 102, 1, 4, 3, INFO_SELL | INFO_MAKER),
        ("CANCELLED", 3, 0, 0, 8, 0, 1, C.NO_FUNDS)]
    assert x.balance(1, "USD") == (25000 - 10007 - 10207, 0)
    x.submit(records.withdraw(1, USD_, 25000 - 10007 - 10207))
    assert new(x, 1, BUY, 0, 1, order_type=OrderType.MARKET, tif=TIF.IOC)[0][-1] == \
        R.INSUFFICIENT_FUNDS


def test_should_ask_the_head_maker_again_when_floor_fees_leave_room_for_one_more_lot():
    # at 101: 14 lots cost 141400 + 98, 15 lots 151500 + 106; 151605 buys 14, and the
    # 10107 left buy one more lot (10100 + 7) from the same, still first, maker
    x = ex(usd=151605, btc=30 * BTC)
    new(x, 2, SELL, 101, 20)
    new(x, 3, SELL, 101, 5)
    out = new(x, 1, BUY, 0, 20, order_type=OrderType.MARKET, tif=TIF.IOC)
    assert [(k, i, o, q) for k, i, o, _, q, *_ in out] == [
        ("ACK", 3, 0, 20), ("FILL", 3, 1, 14), ("FILL", 1, 3, 14), ("FILL", 3, 1, 1),
        ("FILL", 1, 3, 1), ("CANCELLED", 3, 0, 5)]
    assert x.balance(1, "USD") == (0, 0)
    y = ex(usd=151605, btc=30 * BTC)
    new(y, 2, SELL, 101, 20)
    assert [r[0] for r in new(y, 1, BUY, 0, 15, order_type=OrderType.MARKET, tif=TIF.FOK)] \
        == ["ACK"] + ["FILL"] * 4


def test_should_keep_priority_on_decrease_and_lose_it_on_increase_or_reprice():
    x = ex()
    new(x, 2, SELL, 100, 3)                                       # 1
    new(x, 3, SELL, 100, 2)                                       # 2
    assert ev(x.submit(records.modify(0, 2, 1, 100, 1))) == \
        [("MODIFIED", 1, 0, 100, 1, 1, 2, INFO_SELL)]
    assert x.balance(2, "BTC") == (9 * BTC, 1 * BTC)
    assert [o["order_id"] for o in x.open_orders(2)] == [1]
    x.submit(records.modify(0, 2, 1, 100, 4))                      # increase: behind 2
    out = new(x, 1, BUY, 100, 1)
    assert out[1][:3] == ("FILL", 3, 2)
    new(x, 1, BUY, 99, 2)                                         # 4
    out = ev(x.submit(records.modify(0, 1, 4, 100, 2)))            # reprice: takes
    assert [r[:5] for r in out] == [("MODIFIED", 4, 0, 100, 2), ("FILL", 4, 2, 100, 1),
                                    ("FILL", 2, 4, 100, 1), ("FILL", 4, 1, 100, 1),
                                    ("FILL", 1, 4, 100, 1)]
    assert x.levels(0, SELL) == [(100, 3, 1)] and x.balance(1, "USD")[1] == 0


def test_should_reject_modify_that_cannot_be_funded_or_would_take_post_only():
    x = ex(usd=20000)
    new(x, 1, BUY, 99, 1, post_only=True)                         # lock 9900 + 6
    new(x, 2, SELL, 101, 1)
    assert ev(x.submit(records.modify(0, 1, 1, 99, 3)))[0][-1] == R.INSUFFICIENT_FUNDS
    assert ev(x.submit(records.modify(0, 1, 1, 101, 1)))[0][-1] == R.POST_ONLY_WOULD_TAKE
    assert x.levels(0, BUY) == [(99, 1, 1)] and x.balance(1, "USD") == (20000 - 9906, 9906)
    assert ev(x.submit(records.modify(0, 2, 1, 99, 1)))[0][-1] == R.UNKNOWN_ORDER


def test_should_validate_new_in_rule_order_and_sequence_per_symbol():
    x = ex()
    out = x.submit(records.batch(
        records.new_order(0, 1, BUY, 1000, 0),                     # qty before price
        records.new_order(7, 1, BUY, 100, 1),                      # unknown symbol: seq 0
        records.new_order(0, 0, SELL, 100, 1),                     # account 0 trades never
        records.new_order(1, 1, BUY, 50, 1),                       # ETH-BTC seq 1
        records.new_order(0, 1, BUY, 100, 1, order_type=OrderType.MARKET)))  # GTC market
    assert [(int(e["seq"]), records.info_code(e["info"])) for e in out] == [
        (1, R.INVALID_QTY), (0, R.UNKNOWN_SYMBOL), (2, R.UNKNOWN_ACCOUNT), (1, 0),
        (3, R.INVALID_TIF)]
    assert out[2]["info"] & INFO_SELL


def test_should_free_client_order_ids_and_cancel_by_them():
    x = ex()
    new(x, 1, BUY, 99, 1, client_order_id=7)
    assert new(x, 1, BUY, 98, 1, client_order_id=7)[0][-1] == R.DUPLICATE_CLIENT_ORDER_ID
    assert new(x, 2, BUY, 98, 1, client_order_id=7)[0][0] == "ACK"   # other account
    assert ev(x.submit(records.cancel(1, 1, client_order_id=7)))[0][-1] == R.UNKNOWN_ORDER
    assert ev(x.submit(records.cancel(0, 1, client_order_id=7))) == \
        [("CANCELLED", 1, 7, 99, 1, 0, 1, C.USER)]
    assert ev(x.submit(records.cancel(0, 1, order_id=1)))[0][-1] == R.UNKNOWN_ORDER
    assert new(x, 1, BUY, 98, 1, client_order_id=7)[0][0] == "ACK"


def test_should_cancel_all_oldest_first_and_say_nothing_when_empty():
    x = ex()
    new(x, 1, BUY, 99, 1)
    x.submit(records.new_order(1, 1, SELL, 55, 1))
    new(x, 1, SELL, 103, 2)
    new(x, 2, SELL, 104, 2)
    out = ev(x.submit(records.cancel_all(1)))
    assert [(k, i, info) for k, i, _, _, _, _, _, info in out] == [
        ("CANCELLED", 1, C.CANCEL_ALL), ("CANCELLED", 2, C.CANCEL_ALL | INFO_SELL),
        ("CANCELLED", 3, C.CANCEL_ALL | INFO_SELL)]
    assert len(x.submit(records.cancel_all(1))) == 0
    assert x.balance(1, "USD") == (100000, 0) and x.balance(1, "BTC") == (10 * BTC, 0)


def test_should_cancel_only_the_sessions_orders_on_disconnect():
    x = ex()
    x.submit(records.new_order(0, 1, BUY, 99, 1, session=5))
    x.submit(records.new_order(0, 1, BUY, 98, 1, session=6))
    out = ev(x.submit(records.cancel_all(1, session=6, disconnect=True)))
    assert out == [("CANCELLED", 2, 0, 98, 1, 0, 1, C.DISCONNECT)]
    assert [o["order_id"] for o in x.open_orders(1)] == [1]


def test_should_snapshot_the_book_at_the_current_sequence():
    x = ex()
    new(x, 1, BUY, 99, 1)
    new(x, 2, BUY, 99, 2)
    new(x, 1, SELL, 103, 1)
    got = x.submit(records.query_book(0, ref=9))
    assert [(E(e["kind"]).name, int(e["seq"]), int(e["price"]), int(e["qty"]), int(e["leaves"]),
             int(e["info"])) for e in got] == [("BOOK_LEVEL", 3, 99, 3, 2, 0),
                                               ("BOOK_LEVEL", 3, 103, 1, 1, INFO_SELL)]
    assert new(x, 1, BUY, 98, 1)[0][0] == "ACK" and x.seq[0] == 4   # seq not advanced


def test_should_answer_deposits_withdrawals_and_queries_with_unsequenced_events():
    x = ex()
    out = ev(x.submit(records.batch(records.deposit(1, USD_, 5), records.withdraw(1, USD_, 10**9),
                                   records.deposit(1, 9, 5), records.deposit(1, USD_, 0))))
    assert out == [("BALANCE", 0, 0, 5, 100005, 0, 1, K.DEPOSIT),
                   ("REJECT", 0, 0, 0, 10**9, 0, 1, R.INSUFFICIENT_FUNDS),
                   ("REJECT", 0, 0, 0, 5, 0, 1, R.UNKNOWN_ASSET),
                   ("REJECT", 0, 0, 0, 0, 0, 1, R.INVALID_AMOUNT)]
    new(x, 1, BUY, 99, 1, client_order_id=3)
    got = x.submit(records.batch(records.query_orders(1), records.query_balances(1)))
    assert [int(e["seq"]) for e in got] == [0, 0, 0, 0]
    assert ev(got)[0] == ("OPEN_ORDER", 1, 3, 99, 1, 1, 1, 0)
    assert ev(got)[1] == ("BALANCE", 0, 0, 0, 100005 - 9906, 9906, 1, K.QUERY_BALANCES)


def test_should_match_without_funds_when_wallets_are_off():
    x = ex(wallets=False)
    new(x, 1, SELL, 100, 5)
    assert [r[0] for r in new(x, 2, BUY, 0, 9, order_type=OrderType.MARKET, tif=TIF.IOC)] \
        == ["ACK", "FILL", "FILL", "CANCELLED"]
    assert ev(x.submit(records.query_balances(1)))[0][-1] == R.UNKNOWN_COMMAND
    assert ev(x.submit(records.deposit(1, USD_, 5)))[0][0] == "REJECT"


def test_should_reject_orders_when_the_pool_is_full_but_not_ioc():
    x = ReferenceExchange(Market.small(max_orders=2).config, wallets=False)
    new(x, 1, BUY, 90 + 5, 1)
    new(x, 1, BUY, 96, 1)
    assert new(x, 1, BUY, 97, 1)[0][-1] == R.TOO_MANY_ORDERS
    assert new(x, 2, SELL, 96, 1, tif=TIF.IOC)[1][0] == "FILL"
    assert new(x, 1, BUY, 97, 1)[0][0] == "ACK"
