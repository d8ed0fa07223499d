"""Attacks on a live gateway (docs/protocol.md section 7): each attacker is throttled or
closed with the documented code, every request of a victim is answered, and the
exchange's state is what the victim's own requests made it."""
from __future__ import annotations

import asyncio
import time

import pytest

from ringex.client import ClientError, connect
from ringex.config import GatewayLimits
from tests.e2e.live_exchange import LiveExchange
from tests.e2e.live_fixtures import Raw, funded, run

LIMITS = GatewayLimits()


async def _deep_book(exchange, levels: int = 1500) -> Raw:
    """A maker with ``levels`` asks on ETH-USD (a snapshot of ~40 KB)."""
    key, _ = await funded(exchange, ETH="10")
    maker = await Raw.open(exchange.url, key)
    for i in range(levels):
        await maker.send({"op": "place", "symbol": "ETH-USD", "side": "sell",
                          "price": f"{10000 + i}.00", "qty": "0.001"})
        if i % 500 == 499:
            await maker.quiet(0.6)                  # stay under the rate limit
    await maker.quiet(0.5)
    return maker


async def _victim_places(exchange, n: int) -> list[dict]:
    """A logged-in client placing and cancelling ``n`` orders one after another; the
    replies, in order."""
    key, _ = await funded(exchange, USD="100000")
    victim = await Raw.open(exchange.url, key)
    replies = []
    for i in range(n):
        ack = await victim.ask({"op": "place", "symbol": "BTC-USD", "side": "buy",
                                "price": "100", "qty": "0.001", "req_id": i}, timeout=30)
        replies.append(ack)
        if ack["type"] == "ack":
            replies.append(await victim.ask({"op": "cancel", "symbol": "BTC-USD",
                                             "order_id": ack["order_id"],
                                             "req_id": f"c{i}"}, timeout=30))
    await victim.close()
    return replies


def test_a_snapshot_flood_is_throttled_and_does_not_stall_others(exchange):
    async def go():
        maker = await _deep_book(exchange)
        attackers = [await Raw.open(exchange.url) for _ in range(4)]   # not logged in
        sub = {"op": "subscribe", "channel": "book", "symbol": "ETH-USD", "resync": True}
        counts = [[0, 0] for _ in attackers]         # per attacker: snapshots, refusals
        stop = asyncio.Event()

        def count(i: int, msgs: list[dict]) -> None:
            for m in msgs:
                counts[i][0] += m["type"] == "book_snapshot"
                counts[i][1] += m.get("limit") == "book_snapshots"

        async def flood(i: int, a: Raw) -> None:
            while not stop.is_set():
                await a.send(sub)
                count(i, await a.quiet(0.01))        # 100 subscribes a second at most
            count(i, await a.quiet(0.5))

        started = time.monotonic()
        tasks = [asyncio.create_task(flood(i, a)) for i, a in enumerate(attackers)]
        replies = await _victim_places(exchange, 30)
        deadline = time.monotonic() + 30             # until every attacker is refused
        while not all(r for _, r in counts) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        assert [r["type"] for r in replies] == ["ack", "cancelled"] * 30
        allowed = LIMITS.snapshot_burst + elapsed * LIMITS.snapshots_per_min / 60 + 1
        for snapshots, refused in counts:
            assert 1 <= snapshots <= allowed and refused > 0, (counts, elapsed)
        for a in attackers:
            assert (await a.ask({"op": "ping", "req_id": "alive"}))["type"] == "pong"
            await a.close()
        await maker.ask({"op": "cancel_all", "req_id": "done"})
        await maker.close()
    run(go(), 120)


def test_one_account_cannot_flood_from_many_connections(exchange):
    async def go():
        key, account = await funded(exchange, USD="1000000")
        conns = [await Raw.open(exchange.url, key) for _ in range(10)]
        order = {"op": "place", "symbol": "BTC-USD", "side": "buy", "price": "100",
                 "qty": "0.001", "tif": "ioc"}
        started = time.monotonic()

        async def flood(c: Raw) -> tuple[int, int]:
            for _ in range(10):                      # 1,000 a second: its own limit
                for _ in range(100):
                    await c.send(order)
                await asyncio.sleep(0.1)
            answered = limited = 0
            for m in await c.quiet(1.0):
                answered += m["type"] in ("ack", "reject")
                limited += m.get("limit") == "account"
            return answered, limited

        tasks = [asyncio.create_task(flood(c)) for c in conns]
        replies = await _victim_places(exchange, 20)
        counts = await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        assert [r["type"] for r in replies] == ["ack", "cancelled"] * 20
        answered = sum(a for a, _ in counts)
        limited = sum(x for _, x in counts)
        assert answered + limited == 10_000             # every message got its answer
        gateways = exchange.gateways                    # budgets are per gateway process
        budget = gateways * (LIMITS.account_burst + elapsed * LIMITS.account_rate_per_s)
        assert limited > 0 and answered <= budget, (answered, limited, elapsed)
        for c in conns:
            await c.close()
    run(go(), 120)


@pytest.fixture
def own_exchange():
    """A fresh exchange: this test spends the failed-login budget of 127.0.0.1."""
    ex = LiveExchange().start()
    try:
        yield ex
    finally:
        assert ex.close() == 0 and not ex.leftovers, ex.log_tail()


def test_login_spraying_from_one_address_is_not_checked_past_its_budget(own_exchange):
    async def go():
        checked = unchecked = closed = 0
        started = time.monotonic()
        for _ in range(12):                             # 36 wrong keys from 127.0.0.1
            c = await Raw.open(own_exchange.url)
            for i in range(3):
                reply = await c.ask({"op": "login", "api_key": f"rx_wrong{i}", "req_id": i})
                checked += reply["message"] == "unknown api key"     # looked up
                unchecked += reply.get("limit") == "login_failures"
            await c.quiet(0.2)
            closed += c.ws.close_code == 1008
            await c.close()
        assert closed == 12                             # three strikes, as before
        refill = (time.monotonic() - started) * LIMITS.ip_login_failures_per_min / 60
        assert checked <= LIMITS.ip_login_failure_burst + refill + 1 and unchecked >= 10
        key = own_exchange.add_account("late")          # a handshake key: refused too
        with pytest.raises(Exception, match="429"):
            await Raw.open(own_exchange.url, key)
    run(go(), 120)


def test_a_client_past_its_rate_gets_an_answer_to_every_request():
    """The stall reproduction: a request/reply client a little faster than its limit
    once got refusals it could not match to its requests, and then no answer at all."""
    exchange = LiveExchange(env={"RINGEX_SESSION_LIMITS": "rate_per_s=200,burst=50"}).start()

    async def go():
        c = await connect(exchange.url, timeout=5)
        outcomes: dict[str, int] = {}
        for _ in range(600):                            # flat out, pausing when told
            try:
                await c.ping()
                outcome = "pong"
            except ClientError as exc:
                outcome = exc.code
                if exc.reply and "retry_after_ms" in exc.reply:   # as told: wait, go on
                    await asyncio.sleep(exc.reply["retry_after_ms"] / 1000)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        await c.close()
        return outcomes
    try:
        outcomes = run(go(), 60)
        assert set(outcomes) == {"pong", "rate_limited"}, outcomes   # never "timeout"
        assert outcomes["rate_limited"] > 0 and outcomes["pong"] >= 50
    finally:
        assert exchange.close() == 0 and not exchange.leftovers, exchange.log_tail()
