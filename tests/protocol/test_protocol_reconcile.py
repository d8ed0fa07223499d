"""order_status and my_trades (docs/protocol.md): requests, the engine's part, the
messages made from stored rows."""
from __future__ import annotations

import pytest

from ringex.protocol.actions import SendCommand, StoreQuery
from ringex.protocol.client_ids import pack_client_id
from ringex.protocol.events import LOOKUP
from ringex.protocol.reconcile import OrderLookup, my_trades_message, order_status_message
from ringex.protocol.symbols import tables_for
from ringex.records import INFO_SELL, CommandKind as CK, EventKind as EK
from tests.protocol.test_protocol import (
    ACCOUNT, BTC, CONFIG, ENGINE_TS, anon, commands, err, event, logged_in, send,
)

T = tables_for(CONFIG)


def _asked(s, msg) -> tuple[int, int]:
    """The refs of the QUERY_ORDERS and of its barrier."""
    cmds = commands(send(s, msg))
    assert [c["kind"] for c in cmds] == [CK.QUERY_ORDERS, CK.QUERY_BALANCES]
    return cmds[0]["ref"], cmds[1]["ref"]


@pytest.mark.parametrize("by", [{"order_id": 42}, {"client_order_id": "mm-1"}])
def test_should_ask_the_engine_then_hand_the_lookup_to_the_gateway(by):
    s = logged_in()
    q, b = _asked(s, {"op": "order_status", "req_id": 7, **by})
    for oid, cid in ((41, "other"), (42, "mm-1")):
        assert s.event_to_messages(event(EK.OPEN_ORDER, ref=q, order_id=oid,
                                         other_id=pack_client_id(cid), price=3_000_000,
                                         qty=300, leaves=300, symbol=BTC.id,
                                         info=INFO_SELL)) == []
    (msg,) = s.event_to_messages(event(EK.BALANCE, ref=b))
    assert (msg["type"], msg["req_id"], msg["ts"]) == (LOOKUP, 7, ENGINE_TS)
    assert msg["lookup"].live == (BTC.id, 42, pack_client_id("mm-1"), True, 3_000_000, 300)


def test_should_refuse_order_status_without_exactly_one_id_or_before_login():
    s = logged_in()
    assert err(send(s, {"op": "order_status"})) == "missing_field"
    assert err(send(s, {"op": "order_status", "order_id": 1,
                        "client_order_id": "a"})) == "bad_request"
    assert err(send(s, {"op": "order_status", "order_id": -1})) == "invalid_order_id"
    assert err(send(anon(), {"op": "order_status", "order_id": 1})) == "not_authenticated"


def test_should_take_my_trades_to_the_database_with_checked_paging():
    s = logged_in()
    assert send(s, {"op": "my_trades", "symbol": "BTC-USD", "from_trade_id": 1043,
                    "limit": 2, "req_id": 3}) == [StoreQuery("my_trades", 3,
                                                             (BTC.id, 1043, 0, 2))]
    (q,) = send(s, {"op": "my_trades", "symbol": "BTC-USD"})
    assert q.params == (BTC.id, 0, 0, 100)
    for bad in ({"limit": 0}, {"limit": 1001}, {"from_trade_id": -1}, {"since_ts": "1"}):
        assert err(send(s, {"op": "my_trades", "symbol": "BTC-USD", **bad})) == "bad_request"
    assert not any(isinstance(a, SendCommand) for a in send(s, {"op": "my_trades",
                                                                "symbol": "BTC-USD"}))


ROW = {"order_id": 42, "symbol": BTC.id, "account": ACCOUNT, "side": 1, "price": 3_000_000,
       "qty": 500, "leaves": 0, "filled": 200, "status": 4, "reason": 1,
       "client_order_id": pack_client_id("mm-1")}


def test_should_tell_a_live_order_from_the_engine_and_a_done_one_from_its_row():
    live = OrderLookup(42, None, (BTC.id, 42, pack_client_id("mm-1"), True, 3_000_000, 300))
    assert order_status_message(T, live, {**ROW, "status": 2, "leaves": 500}) == {
        "type": "order_status", "symbol": "BTC-USD", "order_id": 42,
        "client_order_id": "mm-1", "side": "sell", "price": "30000.00", "qty": "0.0500",
        "leaves": "0.0300", "filled": "0.0200", "status": "partially_filled",
        "reason": None}
    fresh = order_status_message(T, live, None)        # not stored yet
    assert (fresh["qty"], fresh["filled"], fresh["status"]) == ("0.0300", "0.0000", "open")
    done = order_status_message(T, OrderLookup(42, None), ROW)
    assert (done["status"], done["reason"], done["leaves"]) == ("cancelled", "user", "0.0000")
    assert order_status_message(T, OrderLookup(42, None), None) is None


def test_should_show_my_side_of_each_trade_and_both_of_a_trade_with_myself():
    trade = {"seq": 1043, "price": 3_000_000, "qty": 200, "taker_order_id": 9,
             "maker_order_id": 42, "taker_account": 5, "maker_account": ACCOUNT,
             "taker_side": 0, "taker_fee": 30, "maker_fee": 6, "ts_ns": 77}
    msg = my_trades_message(T, ACCOUNT, BTC.id, [trade, {**trade, "seq": 1050,
                                                         "taker_account": ACCOUNT}])
    assert msg["type"] == "my_trades" and msg["symbol"] == "BTC-USD"
    assert [(t["trade_id"], t["order_id"], t["side"], t["liquidity"], t["fee"])
            for t in msg["trades"]] == [
        (1043, 42, "sell", "maker", "0.000006"),
        (1050, 9, "buy", "taker", "0.000030"), (1050, 42, "sell", "maker", "0.000006")]
    assert msg["trades"][0]["ts"] == 77
