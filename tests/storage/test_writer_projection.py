"""The writer's projection (events -> rows) without a database."""
from __future__ import annotations

import numpy as np
import pytest

from ringex.fees import fill_fee
from ringex.storage.order_rows import order_rows
from ringex.storage.projection import Projector, format_addr
from ringex.storage.trade_queue import PayloadKind, decode, encode
from ringex import records
from ringex.records import RejectCode, Side
from tests.storage.storage_events import Script, fill_stream

USD, BTC, ETH = 0, 1, 2


def _payload(ev, cmds=None, batch=1, producer=0):
    return decode(encode(PayloadKind.EVENTS, producer, batch, ev, cmds))


def test_should_take_transfers_from_balance_events_alone(market_config):
    """A BALANCE says what it answers (info) and what moved (price): no command needed,
    even when every ref is 0 and queries answer with the same key."""
    m = Script()
    m.deposit(1, USD, 500)
    m.withdraw(1, USD, 10**9)                 # REJECT: insufficient funds
    m.query_balances(1, (USD, BTC, ETH))      # three BALANCE events with the same key
    m.withdraw(1, USD, 200)
    m.deposit(1, BTC, 7)
    ev, cmds = m.take()
    # an unknown-symbol reject from the same account/session/ref is not a balance reply
    extra = records.events(1)
    extra[["kind", "account", "info"]] = (records.EventKind.REJECT, 1, RejectCode.UNKNOWN_SYMBOL)
    ev = np.concatenate([extra, ev])
    rows = Projector(market_config).project([_payload(ev)])
    assert [(r["asset"], r["amount"], r["kind"], r["available"]) for r in rows.transfers] == [
        (USD, 500, 5, 500), (USD, -200, 6, 300), (BTC, 7, 5, 7)]
    assert not rows.dead_letters and len(cmds) == 5


def test_should_take_transfers_from_what_the_matcher_really_emits(market_config):
    from ringex.core.order_service import OrderService
    svc = OrderService(market_config)
    ev = svc.submit(records.batch(records.deposit(3, BTC, 9), records.withdraw(3, BTC, 4),
                                  records.query_balances(3), records.withdraw(3, BTC, 99)))
    rows = Projector(market_config).project([_payload(ev.copy())])
    assert [(r["account"], r["asset"], r["amount"], r["available"]) for r in rows.transfers] \
        == [(3, BTC, 9, 9), (3, BTC, -4, 5)]


def test_should_dead_letter_a_balance_of_an_unknown_asset(market_config):
    m = Script()
    m.deposit(1, USD, 5)
    ev, _ = m.take()
    ev["symbol"] = 99
    rows = Projector(market_config).project([_payload(ev)])
    assert rows.dead_letters[0][2] == "a BALANCE names an asset this exchange does not have"
    assert decode(rows.dead_letters[0][3]).records.tobytes() == ev.tobytes()
    assert rows.meta == {0: 1}


@pytest.mark.parametrize("row, field, value, reason", [
    (3, "qty", 1, "disagree"),                          # maker FILL qty differs
    (2, "info", records.INFO_MAKER, "pairs"),            # two maker FILLs, no taker
    (0, "symbol", 99, "unknown symbol"),
])
def test_should_dead_letter_malformed_fills(market_config, row, field, value, reason):
    m = Script()
    m.trade(m.new(0, 1, Side.BUY, 100, 2), m.new(0, 2, Side.SELL, 100, 2), 2)
    ev, _ = m.take()
    ev[field][row] = value                              # ACK, ACK, taker FILL, maker FILL
    rows = Projector(market_config).project([_payload(ev)])
    assert len(rows.dead_letters) == 1 and reason in rows.dead_letters[0][2]
    assert len(rows.trades) == 0 and len(rows.orders) == 0


def test_should_charge_the_kernel_fees(market_config):
    sym = market_config.symbol("ETH-BTC")          # maker 2 bps, taker 6 bps
    ev, _ = fill_stream(40, symbol=sym.id, seed=4).take()
    t = Projector(market_config).project([_payload(ev)]).trades
    assert len(t) == 40
    for r in t:
        assert r["notional"] == r["price"] * r["qty"] * sym.tick_lot_value
        assert r["taker_fee"] == fill_fee(sym, int(r["price"]), int(r["qty"]), maker=False)
        assert r["maker_fee"] == fill_fee(sym, int(r["price"]), int(r["qty"]), maker=True)
    no_wallets = Projector(market_config, wallets=False).project([_payload(ev)]).trades
    assert not no_wallets["taker_fee"].any() and not no_wallets["maker_fee"].any()


def test_should_aggregate_an_order_across_payloads_of_one_group(market_config):
    m = Script()
    maker = m.new(0, 1, Side.SELL, 100, 10)
    first = _payload(*m.take(), batch=1)
    for _ in range(3):
        m.trade(m.new(0, 2, Side.BUY, 100, 2), maker, 2)
    second = _payload(*m.take(), batch=2)
    o = Projector(market_config).project([first, second]).orders
    row = o[o["order_id"] == maker][0]
    assert (row["qty"], row["filled"], row["leaves"], row["status"]) == (10, 6, 4, 2)
    assert row["created_seq"] == 1 and row["updated_seq"] == 10


def test_should_format_audit_addresses():
    assert format_addr(bytes([10, 0, 0, 7] + [0] * 12)) == "10.0.0.7"
    assert format_addr(bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1])) == "2001:db8::1"
    assert format_addr(bytes(16)) == ""


def test_should_aggregate_orders_whatever_the_spread_of_their_ids():
    def rows(gap):              # gap 0: ids close together; 10^9: far apart
        m = Script()
        makers = [m.new(0, 1, Side.SELL, 100 + i, 3) for i in range(3)]
        m.next_id += gap
        for mk in makers:
            m.trade(m.new(0, 2, Side.BUY, 200, 2), mk, 2)
        m.cancel(makers[0])
        ev, _ = m.take()
        return order_rows(ev, np.arange(len(ev), dtype=np.int64))

    dense, dense_new = rows(0)
    sparse, sparse_new = rows(10**9)
    sparse["order_id"] = np.where(sparse["order_id"] > 10**9, sparse["order_id"] - 10**9,
                                  sparse["order_id"])
    assert (dense == sparse).all() and (dense_new == sparse_new).all()
    assert [(o["order_id"], o["filled"], o["status"], o["created_seq"]) for o in dense] == [
        (1, 2, 4, 1), (2, 2, 2, 2), (3, 2, 2, 3), (4, 2, 3, 4), (5, 2, 3, 7), (6, 2, 3, 10)]
