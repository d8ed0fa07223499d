"""Engine EVENT records -> exact wire messages for one session."""
from __future__ import annotations

import pytest

from ringex.protocol.client_ids import pack_client_id
from ringex.protocol.messages import encode
from ringex.fees import fill_fee as kernel_fill_fee
from ringex.protocol.session import session_number
from ringex.records import (
    INFO_MAKER, INFO_SELL, CancelReason, EventKind as EK, RejectCode,
)
from tests.protocol.test_protocol import (
    ACCOUNT, BTC, CONFIG, EB, ENGINE_TS, ETH, PLACE, RECV_TS, SID, anon, commands, logged_in,
    send,
    event,
)

CID = pack_client_id("mm-1")


def msgs(s, ev) -> list[dict]:
    """The messages of ``ev``, each checked to carry the engine's time and, if any, the
    gateway's receive time (both then dropped;
    test_should_stamp_direct_replies_to_order_requests_with_the_receive_time checks where
    recv_ts goes)."""
    out = s.event_to_messages(ev)
    for m in out:
        encode(m)
        assert m.pop("ts") == ENGINE_TS, m
        assert m.pop("recv_ts", RECV_TS) == RECV_TS, m
    return out


def placed(s, req_id=3, **extra) -> int:
    """Send a place; return its ref."""
    msg = {**PLACE, "req_id": req_id, "client_order_id": "mm-1", **extra}
    return commands(send(s, msg))[0]["ref"]


def ack(ref, order_id=42, sell=False, price=3_000_000, qty=5000, cid=CID, symbol=BTC.id):
    return event(EK.ACK, ref=ref, order_id=order_id, other_id=cid, price=price, qty=qty,
                 leaves=qty, symbol=symbol, info=INFO_SELL if sell else 0, seq=5)


def test_should_turn_ack_into_the_direct_reply():
    s = logged_in()
    ref = placed(s)
    assert msgs(s, ack(ref)) == [{
        "type": "ack", "symbol": "BTC-USD", "order_id": 42, "client_order_id": "mm-1",
        "side": "buy", "price": "30000.00", "qty": "0.5000", "req_id": 3}]
    assert s.orders == {42: (BTC.id, "mm-1", "buy")}
    assert len(s._pending) == 0


def test_should_show_market_order_price_as_null():
    s = logged_in()
    ref = commands(send(s, {"op": "place", "symbol": "ETH-USD", "side": "sell",
                            "type": "market", "qty": "1"}))[0]["ref"]
    (m,) = msgs(s, ack(ref, order_id=7, sell=True, price=0, qty=1000, cid=0, symbol=ETH.id))
    assert m == {"type": "ack", "symbol": "ETH-USD", "order_id": 7, "client_order_id": None,
                 "side": "sell", "price": None, "qty": "1.000"}


def test_should_turn_reject_of_place_into_reject_with_op_and_req_id():
    s = logged_in()
    ref = placed(s, req_id="r")
    rej = event(EK.REJECT, ref=ref, other_id=CID, price=3_000_000, qty=5000, symbol=BTC.id,
                info=RejectCode.INSUFFICIENT_FUNDS, seq=12)
    assert msgs(s, rej) == [{
        "type": "reject", "code": "insufficient_funds",
        "message": "not enough available balance", "op": "place", "symbol": "BTC-USD",
        "order_id": None, "client_order_id": "mm-1", "req_id": "r"}]
    assert len(s._pending) == 0
    # the same ref again is no longer a request: no req_id, op unknown
    assert msgs(s, rej)[0]["op"] is None and "req_id" not in msgs(s, rej)[0]


def test_should_turn_reject_of_cancel_into_unknown_order():
    s = logged_in()
    ref = commands(send(s, {"op": "cancel", "symbol": "BTC-USD", "order_id": 99,
                            "req_id": 4}))[0]["ref"]
    rej = event(EK.REJECT, ref=ref, order_id=99, symbol=BTC.id, info=RejectCode.UNKNOWN_ORDER,
                seq=3)
    (m,) = msgs(s, rej)
    assert (m["code"], m["op"], m["symbol"], m["order_id"], m["client_order_id"],
            m["req_id"]) == ("unknown_order", "cancel", "BTC-USD", 99, None, 4)


