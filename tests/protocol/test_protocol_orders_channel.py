"""The ``orders`` channel: every order event of the account, whoever placed it
(docs/protocol.md, subscribe)."""
from __future__ import annotations

from ringex.protocol.actions import Reply, Subscribe, Unsubscribe
from ringex.protocol.client_ids import pack_client_id
from ringex.protocol.session import session_number
from ringex.records import INFO_MAKER, EventKind as EK
from tests.protocol.test_protocol import (
    ACCOUNT, BTC, ENGINE_TS, SID, anon, commands, err, event, logged_in, send,
)

OTHER = session_number(2, 9)          # another connection of the account, on gateway 2


def streaming():
    s = logged_in()
    acts = send(s, {"op": "subscribe", "channel": "orders", "req_id": 1})
    assert acts == [Reply({"type": "subscribed", "channel": "orders", "req_id": 1}),
                    Subscribe("orders", "")]
    return s


def test_should_stream_orders_only_to_logged_in_connections_without_a_symbol():
    assert err(send(anon(), {"op": "subscribe", "channel": "orders"})) == "not_authenticated"
    s = logged_in()
    assert err(send(s, {"op": "subscribe", "channel": "orders",
                        "symbol": "BTC-USD"})) == "bad_request"
    s = streaming()
    assert send(s, {"op": "subscribe", "channel": "orders"}) == \
        [Reply({"type": "subscribed", "channel": "orders"})]            # once only


def test_should_push_another_connections_order_events_without_req_id():
    s = streaming()
    ack = event(EK.ACK, session=OTHER, ref=5, order_id=42, other_id=pack_client_id("bot-7"),
                price=3_000_000, qty=5000, leaves=5000, symbol=BTC.id, seq=3)
    assert s.account_event_to_messages(ack) == [{
        "type": "ack", "symbol": "BTC-USD", "order_id": 42, "client_order_id": "bot-7",
        "side": "buy", "price": "30000.00", "qty": "0.5000", "ts": ENGINE_TS}]
    fill = event(EK.FILL, session=OTHER, order_id=42, other_id=77, price=3_000_000,
                 qty=2000, leaves=3000, symbol=BTC.id, seq=9, info=INFO_MAKER)
    (m,) = s.account_event_to_messages(fill)
    assert (m["type"], m["client_order_id"], m["trade_id"], m["leaves"]) == \
        ("fill", "bot-7", 8, "0.3000") and "req_id" not in m
    # its own events come the usual way; other accounts' and query answers never
    assert s.account_event_to_messages(event(EK.ACK, session=SID, ref=1)) == []
    assert s.account_event_to_messages(event(EK.ACK, session=OTHER,
                                             account=ACCOUNT + 1)) == []
    assert s.account_event_to_messages(event(EK.BALANCE, session=OTHER)) == []
    assert s.account_event_to_messages(event(EK.REJECT, session=OTHER, symbol=BTC.id)) == []


def test_should_stop_streaming_after_unsubscribe():
    s = streaming()
    assert send(s, {"op": "unsubscribe", "channel": "orders", "req_id": 2}) == [
        Unsubscribe("orders", ""),
        Reply({"type": "unsubscribed", "channel": "orders", "req_id": 2})]
    ack = event(EK.ACK, session=OTHER, order_id=42, symbol=BTC.id, seq=3)
    assert s.account_event_to_messages(ack) == []


def test_fills_of_orders_from_an_open_orders_answer_carry_their_client_ids():
    """A reconnected client subscribes, then asks open_orders (docs/protocol.md): the
    fills of the orders in that answer name their client ids, short and long, though
    this connection never saw their acks."""
    s = streaming()
    long_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    texts = s._events._texts                          # the gateway's (here, the session's)
    query = [c["ref"] for c in commands(send(s, {"op": "open_orders", "req_id": 3}))][0]
    for order_id, key in ((42, pack_client_id("bot-7")), (43, pack_client_id(long_id))):
        s.event_to_messages(event(EK.OPEN_ORDER, ref=query, order_id=order_id,
                                  other_id=key, price=3_000_000, qty=5000, leaves=5000,
                                  symbol=BTC.id, seq=1))
    texts.learn(ACCOUNT, pack_client_id(long_id), long_id)   # the gateway read it meanwhile
    for order_id, want in ((42, "bot-7"), (43, long_id)):
        fill = event(EK.FILL, session=OTHER, order_id=order_id, other_id=77, price=3_000_000,
                     qty=5000, leaves=0, symbol=BTC.id, seq=9, info=INFO_MAKER)
        (m,) = s.account_event_to_messages(fill)
        assert (m["type"], m["client_order_id"]) == ("fill", want)
    assert not s._subs.stream.orders                            # both done: forgotten


def test_open_orders_answers_teach_nothing_without_the_orders_channel():
    s = logged_in()
    query = [c["ref"] for c in commands(send(s, {"op": "open_orders", "req_id": 3}))][0]
    s.event_to_messages(event(EK.OPEN_ORDER, ref=query, order_id=42, other_id=5,
                              symbol=BTC.id, seq=1))
    assert 42 not in s.orders       # nothing would ever end the entry: no leak
