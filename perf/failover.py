"""Failover time: ``kill -9`` of the primary's whole process group -> the first order
acknowledged by the standby that took over and serves.

    .venv/bin/python perf/failover.py                    # 3 rounds, the default lease
    .venv/bin/python perf/failover.py --rounds 5 --lease-ttl-ms 1000

Each round starts its own exchange on a private 3-node JetStream cluster on loopback
(tests/cluster/nats_cluster.py): a primary (``ringex run --durability replicated``,
SQLite) and a standby (``ringex standby --db <the primary's database>``), one client
placing an order every ``--every-ms`` on the primary. At the kill the client turns to the
standby: it waits for its ``ringex.run``, connects and places until an order is
acknowledged. Per round (JSON line ``failover``): seconds from the kill to the standby's
"primary lapsed" line, its takeover marker, its ``ringex run`` ready (``ringex.run``
written) and the first acknowledgement; then ``failover_first_ack`` percentiles over the
rounds. The log's instants are wall-clock, the kill's too.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import _emit, emit_latency, machine  # noqa: E402
from ringex.client import Ack, ClientError, connect  # noqa: E402
from tests.cluster.conftest import cluster_config  # noqa: E402
from tests.cluster.nats_cluster import NatsCluster  # noqa: E402
from tests.cluster.standby_rig import StandbyRun, serving  # noqa: E402
from tests.faults.rig import Run, Seen, fund, make_accounts  # noqa: E402

PRICE, QTY = Decimal("50.00"), Decimal("0.0001")
LINES = {"lapse": "standby: primary lapsed", "marker": "standby: took over",
         "exec": "standby: serving:", "ready": "ringex .* running: ws://"}


async def _flow(url: str, key: str, every_s: float, stop: threading.Event) -> int:
    """IOC orders on the primary until the connection fails (the kill) or ``stop``."""
    acks = 0
    c = await connect(url, key, timeout=10)
    try:
        while not stop.is_set():
            res = await c.place("BTC-USD", "buy", QTY, PRICE, tif="ioc")
            acks += isinstance(res, Ack)
            await asyncio.sleep(every_s)
    except (ClientError, OSError, asyncio.TimeoutError):
        pass
    finally:
        try:
            await asyncio.wait_for(c.close(), 2)
        except Exception:                  # noqa: BLE001 - the server is gone
            pass
    return acks


async def _first_ack(sb: StandbyRun, db: str, key: str) -> float:
    """time.time() of the first order the new primary acknowledged."""
    new = await asyncio.to_thread(serving, sb, db)
    while True:
        try:
            c = await connect(new.url, key, timeout=5)
            try:
                if isinstance(await c.place("BTC-USD", "buy", QTY, PRICE, tif="ioc"), Ack):
                    return time.time()
            finally:
                await c.close()
        except (ClientError, OSError):
            await asyncio.sleep(0.01)


def _instants(log: str) -> dict[str, float]:
    out = {}
    for name, pattern in LINES.items():
        for line in log.splitlines():
            if re.search(pattern, line):
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                out[name] = stamp.timestamp()
                break
    return out


def one_round(k: int, cluster: NatsCluster, folder: Path, args) -> float:
    config = cluster_config(folder, f"failover{k}")
    text = config.read_text()
    config.write_text(re.sub(r"(?m)^lease_ttl_ms = \d+", f"lease_ttl_ms = {args.lease_ttl_ms}",
                             text))
    primary = Run(folder / f"primary{k}", args=("--config", str(config), "--cluster",
                                                 cluster.url, "--durability", "replicated"))
    sb = StandbyRun(folder / f"standby{k}", cluster.url, config, "--db", primary.db,
                    "--durability", "replicated", "--port", "0", "--http-port", "-1")
    new = None
    try:
        primary.start()
        sb.start()
        sb.wait_for(lambda s: s["lease"] == "alive", "the primary's lease")
        keys = make_accounts(primary, 1)
        asyncio.run(fund(primary, keys, Seen()))
        key = next(iter(keys.values()))
        stop = threading.Event()

        async def flow_then_kill() -> tuple[int, float]:
            flow = asyncio.create_task(_flow(primary.url, key, args.every_ms / 1000, stop))
            await asyncio.sleep(args.flow_s)
            killed = time.time()
            await asyncio.to_thread(primary.kill_group)
            acks = await asyncio.wait_for(flow, 10)
            return acks, killed

        acks, killed = asyncio.run(flow_then_kill())
        primary.unlink_rings()
        first = asyncio.run(asyncio.wait_for(_first_ack(sb, primary.db, key), 120))
        new = serving(sb, primary.db)
        at = _instants(sb.log())
        row = {"name": "failover", "round": k, "lease_ttl_ms": args.lease_ttl_ms,
               "acks_before": acks, "first_ack_s": round(first - killed, 3),
               **{f"{n}_s": round(t - killed, 3) for n, t in at.items()}, **machine()}
        _emit(row)
        assert new.stop() == 0, new.log()[-3000:]
        return first - killed
    finally:
        if new is not None:
            new.cleanup()
        sb.cleanup()
        primary.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--lease-ttl-ms", type=int, default=3000)
    p.add_argument("--every-ms", type=float, default=5.0, help="the flow's order interval")
    p.add_argument("--flow-s", type=float, default=2.0, help="flow before the kill")
    args = p.parse_args()
    times = []
    with tempfile.TemporaryDirectory(prefix="ringex-failover-") as tmp, \
            NatsCluster(Path(tmp)) as cluster:
        for k in range(args.rounds):
            times.append(one_round(k, cluster, Path(tmp), args))
    emit_latency("failover_first_ack", [t * 1e9 for t in times], unit="ms",
                 lease_ttl_ms=args.lease_ttl_ms, rounds=args.rounds, **machine())


if __name__ == "__main__":
    main()
