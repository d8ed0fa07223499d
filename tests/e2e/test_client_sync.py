"""ringex.client.sync: the same requests, blocking, for scripts; pushes keep arriving
between calls; errors are the async client's; closing stops its thread."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from ringex.client import Ack, BookSnapshot, Cancelled, ClientError, Fill, Subscribed, Trade
from ringex.client.sync import SyncClient, connect
from tests.e2e.live_exchange import free_port
from tests.e2e.live_fixtures import funded, run

D = Decimal


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ringex-client"]


def test_a_sync_client_places_trades_and_reads_its_pushes(exchange):
    maker_key, _ = run(funded(exchange, USD="10000"))
    taker_key, _ = run(funded(exchange, BTC="1"))
    threads_before = len(loop_threads())
    with connect(exchange.url, maker_key, login="message") as maker, \
            connect(exchange.url, taker_key) as taker:
        assert isinstance(maker, SyncClient) and isinstance(maker.account, int)
        assert isinstance(maker.subscribe("trades", "BTC-USD"), Subscribed)
        ack = maker.place("BTC-USD", "buy", "0.02", "1000", client_order_id="s1")
        assert isinstance(ack, Ack) and ack.qty == D("0.0200")
        assert isinstance(taker.place("BTC-USD", "sell", "0.01", type="market"), Ack)
        got: dict[type, object] = {}
        for ev in maker.events():         # market data and fills take separate paths
            got[type(ev)] = ev
            if Fill in got and Trade in got:
                break
        fill, trade = got[Fill], got[Trade]
        assert isinstance(fill, Fill) and isinstance(trade, Trade)
        assert (fill.order_id, fill.leaves, fill.client_order_id) == (ack.order_id,
                                                                      D("0.0100"), "s1")
        assert trade.trade_id == fill.trade_id
        assert maker.balances()["BTC"].available == D("0.0100")
        assert [o.order_id for o in maker.open_orders()] == [ack.order_id]
        gone = maker.cancel("BTC-USD", client_order_id="s1")
        assert isinstance(gone, Cancelled) and gone.qty == D("0.0100")
        with pytest.raises(ClientError) as e:
            maker.place("BTC-USD", "buy", "0.01", "1000.001")
        assert e.value.code == "off_tick"
        assert len(loop_threads()) == threads_before + 2
    assert len(loop_threads()) == threads_before          # close() stopped them


def test_a_sync_client_reconnecting_subscribes_and_closes(exchange):
    key, _ = run(funded(exchange))
    with connect(exchange.url, key, reconnect=True) as c:
        c.subscribe("book", "BTC-USD")
        assert isinstance(c.next_event(BookSnapshot, timeout=10), BookSnapshot)
        assert c.ping()["type"] == "pong"


def test_a_sync_connect_that_fails_raises_and_leaves_no_thread(exchange):
    threads_before = len(loop_threads())
    with pytest.raises(OSError):
        connect(f"ws://127.0.0.1:{free_port()}/ws", "key", timeout=2)
    with pytest.raises(ClientError) as e:
        connect(exchange.url, "rx_unknown")
    assert e.value.code == "auth_failed"
    assert len(loop_threads()) == threads_before
