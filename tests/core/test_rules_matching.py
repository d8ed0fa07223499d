"""Market rules of matching, one test per rule (docs/rules.md, 'Matching a NEW order')."""
from __future__ import annotations

import numpy as np

from ringex import records
from ringex.records import (
    INFO_MAKER, INFO_SELL, CancelReason, EventKind as EK, OrderType, SelfTradePrevention as STP,
    Side, TimeInForce as TIF,
)
from tests.util.exchange import Exchange

BUY, SELL = Side.BUY, Side.SELL


def test_should_rest_limit_order_on_empty_book():
    ex = Exchange()
    ev = ex.buy(1, 100, 5)
    assert ex.kinds(ev) == ["ACK"]
    assert (ev[0]["price"], ev[0]["qty"], ev[0]["leaves"]) == (100, 5, 5)
    assert ex.bid() == 100 and ex.ask() is None and ex.depth(BUY, 100) == 5


def test_should_fill_at_maker_price():
    ex = Exchange()
    maker = ex.rest(2, SELL, 100, 5)
    ev = ex.buy(1, 105, 5)
    taker_fill, maker_fill = ex.of(ev, EK.FILL)
    assert taker_fill["price"] == 100 and maker_fill["price"] == 100
    assert taker_fill["other_id"] == maker and maker_fill["order_id"] == maker
    assert maker_fill["other_id"] == taker_fill["order_id"]
    assert maker_fill["info"] & INFO_MAKER and not taker_fill["info"] & INFO_MAKER
    assert maker_fill["info"] & INFO_SELL and not taker_fill["info"] & INFO_SELL


def test_should_emit_the_makers_fill_right_after_the_takers_at_the_next_seq():
    """The trade's id on the wire is the taker FILL's seq; the maker's is one more."""
    ex = Exchange()
    ex.rest(2, SELL, 100, 1)
    ex.rest(3, SELL, 101, 1)
    ex.rest(4, SELL, 101, 2)
    ev = ex.buy(1, 101, 5, tif=TIF.IOC)
    assert ex.kinds(ev) == ["ACK"] + ["FILL"] * 6 + ["CANCELLED"]
    fills = ex.of(ev, EK.FILL)
    for taker, maker in zip(fills[0::2], fills[1::2]):
        assert not taker["info"] & INFO_MAKER and maker["info"] & INFO_MAKER
        assert maker["seq"] == taker["seq"] + 1
        assert (maker["price"], maker["qty"]) == (taker["price"], taker["qty"])


def test_should_fill_in_time_priority_within_a_level():
    ex = Exchange()
    first, second = ex.rest(2, SELL, 100, 3), ex.rest(3, SELL, 100, 3)
    ev = ex.buy(1, 100, 4)
    makers = ex.of(ev, EK.FILL)[1::2]
    assert list(makers["order_id"]) == [first, second]
    assert list(makers["qty"]) == [3, 1] and list(makers["leaves"]) == [0, 2]


def test_should_fill_better_prices_first():
    ex = Exchange()
    ex.rest(2, SELL, 102, 1)
    ex.rest(2, SELL, 100, 1)
    ex.rest(2, SELL, 101, 1)
    ev = ex.buy(1, 102, 3)
    assert list(ex.of(ev, EK.FILL)["price"][::2]) == [100, 101, 102]


def test_should_stop_marketable_limit_at_its_price_and_rest_the_remainder():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    ex.rest(2, SELL, 102, 2)
    ev = ex.buy(1, 101, 5)
    assert ex.kinds(ev) == ["ACK", "FILL", "FILL"]
    assert ex.bid() == 101 and ex.depth(BUY, 101) == 3 and ex.ask() == 102


def test_should_sweep_levels_ending_exactly_on_a_level_boundary():
    ex = Exchange()
    for p in (100, 101, 102):
        ex.rest(2, SELL, p, 2)
    ev = ex.buy(1, 105, 4)
    assert ex.kinds(ev) == ["ACK"] + ["FILL"] * 4
    assert ex.of(ev, EK.FILL)[-2]["leaves"] == 0
    assert ex.ask() == 102 and ex.depth(SELL, 101) == 0 and ex.bid() is None