def test_should_map_every_reject_code_and_survive_unknown_ones():
    s = logged_in()
    seen = set()
    for code in list(RejectCode)[1:] + [63]:
        (m,) = msgs(s, event(EK.REJECT, symbol=BTC.id, info=code))
        seen.add(m["code"])
        assert m["message"]
    assert "engine_error" in seen and len(seen) == len(RejectCode)


def test_should_stamp_direct_replies_to_order_requests_with_the_receive_time():
    s = logged_in()
    (ack_msg,) = s.event_to_messages(ack(placed(s)))
    assert (ack_msg["recv_ts"], ack_msg["ts"]) == (RECV_TS, ENGINE_TS)
    (c,) = commands(send(s, {"op": "cancel", "symbol": "BTC-USD", "order_id": 42,
                             "req_id": 9}))
    (rej,) = s.event_to_messages(event(EK.REJECT, ref=c["ref"], symbol=BTC.id, seq=5,
                                       info=RejectCode.UNKNOWN_ORDER))
    assert rej["recv_ts"] == RECV_TS and rej["op"] == "cancel"
    # pushes the engine sends unasked, and answers to queries, carry none
    (push,) = s.event_to_messages(event(EK.CANCELLED, order_id=42, symbol=BTC.id, seq=6,
                                        info=CancelReason.IOC_REMAINDER))
    assert "recv_ts" not in push and push["ts"] == ENGINE_TS
    (q,) = commands(send(s, {"op": "balances", "req_id": 10}))
    for asset in range(len(CONFIG.assets)):
        out = s.event_to_messages(event(EK.BALANCE, ref=q["ref"], symbol=asset))
    assert "recv_ts" not in out[0] and out[0]["type"] == "balances"


def test_should_report_fills_with_fee_liquidity_client_id_and_trade_id():
    s = logged_in()
    msgs(s, ack(placed(s)))
    taker = event(EK.FILL, order_id=42, other_id=77, price=2_999_900, qty=2000, leaves=3000,
                  symbol=BTC.id, ref=1, seq=7)
    assert msgs(s, taker) == [{
        "type": "fill", "seq": 7, "trade_id": 7, "symbol": "BTC-USD", "order_id": 42,
        "client_order_id": "mm-1",
        "side": "buy", "price": "29999.00", "qty": "0.2000", "leaves": "0.3000",
        "liquidity": "taker", "fee": "0.004000", "fee_asset": "USD"}]
    maker = event(EK.FILL, order_id=42, other_id=78, price=3_000_000, qty=3000, leaves=0,
                  symbol=BTC.id, info=INFO_MAKER, seq=10)
    (m,) = msgs(s, maker)
    assert (m["liquidity"], m["fee"], m["leaves"]) == ("maker", "0.003000", "0.0000")
    assert (m["seq"], m["trade_id"]) == (10, 9)         # the taker's FILL was seq 9
    assert s.orders == {}                                # fully filled: forgotten


def test_should_charge_the_kernel_fee_by_default():
    s = logged_in(fill_fee=kernel_fill_fee)
    f = event(EK.FILL, order_id=1, price=3_000_000, qty=2000, leaves=0, symbol=BTC.id,
              info=INFO_MAKER)
    assert msgs(s, f)[0]["fee"] == "0.600000"            # 6000 USD x 1 bp
    f["info"] = 0
    assert msgs(s, f)[0]["fee"] == "3.000000"            # taker 5 bp


def test_should_fill_in_quote_of_cross_pairs():
    s = logged_in()
    f = event(EK.FILL, order_id=5, price=5321, qty=12345, leaves=1, symbol=EB.id,
              info=INFO_SELL | INFO_MAKER)
    (m,) = msgs(s, f)
    assert (m["side"], m["price"], m["qty"], m["leaves"], m["fee"], m["fee_asset"]) == (
        "sell", "0.05321", "12.345", "0.001", "0.00012345", "BTC")
    assert m["client_order_id"] is None                  # order unknown to this session


