"""Long client ids (up to 36 characters) against a live exchange: echoed exactly by every
reply and push, on the orders channel of the other gateway too, unique among the
account's live orders, and kept across a restart for open_orders, order_status and the
database's views (docs/protocol.md, section 2)."""
from __future__ import annotations

import os
import signal

import pytest

from ringex.client import (
    Ack, Cancelled, ClientError, Fill, Modified, Reject, connect,
)
from tests.e2e.live_fixtures import funded, run, trader
from tests.e2e.test_orders_channel import WATCHERS, _settled, _spread
from tests.faults.rig import Run, run_async

A = "3b241101-e2bb-4255-8caf-4136c566a962"
B = "6ecd8c99-4036-403d-bf84-cf8400f67836"
C = "d3c5a4b2-9f1e-4e7d-8c6b-5a4f3e2d1c0b"


@pytest.mark.timeout(120)
def test_a_36_character_id_is_echoed_everywhere_and_unique_among_live_orders(exchange):
    async def go():
        maker = await trader(exchange, USD="100000")
        taker = await trader(exchange, BTC="1")
        try:
            ack = await maker.place("BTC-USD", "buy", "0.03", "990", client_order_id=A)
            assert isinstance(ack, Ack) and ack.client_order_id == A
            (o,) = await maker.open_orders()
            assert o.client_order_id == A
            state = await maker.order_status(ack.order_id)
            assert (state.client_order_id, state.status) == (A, "open")
            assert (await maker.order_status(client_order_id=A)).order_id == ack.order_id

            dup = await maker.place("BTC-USD", "buy", "0.01", "980", client_order_id=A)
            assert isinstance(dup, Reject) and (dup.code, dup.client_order_id) == \
                ("duplicate_client_order_id", A)
            with pytest.raises(ClientError) as e:
                await maker.place("BTC-USD", "buy", "0.01", "980", client_order_id=A + "x")
            assert e.value.code == "invalid_client_order_id" and "1 to 36" in str(e.value)
            assert [x.order_id for x in await maker.open_orders()] == [ack.order_id]

            mod = await maker.modify("BTC-USD", ack.order_id, "990", "0.02")
            assert isinstance(mod, Modified) and mod.client_order_id == A
            await taker.place("BTC-USD", "sell", "0.01", "990")
            fill = await maker.next_event(Fill)
            assert (fill.order_id, fill.client_order_id) == (ack.order_id, A)
            gone = await maker.cancel("BTC-USD", client_order_id=A)
            assert isinstance(gone, Cancelled) and gone.client_order_id == A

            again = await maker.place("BTC-USD", "buy", "0.01", "980", client_order_id=A)
            assert isinstance(again, Ack) and again.order_id != ack.order_id    # free again
            done = await maker.order_status(ack.order_id)        # from the database
            assert (done.status, done.client_order_id) == ("cancelled", A)
            await maker.cancel("BTC-USD", again.order_id)
        finally:
            await maker.close()
            await taker.close()
    run(go())


@pytest.mark.timeout(120)
def test_the_orders_channel_shows_a_long_id_on_both_gateways(exchange):
    async def go():
        key, _ = await funded(exchange, USD="100000")
        before = _settled(exchange)
        watchers = [await connect(exchange.url, key) for _ in range(WATCHERS)]
        try:
            for w in watchers:
                await w.subscribe("orders")
            spread = _spread(exchange, before)
            assert sum(spread.values()) == WATCHERS and min(spread.values()) > 0, spread
            placer = await connect(exchange.url, key)
            ack = await placer.place("BTC-USD", "buy", "0.01", "900", client_order_id=B)
            for w in watchers:
                seen = await w.next_event(Ack)
                assert (seen.order_id, seen.client_order_id) == (ack.order_id, B)
            await placer.cancel("BTC-USD", ack.order_id)
            for w in watchers:
                assert (await w.next_event(Cancelled)).client_order_id == B
            await placer.close()
        finally:
            for w in watchers:
                await w.close()
    run(go())


async def _open_account(run_: Run) -> str:
    with run_.repo() as repo:
        account = repo.add_account("uuid-trader")
        key = repo.add_api_key(account)
    admin = await connect(run_.url, run_.admin_key)
    try:
        assert not isinstance(await admin.deposit(account, "USD", "100000"), Reject)
    finally:
        await admin.close()
    return key


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["stop", "crash"])
def test_a_restart_keeps_long_ids_for_open_orders_order_status_and_the_views(tmp_path, how):
    """``stop``: a clean stop; ``crash``: the writer is stopped while the orders are
    placed and everything is killed, so only the journal holds their texts and the
    restart's replay must bring them to the database."""
    exchange = Run(tmp_path / "data", gateways=1)
    try:
        exchange.start()
        key = run_async(_open_account(exchange))
        if how == "crash":
            os.kill(exchange.writer_pid, signal.SIGSTOP)

        async def place() -> list[int]:
            c = await connect(exchange.url, key)
            try:
                return [(await c.place("BTC-USD", "buy", "0.01", p, client_order_id=t)).order_id
                        for p, t in (("900", A), ("901", B), ("902", C))]
            finally:
                await c.close()

        a, b, c_ = run_async(place())
        if how == "crash":
            exchange.kill_group()
            with exchange.repo() as repo:
                assert repo._fetch("SELECT * FROM client_ids") == []   # the journal only
        else:
            assert exchange.stop() == 0, exchange.log()
        exchange.start()                   # a cold gateway: it learnt no text yet

        async def ask() -> None:
            c = await connect(exchange.url, key)
            try:                           # each first sight is read from the database
                assert (await c.modify("BTC-USD", c_, "902", "0.005")).client_order_id == C
                assert (await c.order_status(a)).client_order_id == A
                assert [(o.order_id, o.client_order_id) for o in await c.open_orders()] == \
                    [(a, A), (b, B), (c_, C)]
                assert (await c.cancel("BTC-USD", b)).client_order_id == B
            finally:
                await c.close()
        run_async(ask())
        with exchange.repo() as repo:
            rows = repo._fetch("SELECT order_id, client_order_id FROM orders_view "
                               "ORDER BY order_id")
        assert [(r["order_id"], r["client_order_id"]) for r in rows] == \
            [(a, A), (b, B), (c_, C)]
        assert exchange.stop() == 0, exchange.log()
    finally:
        exchange.cleanup()
