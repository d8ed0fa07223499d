"""Abuse handling: rate limit (fake clock), frame size, binary frames, overload."""
from __future__ import annotations

from fractions import Fraction

import pytest

from ringex.protocol.actions import Authenticate, Close, Reply, Subscribe
from ringex.config import GatewayLimits
from ringex.protocol.session import State
from ringex.protocol.ratelimit import Budgets, TokenBucket
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
    s = anon(clock=clock, limits=GatewayLimits(rate_per_s=100, burst=5))
    for _ in range(5):
        assert send(s, PING)[0].message["type"] == "pong"
    acts = send(s, {"op": "ping", "req_id": 1})
    assert err(acts) == "rate_limited" and acts[0].message["req_id"] == 1
    clock.advance(0.02)                            # +2 tokens: debt 1 -> balance 1
    assert send(s, PING)[0].message["type"] == "pong"
    assert err(send(s, PING)) == "rate_limited"
    assert s.state is not State.CLOSED


def test_should_close_a_flooding_connection_with_1008():
    clock = FakeClock()
    s = logged_in(clock=clock, limits=GatewayLimits(rate_per_s=1000, burst=10))
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
    s = anon(clock=clock, limits=GatewayLimits(rate_per_s=100, burst=5))
    for _ in range(1000):                          # exactly at the rate, forever
        clock.advance(0.01)
        assert send(s, PING)[0].message["type"] == "pong"


def test_should_close_oversized_frames_with_1009():
    s = anon(limits=GatewayLimits(max_frame_bytes=64))
    ok = '{"op":"ping","req_id":"' + "x" * (64 - 25) + '"}'
    assert len(ok) == 64 and send(s, ok)[0].message["type"] == "pong"
    assert send(s, ok.encode())[0].message["type"] == "pong"
    acts = send(s, ok.replace("x", "xx", 1))
    assert acts[0].message["code"] == "frame_too_large"
    assert acts[1] == Close(1009, "frames are limited to 64 bytes")
    assert s.state is State.CLOSED


def test_should_measure_text_frames_in_utf8_bytes():
    s = anon(limits=GatewayLimits(max_frame_bytes=64))
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
    s = logged_in(limits=GatewayLimits(max_pending=3))
    refs = [commands(send(s, PLACE))[0]["ref"] for _ in range(2)]
    assert err(send(s, {"op": "open_orders"})) == "overloaded"   # needs 2 refs
    commands(send(s, {"op": "balances"}))
    assert err(send(s, PLACE)) == "overloaded"
    s.event_to_messages(event(EK.ACK, ref=refs[0], order_id=1, qty=1, leaves=1))
    assert len(commands(send(s, PLACE))) == 1


# ---------------------------------------------------------------- book snapshots
BOOK = {"op": "subscribe", "channel": "book", "symbol": "BTC-USD"}


def _subscribe_actions(acts) -> list:
    return [type(a).__name__ for a in acts]


def test_bucket_should_take_fractional_rates_and_say_when_to_retry():
    b = TokenBucket(rate=Fraction(30, 60), burst=2, now_ns=0)     # one token per 2 s
    assert b.try_take(0) and b.try_take(0) and not b.try_take(0)
    assert b.tokens == 0                                           # a refusal costs nothing
    assert b.retry_after_ms(0) == 2000 and b.retry_after_ms(1_500_000_000) == 500
    assert not b.try_take(1_999_999_999) and b.try_take(2_000_000_000)


def test_should_answer_a_repeated_subscribe_without_a_new_snapshot():
    s = anon()
    assert _subscribe_actions(send(s, BOOK)) == ["Reply", "Subscribe"]
    for _ in range(50):                            # no snapshot, no budget spent
        acts = send(s, BOOK)
        assert _subscribe_actions(acts) == ["Reply"]
        assert acts[0].message["type"] == "subscribed"
    assert _subscribe_actions(send(s, {**BOOK, "channel": "trades"})) == ["Reply", "Subscribe"]


def test_should_send_a_fresh_snapshot_on_resync():
    s = anon()
    send(s, BOOK)
    assert _subscribe_actions(send(s, {**BOOK, "resync": True})) == ["Reply", "Subscribe"]
    assert err(send(s, {**BOOK, "resync": "yes"})) == "bad_request"


@pytest.mark.parametrize("cycle", ["resync", "unsubscribe"])
def test_should_budget_book_snapshots_per_connection(cycle):
    """Resyncing, or leaving and subscribing again, cannot get more snapshots than the
    budget; a refused subscribe changes nothing and says when to retry."""
    clock = FakeClock()
    lim = GatewayLimits(snapshots_per_min=6, snapshot_burst=3)     # one every 10 s
    s = anon(clock=clock, limits=lim)

    def again():
        if cycle == "unsubscribe":
            send(s, {**BOOK, "op": "unsubscribe"})
            return send(s, BOOK)
        return send(s, {**BOOK, "resync": True, "req_id": "r"})

    assert _subscribe_actions(send(s, BOOK)) == ["Reply", "Subscribe"]
    assert [_subscribe_actions(again()) for _ in range(2)] == [["Reply", "Subscribe"]] * 2
    refused = again()
    assert err(refused) == "rate_limited"
    msg = refused[0].message
    assert msg["limit"] == "book_snapshots" and msg["retry_after_ms"] == 10_000
    assert not any(isinstance(a, Subscribe) for a in refused)
    assert (("book", "BTC-USD") in s.subscriptions) == (cycle == "resync")
    clock.advance(10)
    assert _subscribe_actions(again()) == ["Reply", "Subscribe"]
    assert s.state is not State.CLOSED


