"""Requests -> COMMAND records and direct replies; auth gating; validation codes.

Also home of the small helpers the other test_protocol_* files import.
"""
from __future__ import annotations

import numpy as np
import orjson
import pytest

from ringex.config import Config
from ringex.protocol.actions import (
    Authenticate, Close, Reply, SendCommand, Subscribe, Unsubscribe,
)
from ringex.protocol.client_ids import pack_client_id
from ringex.protocol.events import EngineClock
from ringex.protocol.messages import encode
from ringex.protocol.session import Session, State, session_number
from ringex import records
from ringex.records import CommandKind as CK

CONFIG = Config.default()
BTC, ETH, EB = (CONFIG.symbol(n) for n in ("BTC-USD", "ETH-USD", "ETH-BTC"))
SID = session_number(1, 7)
ACCOUNT = 17
T0 = 1_000_000_000
ENGINE_TS = 1_764_000_000_123_456_789    # the engine time every test session reads
RECV_TS = 1_764_000_000_000_000_042      # the gateway's wall clock in every test session


class FakeClock:
    def __init__(self, now: int = T0):
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000_000)


def fake_fee(symbol, price, qty, maker):
    """Distinctive and checkable: maker pays 1 unit per lot, taker 2."""
    return qty * (1 if maker else 2)


def engine_clock(ts: int = ENGINE_TS) -> EngineClock:
    clock = EngineClock()
    clock.ts = ts
    return clock


def anon(**kw) -> Session:
    kw.setdefault("clock", FakeClock())
    kw.setdefault("engine_clock", engine_clock())
    kw.setdefault("wall_clock", lambda: RECV_TS)
    kw.setdefault("fill_fee", fake_fee)
    return Session(CONFIG, kw.pop("sid", SID), **kw)


def logged_in(account: int = ACCOUNT, **kw) -> Session:
    s = anon(**kw)
    assert s.authenticated(account) == []
    return s


def admin(**kw) -> Session:
    s = anon(**kw)
    assert s.authenticated(0, admin=True) == []
    return s


def send(s: Session, msg) -> list:
    return s.receive_text(msg if isinstance(msg, (str, bytes)) else orjson.dumps(msg))


def only_reply(actions) -> dict:
    assert len(actions) == 1 and isinstance(actions[0], Reply), actions
    encode(actions[0].message)          # always encodable
    return actions[0].message


def err(actions) -> str:
    msg = only_reply(actions)
    assert msg["type"] == "error", msg
    return msg["code"]


def fields(rec: np.ndarray) -> dict:
    assert rec.dtype == records.COMMAND and rec.shape == (1,)
    return {name: int(rec[name][0]) for name in records.COMMAND.names if name != "_pad"}


def commands(actions) -> list[dict]:
    assert all(isinstance(a, SendCommand) for a in actions), actions
    return [fields(a.record) for a in actions]


def expect(kind, ref=1, **f) -> dict:
    base = {name: 0 for name in records.COMMAND.names if name != "_pad"}
    base.update(kind=int(kind), account=ACCOUNT, session=SID, ref=ref, ts_ns=T0)
    base.update(f)
    return base


def event(kind, *, session=SID, account=ACCOUNT, **f) -> np.void:
    ev = np.zeros(1, dtype=records.EVENT)
    ev["kind"], ev["session"], ev["account"] = kind, session, account
    for k, v in f.items():
        ev[k] = v
    return ev[0]


PLACE = {"op": "place", "symbol": "BTC-USD", "side": "buy", "price": "30000.00", "qty": "0.5"}


# ---------------------------------------------------------------- place
def test_should_encode_a_full_limit_order_exactly():
    s = logged_in()
    acts = send(s, {**PLACE, "req_id": 3, "tif": "gtc", "post_only": True,
                    "client_order_id": "mm-1", "stp": "cancel_both", "type": "limit"})
    assert commands(acts) == [expect(
        CK.NEW, symbol=BTC.id, side=0, order_type=0, tif=0, price=3_000_000, qty=5000,
        client_order_id=pack_client_id("mm-1"), stp=records.SelfTradePrevention.CANCEL_BOTH,
        flags=records.CMD_POST_ONLY)]


