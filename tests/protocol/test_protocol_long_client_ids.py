"""Long client ids (9 to 36 characters) on the wire: the CLIENT_ID command before the NEW,
the exact text in every reply and push, the gateway's bounded registry of texts, and the
answers that must wait for the database's texts (docs/protocol.md, section 2)."""
from __future__ import annotations

import pytest

from ringex.protocol.client_ids import pack_client_id, text_words, words_text
from ringex.protocol.client_texts import ClientIdTexts
from ringex.protocol.events import LOOKUP
from ringex.protocol.session import session_number
from ringex.records import INFO_MAKER, CancelReason, EventKind as EK, RejectCode
from ringex.records import CommandKind as CK
from tests.protocol.test_protocol import (
    ACCOUNT, BTC, PLACE, commands, err, event, logged_in, only_reply, send,
)
from tests.protocol.test_protocol_events import msgs

UUID = "123e4567-e89b-12d3-a456-426614174000"
KEY = pack_client_id(UUID)
OTHER = session_number(2, 9)


def place_long(s, req_id=3, text=UUID) -> tuple[dict, dict]:
    """The CLIENT_ID and NEW records of a place with a long id."""
    cid, new = commands(send(s, {**PLACE, "req_id": req_id, "client_order_id": text}))
    return cid, new


def ack(ref, order_id=42, key=KEY, session=None):
    extra = {} if session is None else {"session": session}
    return event(EK.ACK, ref=ref, order_id=order_id, other_id=key, price=3_000_000, qty=5000,
                 leaves=5000, symbol=BTC.id, seq=5, **extra)


def client_id_event(text=UUID, session=OTHER, account=ACCOUNT):
    w = text_words(text)
    return event(EK.CLIENT_ID, session=session, account=account, order_id=w[0],
                 other_id=w[1], price=w[2], qty=w[3], leaves=w[4])


def test_a_long_id_goes_to_the_engine_as_its_text_then_the_new_that_uses_its_key():
    s = logged_in()
    cid, new = place_long(s)
    assert (cid["kind"], new["kind"]) == (CK.CLIENT_ID, CK.NEW)
    assert cid["ref"] == new["ref"] and (cid["account"], cid["session"]) == (
        new["account"], new["session"])
    words = [cid[f] for f in ("order_id", "client_order_id", "price", "qty", "ts_ns")]
    assert words_text(words) == UUID
    assert new["client_order_id"] == KEY < 0


def test_a_short_id_needs_no_client_id_command():
    s = logged_in()
    (new,) = commands(send(s, {**PLACE, "client_order_id": "12345678"}))
    assert new["kind"] == CK.NEW and new["client_order_id"] > 0


@pytest.mark.parametrize("bad", ["x" * 37, "", "a b" * 5, "caf\u00e9-0123456789"])
def test_a_bad_client_id_is_refused_and_nothing_is_sent(bad):
    s = logged_in()
    actions = send(s, {**PLACE, "req_id": 1, "client_order_id": bad})
    assert err(actions) == "invalid_client_order_id"
    if len(bad) == 37:
        assert "1 to 36" in only_reply(actions)["message"]
    assert s.pending_count() == 0


def test_a_36_character_id_is_echoed_on_ack_fill_modify_and_cancel():
    s = logged_in()
    _, new = place_long(s)
    (m,) = msgs(s, ack(new["ref"]))
    assert (m["type"], m["client_order_id"], m["req_id"]) == ("ack", UUID, 3)
    fill = event(EK.FILL, order_id=42, other_id=77, price=3_000_000, qty=1000, leaves=4000,
                 symbol=BTC.id, seq=7, info=INFO_MAKER)
    assert msgs(s, fill)[0]["client_order_id"] == UUID
    (mod,) = commands(send(s, {"op": "modify", "symbol": "BTC-USD", "order_id": 42,
                               "price": "30000.00", "qty": "0.2", "req_id": 6}))
    (m,) = msgs(s, event(EK.MODIFIED, ref=mod["ref"], order_id=42, other_id=KEY,
                         price=3_000_000, qty=2000, leaves=2000, symbol=BTC.id))
    assert (m["type"], m["client_order_id"]) == ("modified", UUID)
    (can,) = commands(send(s, {"op": "cancel", "symbol": "BTC-USD", "client_order_id": UUID,
                               "req_id": 7}))
    assert can["client_order_id"] == KEY           # cancel by the text: its key
    (m,) = msgs(s, event(EK.CANCELLED, ref=can["ref"], order_id=42, other_id=KEY,
                         price=3_000_000, qty=2000, symbol=BTC.id, info=CancelReason.USER))
    assert (m["type"], m["client_order_id"], m["req_id"]) == ("cancelled", UUID, 7)


