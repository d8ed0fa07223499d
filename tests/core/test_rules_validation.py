"""Bad input is rejected with a clear code and changes nothing; capacity limits hold."""
from __future__ import annotations

import numpy as np

from ringex import records
from ringex.records import EventKind as EK, RejectCode as RC, Side
from tests.util.exchange import Exchange

BUY, SELL = Side.BUY, Side.SELL


def state(ex):
    return (ex.bid(), ex.ask(), ex.balance(1), ex.svc.live_orders(), ex.svc.open_orders(1))


def test_should_accept_prices_at_both_band_edges():
    ex = Exchange()
    assert ex.kinds(ex.buy(1, 1, 1)) == ["ACK"]
    assert ex.kinds(ex.sell(2, 1000, 1)) == ["ACK"]
    assert (ex.bid(), ex.ask()) == (1, 1000)


def test_should_reject_prices_outside_the_band():
    ex = Exchange()
    for p in (0, -5, 1001, 2**40):
        assert ex.reject_code(ex.buy(1, p, 1)) == RC.INVALID_PRICE


def test_should_reject_zero_and_negative_quantities():
    ex = Exchange()
    for q in (0, -1, -(2**63)):
        assert ex.reject_code(ex.buy(1, 100, q)) == RC.INVALID_QTY


def test_should_reject_quantities_whose_notional_overflows():
    ex = Exchange()
    assert ex.reject_code(ex.buy(1, 100, 2**61)) == RC.OVERFLOW


def test_should_reject_unknown_symbol_account_and_enums():
    ex = Exchange()
    before = state(ex)
    cases = [
        (records.new_order(7, 1, BUY, 100, 1), RC.UNKNOWN_SYMBOL),
        (records.new_order(0, 0, BUY, 100, 1), RC.UNKNOWN_ACCOUNT),      # the fee account
        (records.new_order(0, 16, BUY, 100, 1), RC.UNKNOWN_ACCOUNT),
        (records.new_order(0, 1, 2, 100, 1), RC.INVALID_SIDE),
        (records.new_order(0, 1, BUY, 100, 1, order_type=2), RC.INVALID_ORDER_TYPE),
        (records.new_order(0, 1, BUY, 100, 1, tif=3), RC.INVALID_TIF),
        (records.new_order(0, 1, BUY, 100, 1, stp=4), RC.INVALID_STP),
    ]
    for cmd, code in cases:
        assert ex.reject_code(ex.submit(cmd)) == code
    assert state(ex) == before


def test_should_reject_unknown_command_kind():
    ex = Exchange()
    cmd = records.commands(1)
    cmd["kind"] = 200
    assert ex.reject_code(ex.submit(cmd)) == RC.UNKNOWN_COMMAND


def test_should_survive_random_garbage_commands_without_changing_the_book():
    ex = Exchange()
    ex.rest(2, SELL, 100, 5)
    before = state(ex)
    rng = np.random.default_rng(7)
    junk = np.frombuffer(rng.bytes(64 * 2000), dtype=records.COMMAND).copy()
    junk["kind"] = rng.choice([0, 9, 77, 255], size=len(junk))   # never a valid kind
    ev = ex.submit(junk)
    assert (ev["kind"] == EK.REJECT).all() and len(ev) == len(junk)
    assert state(ex) == before


def test_should_reject_when_the_order_pool_is_full():
    ex = Exchange(max_orders=4)
    for p in range(90, 94):
        ex.rest(1, BUY, p, 1)
    assert ex.reject_code(ex.buy(1, 95, 1)) == RC.TOO_MANY_ORDERS
    ex.cancel(1, order_id=ex.svc.open_orders(1)[0]["order_id"])
    assert ex.kinds(ex.buy(1, 95, 1)) == ["ACK"]


def test_should_reject_when_price_level_pages_run_out():
    ex = Exchange(max_level_pages=2)               # 2 pages of 256 ticks
    ex.rest(1, BUY, 10, 1)
    ex.rest(1, BUY, 300, 1)
    assert ex.reject_code(ex.buy(1, 600, 1)) == RC.BOOK_FULL
    assert ex.kinds(ex.buy(1, 11, 1)) == ["ACK"]  # same page as 10: fine


def test_should_return_every_event_when_a_batch_overflows_the_event_buffer():
    ex = Exchange(max_orders=64)                   # event buffer ~ 4,200 records
    makers = records.batch(*[records.new_order(0, 2, SELL, 100, 1) for _ in range(60)])
    takers = records.batch(*[records.new_order(0, 1, BUY, 100, 1, tif=1) for _ in range(60)])
    cmds = np.concatenate([np.concatenate([makers, takers])] * 40)
    ev = ex.submit(cmds)
    assert len(ev) == 40 * (60 + 60 * 3)
    assert (np.diff(ev["seq"].astype(np.int64)) == 1).all()
