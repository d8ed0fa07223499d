"""Wallet rules: locks, settlement, fees, transfers, conservation (docs/rules.md 'Funds')."""
from __future__ import annotations

from ringex import records
from ringex.records import OrderType, RejectCode as RC, Side, TimeInForce as TIF
from ringex.errors import CommandRejected
from tests.util.exchange import Exchange, RICH

import pytest

BUY, SELL = Side.BUY, Side.SELL
TLV, LOT_UNITS = 10_000, 1_000_000       # X-USD: per tick x lot in USD units; X units per lot


def fee(n, bps):
    return n * bps // 10_000


def test_should_lock_price_times_qty_plus_worst_case_taker_fee_on_buy():
    ex = Exchange()
    ex.rest(1, BUY, 100, 3)
    n = 100 * 3 * TLV
    assert ex.balance(1) == (RICH - n - fee(n, 20), n + fee(n, 20))


def test_should_lock_quantity_on_sell():
    ex = Exchange()
    ex.rest(2, SELL, 100, 3)
    assert ex.balance(2, "X") == (RICH - 3 * LOT_UNITS, 3 * LOT_UNITS)


def test_should_reject_order_without_funds_and_change_nothing():
    ex = Exchange(fund=False)
    ex.svc.deposit(1, "USD", 100 * TLV)             # notional but not the fee
    ev = ex.buy(1, 100, 1)
    assert ex.reject_code(ev) == RC.INSUFFICIENT_FUNDS
    assert ex.balance(1) == (100 * TLV, 0) and ex.bid() is None
    assert ex.reject_code(ex.sell(1, 100, 1)) == RC.INSUFFICIENT_FUNDS


def test_should_settle_both_sides_and_credit_fees_to_the_fee_account():
    ex = Exchange()
    ex.rest(2, SELL, 100, 4)
    ex.buy(1, 100, 4)
    n = 100 * 4 * TLV
    assert ex.balance(1) == (RICH - n - fee(n, 20), 0)              # buyer was taker
    assert ex.balance(1, "X") == (RICH + 4 * LOT_UNITS, 0)
    assert ex.balance(2) == (RICH + n - fee(n, 10), 0)              # seller was maker
    assert ex.balance(2, "X") == (RICH - 4 * LOT_UNITS, 0)
    assert ex.balance(0) == (fee(n, 20) + fee(n, 10), 0)


def test_should_release_price_improvement_at_once():
    ex = Exchange()
    ex.rest(2, SELL, 90, 2)
    ex.buy(1, 100, 5)                       # fills 2 at 90, rests 3 at 100
    n_fill, n_rest = 90 * 2 * TLV, 100 * 3 * TLV
    assert ex.balance(1) == (RICH - n_fill - fee(n_fill, 20) - n_rest - fee(n_rest, 20),
                             n_rest + fee(n_rest, 20))


def test_should_charge_a_resting_buyer_the_maker_fee_and_release_the_difference():
    ex = Exchange()
    ex.rest(1, BUY, 100, 2)
    ex.sell(2, 100, 2)
    n = 100 * 2 * TLV
    assert ex.balance(1) == (RICH - n - fee(n, 10), 0)
    assert ex.balance(2) == (RICH + n - fee(n, 20), 0)


def test_should_return_the_unspent_market_buy_budget():
    ex = Exchange()
    ex.rest(2, SELL, 100, 1)
    ex.buy(1, 0, 1, order_type=OrderType.MARKET, tif=TIF.IOC)
    n = 100 * TLV
    assert ex.balance(1) == (RICH - n - fee(n, 20), 0)


def test_should_reject_market_buy_with_no_quote_funds():
    ex = Exchange(fund=False)
    ex.svc.deposit(2, "X", RICH)
    ex.rest(2, SELL, 100, 1)
    ev = ex.buy(1, 0, 1, order_type=OrderType.MARKET, tif=TIF.IOC)
    assert ex.reject_code(ev) == RC.INSUFFICIENT_FUNDS


def test_should_deposit_and_withdraw_with_balance_events():
    ex = Exchange(fund=False)
    ev = ex.svc.deposit(3, "USD", 500)
    assert ex.kinds(ev) == ["BALANCE"]
    assert (ev[0]["qty"], ev[0]["leaves"], ev[0]["seq"]) == (500, 0, 0)
    ev = ex.svc.withdraw(3, "USD", 200)
    assert ev[0]["qty"] == 300 and ex.balance(3) == (300, 0)


def test_should_reject_withdrawal_beyond_available_funds():
    ex = Exchange(fund=False)
    ex.svc.deposit(1, "USD", 2_004_000)      # 2 lots at 100 plus the 0.2% taker fee
    ex.rest(1, BUY, 100, 2)                  # everything is locked now
    with pytest.raises(CommandRejected) as err:
        ex.svc.withdraw(1, "USD", 1)
    assert err.value.code == RC.INSUFFICIENT_FUNDS
    assert ex.balance(1) == (0, 2_004_000)


def test_should_reject_bad_transfers():
    ex = Exchange(fund=False)
    assert ex.reject_code(ex.submit(records.deposit(1, 9, 5))) == RC.UNKNOWN_ASSET
    assert ex.reject_code(ex.submit(records.deposit(1, 0, 0))) == RC.INVALID_AMOUNT
    assert ex.reject_code(ex.submit(records.withdraw(1, 0, -5))) == RC.INVALID_AMOUNT
    assert ex.reject_code(ex.submit(records.deposit(99, 0, 5))) == RC.UNKNOWN_ACCOUNT
    ex.svc.deposit(1, "USD", 2**62)          # the most one balance may hold
    assert ex.reject_code(ex.submit(records.deposit(1, 0, 1))) == RC.OVERFLOW


def test_should_answer_balance_query_per_asset():
    ex = Exchange(fund=False)
    ex.svc.deposit(1, "X", 7)
    ev = ex.submit(records.query_balances(1))
    assert ex.kinds(ev) == ["BALANCE", "BALANCE"] and list(ev["qty"]) == [0, 7]


def test_should_reject_transfers_and_balance_queries_without_wallets():
    ex = Exchange(wallets=False)
    assert ex.reject_code(ex.submit(records.deposit(1, 0, 5))) == RC.UNKNOWN_COMMAND
    assert ex.reject_code(ex.submit(records.query_balances(1))) == RC.UNKNOWN_COMMAND


def test_should_conserve_every_asset_across_trades_and_cancels():
    ex = Exchange()
    before = ex.total("USD"), ex.total("X")
    ex.rest(2, SELL, 100, 7)
    ex.rest(3, SELL, 101, 7)
    ex.buy(1, 101, 10)
    oid = ex.rest(4, BUY, 50, 3)
    ex.modify(4, oid, 102, 5)
    ex.sell(5, 0, 8, order_type=OrderType.MARKET, tif=TIF.IOC)
    ex.submit(records.cancel_all(1), records.cancel_all(2), records.cancel_all(3))
    assert (ex.total("USD"), ex.total("X")) == before
