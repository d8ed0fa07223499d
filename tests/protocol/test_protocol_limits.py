"""Abuse handling: rate limit (fake clock), frame size, binary frames, overload."""
from __future__ import annotations

import pytest

from ringex.protocol.actions import Close, Reply
from ringex.protocol.session import SessionLimits, State
from ringex.protocol.ratelimit import TokenBucket
from ringex.records import EventKind as EK
from tests.protocol.test_protocol import (
    PLACE, FakeClock, anon, commands, err, event, logged_in, send,
)

PING = {"op": "ping"}


def test_bucket_should_allow_a_burst_then_refill_at_the_rate():
    b = TokenBucket(rate=10, burst=3, now_ns=0)
    assert [b.take(0) for _ in range(4)] == [True, True, True, False]
    assert b.tokens == -1 and not b.flooding
    assert not b.take(100_000_000)                 # +1 token pays the debt back to 0 ... -1
    assert b.take(300_000_000)                     # +2: 1 left after taking
    assert b.take(10**12) and b.tokens == 2        # long pause: capped at burst


def test_bucket_should_flag_a_debt_of_one_burst_as_a_flood():
    b = TokenBucket(rate=1, burst=2, now_ns=0)
    assert [b.take(0) for _ in range(4)] == [True, True, False, False]
    assert b.flooding


def test_bucket_should_refuse_nonsense_limits():
    with pytest.raises(ValueError):
        TokenBucket(0, 1, 0)


def test_should_drop_messages_over_the_rate_and_recover():
    clock = FakeClock()
    s = anon(clock=clock, limits=SessionLimits(rate_per_s=100, burst=5))
    for _ in range(5):
        assert send(s, PING)[0].message["type"] == "pong"
    acts = send(s, {"op": "ping", "req_id": 1})
    assert err(acts) == "rate_limited" and "req_id" not in acts[0].message
    clock.advance(0.02)                            # +2 tokens: debt 1 -> balance 1
    assert send(s, PING)[0].message["type"] == "pong"
    assert err(send(s, PING)) == "rate_limited"
    assert s.state is not State.CLOSED


def test_should_close_a_flooding_connection_with_1008():
    clock = FakeClock()
    s = logged_in(clock=clock, limits=SessionLimits(rate_per_s=1000, burst=10))
    results = [send(s, PLACE) for _ in range(20)]
    assert all(len(commands(r)) == 1 for r in results[:10])
    assert all(err(r) == "rate_limited" for r in results[10:19])
    last = results[19]
    assert last[0].message["code"] == "rate_limited"
    assert last[1] == Close(1008, "rate limit exceeded")
    assert s.state is State.CLOSED
    assert send(s, PING) == [] and s.receive_binary(b"x") == []
    assert s.event_to_messages(event(EK.ACK, ref=1)) == []


def test_should_count_a_rate_limited_client_that_keeps_pace_as_no_flood():
    clock = FakeClock()
    s = anon(clock=clock, limits=SessionLimits(rate_per_s=100, burst=5))
    for _ in range(1000):                          # exactly at the rate, forever
        clock.advance(0.01)
        assert send(s, PING)[0].message["type"] == "pong"


def test_should_close_oversized_frames_with_1009():
    s = anon(limits=SessionLimits(max_frame_bytes=64))
    ok = '{"op":"ping","req_id":"' + "x" * (64 - 25) + '"}'
    assert len(ok) == 64 and send(s, ok)[0].message["type"] == "pong"
    assert send(s, ok.encode())[0].message["type"] == "pong"
    acts = send(s, ok.replace("x", "xx", 1))
    assert acts[0].message["code"] == "frame_too_large"
    assert acts[1] == Close(1009, "frames are limited to 64 bytes")
    assert s.state is State.CLOSED


def test_should_measure_text_frames_in_utf8_bytes():
    s = anon(limits=SessionLimits(max_frame_bytes=64))
    text = '{"op":"ping","req_id":"' + "\u00e9" * 30 + '"}'    # 55 chars, 85 bytes
    assert len(text) <= 64
    assert isinstance(send(s, text)[1], Close)


def test_should_close_binary_frames_with_1003():
    s = logged_in()
    acts = s.receive_binary(b'{"op":"ping"}')
    assert acts[0] == Reply({"type": "error", "code": "binary_frame", "message":
                             "binary frames are not supported; send JSON text frames"})
    assert acts[1] == Close(1003, "binary frames are not supported; send JSON text frames")


def test_should_refuse_requests_beyond_max_pending_until_answers_arrive():
    s = logged_in(limits=SessionLimits(max_pending=3))
    refs = [commands(send(s, PLACE))[0]["ref"] for _ in range(2)]
    assert err(send(s, {"op": "open_orders"})) == "overloaded"   # needs 2 refs
    commands(send(s, {"op": "balances"}))
    assert err(send(s, PLACE)) == "overloaded"
    s.event_to_messages(event(EK.ACK, ref=refs[0], order_id=1, qty=1, leaves=1))
    assert len(commands(send(s, PLACE))) == 1
