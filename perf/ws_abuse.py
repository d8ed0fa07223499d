"""A victim's place -> ack latency while the gateway is under attack, next to the same
victim's figures with no attack.

    .venv/bin/python perf/ws_abuse.py                 # every attack, 5 s each
    .venv/bin/python perf/ws_abuse.py --attacks snapshots,orders --seconds 10

Starts its own exchange (``ringex run``, one gateway, the shipped limits: the point is
that the defaults protect the victim). The victim is perf/ws_latency.py's open-loop client
at ``--rate`` orders a second. Each attack runs in a process of its own, so that it
competes for the machine as a real client would, not for the victim's interpreter; at
``--nice 19`` by default, because a real attacker's own CPU is on another machine (on
these 2 cores the engine spins on one, and an attacker at normal priority takes the
other from the gateway):

- ``snapshots``: 4 anonymous connections asking for a fresh book snapshot (``resync``) of
  a 1,500-level book 100 times a second each;
- ``orders``: one account's 10 connections sending IOC orders as fast as they can;
- ``logins``: connections from the same address trying wrong API keys without pause;
- ``readers``: 20 book subscribers that never read while a maker churns the book.

Prints ``ws_abuse`` JSON lines (perf/_report.py): the victim's p50/p99/p999 in
microseconds for ``attack`` = none and each attack, with ``p99_vs_none``. Target: p99
under attack <= 3x its p99 with none.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from perf._report import emit_latency, machine  # noqa: E402
from perf.ws_latency import measure  # noqa: E402
from ringex.client import admin_transfer  # noqa: E402
from tests.e2e.live_exchange import LiveExchange  # noqa: E402

ATTACKS = ("snapshots", "orders", "logins", "readers")
VICTIM = "127.0.0.2"             # another address than the attackers' 127.0.0.1


async def _attack(name: str, url: str, key: str, maker_key: str, stop) -> None:
    from websockets.asyncio.client import connect

    async def opened(k: str | None = None, **kw):
        headers = {"Authorization": f"Bearer {k}"} if k else {}
        return await connect(url, additional_headers=headers, compression=None,
                             max_size=None, **kw)

    async def drain(ws) -> None:
        try:
            async for _ in ws:
                pass
        except Exception:                           # noqa: BLE001 - closed by the gateway
            pass

    async def snapshots() -> None:
        sub = orjson.dumps({"op": "subscribe", "channel": "book", "symbol": "ETH-USD",
                            "resync": True})
        conns = [await opened() for _ in range(4)]
        readers = [asyncio.create_task(drain(c)) for c in conns]
        while not stop.is_set():
            for c in conns:
                await c.send(sub, text=True)
            await asyncio.sleep(0.01)
        for r in readers:
            r.cancel()

    async def orders() -> None:
        order = orjson.dumps({"op": "place", "symbol": "BTC-USD", "side": "buy",
                              "price": "100", "qty": "0.001", "tif": "ioc"})
        conns = [await opened(key) for _ in range(10)]
        readers = [asyncio.create_task(drain(c)) for c in conns]
        while not stop.is_set():
            for c in conns:                         # 1,000 a second each: their own limit
                for _ in range(50):
                    await c.send(order, text=True)
            await asyncio.sleep(0.05)
        for r in readers:
            r.cancel()

    async def logins() -> None:
        while not stop.is_set():
            c = await opened()
            reader = asyncio.create_task(drain(c))
            for i in range(3):
                await c.send(orjson.dumps({"op": "login", "api_key": f"rx_wrong{i}"}),
                             text=True)
            await asyncio.sleep(0.001)
            reader.cancel()
            await c.close()

    async def readers() -> None:
        sub = orjson.dumps({"op": "subscribe", "channel": "book", "symbol": "ETH-USD"})
        lazy = [await opened(max_queue=1) for _ in range(20)]
        for c in lazy:
            await c.send(sub, text=True)                # and never read again
        maker = await opened(maker_key)
        reader = asyncio.create_task(drain(maker))
        i = 0
        while not stop.is_set():
            side, price = ("sell", 10000 + i % 200) if i % 2 else ("buy", 100 + i % 200)
            await maker.send(orjson.dumps({"op": "place", "symbol": "ETH-USD", "side": side,
                                           "price": f"{price}.00", "qty": "0.001"}), text=True)
            if i % 400 == 399:
                await maker.send(orjson.dumps({"op": "cancel_all"}), text=True)
            i += 1
            await asyncio.sleep(0.002)
        reader.cancel()

    await {"snapshots": snapshots, "orders": orders, "logins": logins,
           "readers": readers}[name]()


def _attacker(name: str, url: str, key: str, maker_key: str, stop, nice: int) -> None:
    import uvloop

    os.nice(nice)

    class Flag:                      # the Event polled from the loop without blocking it
        def is_set(self) -> bool:
            return stop.is_set()

    async def main() -> None:
        task = asyncio.create_task(_attack(name, url, key, maker_key, Flag()))
        while not stop.is_set() and not task.done():
            await asyncio.sleep(0.05)
        task.cancel()

    uvloop.run(main())


def _deep_book(url: str, maker_key: str) -> None:
    """1,500 asks on ETH-USD (a ~40 KB snapshot), under the maker's rate limit."""
    from perf._wsraw import RawWs, frame
    ws = RawWs(url, maker_key)
    try:
        for i in range(1500):
            ws.send(frame(orjson.dumps({"op": "place", "symbol": "ETH-USD", "side": "sell",
                                        "price": f"{20000 + i}.00", "qty": "0.001"})))
            if i % 500 == 499:
                time.sleep(0.6)
        time.sleep(0.5)
    finally:
        ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attacks", default=",".join(ATTACKS), help="[%(default)s]")
    ap.add_argument("--rate", type=float, default=500.0, help="victim orders/s [%(default)s]")
    ap.add_argument("--seconds", type=float, default=5.0, help="per attack [%(default)s]")
    ap.add_argument("--nice", type=int, default=19,
                    help="the attackers' nice value [%(default)s]: a remote attacker's CPU "
                         "is not the gateway's; 0 makes them compete for it")
    ap.add_argument("--wait", default="busy", choices=("busy", "spin", "eventfd"),
                    help="ringex run --wait [%(default)s]")
    a = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    with LiveExchange(gateways=1, wait=a.wait) as ex:
        keys = {n: ex.add_account(n) for n in ("victim", "attacker", "maker")}
        for name, asset, amount in (("victim", "USD", "1000000"), ("attacker", "USD", "1000000"),
                                    ("maker", "ETH", "100"), ("maker", "USD", "1000000")):
            admin_transfer(ex.url, ex.admin_key, "deposit", ex.accounts[name], asset, amount)
        _deep_book(ex.url, keys["maker"])
        base = measure(ex.url, keys["victim"], a.rate, a.seconds, source=VICTIM)
        base_p99 = float(np.percentile(base, 99))
        emit_latency("ws_abuse", base, unit="us", attack="none", rate=a.rate,
                     seconds=a.seconds, p99_vs_none=1.0, **machine())
        for name in a.attacks.split(","):
            stop = ctx.Event()
            p = ctx.Process(target=_attacker, args=(name, ex.url, keys["attacker"],
                                                    keys["maker"], stop, a.nice))
            p.start()
            time.sleep(1.0)                             # let the attack get going
            try:
                lat = measure(ex.url, keys["victim"], a.rate, a.seconds, source=VICTIM)
            finally:
                stop.set()
                p.join(10)
                if p.is_alive():
                    p.kill()
                    p.join(5)
            emit_latency("ws_abuse", lat, unit="us", attack=name, rate=a.rate,
                         seconds=a.seconds, nice=a.nice,
                         p99_vs_none=round(float(np.percentile(lat, 99)) / base_p99, 2),
                         **machine())
            time.sleep(2.0)                             # the gateway settles between attacks


if __name__ == "__main__":
    main()
