"""A ReconnectingClient rides through a restart of the whole exchange (``ringex run``
stopped with SIGTERM, started again on the same data dir, on another port behind the same
address): the gateway's goodbye (1001), retries while nothing listens, then back with its
book and the fill it missed (docs/sdk.md, "Reconnecting")."""
from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.parse import urlparse

import pytest

from ringex.client import (
    Backoff, BookSnapshot, MyTrade, OrderState, Reconnected, Reject, connect,
)
from tests.e2e.relay import Relay
from tests.e2e.live_fixtures import bids_become
from tests.faults.rig import Run, make_accounts, run_async

D = Decimal


async def _deposit(run: Run, account: int, asset: str, amount: str) -> None:
    admin = await connect(run.url, run.admin_key)
    try:
        assert not isinstance(await admin.deposit(account, asset, amount), Reject)
    finally:
        await admin.close()


@pytest.mark.timeout(300)
def test_a_reconnecting_client_comes_back_after_the_exchange_restarts(tmp_path):
    run = Run(tmp_path / "data")

    async def go():
        (maker, maker_key), (taker, taker_key) = make_accounts(run, 2).items()
        await _deposit(run, maker, "USD", "10000")
        await _deposit(run, taker, "BTC", "1")
        relay = await Relay(urlparse(run.url).port).start()
        mk = await connect(relay.url, maker_key, reconnect=Backoff(first=0.05, cap=0.5))
        try:
            await mk.subscribe("book", "BTC-USD")
            await mk.next_event(BookSnapshot)
            a = await mk.place("BTC-USD", "buy", "0.02", "1000", client_order_id="ra")

            await asyncio.to_thread(run.stop)            # the gateway says goodbye: 1001
            await relay.refusals(1)                      # and nothing listens
            relay.refuse()
            await asyncio.to_thread(run.start)
            relay.upstream = urlparse(run.url).port
            taker_c = await connect(run.url, taker_key)  # a trade the maker cannot hear
            await taker_c.place("BTC-USD", "sell", "0.01", "1000")
            await taker_c.close()
            relay.admit()

            note = await mk.next_event(Reconnected)
            assert note.close_code == 1001                # the gateway's "going away"
            got = [await mk.next_event(timeout=30)]
            while not isinstance(got[-1], OrderState) or \
                    not any(isinstance(e, BookSnapshot) for e in got):
                got.append(await mk.next_event(timeout=30))
            missed = next(e for e in got if isinstance(e, MyTrade))
            state = next(e for e in got if isinstance(e, OrderState))
            assert (missed.order_id, missed.qty) == (a.order_id, D("0.0100"))
            assert (state.order_id, state.status, state.leaves, state.client_order_id) == \
                (a.order_id, "partially_filled", D("0.0100"), "ra")
            book = next(e for e in got if isinstance(e, BookSnapshot))
            await bids_become(mk, book, [(D("1000.00"), D("0.0100"))])
        finally:
            await mk.close()
            await relay.close()

    try:
        run.start()
        run_async(go(), timeout=240)
        assert run.stop() == 0
    finally:
        run.cleanup()