def test_should_cancel_ioc_remainder():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    ev = ex.buy(1, 100, 5, tif=TIF.IOC)
    assert ex.kinds(ev) == ["ACK", "FILL", "FILL", "CANCELLED"]
    assert ex.reason(ev[-1]) == CancelReason.IOC_REMAINDER and ev[-1]["qty"] == 3
    assert ex.bid() is None


def test_should_not_cancel_a_fully_filled_ioc():
    ex = Exchange()
    ex.rest(2, SELL, 100, 5)
    assert ex.kinds(ex.buy(1, 100, 5, tif=TIF.IOC)) == ["ACK", "FILL", "FILL"]


def test_should_kill_fok_that_cannot_fill_completely_and_leave_book_unchanged():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    ex.rest(2, SELL, 101, 2)
    ev = ex.buy(1, 101, 5, tif=TIF.FOK)
    assert ex.kinds(ev) == ["ACK", "CANCELLED"] and ex.reason(ev[-1]) == CancelReason.FOK
    assert ex.depth(SELL, 100) == 2 and ex.depth(SELL, 101) == 2
    assert ex.balance(1) == (10**15, 0)


def test_should_fill_fok_that_can_fill_completely():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    ex.rest(2, SELL, 101, 3)
    ev = ex.buy(1, 101, 5, tif=TIF.FOK)
    assert ex.kinds(ev) == ["ACK"] + ["FILL"] * 4


def test_should_fill_market_order_and_cancel_what_the_book_cannot_give():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    ex.rest(2, SELL, 900, 1)
    ev = ex.buy(1, 0, 5, order_type=OrderType.MARKET, tif=TIF.IOC)
    assert ex.kinds(ev) == ["ACK", "FILL", "FILL", "FILL", "FILL", "CANCELLED"]
    assert ex.reason(ev[-1]) == CancelReason.IOC_REMAINDER and ev[-1]["qty"] == 2
    assert ex.ask() is None and ex.balance(1)[1] == 0


def test_should_stop_market_buy_when_funds_run_out():
    ex = Exchange(fund=False)
    ex.svc.deposit(2, "X", 10**12)
    ex.rest(2, SELL, 100, 10)
    # 3 lots cost 3 x 100 x 10,000 = 3,000,000 plus 0.2% taker fee = 3,006,000
    ex.svc.deposit(1, "USD", 3_006_000 + 5_000)
    ev = ex.buy(1, 0, 10, order_type=OrderType.MARKET, tif=TIF.IOC)
    assert ex.kinds(ev) == ["ACK", "FILL", "FILL", "CANCELLED"]
    assert ev[1]["qty"] == 3 and ex.reason(ev[-1]) == CancelReason.NO_FUNDS
    assert ex.balance(1) == (5_000, 0) and ex.balance(1, "X") == (3_000_000, 0)


def test_should_reject_market_order_with_gtc():
    ex = Exchange()
    ev = ex.buy(1, 0, 1, order_type=OrderType.MARKET, tif=TIF.GTC)
    assert ex.reject_code(ev) == records.RejectCode.INVALID_TIF


def test_should_cancel_post_only_order_that_would_take():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    ev = ex.buy(1, 100, 1, post_only=True)
    assert ex.kinds(ev) == ["ACK", "CANCELLED"] and ex.reason(ev[-1]) == CancelReason.POST_ONLY
    assert ex.depth(SELL, 100) == 2 and ex.balance(1) == (10**15, 0)


def test_should_rest_post_only_order_that_does_not_cross():
    ex = Exchange()
    ex.rest(2, SELL, 100, 2)
    assert ex.kinds(ex.buy(1, 99, 1, post_only=True)) == ["ACK"]
    assert ex.bid() == 99


def test_should_reject_post_only_with_ioc():
    ex = Exchange()
    assert ex.reject_code(ex.buy(1, 99, 1, post_only=True, tif=TIF.IOC)) == \
        records.RejectCode.INVALID_TIF