def test_rate_limited_says_which_limit_and_when_to_retry():
    clock = FakeClock()
    s = anon(clock=clock, limits=GatewayLimits(rate_per_s=100, burst=2))
    send(s, PING)
    send(s, PING)
    msg = send(s, PING)[0].message               # in debt by one: two tokens to earn
    assert (msg["code"], msg["limit"], msg["retry_after_ms"]) == ("rate_limited", "messages", 20)


# ---------------------------------------------------------------- shared budgets
def _shared(clock, **limits):
    lim = GatewayLimits(**limits)
    return lim, Budgets(lim)


def test_should_budget_an_account_across_its_connections():
    clock = FakeClock()
    lim, budgets = _shared(clock, account_rate_per_s=10, account_burst=4)
    a = logged_in(5, clock=clock, limits=lim, budgets=budgets, address=b"\x01")
    b = logged_in(5, clock=clock, limits=lim, budgets=budgets, address=b"\x02")
    other = logged_in(6, clock=clock, limits=lim, budgets=budgets, address=b"\x01")
    assert [len(commands(send(s, PLACE))) for s in (a, b, a, b)] == [1, 1, 1, 1]
    refused = send(a, PLACE)
    assert err(refused) == "rate_limited" and refused[0].message["limit"] == "account"
    assert refused[0].message["retry_after_ms"] == 100
    assert err(send(b, PLACE)) == "rate_limited"            # the same account: the same budget
    assert len(commands(send(other, PLACE))) == 1           # another account: untouched
    clock.advance(0.1)
    assert len(commands(send(b, PLACE))) == 1
    assert a.state is not State.CLOSED and b.state is not State.CLOSED   # no debt, no close


def test_should_budget_the_anonymous_connections_of_an_address():
    clock = FakeClock()
    lim, budgets = _shared(clock, ip_anonymous_rate_per_s=10, ip_anonymous_burst=3)
    conns = [anon(clock=clock, limits=lim, budgets=budgets, address=b"\x0a\x00\x00\x01")
             for _ in range(3)]
    assert [send(c, PING)[0].message["type"] for c in conns] == ["pong"] * 3
    refused = send(conns[0], PING)
    assert err(refused) == "rate_limited" and refused[0].message["limit"] == "address"
    elsewhere = anon(clock=clock, limits=lim, budgets=budgets, address=b"\x0a\x00\x00\x02")
    assert send(elsewhere, PING)[0].message["type"] == "pong"
    conns[1].authenticated(7)                                # logged in: its account's budget
    assert send(conns[1], PING)[0].message["type"] == "pong"


def test_should_stop_checking_logins_of_an_address_that_keeps_failing():
    """Login spraying: past the address's failure budget a login is refused unchecked
    (no key lookup), and each connection is still closed after its third failure."""
    clock = FakeClock()
    lim, budgets = _shared(clock, ip_login_failures_per_min=6, ip_login_failure_burst=2)
    conns = [anon(clock=clock, limits=lim, budgets=budgets, address=b"\x01")
             for _ in range(3)]
    login = {"op": "login", "api_key": "wrong", "req_id": 1}
    for c in conns[:2]:
        (auth,) = send(c, login)
        assert isinstance(auth, Authenticate)
        assert err(c.auth_failed()) == "auth_failed"
    refused = send(conns[2], login)                        # budget spent: not checked
    assert not any(isinstance(a, Authenticate) for a in refused)
    assert err(refused) == "rate_limited"
    assert refused[0].message["limit"] == "login_failures"
    assert refused[0].message["retry_after_ms"] == 10_000
    assert err(send(conns[2], login)) == "rate_limited"
    last = send(conns[2], login)                           # third strike: closed
    assert last[-1] == Close(1008, "too many failed logins")
    clock.advance(10)
    fresh = anon(clock=clock, limits=lim, budgets=budgets, address=b"\x01")
    assert isinstance(send(fresh, login)[0], Authenticate)


def test_budgets_forget_idle_entries_when_the_tables_grow():
    clock = FakeClock()
    budgets = Budgets(GatewayLimits(), sweep_at=4)
    for a in range(4):
        budgets.account(a, clock()).take(clock())          # all spent a little
        budgets.address(bytes([a]), clock())               # untouched: idle
    clock.advance(60)                                       # everything refilled
    budgets.account(99, clock())
    budgets.address(b"\x63", clock())
    assert len(budgets._accounts) == 1 and len(budgets._addresses) == 1


def test_every_refused_request_is_answered_with_its_req_id():
    """The gateway stall of the persistence work: a request/reply client a little above its
    rate got ``rate_limited`` errors without ``req_id`` once its burst was spent (about
    4 s at 1,250 a second), so it waited for good for replies that never came. Every
    refusal of a request that names itself must name it back."""
    clock = FakeClock()
    lim = GatewayLimits(rate_per_s=1000, burst=1000, account_rate_per_s=1100,
                        account_burst=1100)
    s = logged_in(clock=clock, limits=lim, budgets=Budgets(lim), address=b"\x01")
    limited = 0
    for i in range(6250):                          # 5 s at 1,250 a second
        clock.advance(0.0008)
        (reply,) = send(s, {"op": "ping", "req_id": i})
        assert reply.message["req_id"] == i            # answered, whatever the answer
        limited += reply.message["type"] == "error"
        assert reply.message.get("code", "rate_limited") == "rate_limited"
    assert limited > 1000 and s.state is not State.CLOSED
    assert err(send(s, b'{"op": "ping", "req_id": "x"')) in ("rate_limited", "bad_json")
