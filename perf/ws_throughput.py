"""Sustained orders per second through the WebSocket gateways (several connections,
two gateway processes sharing the port).

    .venv/bin/python perf/ws_throughput.py --quick        # a few seconds
    .venv/bin/python perf/ws_throughput.py --seconds 10 --clients 2 --conns 4 --window 128

Starts its own exchange (``ringex run --gateways 2``, temp data dir, per-connection rate
limits lifted) and stops it. Client processes each drive several connections (bare
sockets, perf/_wsraw.py) with up to ``--window`` requests in flight per connection, and
count the direct replies (ack, cancelled or reject; ``rejects`` says how many were
rejects: none are expected) that arrive after a warm-up second. Workloads:

- ``ioc``:  IOC buys far below any ask: ack + cancelled each, the book stays empty;
- ``rest``: a GTC buy away from the touch, then its cancel: two requests per order, the
  book stays small (counted as requests per second).

Prints ``ws_throughput`` JSON lines (perf/_report.py): replies per second. Target:
>= 50,000 orders/s on a 2-core machine. On such a machine the engine, two gateways, the
writer and the clients share two cores: the figure is what they get together.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import selectors
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from perf._report import emit_throughput, machine  # noqa: E402
from perf._wsraw import RawWs, frame  # noqa: E402
from ringex.client import admin_transfer  # noqa: E402
from tests.e2e.live_exchange import UNLIMITED, LiveExchange  # noqa: E402

REPLY_PREFIXES = (b'{"type":"ack"', b'{"type":"reject"', b'{"type":"cancelled"')
REJECT = b'{"type":"reject"'


def _requests(workload: str, n: int) -> list[bytes]:
    """``n`` pre-encoded request frames for one connection (they repeat)."""
    out = []
    for k in range(n):
        if workload == "ioc":
            msg = {"op": "place", "symbol": "BTC-USD", "side": "buy", "tif": "ioc",
                   "price": f"{100 + k % 50}.00", "qty": "0.0001", "req_id": k}
            out.append(frame(orjson.dumps(msg)))
        else:
            cid = f"o{k % 100000}"
            out.append(frame(orjson.dumps({
                "op": "place", "symbol": "BTC-USD", "side": "buy", "price": f"{100 + k % 50}.00",
                "qty": "0.0001", "client_order_id": cid, "req_id": 2 * k})))
            out.append(frame(orjson.dumps({
                "op": "cancel", "symbol": "BTC-USD", "client_order_id": cid,
                "req_id": 2 * k + 1})))
    return out


def client(url: str, keys: list[str], workload: str, window: int, warm_s: float,
           seconds: float, start_at: float, out) -> None:
    """One client process: drive ``keys`` connections; report replies counted after the
    warm-up (and the time span they cover) on ``out``."""
    conns = [RawWs(url, k) for k in keys]
    reqs = _requests(workload, 4096)
    sel = selectors.DefaultSelector()
    state = {}
    for c in conns:
        c.sock.setblocking(False)
        state[c] = [0, 0]                   # sent, replies
        sel.register(c.sock, selectors.EVENT_READ, c)
    while time.time() < start_at:
        time.sleep(0.001)
    t_warm = time.perf_counter() + warm_s
    t_end = t_warm + seconds
    counted = rejected = 0
    counting = False

    def top_up(c) -> None:
        st = state[c]
        gap = window - (st[0] - st[1])
        if gap >= min(64, window):
            k = st[0]
            burst = b"".join(reqs[(k + j) % len(reqs)] for j in range(gap))
            c.sock.setblocking(True)
            c.sock.sendall(burst)
            c.sock.setblocking(False)
            st[0] += gap

    for c in conns:
        top_up(c)
    while True:
        now = time.perf_counter()
        if not counting and now >= t_warm:
            counting, counted, rejected = True, 0, 0
        if now >= t_end:
            break
        for key, _ in sel.select(0.05):
            c = key.data
            try:
                chunk = c.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise ConnectionError("the gateway closed a benchmark connection")
            c._buf += chunk
            replies = [m for m in c._parse() if m.startswith(REPLY_PREFIXES)
                       and b'"req_id"' in m]
            state[c][1] += len(replies)
            if counting:
                counted += len(replies)
                rejected += sum(1 for m in replies if m.startswith(REJECT))
            top_up(c)
    out.put((counted, rejected))
    for c in conns:
        c.sock.setblocking(True)
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s, the ioc workload only")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=2, help="client processes [%(default)s]")
    ap.add_argument("--conns", type=int, default=4, help="connections per client [%(default)s]")
    ap.add_argument("--window", type=int, default=128, help="requests in flight per "
                    "connection [%(default)s]")
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--wait", default="spin", choices=("busy", "spin", "eventfd"))
    ap.add_argument("--workloads", default="ioc,rest")
    a = ap.parse_args()
    seconds = 3.0 if a.quick else a.seconds
    workloads = ["ioc"] if a.quick else a.workloads.split(",")
    ctx = mp.get_context("spawn")
    with LiveExchange(gateways=a.gateways, wait=a.wait,
                      env={"RINGEX_SESSION_LIMITS": UNLIMITED}) as ex:
        keys = []
        for i in range(a.clients * a.conns):
            keys.append(ex.add_account(f"bench{i}"))
            admin_transfer(ex.url, ex.admin_key, "deposit", ex.accounts[f"bench{i}"], "USD",
                           "100000000")
        for workload in workloads:
            out = ctx.Queue()
            start_at = time.time() + 1.0
            procs = [ctx.Process(target=client, args=(
                ex.url, keys[i * a.conns:(i + 1) * a.conns], workload, a.window, 1.0, seconds,
                start_at, out)) for i in range(a.clients)]
            for p in procs:
                p.start()
            results = [out.get(timeout=seconds + 120) for _ in procs]
            for p in procs:
                p.join(30)
                if p.is_alive():
                    p.kill()
            total = sum(n for n, _ in results)
            emit_throughput("ws_throughput", total, seconds, "replies/s", workload=workload,
                            rejects=sum(r for _, r in results),
                            gateways=a.gateways, clients=a.clients, conns=a.conns,
                            window=a.window, wait=a.wait, **machine())


if __name__ == "__main__":
    main()