def test_should_cancel_taker_on_self_trade_by_default():
    ex = Exchange()
    own = ex.rest(1, SELL, 100, 2)
    ev = ex.buy(1, 100, 2)
    assert ex.kinds(ev) == ["ACK", "CANCELLED"] and ex.reason(ev[-1]) == CancelReason.STP
    assert ev[-1]["order_id"] != own and ex.depth(SELL, 100) == 2


def test_should_cancel_maker_on_self_trade_with_cancel_maker_and_keep_matching():
    ex = Exchange()
    own = ex.rest(1, SELL, 100, 2)
    other = ex.rest(2, SELL, 100, 2)
    ev = ex.buy(1, 100, 2, stp=STP.CANCEL_MAKER)
    assert ex.kinds(ev) == ["ACK", "CANCELLED", "FILL", "FILL"]
    assert ev[1]["order_id"] == own and ex.reason(ev[1]) == CancelReason.STP
    assert ev[3]["order_id"] == other and ex.ask() is None


def test_should_cancel_both_on_self_trade_with_cancel_both():
    ex = Exchange()
    own = ex.rest(1, SELL, 100, 2)
    ex.rest(2, SELL, 100, 2)
    ev = ex.buy(1, 100, 3, stp=STP.CANCEL_BOTH)
    assert ex.kinds(ev) == ["ACK", "CANCELLED", "CANCELLED"]
    assert ev[1]["order_id"] == own and ev[2]["order_id"] == ev[0]["order_id"]
    assert ex.depth(SELL, 100) == 2 and ex.bid() is None


def test_should_trade_with_itself_when_stp_is_none():
    ex = Exchange()
    ex.rest(1, SELL, 100, 2)
    ev = ex.buy(1, 100, 2, stp=STP.NONE)
    assert ex.kinds(ev) == ["ACK", "FILL", "FILL"]


def test_should_sweep_5000_fills_at_one_price():
    ex = Exchange(max_orders=6000)
    makers = records.batch(*[records.new_order(0, 2 + i % 3, SELL, 100, 1) for i in range(5000)])
    ack_ids = ex.submit(makers)["order_id"]
    ev = ex.buy(1, 100, 5000)
    fills = ex.of(ev, EK.FILL)
    assert len(fills) == 10_000
    assert np.array_equal(fills[1::2]["order_id"], ack_ids)        # strict FIFO
    assert fills[-2]["leaves"] == 0 and ex.ask() is None and ex.svc.live_orders() == 0


def test_should_find_next_best_price_across_a_sparse_wide_band():
    from ringex.config import Config
    from ringex.core.order_service import OrderService
    svc = OrderService(Config.default(), wallets=False)      # BTC-USD: 10^7 ticks
    btc = svc.symbol_id("BTC-USD")
    prices = [1, 64, 4095, 262_145, 5_000_000, 9_999_999, 10_000_000]
    svc.submit(records.batch(*[records.new_order(btc, 1, SELL, p, 1) for p in prices]))
    seen = []
    for _ in prices:
        seen.append(svc.best_ask(btc))
        svc.submit(records.new_order(btc, 2, BUY, 10_000_000, 1, tif=TIF.IOC))
    assert seen == prices and svc.best_ask(btc) is None


def test_should_number_events_per_symbol_without_gaps():
    ex = Exchange()
    ex.rest(2, SELL, 100, 1)
    ex.order(2, SELL, 100, 1, symbol=1)
    ev = ex.buy(1, 100, 2, tif=TIF.IOC)
    seqs = np.concatenate([ex.svc.submit(records.new_order(0, 3, BUY, 50, 1))["seq"]])
    assert list(ev["seq"]) == [2, 3, 4, 5] and list(seqs) == [6]


def test_should_match_without_wallets():
    ex = Exchange(wallets=False)
    ex.rest(2, SELL, 100, 3)
    ev = ex.buy(1, 100, 3)
    assert ex.kinds(ev) == ["ACK", "FILL", "FILL"]
    assert ex.balance(1) == (0, 0)