@pytest.mark.parametrize("reason,wire", [
    (CancelReason.USER, "user"), (CancelReason.IOC_REMAINDER, "ioc_remainder"),
    (CancelReason.FOK, "fok"), (CancelReason.STP, "stp"),
    (CancelReason.DISCONNECT, "disconnect"), (CancelReason.POST_ONLY, "post_only"),
    (CancelReason.NO_FUNDS, "no_funds"), (CancelReason.CANCEL_ALL, "cancel_all"),
    (0, "other"), (63, "other")])
def test_should_map_cancel_reasons(reason, wire):
    s = logged_in()
    msgs(s, ack(placed(s)))
    ev = event(EK.CANCELLED, order_id=42, other_id=CID, price=3_000_000, qty=5000,
               symbol=BTC.id, info=int(reason) | INFO_SELL)
    assert msgs(s, ev) == [{
        "type": "cancelled", "symbol": "BTC-USD", "order_id": 42, "client_order_id": "mm-1",
        "side": "sell", "price": "30000.00", "qty": "0.5000", "reason": wire}]
    assert s.orders == {}


def test_should_answer_cancel_with_cancelled_and_req_id():
    s = logged_in()
    msgs(s, ack(placed(s)))
    ref = commands(send(s, {"op": "cancel", "symbol": "BTC-USD", "client_order_id": "mm-1",
                            "req_id": 5}))[0]["ref"]
    ev = event(EK.CANCELLED, ref=ref, order_id=42, other_id=CID, price=3_000_000, qty=3000,
               symbol=BTC.id, info=CancelReason.USER)
    (m,) = msgs(s, ev)
    assert (m["reason"], m["qty"], m["req_id"]) == ("user", "0.3000", 5)


def test_should_not_give_later_events_of_a_placed_order_the_req_id():
    s = logged_in()
    ref = placed(s, tif="ioc")
    msgs(s, ack(ref))
    fill = event(EK.FILL, ref=ref, order_id=42, price=3_000_000, qty=1000, leaves=4000,
                 symbol=BTC.id)
    rest = event(EK.CANCELLED, ref=ref, order_id=42, other_id=CID, price=3_000_000, qty=4000,
                 symbol=BTC.id, info=CancelReason.IOC_REMAINDER)
    assert "req_id" not in msgs(s, fill)[0]
    assert "req_id" not in msgs(s, rest)[0]


def test_should_answer_modify_with_modified():
    s = logged_in()
    msgs(s, ack(placed(s)))
    ref = commands(send(s, {"op": "modify", "symbol": "BTC-USD", "order_id": 42,
                            "price": "30000.00", "qty": "0.2", "req_id": 6}))[0]["ref"]
    ev = event(EK.MODIFIED, ref=ref, order_id=42, other_id=CID, price=3_000_000, qty=2000,
               leaves=2000, symbol=BTC.id)
    assert msgs(s, ev) == [{
        "type": "modified", "symbol": "BTC-USD", "order_id": 42, "client_order_id": "mm-1",
        "side": "buy", "price": "30000.00", "qty": "0.2000", "leaves": "0.2000", "req_id": 6}]
    assert 42 in s.orders


def _balance(ref, asset, available, locked):
    return event(EK.BALANCE, ref=ref, symbol=asset, qty=available, leaves=locked)


def test_should_gather_balances_into_one_reply():
    s = logged_in()
    ref = commands(send(s, {"op": "balances", "req_id": 8}))[0]["ref"]
    assert msgs(s, _balance(ref, 0, 98_499_250_000, 1_500_750_000)) == []
    assert msgs(s, _balance(ref, 1, 200_000_000, 0)) == []
    assert msgs(s, _balance(ref, 2, 0, 5)) == [{"type": "balances", "balances": {
        "USD": {"available": "98499.250000", "locked": "1500.750000"},
        "BTC": {"available": "2.00000000", "locked": "0.00000000"},
        "ETH": {"available": "0.00000000", "locked": "0.00000005"}}, "req_id": 8}]
    assert msgs(s, _balance(ref, 0, 1, 1)) == []           # stray balance: ignored


def test_should_reject_balances_when_wallets_are_off():
    s = logged_in()
    ref = commands(send(s, {"op": "balances"}))[0]["ref"]
    (m,) = msgs(s, event(EK.REJECT, ref=ref, info=RejectCode.UNKNOWN_COMMAND))
    assert (m["type"], m["code"], m["op"], m["symbol"]) == (
        "reject", "unknown_command", "balances", None)


