"""Place -> ack round trip over WebSocket, open loop at fixed offered rates.

    .venv/bin/python perf/ws_latency.py --quick           # one rate, a few seconds
    .venv/bin/python perf/ws_latency.py --rates 500,1000,2000 --seconds 10
    .venv/bin/python perf/ws_latency.py --wait spin --gateway-wait spin_then_sleep

Starts its own exchange (``ringex run``, one gateway, temp data dir) and stops it. One
client connection (perf/_wsraw.py: a bare socket, so the client's own cost stays small)
sends ``place`` requests on a fixed schedule (request k is due at t0 + k / rate) from a
sender thread and reads replies on the main thread; each ack's latency is
measured from its request's *scheduled* send time, so a stall delays every later request
too and shows up in the tail (no coordinated omission). The orders are IOC buys far
below any ask: the engine acks and cancels each one, the book stays empty.

In the same run, the same client and schedule against a raw websockets + uvloop echo
server on this machine (the floor any Python WebSocket service starts from): ``ws_echo``
lines, and each ``ws_place_ack`` line carries ``vs_echo_p50`` (its p50 over the echo's at
that rate).

Prints JSON lines (perf/_report.py): p50/p99/p999 in microseconds per offered rate.
Targets: ringex p50 <= 1.4 x the echo p50, p99 <= 1 ms. The engine's wait strategy is
``--wait`` (busy: the engine spins on a core of its own, the lowest latency);
``--gateway-wait`` sets the gateway's separately (RINGEX_GATEWAY_WAIT).
"""
from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from perf._report import emit_latency, machine  # noqa: E402
from perf._wsraw import RawWs, frame, precise_sleep_slack  # noqa: E402
from ringex.client import admin_transfer  # noqa: E402
from tests.e2e.live_exchange import UNLIMITED, LiveExchange  # noqa: E402



def _place(k: int) -> bytes:
    return frame(orjson.dumps({"op": "place", "symbol": "BTC-USD", "side": "buy",
                               "tif": "ioc", "price": "100.00", "qty": "0.0001",
                               "req_id": k}))


def _ack_id(msg: bytes) -> int | None:
    return orjson.loads(msg)["req_id"] if msg.startswith(b'{"type":"ack"') else None


def _echo_id(msg: bytes) -> int | None:
    return orjson.loads(msg)["req_id"]


def _echo_server(port: int, ready) -> None:
    """A raw websockets + uvloop echo server (the process of the floor measurement)."""
    import asyncio

    import uvloop
    from websockets.asyncio.server import serve

    async def handler(ws) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None):
            ready.set()
            await asyncio.Future()

    uvloop.run(main())


def measure(url: str, key: str | None, rate: float, seconds: float, warmup: int = 300,
            answer=_ack_id, source: str | None = None) -> np.ndarray:
    """Latencies (ns) of ``rate * seconds`` answers (``answer(msg)``: the request number a
    message answers, or None), from each request's scheduled time; ``source``: the local
    address to connect from."""
    ws = RawWs(url, key, source=source)
    try:
        for k in range(warmup):                       # closed loop: warm every path
            ws.send(_place(-1 - k))
            while -1 - k not in [answer(m) for m in ws.recv(10)[1]]:
                pass
        n = int(rate * seconds)
        frames = [_place(k) for k in range(n)]
        t0 = time.perf_counter_ns() + 20_000_000
        due = t0 + (np.arange(n, dtype=np.float64) * (1e9 / rate)).astype(np.int64)
        lat = np.full(n, -1, dtype=np.int64)

        def sender() -> None:
            precise_sleep_slack()
            perf = time.perf_counter_ns
            for k in range(n):
                wait = int(due[k]) - perf()
                if wait > 0:
                    time.sleep(wait / 1e9)
                ws.send(frames[k])

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        got = 0
        deadline = time.monotonic() + seconds + 30
        while got < n and time.monotonic() < deadline and not ws.closed:
            now, msgs = ws.recv(5)
            for m in msgs:
                k = answer(m)
                if k is not None and k >= 0:
                    lat[k] = now - due[k]
                    got += 1
        t.join(5)
        if got < n:
            raise RuntimeError(f"only {got} of {n} acks arrived")
        return lat
    finally:
        ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one rate (1000/s) for 3 s")
    ap.add_argument("--rates", default="500,1000,2000,5000",
                    help="offered rates, requests per second [%(default)s]")
    ap.add_argument("--seconds", type=float, default=10.0, help="per rate [%(default)s]")
    ap.add_argument("--wait", default="busy", choices=("busy", "spin", "eventfd"),
                    help="ringex run --wait (engine and gateway) [%(default)s]")
    ap.add_argument("--gateway-wait", default="spin_then_sleep",
                    help="the gateway's own wait strategy, or 'same' [%(default)s]")
    a = ap.parse_args()
    rates = [1000.0] if a.quick else [float(r) for r in a.rates.split(",")]
    seconds = 3.0 if a.quick else a.seconds
    env = {"RINGEX_SESSION_LIMITS": UNLIMITED}
    if a.gateway_wait != "same":
        env["RINGEX_GATEWAY_WAIT"] = a.gateway_wait
    echo_p50 = {}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    echo = ctx.Process(target=_echo_server, args=(port, ready), daemon=True)
    echo.start()
    try:
        ready.wait(30)
        for rate in rates:
            lat = measure(f"ws://127.0.0.1:{port}/", None, rate, seconds, answer=_echo_id)
            echo_p50[rate] = float(np.percentile(lat, 50))
            emit_latency("ws_echo", lat, unit="us", rate=rate, seconds=seconds, **machine())
    finally:
        echo.kill()
        echo.join(5)
    with LiveExchange(gateways=1, wait=a.wait, env=env) as ex:
        key = ex.add_account("bench")
        admin_transfer(ex.url, ex.admin_key, "deposit", ex.accounts["bench"], "USD", "1000000")
        for rate in rates:
            lat = measure(ex.url, key, rate, seconds)
            emit_latency("ws_place_ack", lat, unit="us", rate=rate, seconds=seconds,
                         wait=a.wait, gateway_wait=a.gateway_wait,
                         vs_echo_p50=round(float(np.percentile(lat, 50)) / echo_p50[rate], 2),
                         **machine())


if __name__ == "__main__":
    main()