def test_should_apply_place_defaults():
    acts = send(logged_in(), {**PLACE, "side": "sell"})
    assert commands(acts) == [expect(CK.NEW, symbol=BTC.id, side=1, price=3_000_000,
                                     qty=5000, tif=records.TimeInForce.GTC,
                                     stp=records.SelfTradePrevention.CANCEL_TAKER)]


@pytest.mark.parametrize("tif,expected", [(None, records.TimeInForce.IOC),
                                          ("ioc", records.TimeInForce.IOC),
                                          ("fok", records.TimeInForce.FOK)])
def test_should_encode_market_orders_without_price(tif, expected):
    msg = {"op": "place", "symbol": "ETH-USD", "side": "buy", "type": "market", "qty": "2",
           "tif": tif}
    assert commands(send(logged_in(), msg)) == [expect(
        CK.NEW, symbol=ETH.id, order_type=records.OrderType.MARKET, tif=expected, qty=2000)]


@pytest.mark.parametrize("name,value", [("tif", "gtc"), ("tif", "ioc"), ("tif", "fok")])
def test_should_map_tif(name, value):
    rec = commands(send(logged_in(), {**PLACE, name: value}))[0]
    assert rec["tif"] == records.TimeInForce[value.upper()]


@pytest.mark.parametrize("value", ["none", "cancel_taker", "cancel_maker", "cancel_both"])
def test_should_map_stp(value):
    rec = commands(send(logged_in(), {**PLACE, "stp": value}))[0]
    assert rec["stp"] == records.SelfTradePrevention[value.upper()]


def test_should_treat_null_as_absent():
    msg = {**PLACE, "tif": None, "stp": None, "type": None, "client_order_id": None,
           "post_only": None, "req_id": None}
    assert commands(send(logged_in(), msg)) == commands(send(logged_in(), PLACE))


def test_should_convert_other_symbols_exactly():
    msg = {"op": "place", "symbol": "ETH-BTC", "side": "sell", "price": "0.05321",
           "qty": "12.345"}
    rec = commands(send(logged_in(), msg))[0]
    assert (rec["symbol"], rec["price"], rec["qty"]) == (EB.id, 5321, 12345)


def test_should_accept_qty_up_to_int64_lots():
    rec = commands(send(logged_in(), {**PLACE, "qty": "922337203685477.5807"}))[0]
    assert rec["qty"] == (1 << 63) - 1


# ---------------------------------------------------------------- other ops
def test_should_encode_cancel_by_order_id_and_by_client_id():
    s = logged_in()
    by_id = {"op": "cancel", "symbol": "BTC-USD", "order_id": 42}
    by_cid = {"op": "cancel", "symbol": "BTC-USD", "client_order_id": "mm-1"}
    assert commands(send(s, by_id)) == [expect(CK.CANCEL, symbol=BTC.id, order_id=42)]
    assert commands(send(s, by_cid)) == [expect(CK.CANCEL, ref=2, symbol=BTC.id,
                                                client_order_id=pack_client_id("mm-1"))]


def test_should_encode_modify():
    msg = {"op": "modify", "symbol": "BTC-USD", "order_id": 9, "price": "29999.99",
           "qty": "0.0001"}
    assert commands(send(logged_in(), msg)) == [expect(
        CK.MODIFY, symbol=BTC.id, order_id=9, price=2_999_999, qty=1)]


def test_should_follow_cancel_all_with_a_barrier_query():
    s = logged_in()
    assert commands(send(s, {"op": "cancel_all", "symbol": "ETH-USD"})) == [
        expect(CK.CANCEL_ALL, symbol=ETH.id), expect(CK.QUERY_BALANCES, ref=2)]
    assert commands(send(s, {"op": "cancel_all"})) == [
        expect(CK.CANCEL_ALL, ref=3, symbol=records.ALL_SYMBOLS),
        expect(CK.QUERY_BALANCES, ref=4)]


def test_should_encode_queries():
    s = logged_in()
    assert commands(send(s, {"op": "balances"})) == [expect(CK.QUERY_BALANCES)]
    assert commands(send(s, {"op": "open_orders"})) == [
        expect(CK.QUERY_ORDERS, ref=2), expect(CK.QUERY_BALANCES, ref=3)]


