"""Hypothesis fuzz: no input of any kind makes the protocol raise or emit nonsense."""
from __future__ import annotations

import json

import numpy as np
import orjson
from hypothesis import given, settings, strategies as st

from ringex.config import GatewayLimits
from ringex.protocol.actions import (
    Authenticate, Close, Reply, SendCommand, StoreQuery, Subscribe, Unsubscribe,
)
from ringex.protocol.codes import CloseCode, ErrorCode
from ringex.protocol.messages import encode
from ringex.protocol.requests import FIELDS
from ringex import records
from ringex.records import CommandKind as CK
from tests.protocol.test_protocol import ACCOUNT, CONFIG, SID, anon, logged_in

SYMBOLS = {s.id: s for s in CONFIG.symbols}
REPLY_TYPES = {"error", "pong", "subscribed", "unsubscribed", "login"}
FAST = GatewayLimits(rate_per_s=10**9, burst=10**9)


def check(session, actions, authenticated: bool) -> None:
    """Every action is well-formed; every command is one the engine can take as is."""
    for a in actions:
        assert isinstance(a, (SendCommand, Reply, Subscribe, Unsubscribe, Authenticate, Close,
                              StoreQuery))
        if isinstance(a, Reply):
            encode(a.message)
            assert a.message["type"] in REPLY_TYPES, a.message
            if a.message["type"] == "error":
                assert a.message["code"] in set(ErrorCode)
        elif isinstance(a, Close):
            assert a.code in set(CloseCode)
        elif isinstance(a, SendCommand):
            assert authenticated
            c = a.record[0]
            assert (int(c["account"]), int(c["session"])) == (ACCOUNT, SID)
            kind = int(c["kind"])
            assert kind in (CK.NEW, CK.CANCEL, CK.MODIFY, CK.CANCEL_ALL, CK.QUERY_BALANCES,
                            CK.QUERY_ORDERS, CK.CLIENT_ID)
            if kind in (CK.NEW, CK.CANCEL, CK.MODIFY):
                assert int(c["symbol"]) in SYMBOLS
            if kind in (CK.NEW, CK.MODIFY):
                sym = SYMBOLS[int(c["symbol"])]
                assert c["qty"] > 0
                if kind == CK.MODIFY or c["order_type"] == records.OrderType.LIMIT:
                    assert sym.min_tick <= c["price"] <= sym.max_tick
                else:
                    assert c["price"] == 0
            if kind in (CK.CANCEL, CK.MODIFY):
                assert c["order_id"] > 0 or (kind == CK.CANCEL and c["client_order_id"] != 0)


def feed(data) -> None:
    for make, authed in ((anon, False), (logged_in, True)):
        s = make(limits=FAST)
        check(s, s.receive_text(data), authed)


@given(st.text())
def test_arbitrary_text_never_crashes(text):
    feed(text)


@given(st.binary())
def test_arbitrary_bytes_never_crash(data):
    feed(data)
    s = anon()
    check(s, s.receive_binary(data), False)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(1 << 63), (1 << 64) - 1) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@given(JSON)
def test_arbitrary_json_values_never_crash(value):
    feed(orjson.dumps(value))


@given(st.integers() | st.floats(allow_nan=True), st.sampled_from(sorted(FIELDS)))
def test_out_of_range_numbers_never_crash(number, op):
    feed(json.dumps({"op": op, "req_id": number, "order_id": number, "price": number}))


PLAUSIBLE = {
    "symbol": st.sampled_from(["BTC-USD", "ETH-USD", "ETH-BTC", "X", ""]),
    "side": st.sampled_from(["buy", "sell", "hold"]),
    "type": st.sampled_from(["limit", "market", "stop"]),
    "tif": st.sampled_from(["gtc", "ioc", "fok", "day"]),
    "stp": st.sampled_from(["none", "cancel_taker", "cancel_maker", "cancel_both", "x"]),
    "channel": st.sampled_from(["book", "trades", "depth"]),
    "price": st.from_regex(r"-?[0-9]{1,7}(\.[0-9]{1,6})?", fullmatch=True),
    "qty": st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,6})?", fullmatch=True),
    "client_order_id": st.text(max_size=9),
    "order_id": st.integers(-2, (1 << 64) - 1),
    "post_only": st.booleans(),
    "req_id": st.integers(-5, 5) | st.text(max_size=70),
    "api_key": st.text(max_size=10),
}


@st.composite
def requests(draw):
    """Mostly plausible field values, sometimes null or any JSON; rarely a foreign field."""
    op = draw(st.sampled_from(sorted(FIELDS)))
    names = draw(st.lists(st.sampled_from(sorted(FIELDS[op] - {"op"})), unique=True))
    if draw(st.integers(0, 19)) == 7:
        names.append(draw(st.sampled_from(["account", "x", "Op"])))
    msg = {"op": op}
    for n in names:
        roll = draw(st.integers(0, 9))
        msg[n] = (draw(PLAUSIBLE.get(n, st.just(1))) if roll < 8 else None if roll == 8
                  else draw(JSON))
    return msg


@settings(max_examples=300)
@given(requests())
def test_near_valid_requests_give_a_command_or_a_clean_error(msg):
    feed(orjson.dumps(msg))


EVENT_FIELDS = st.fixed_dictionaries({
    "seq": st.integers(0, (1 << 64) - 1),
    "order_id": st.integers(-(1 << 63), (1 << 63) - 1),
    "other_id": st.integers(-(1 << 63), (1 << 63) - 1),
    "price": st.integers(-(1 << 63), (1 << 63) - 1),
    "qty": st.integers(-(1 << 63), (1 << 63) - 1),
    "leaves": st.integers(-(1 << 63), (1 << 63) - 1),
    "ref": st.integers(0, 8) | st.integers(0, 0xFFFFFFFF),
    "symbol": st.integers(0, 4) | st.integers(0, 0xFFFF),
    "kind": st.integers(0, 10) | st.integers(0, 255),
    "info": st.integers(0, 255),
})


@settings(max_examples=150)
@given(st.lists(EVENT_FIELDS, max_size=12))
def test_arbitrary_events_never_crash(rows):
    s = logged_in(limits=FAST)
    for msg in ({"op": "place", "symbol": "BTC-USD", "side": "buy", "price": "1", "qty": "1"},
                {"op": "balances"}, {"op": "open_orders"}, {"op": "cancel_all"},
                {"op": "cancel", "symbol": "ETH-USD", "order_id": 3},
                {"op": "modify", "symbol": "ETH-BTC", "order_id": 3, "price": "1", "qty": "1"}):
        s.receive_text(orjson.dumps(msg))
    for row in rows:
        ev = np.zeros(1, dtype=records.EVENT)[0]
        for k, v in row.items():
            ev[k] = v
        ev["session"], ev["account"] = SID, ACCOUNT
        for m in s.event_to_messages(ev):
            encode(m)