def test_a_duplicate_reject_shows_the_long_id():
    s = logged_in()
    _, new = place_long(s)
    (m,) = msgs(s, event(EK.REJECT, ref=new["ref"], other_id=KEY, price=3_000_000, qty=5000,
                         symbol=BTC.id, seq=9, info=RejectCode.DUPLICATE_CLIENT_ORDER_ID))
    assert (m["code"], m["client_order_id"]) == ("duplicate_client_order_id", UUID)


def test_the_orders_channel_shows_a_long_id_another_gateway_placed():
    texts = ClientIdTexts()
    s = logged_in(client_ids=texts)
    send(s, {"op": "subscribe", "channel": "orders"})
    texts.learn_event(client_id_event().item())        # the pump does this for every one
    (m,) = s.account_event_to_messages(ack(5, session=OTHER))
    assert (m["type"], m["client_order_id"]) == ("ack", UUID)


def _open_orders(s, key):
    q, b = (c["ref"] for c in commands(send(s, {"op": "open_orders", "req_id": 9})))
    msgs(s, event(EK.OPEN_ORDER, ref=q, order_id=1, other_id=key, price=3_000_000, qty=10,
                  leaves=10, symbol=BTC.id))
    return msgs(s, event(EK.BALANCE, ref=b, symbol=0))


def test_open_orders_shows_known_long_ids_at_once():
    texts = ClientIdTexts()
    texts.learn(ACCOUNT, KEY, UUID)
    (m,) = _open_orders(logged_in(client_ids=texts), KEY)
    assert m["type"] == "open_orders" and m["orders"][0]["client_order_id"] == UUID


def test_open_orders_with_an_unknown_long_id_goes_to_the_gateway_to_read_it():
    (m,) = _open_orders(logged_in(), KEY)          # a cold gateway (after a restart)
    assert m["type"] == LOOKUP and m["resolve"]["req_id"] == 9
    assert m["resolve"]["orders"][0]["client_order_id"] == KEY     # still the key


def test_a_cancel_by_order_id_of_an_unknown_long_id_goes_to_the_gateway_to_read_it():
    s = logged_in()                                # a cold gateway (after a restart)
    (can,) = commands(send(s, {"op": "cancel", "symbol": "BTC-USD", "order_id": 42,
                               "req_id": 7}))
    cancelled = event(EK.CANCELLED, ref=can["ref"], order_id=42, other_id=KEY,
                      price=3_000_000, qty=2000, symbol=BTC.id, info=CancelReason.USER)
    (m,) = msgs(s, cancelled)
    assert m["type"] == LOOKUP and m["resolve"]["type"] == "cancelled"
    assert (m["resolve"]["client_order_id"], m["resolve"]["req_id"]) == (KEY, 7)
    # a push (no request of this connection) goes as it is
    cancelled["ref"] = 0
    (m,) = msgs(s, cancelled)
    assert (m["type"], m["client_order_id"]) == ("cancelled", None)


def test_the_registry_of_texts_is_bounded_and_drops_the_oldest_first():
    texts = ClientIdTexts(capacity=3)
    keys = [pack_client_id(f"order-{i:06d}") for i in range(5)]
    for i, k in enumerate(keys):
        texts.learn(ACCOUNT, k, f"order-{i:06d}")
    assert len(texts) == 3
    assert [texts.text(ACCOUNT, k) for k in keys] == [None, None, "order-000002",
                                                      "order-000003", "order-000004"]
    assert texts.text(ACCOUNT + 1, keys[4]) is None            # texts are per account
    assert texts.text(ACCOUNT, pack_client_id("short")) == "short"