def test_should_number_refs_from_one_and_wrap_past_zero():
    s = logged_in()
    assert [commands(send(s, PLACE))[0]["ref"] for _ in range(3)] == [1, 2, 3]
    s._pending._refs._next = 0xFFFFFFFF
    assert [commands(send(s, PLACE))[0]["ref"] for _ in range(2)] == [0xFFFFFFFF, 1]


def test_should_stamp_the_clock_on_commands():
    clock = FakeClock(123_456_789)
    assert commands(send(logged_in(clock=clock), PLACE))[0]["ts_ns"] == 123_456_789


def test_should_subscribe_and_unsubscribe_without_login():
    s = anon()
    sub = {"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "req_id": 10}
    assert send(s, sub) == [Reply({"type": "subscribed", "channel": "book",
                                   "symbol": "BTC-USD", "req_id": 10}),
                            Subscribe("book", "BTC-USD")]
    assert s.subscriptions == {("book", "BTC-USD")}
    unsub = {"op": "unsubscribe", "channel": "book", "symbol": "BTC-USD"}
    assert send(s, unsub) == [Unsubscribe("book", "BTC-USD"),
                              Reply({"type": "unsubscribed", "channel": "book",
                                     "symbol": "BTC-USD"})]
    assert s.subscriptions == set()


@pytest.mark.parametrize("req_id", [7, -3, "abc", "x" * 64, 2**64 - 1, None])
def test_should_echo_req_id_in_pong(req_id):
    msg = only_reply(send(anon(), {"op": "ping", "req_id": req_id}))
    assert msg == ({"type": "pong"} if req_id is None else {"type": "pong", "req_id": req_id})


@pytest.mark.parametrize("req_id", [1.5, True, [1], {"a": 1}, "x" * 65])
def test_should_refuse_bad_req_id_without_echoing_it(req_id):
    msg = only_reply(send(anon(), {"op": "ping", "req_id": req_id}))
    assert msg["code"] == "bad_request" and "req_id" not in msg


def test_should_echo_req_id_on_errors():
    msg = only_reply(send(logged_in(), {**PLACE, "qty": "0", "req_id": "q1"}))
    assert (msg["code"], msg["req_id"]) == ("invalid_qty", "q1")


# ---------------------------------------------------------------- authentication
def test_should_log_in_with_a_message():
    s = anon()
    assert send(s, {"op": "login", "api_key": "k1", "req_id": 1}) == [Authenticate("k1")]
    assert s.state is State.LOGGING_IN
    assert err(send(s, {"op": "login", "api_key": "k1"})) == "login_pending"
    assert err(send(s, PLACE)) == "not_authenticated"
    assert s.authenticated(ACCOUNT) == [Reply({"type": "login", "ok": True,
                                               "account": ACCOUNT, "admin": False,
                                               "cancel_on_disconnect": False, "req_id": 1})]
    assert s.state is State.AUTHENTICATED and s.account == ACCOUNT
    assert err(send(s, {"op": "login", "api_key": "k1"})) == "already_authenticated"
    assert commands(send(s, PLACE))[0]["account"] == ACCOUNT


def test_should_accept_handshake_authentication_silently():
    s = anon()
    assert s.authenticated(5) == []
    assert commands(send(s, PLACE))[0]["account"] == 5


def test_should_report_failed_logins_and_close_on_the_third():
    s = anon()
    send(s, {"op": "login", "api_key": "bad", "req_id": 1})
    assert s.auth_failed() == [Reply({"type": "error", "code": "auth_failed",
                                      "message": "unknown api key", "req_id": 1})]
    assert s.state is State.ANONYMOUS
    assert err(send(s, {"op": "login", "api_key": ""})) == "auth_failed"   # malformed counts
    assert send(s, {"op": "login", "api_key": "bad"}) == [Authenticate("bad")]
    acts = s.auth_failed()
    assert acts[0].message["code"] == "auth_failed"
    assert acts[1] == Close(1008, "too many failed logins")
    assert s.state is State.CLOSED and send(s, {"op": "ping"}) == []


@pytest.mark.parametrize("key", [5, "", "k" * 257, ["k"], True])
def test_should_fail_malformed_api_keys_without_lookup(key):
    assert err(send(anon(), {"op": "login", "api_key": key})) == "auth_failed"


def test_should_refuse_nonsense_accounts_from_the_adapter():
    with pytest.raises(ValueError):
        anon().authenticated(0)
    s = logged_in()
    with pytest.raises(ValueError):
        s.authenticated(3)


PRIVATE = [
    PLACE,
    {"op": "cancel", "symbol": "BTC-USD", "order_id": 1},
    {"op": "modify", "symbol": "BTC-USD", "order_id": 1, "price": "1", "qty": "1"},
    {"op": "cancel_all"},
    {"op": "balances"},
    {"op": "open_orders"},
]


@pytest.mark.parametrize("msg", PRIVATE, ids=lambda m: m["op"])
def test_should_refuse_private_ops_before_login(msg):
    s = anon()
    assert err(send(s, msg)) == "not_authenticated"
    send(s, {"op": "login", "api_key": "k"})
    assert err(send(s, msg)) == "not_authenticated"       # still being checked


@pytest.mark.parametrize("msg", PRIVATE, ids=lambda m: m["op"])
def test_should_never_take_the_account_from_the_message(msg):
    s = logged_in()
    assert err(send(s, {**msg, "account": 99})) == "unknown_field"
    assert all(c["account"] == ACCOUNT for c in commands(send(s, msg)))


def test_should_put_each_sessions_own_account_and_session_in_commands():
    a = logged_in(account=3, sid=session_number(0, 1))
    b = logged_in(account=4, sid=session_number(2, 1))
    ca, cb = commands(send(a, PLACE))[0], commands(send(b, PLACE))[0]
    assert (ca["account"], ca["session"]) == (3, 1)
    assert (cb["account"], cb["session"]) == (4, (2 << 24) | 1)


# ---------------------------------------------------------------- validation codes
def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


CANCEL = {"op": "cancel", "symbol": "BTC-USD", "order_id": 1}
MODIFY = {"op": "modify", "symbol": "BTC-USD", "order_id": 1, "price": "1", "qty": "1"}
SUB = {"op": "subscribe", "channel": "trades", "symbol": "BTC-USD"}
BAD = [
    # frame / envelope
    ("not json", "bad_json"), ("{\"op\":", "bad_json"), ("", "bad_json"),
    (b"\xff\xfe", "bad_json"), ("NaN", "bad_json"), ("[1, 2]", "bad_request"),
    ("\"place\"", "bad_request"), ("null", "bad_request"), ("{}", "missing_field"),
    ({"op": 5}, "bad_request"), ({"op": "buy"}, "unknown_op"), ({"op": "PLACE"}, "unknown_op"),
    ({"op": "ping", "extra": 1}, "unknown_field"),
    # place: symbol, side, type, tif, stp, post_only
    (_without(PLACE, "symbol"), "missing_field"), ({**PLACE, "symbol": 0}, "bad_request"),
    ({**PLACE, "symbol": "btc-usd"}, "unknown_symbol"),
    (_without(PLACE, "side"), "missing_field"), ({**PLACE, "side": "BUY"}, "invalid_side"),
    ({**PLACE, "side": 0}, "invalid_side"), ({**PLACE, "type": "stop"}, "invalid_type"),
    ({**PLACE, "tif": "day"}, "invalid_tif"), ({**PLACE, "stp": "yes"}, "invalid_stp"),
    ({**PLACE, "post_only": 1}, "bad_request"), ({**PLACE, "post_only": "true"}, "bad_request"),
    ({**PLACE, "post_only": True, "tif": "ioc"}, "invalid_tif"),
    ({**_without(PLACE, "price"), "type": "market", "post_only": True}, "invalid_tif"),
    ({**_without(PLACE, "price"), "type": "market", "tif": "gtc"}, "invalid_tif"),
    ({**PLACE, "type": "market"}, "invalid_price"),
    # price
    (_without(PLACE, "price"), "missing_field"),
    *[({**PLACE, "price": bad}, "invalid_price") for bad in (
        30000.5, 30000, "3e4", "+30000", " 30000", "30000 ", "30000\n", "30000.", ".5", "NaN",
        "Infinity", "-1", "0", "0.00", "-0.00", "1,5", "\u0663\u0660", "", "1" * 33, ["1"],
        "0x10", "1_000")],
    ({**PLACE, "price": "30000.001"}, "off_tick"), ({**PLACE, "price": "0.001"}, "off_tick"),
    ({**PLACE, "price": "100000.01"}, "price_out_of_band"),
    ({**PLACE, "price": "9" * 32}, "price_out_of_band"),
    # qty
    (_without(PLACE, "qty"), "missing_field"), ({**PLACE, "qty": 1}, "invalid_qty"),
    ({**PLACE, "qty": 0.5}, "invalid_qty"), ({**PLACE, "qty": "0"}, "invalid_qty"),
    ({**PLACE, "qty": "-0.5"}, "invalid_qty"), ({**PLACE, "qty": "1e-4"}, "invalid_qty"),
    ({**PLACE, "qty": "0.00001"}, "off_lot"), ({**PLACE, "qty": "1.00005"}, "off_lot"),
    ({**PLACE, "qty": "922337203685477.5808"}, "invalid_qty"),
    ({**PLACE, "qty": "9" * 32}, "invalid_qty"),
    # client_order_id
    ({**PLACE, "client_order_id": ""}, "invalid_client_order_id"),
    ({**PLACE, "client_order_id": "x" * 37}, "invalid_client_order_id"),
    ({**PLACE, "client_order_id": "a b"}, "invalid_client_order_id"),
    ({**PLACE, "client_order_id": "caf\u00e9"}, "invalid_client_order_id"),
    ({**PLACE, "client_order_id": "\x7f"}, "invalid_client_order_id"),
    ({**PLACE, "client_order_id": 12}, "invalid_client_order_id"),
    ({**PLACE, "account": 1}, "unknown_field"), ({**PLACE, "postonly": True}, "unknown_field"),
    # cancel / modify / cancel_all
    ({**CANCEL, "client_order_id": "x"}, "bad_request"),
    (_without(CANCEL, "order_id"), "missing_field"), (_without(CANCEL, "symbol"), "missing_field"),
    *[({**CANCEL, "order_id": bad}, "invalid_order_id") for bad in ("1", 0, -5, True, 1.0)],
    ({**CANCEL, "order_id": 2**63}, "invalid_order_id"),
    ({**_without(CANCEL, "order_id"), "client_order_id": "x" * 37}, "invalid_client_order_id"),
    (_without(MODIFY, "price"), "missing_field"), (_without(MODIFY, "qty"), "missing_field"),
    (_without(MODIFY, "order_id"), "missing_field"), ({**MODIFY, "price": "0.001"}, "off_tick"),
    ({**MODIFY, "qty": "0"}, "invalid_qty"), ({**MODIFY, "client_order_id": "a"}, "unknown_field"),
    ({"op": "cancel_all", "symbol": "DOGE-USD"}, "unknown_symbol"),
    ({"op": "cancel_all", "symbol": 1}, "bad_request"),
    ({"op": "balances", "asset": "USD"}, "unknown_field"),
    # subscriptions, login
    ({**SUB, "channel": "depth"}, "unknown_channel"), ({**SUB, "channel": 1}, "unknown_channel"),
    (_without(SUB, "channel"), "missing_field"), (_without(SUB, "symbol"), "missing_field"),
    ({**SUB, "symbol": "X"}, "unknown_symbol"), ({"op": "login"}, "missing_field"),
]


@pytest.mark.parametrize("msg,code", BAD, ids=[f"{i}-{c}" for i, (_, c) in enumerate(BAD)])
def test_should_refuse_bad_input_with_a_stable_code(msg, code):
    s = logged_in() if not (isinstance(msg, dict) and msg.get("op") == "login") else anon()
    acts = send(s, msg)
    assert err(acts) == code
    assert s.state is not State.CLOSED


def test_should_refuse_at_the_first_failing_check():
    msg = {"op": "place", "symbol": "NOPE", "side": "up", "price": "x", "qty": "0"}
    assert err(send(logged_in(), msg)) == "unknown_symbol"
    assert err(send(logged_in(), {**msg, "symbol": "BTC-USD"})) == "invalid_side"
    assert err(send(anon(), {**msg, "account": 2})) == "not_authenticated"