@pytest.mark.parametrize("barrier_kind", ["balance", "reject"])
def test_should_close_open_orders_at_the_barrier(barrier_kind):
    s = logged_in()
    q, b = (c["ref"] for c in commands(send(s, {"op": "open_orders", "req_id": 9})))
    for oid, (sym, sell, p, lots) in enumerate([(BTC.id, 0, 3_000_000, 3000),
                                                (ETH.id, INFO_SELL, 180_050, 2500)], 1):
        assert msgs(s, event(EK.OPEN_ORDER, ref=q, order_id=oid, other_id=CID if oid == 1 else 0,
                             price=p, qty=lots, leaves=lots, symbol=sym, info=sell)) == []
    first = (_balance(b, 0, 1, 0) if barrier_kind == "balance"
             else event(EK.REJECT, ref=b, info=RejectCode.UNKNOWN_COMMAND))
    assert msgs(s, first) == [{"type": "open_orders", "orders": [
        {"symbol": "BTC-USD", "order_id": 1, "client_order_id": "mm-1", "side": "buy",
         "price": "30000.00", "qty": "0.3000"},
        {"symbol": "ETH-USD", "order_id": 2, "client_order_id": None, "side": "sell",
         "price": "1800.50", "qty": "2.500"}], "req_id": 9}]
    assert msgs(s, _balance(b, 1, 1, 0)) == [] and len(s._pending) == 0
    assert s.orders == {}          # other sessions' orders are not adopted


def test_should_answer_empty_open_orders():
    s = logged_in()
    _, b = (c["ref"] for c in commands(send(s, {"op": "open_orders"})))
    assert msgs(s, _balance(b, 0, 0, 0)) == [{"type": "open_orders", "orders": []}]


def test_should_report_cancel_all_after_its_cancels():
    s = logged_in()
    msgs(s, ack(placed(s)))
    c, b = (x["ref"] for x in commands(send(s, {"op": "cancel_all", "symbol": "BTC-USD",
                                                "req_id": 7})))
    ev = event(EK.CANCELLED, ref=c, order_id=42, other_id=CID, price=3_000_000, qty=5000,
               symbol=BTC.id, info=CancelReason.CANCEL_ALL)
    (m,) = msgs(s, ev)
    assert m["reason"] == "cancel_all" and "req_id" not in m
    assert msgs(s, _balance(b, 0, 0, 0)) == [
        {"type": "cancel_all", "symbol": "BTC-USD", "req_id": 7}]
    _, b2 = (x["ref"] for x in commands(send(s, {"op": "cancel_all"})))
    assert msgs(s, _balance(b2, 0, 0, 0)) == [{"type": "cancel_all", "symbol": None}]


def test_should_ignore_events_of_other_sessions_accounts_and_before_login():
    s = logged_in()
    ref = placed(s)
    assert msgs(s, event(EK.ACK, session=session_number(1, 8), ref=ref, symbol=BTC.id)) == []
    assert msgs(s, event(EK.ACK, account=ACCOUNT + 1, ref=ref, symbol=BTC.id)) == []
    assert anon().event_to_messages(ack(1)) == []
    assert len(s._pending) == 1 and s.orders == {}


def test_should_leave_market_data_and_unknown_kinds_to_the_feed():
    s = logged_in()
    for kind in (EK.TRADE, EK.BOOK_LEVEL, 0, 200):
        assert msgs(s, event(kind, symbol=BTC.id, price=1, qty=1)) == []
    assert msgs(s, event(EK.FILL, symbol=999, qty=1)) == []    # unknown symbol id


def test_should_keep_sessions_apart():
    a, b = logged_in(account=3, sid=11), logged_in(account=4, sid=12)
    ra = commands(send(a, PLACE))[0]["ref"]
    ev = ack(ra)
    ev["account"], ev["session"] = 3, 11
    assert msgs(b, ev) == []
    assert msgs(a, ev)[0]["order_id"] == 42
    assert SID not in (11, 12)


def test_should_take_event_tuples_as_well_as_records():
    s = logged_in()
    ref = placed(s)
    assert msgs(s, ack(ref).item())[0]["req_id"] == 3
