"""docs/protocol.md cannot rot: its examples and tables are checked against the code.

Blocks fenced as ```json request must be accepted by the protocol; blocks fenced as
```json reply must have exactly the keys the protocol produces for their ``type``.
"""
from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from ringex.config import GatewayLimits
from ringex.protocol.actions import Authenticate, Reply, SendCommand, StoreQuery
from ringex.protocol.codes import CANCEL_REASONS, REJECT_CODES, CloseCode, ErrorCode
from ringex.protocol.feed import MarketFeed
from ringex.protocol.codes import UNKNOWN_REASON, UNKNOWN_REJECT
from ringex.records import INFO_MAKER, CancelReason, EventKind as EK, RejectCode
from ringex.protocol.reconcile import OrderLookup, my_trades_message, order_status_message
from ringex.protocol.requests import ADMIN_OPS
from ringex.protocol.symbols import tables_for
from tests.protocol.test_protocol import (
    BTC, CONFIG, PLACE, admin, anon, commands, event, logged_in, send,
)
from tests.protocol.test_protocol_feed import batch

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
TEXT = DOC.read_text()
FENCE = re.compile(r"^```(\w*)[ \t]*(\w*)\n(.*?)^```", re.S | re.M)
BLOCKS = [(lang, tag, body) for lang, tag, body in FENCE.findall(TEXT)]
REQUESTS = [orjson.loads(b) for lang, tag, b in BLOCKS if tag == "request"]
REPLIES = [orjson.loads(b) for lang, tag, b in BLOCKS if tag == "reply"]


def test_every_json_block_is_marked_and_valid():
    json_blocks = [(tag, body) for lang, tag, body in BLOCKS if lang == "json"]
    assert len(json_blocks) >= 30
    for tag, body in json_blocks:
        assert tag in ("request", "reply"), f"unmarked json block: {body[:60]}"
        assert isinstance(orjson.loads(body), dict)


def test_every_op_has_a_request_example():
    from ringex.protocol.requests import FIELDS
    assert {r["op"] for r in REQUESTS} == set(FIELDS)


@pytest.mark.parametrize("req", REQUESTS, ids=lambda r: f"{r['op']}-{r.get('req_id', '')}")
def test_request_examples_are_accepted(req):
    s = anon() if req["op"] == "login" else admin() if req["op"] in ADMIN_OPS else logged_in()
    actions = send(s, req)
    assert actions, req
    for a in actions:
        assert not (isinstance(a, Reply) and a.message["type"] == "error"), a
    if req["op"] == "login":
        assert actions == [Authenticate(req["api_key"])]
    elif req["op"] == "my_trades":
        assert [type(a) for a in actions] == [StoreQuery]        # the database answers
    elif req["op"] not in ("ping", "subscribe", "unsubscribe"):
        assert commands([a for a in actions if isinstance(a, SendCommand)])


