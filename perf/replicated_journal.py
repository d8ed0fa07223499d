"""Place -> ack latency and throughput: no cluster, durability local, durability replicated.

    .venv/bin/python perf/replicated_journal.py --quick
    .venv/bin/python perf/replicated_journal.py --orders 2000 --tp-orders 16000 --depth 16

Starts a private 3-node JetStream cluster on loopback (tests/cluster/nats_cluster.py) and,
for each mode, its own ``ringex run`` (tests/faults/rig.py ``Run``; ``--wait spin``):
``none`` (no ``--cluster``: the single-box path), ``local`` (``--cluster``, acks after the
local journal, the replicator appends behind) and ``replicated`` (acks after the stream's
quorum stored the group). Latency: one connection, one IOC order at a time (closed loop),
place -> ack. Throughput: ``--connections`` connections with ``--depth`` orders
outstanding each, acks per second. Prints JSON lines (perf/_report.py).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import emit_latency, emit_throughput, machine  # noqa: E402
from ringex.client import Ack, connect  # noqa: E402
from tests.cluster.conftest import cluster_config  # noqa: E402
from tests.cluster.nats_cluster import NatsCluster  # noqa: E402
from tests.faults.rig import Run, Seen, fund, make_accounts  # noqa: E402

PRICE, QTY = Decimal("50.00"), Decimal("0.0001")


async def _ioc(c) -> None:
    res = await c.place("BTC-USD", "buy", QTY, PRICE, tif="ioc")
    assert isinstance(res, Ack), res


async def latency(url: str, key: str, n: int) -> list[int]:
    c = await connect(url, key, timeout=30)
    out = []
    try:
        for _ in range(50):                       # warm the path
            await _ioc(c)
        for _ in range(n):
            t0 = time.perf_counter_ns()
            await _ioc(c)
            out.append(time.perf_counter_ns() - t0)
    finally:
        await c.close()
    return out


async def throughput(url: str, keys: list[str], per_conn: int, depth: int) -> float:
    conns = [await connect(url, k, timeout=60) for k in keys]

    async def one(c) -> None:
        for _ in range(0, per_conn, depth):
            await asyncio.gather(*(_ioc(c) for _ in range(depth)))
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(c) for c in conns))
        return time.perf_counter() - t0
    finally:
        for c in conns:
            await c.close()


def measure(mode: str, cluster: NatsCluster, folder: Path, args) -> None:
    extra: tuple[str, ...] = ()
    if mode != "none":
        config = cluster_config(folder, f"bench-{mode}")
        extra = ("--config", str(config), "--cluster", cluster.url, "--durability", mode)
    run = Run(folder / f"data-{mode}", args=extra)
    try:
        run.start()
        keys = make_accounts(run, args.connections)
        asyncio.run(fund(run, keys, Seen()))
        lat = asyncio.run(latency(run.url, next(iter(keys.values())), args.orders))
        emit_latency("place_ack", lat, unit="us", durability=mode, orders=args.orders,
                     **machine())
        per_conn = max(args.depth, args.tp_orders // args.connections // args.depth * args.depth)
        secs = asyncio.run(throughput(run.url, list(keys.values()), per_conn, args.depth))
        emit_throughput("place_ack_throughput", per_conn * args.connections, secs,
                        unit="orders/s", durability=mode, connections=args.connections,
                        depth=args.depth)
        assert run.stop() == 0, run.log()
    finally:
        run.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--tp-orders", type=int, default=16000, help="orders of the throughput run")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--modes", default="none,local,replicated")
    p.add_argument("--quick", action="store_true", help="500 orders")
    args = p.parse_args()
    if args.quick:
        args.orders, args.tp_orders = 500, 4000
    with tempfile.TemporaryDirectory(prefix="ringex-bench-") as tmp, \
            NatsCluster(Path(tmp)) as cluster:
        for mode in args.modes.split(","):
            measure(mode, cluster, Path(tmp), args)


if __name__ == "__main__":
    main()
