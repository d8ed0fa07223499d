"""The demo bots trade through the gateways; the live view renders; run_demo stops on its
event (the shape ``ringex demo`` runs it in)."""
from __future__ import annotations

import asyncio
import io
import threading
import time

from rich.console import Console

from ringex.config import Config
from ringex.ops.demo import MarketView, demo_main, run_demo
from ringex.storage.stores import open_repository
from tests.e2e.live_fixtures import run


def test_the_bots_trade_and_the_view_follows_the_book(exchange):
    async def go():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(3.0, stop.set)
        return await demo_main(exchange.url, exchange.db_url, Config.default(),
                               exchange.admin_key, stop, view=False, seed=7)
    view = run(go())
    assert view.count > 0                                   # trades happened
    out = io.StringIO()
    Console(file=out, width=160).print(view.render())
    assert "BTC-USD" in out.getvalue() and "trades:" in out.getvalue()


def test_run_demo_stops_cleanly_on_its_event(exchange, capsys):
    stop = threading.Event()
    errors = []

    def target():
        try:
            run_demo(exchange.url, exchange.db_url, str(exchange.data_dir), None,
                     exchange.admin_key, stop)
        except BaseException as e:                          # noqa: BLE001
            errors.append(e)
    with open_repository(exchange.db_url) as repo:
        before = len(repo.recent_trades(last=10**6))
        t = threading.Thread(target=target)
        t.start()
        deadline = time.monotonic() + 30                    # until the bots' trades are stored
        while len(repo.recent_trades(last=10**6)) == before and time.monotonic() < deadline \
                and t.is_alive():
            time.sleep(0.1)
        assert len(repo.recent_trades(last=10**6)) > before
    stop.set()
    t.join(30)
    assert not t.is_alive() and errors == []
    assert "trades:" in capsys.readouterr().out             # the live view was drawn


def test_the_view_applies_snapshots_updates_and_trades():
    from decimal import Decimal as D
    from ringex.client import BookSnapshot, BookUpdate, Trade
    v = MarketView(["BTC-USD"])
    v.apply(BookSnapshot("BTC-USD", 5, [(D("10"), D("1"))], [(D("11"), D("2"))]))
    v.apply(BookUpdate("BTC-USD", 7, 5, [(D("10"), D("0")), (D("9"), D("3"))], []))
    v.apply(Trade("BTC-USD", 6, 0, D("10"), D("1"), "sell"))
    assert v.books["BTC-USD"] == ({D("9"): D("3")}, {D("11"): D("2")})
    assert v.count == 1 and v.trades[0].price == D("10")