def _produced() -> list[dict]:
    """One of each message the protocol emits, made by driving the real code."""
    out: list[dict] = []
    s = logged_in()

    def ref_of(msg) -> list[int]:
        return [c["ref"] for c in commands(send(s, msg))]

    def ev(kind, **f):
        out.extend(s.event_to_messages(event(kind, symbol=BTC.id, seq=1, **f)))

    (r,) = ref_of({**PLACE, "req_id": 1, "client_order_id": "a"})
    ev(EK.ACK, ref=r, order_id=1, price=1, qty=1, leaves=1)
    (r,) = ref_of({**PLACE, "req_id": 2})
    ev(EK.REJECT, ref=r, info=RejectCode.INSUFFICIENT_FUNDS)
    ev(EK.FILL, order_id=1, price=1, qty=1, leaves=0, info=INFO_MAKER)
    ev(EK.CANCELLED, order_id=1, info=CancelReason.IOC_REMAINDER)
    (r,) = ref_of({"op": "cancel", "symbol": "BTC-USD", "order_id": 1, "req_id": 3})
    ev(EK.CANCELLED, ref=r, order_id=1, info=CancelReason.USER)
    (r,) = ref_of({"op": "modify", "symbol": "BTC-USD", "order_id": 1, "price": "1",
                   "qty": "1", "req_id": 4})
    ev(EK.MODIFIED, ref=r, order_id=1, price=1, qty=1, leaves=1)
    (r,) = ref_of({"op": "balances", "req_id": 5})
    for asset in range(len(CONFIG.assets)):
        out.extend(s.event_to_messages(event(EK.BALANCE, ref=r, symbol=asset)))
    q, b = ref_of({"op": "open_orders", "req_id": 6})
    ev(EK.OPEN_ORDER, ref=q, order_id=1, price=1, qty=1, leaves=1)
    out.extend(s.event_to_messages(event(EK.BALANCE, ref=b)))
    _, b = ref_of({"op": "cancel_all", "symbol": "BTC-USD", "req_id": 7})
    out.extend(s.event_to_messages(event(EK.BALANCE, ref=b)))
    for msg in ({"op": "ping", "req_id": 8}, {"op": "price"},
                {"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "req_id": 9},
                {"op": "unsubscribe", "channel": "book", "symbol": "BTC-USD", "req_id": 9},
                {"op": "subscribe", "channel": "book", "symbol": "ETH-USD", "depth": 10,
                 "req_id": 21},
                {"op": "subscribe", "channel": "trades", "symbols": ["BTC-USD", "ETH-USD"]},
                {"op": "unsubscribe", "channel": "trades", "symbols": ["ETH-USD"]},
                {"op": "subscribe", "channel": "orders", "req_id": 16},
                {"op": "unsubscribe", "channel": "orders", "req_id": 16}):
        out.extend(a.message for a in send(s, msg) if isinstance(a, Reply))
    snapshots = anon()                   # more book snapshots than the budget: refused
    for _ in range(GatewayLimits().snapshot_burst + 1):
        acts = send(snapshots, {"op": "subscribe", "channel": "book", "symbol": "BTC-USD",
                                "resync": True, "req_id": 11})
    out.extend(x.message for x in acts if isinstance(x, Reply))
    a = anon()
    send(a, {"op": "login", "api_key": "k", "req_id": 10})
    out.extend(x.message for x in a.authenticated(5))
    ad = admin()
    for op in ("deposit", "withdraw"):
        (r,) = ref_of_in(ad, {"op": op, "account": 5, "asset": "USD", "amount": "1"})
        out.extend(ad.event_to_messages(event(EK.BALANCE, account=5, ref=r, qty=1)))
    feed = MarketFeed(CONFIG)
    out.extend(m for _, _, m in feed.apply(batch((EK.TRADE, BTC.id, 1, 1, 1, False),
                                                 (EK.BOOK_LEVEL, BTC.id, 2, 1, 1, False))))
    out.append(feed.snapshot("BTC-USD"))
    # the gateway finishes these two from the database (ringex/gateway/reconciler.py)
    t = tables_for(CONFIG)
    row = {"order_id": 1, "symbol": BTC.id, "side": 0, "price": 1, "qty": 2, "leaves": 1,
           "filled": 1, "status": 2, "reason": 0, "client_order_id": 0}
    live = OrderLookup(1, None, (BTC.id, 1, 0, False, 1, 1))
    out.append({**order_status_message(t, live, row), "req_id": 17, "ts": 1})
    trade = {"seq": 1, "price": 1, "qty": 1, "taker_order_id": 1, "maker_order_id": 2,
             "taker_account": 5, "maker_account": 6, "taker_side": 0, "taker_fee": 0,
             "maker_fee": 0, "ts_ns": 1}
    out.append({**my_trades_message(t, 5, BTC.id, [trade]), "req_id": 18})
    return out


def ref_of_in(s, msg) -> list[int]:
    return [c["ref"] for c in commands(send(s, msg))]


def _shape(msg: dict) -> tuple:
    """Keys, plus the keys of nested records (balances entries, open_orders items)."""
    nested = ()
    if msg.get("balances"):
        nested = tuple(sorted(next(iter(msg["balances"].values()))))
    elif msg.get("orders"):
        nested = tuple(sorted(msg["orders"][0]))
    return tuple(sorted(set(msg) - {"req_id"})), nested


def test_reply_examples_have_the_produced_shape():
    produced: dict[str, set] = {}
    for m in _produced():
        produced.setdefault(m["type"], set()).add(_shape(m))
    documented = {m["type"] for m in REPLIES}
    assert documented == set(produced), "each message type needs a reply example"
    for m in REPLIES:
        assert _shape(m) in produced[m["type"]], m


def test_reply_examples_use_real_codes():
    for m in REPLIES:
        if m["type"] == "error":
            assert m["code"] in set(ErrorCode)
        if m["type"] == "reject":
            assert m["code"] in set(REJECT_CODES.values())
        if m["type"] == "cancelled":
            assert m["reason"] in set(CANCEL_REASONS.values())


def _table_codes(heading: str) -> list[str]:
    section = TEXT.split(heading, 1)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \|", section.split("\n\n|", 1)[1].split("\n\n", 1)[0],
                      re.M)
    return rows


def test_error_code_table_matches_the_code():
    codes = _table_codes("### Error codes")
    assert len(codes) == len(set(codes)) and set(codes) == {str(c) for c in ErrorCode}


def test_reject_code_table_matches_the_code():
    codes = _table_codes("### Reject codes")
    assert set(codes) == set(REJECT_CODES.values()) | {UNKNOWN_REJECT}
    assert set(REJECT_CODES) == set(RejectCode) - {RejectCode.OK}


def test_cancel_reason_table_matches_the_code():
    reasons = _table_codes("### Cancel reasons")
    assert set(reasons) == set(CANCEL_REASONS.values()) | {UNKNOWN_REASON}
    assert set(CANCEL_REASONS) == set(CancelReason)


def test_limits_and_close_codes_match_the_code():
    lim = GatewayLimits()
    section = TEXT.split("## 7. Limits and closing", 1)[1]
    assert f"| frame size | {lim.max_frame_bytes} bytes |" in section
    rate = f"{lim.rate_per_s} messages per second sustained, bursts of {lim.burst}"
    assert f"| rate | {rate} |" in section
    assert f"| requests awaiting the engine | {lim.max_pending} per connection |" in section
    snaps = f"{lim.snapshots_per_min} a minute per connection, bursts of {lim.snapshot_burst}"
    assert f"| book snapshots | {snaps} |" in section
    assert f"| unsent output | {lim.max_output_bytes} bytes per connection |" in section
    assert (f"| account | {lim.account_rate_per_s} messages per second over all its "
            f"connections to a gateway, bursts of {lim.account_burst} |") in section
    assert (f"| address | {lim.ip_connections} open connections to a gateway; "
            f"{lim.ip_anonymous_rate_per_s} messages per second while not logged in, "
            f"bursts of {lim.ip_anonymous_burst} |") in section
    assert (f"| failed logins | {lim.max_auth_failures} per connection; "
            f"{lim.ip_login_failures_per_min} a minute per address, "
            f"bursts of {lim.ip_login_failure_burst} |") in section
    for code in CloseCode:
        assert f"| {int(code)} (" in section
