"""``ringex demo``: market-maker and taker bots trading through the gateways, and a live
terminal view of the book and the trades (docs/architecture.md section 8).

    run_demo(url, db_url, data_dir, config_path, admin_key, stop_event)   # the child's entry

The bots are ordinary clients (``ringex.client``): their accounts and API keys are made
in the repository, their funds are admin deposits over the WebSocket. The market maker
quotes a ladder around a mid price that wanders, cancelling and requoting; the takers
send small market and IOC orders at random. The view subscribes like any anonymous
client to ``book`` and ``trades``; its layout is ringex/ops/demo_view.py.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
from decimal import Decimal
from pathlib import Path

from ringex.config import Config, Symbol
from ringex.client import Client, ClientError, Reject, Side, connect
from ringex.ops.datadir import RUN_FILE
from ringex.ops.demo_view import MarketView
from ringex.storage.stores import open_repository

SYMBOLS = {"BTC-USD": Decimal("30000"), "ETH-USD": Decimal("1800")}   # name -> start mid
LEVELS = 8                     # quotes per side
REQUOTE_S = (0.3, 0.8)         # the maker requotes after a random pause in this range
TAKE_S = (0.05, 0.4)           # a taker's pause between orders
SIDES: tuple[Side, ...] = ("buy", "sell")
TOP_UP_S = 20.0                # takers' funds are topped up this often
FUNDS = {"maker": {"USD": "50000000", "BTC": "2000", "ETH": "30000"},
         "taker": {"USD": "5000000", "BTC": "200", "ETH": "3000"}}


def _account_key(repo, name: str) -> tuple[int, str]:
    """The account called ``name`` (made on first use) and a fresh API key for it."""
    for row in repo.list_accounts():
        if row["name"] == name:
            return row["account_id"], repo.add_api_key(row["account_id"])
    account = repo.add_account(name)
    return account, repo.add_api_key(account)


async def _fund(admin: Client, account: int, funds: dict[str, str]) -> None:
    for asset, amount in funds.items():
        res = await admin.deposit(account, asset, amount)
        if isinstance(res, Reject) and res.code != "overflow":
            raise RuntimeError(f"demo: deposit refused: {res}")


def _tick(s: Symbol, price: Decimal) -> Decimal:
    return (price / s.tick).to_integral_value() * s.tick


async def market_maker(c: Client, s: Symbol, mid: Decimal, stop: asyncio.Event,
                       rng: random.Random) -> None:
    """Quote LEVELS bids and asks around a wandering mid; requote now and then."""
    step = s.tick * 50
    while not stop.is_set():
        mid = _tick(s, mid * (1 + Decimal(rng.gauss(0, 0.0006))))
        await c.cancel_all(s.name)
        for i in range(1, LEVELS + 1):
            qty = s.lot * rng.randint(50, 2000)
            await c.place(s.name, "buy", qty, mid - step * i)
            await c.place(s.name, "sell", qty, mid + step * i)
        await _pause(stop, rng.uniform(*REQUOTE_S))


async def taker(c: Client, s: Symbol, stop: asyncio.Event, rng: random.Random) -> None:
    """Small market orders, and IOC limits through the touch, at random."""
    while not stop.is_set():
        side = rng.choice(SIDES)
        qty = s.lot * rng.randint(10, 800)
        if rng.random() < 0.5:
            await c.place(s.name, side, qty, type="market")
        else:
            far = SYMBOLS[s.name] * Decimal(2 if side == "buy" else "0.5")
            await c.place(s.name, side, qty, _tick(s, far), tif="ioc")
        await _pause(stop, rng.uniform(*TAKE_S))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def served_web_url(data_dir: str) -> tuple[bool, str | None]:
    """(found, URL) of the web view from the run file of the supervisor that started this
    process (it writes the file just after starting the demo; ``None``: no web view)."""
    try:
        info = json.loads((Path(data_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return False, None
    if not isinstance(info, dict) or info.get("pid") != os.getppid():
        return False, None          # none yet, or a stale one of an earlier run
    return True, info.get("http")


async def demo_main(url: str, db_url: str, config: Config, admin_key: str,
                    stop: asyncio.Event, *, view: bool = True, takers: int = 2,
                    seed: int | None = None, web_url: str | None = None,
                    data_dir: str | None = None) -> MarketView:
    """Run the bots (and the live view) until ``stop`` is set; returns the view's state.

    The view shows ``url`` and ``web_url`` as where to connect; without ``web_url`` it
    looks for it in ``data_dir``'s run file (``served_web_url``) while it runs."""
    rng = random.Random(seed)
    symbols = [config.symbol(n) for n in SYMBOLS if n in {s.name for s in config.symbols}]
    with open_repository(db_url) as repo:
        ids = [_account_key(repo, "demo-maker")]
        ids += [_account_key(repo, f"demo-taker-{i + 1}") for i in range(takers)]
    admin = await connect(url, admin_key)
    for i, (account, _) in enumerate(ids):
        await _fund(admin, account, FUNDS["maker" if i == 0 else "taker"])
    clients = [await connect(url, key, cancel_on_disconnect=True) for _, key in ids]
    watcher = await connect(url)
    market = MarketView([s.name for s in symbols], ws_url=url, web_url=web_url)
    for s in symbols:
        await watcher.subscribe("book", s.name)
        await watcher.subscribe("trades", s.name)

    async def watch() -> None:
        async for ev in watcher.events():
            market.apply(ev)

    async def drain(c: Client) -> None:          # bots ignore their fills
        async for _ in c.events():
            pass

    async def top_up() -> None:
        while not stop.is_set():
            await _pause(stop, TOP_UP_S)
            for account, _ in ids[1:]:
                await _fund(admin, account, FUNDS["taker"])

    async def show() -> None:
        from rich.live import Live
        run_file_dir = data_dir if web_url is None else None
        # drawn from this thread only (market changes here): no auto-refresh thread
        with Live(market.render(), auto_refresh=False, screen=False) as live:
            while not stop.is_set():
                if run_file_dir is not None:
                    found, market.web_url = served_web_url(run_file_dir)
                    if found:
                        run_file_dir = None
                live.update(market.render(), refresh=True)
                await _pause(stop, 0.25)

    async def bot(coro) -> None:
        """The exchange closing a bot's connection (it is shutting down) ends the demo."""
        try:
            await coro
        except ClientError as e:
            if e.code != "closed":
                raise
            stop.set()

    tasks = [asyncio.create_task(watch()), asyncio.create_task(bot(top_up()))]
    tasks += [asyncio.create_task(drain(c)) for c in clients]
    bots = [asyncio.create_task(bot(market_maker(clients[0], s, SYMBOLS[s.name], stop,
                                                 random.Random(rng.random()))))
            for s in symbols]
    bots += [asyncio.create_task(bot(taker(c, rng.choice(symbols), stop,
                                           random.Random(rng.random())))) for c in clients[1:]]
    if view:
        bots.append(asyncio.create_task(show()))
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *bots], return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t is stopper:
                continue
            exc = t.exception()
            if exc is not None:
                raise exc
    finally:
        stopper.cancel()
        for t in bots:
            t.cancel()
        for c in (*clients, watcher, admin):
            await c.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *bots, return_exceptions=True)
    return market


def run_demo(url: str, db_url: str, data_dir: str, config_path: str | None, admin_key: str,
             stop_event, web_url: str | None = None) -> None:
    """The demo child (docs/architecture.md section 8): bots and the live view until
    ``stop_event`` (a multiprocessing Event) is set. The view shows ``url`` and the web
    view's URL (``web_url``, else the one in ``data_dir``'s run file)."""
    config = Config.load(config_path)

    async def main() -> None:
        stop = asyncio.Event()

        async def watch_stop() -> None:
            while not stop_event.is_set():
                await asyncio.sleep(0.1)
            stop.set()

        watcher = asyncio.create_task(watch_stop())
        try:
            await demo_main(url, db_url, config, admin_key, stop, web_url=web_url,
                            data_dir=data_dir)
        finally:
            watcher.cancel()

    try:
        import uvloop
        uvloop.run(main())
    except ImportError:                                       # pragma: no cover
        asyncio.run(main())
