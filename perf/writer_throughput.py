"""Trades per second through the real trade queue and writer process, into SQLite and PostgreSQL.

    .venv/bin/python perf/writer_throughput.py [--quick] [--db sqlite|postgresql|both]
                                               [--trades N] [--batch TRADES]
                                               [--rest-batches R]

Synthetic matcher output, generated before the clock starts: each taker sweeps
``--makers-per-taker`` resting orders, so a batch of B trades carries B x (3 + 1/k) events:
maker ACKs, the taker's ACK, and a taker/maker FILL pair per trade. With ``--rest-batches
R`` the makers are ACKed R batches before they trade, so their fills update orders stored
by earlier transactions (the upsert path) instead of orders new in the same group. Every
row the writer
stores is counted (trades, orders, order_changes); the headline figure is trades/s from the
first put until the writer reports the last payload committed; rows/s counts every table's
rows. ``writer_cpu_s`` is the writer process's own CPU time (both of its threads; not the
PostgreSQL server's), steadier than wall time on a busy machine. Also measures the queue
alone: raw payloads (identity dumps/loads) against faster-fifo's default pickling.

PostgreSQL: ``RINGEX_TEST_PG_DSN`` (default postgresql://postgres@127.0.0.1:5432/test); the
run uses a fresh schema and drops it afterwards.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from urllib.parse import quote

import faster_fifo
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from perf._report import emit_throughput, machine  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.storage.trade_queue import PayloadKind, TradeQueue, encode  # noqa: E402
from ringex.storage.writer import start_writer  # noqa: E402
from ringex import records  # noqa: E402

PG_DSN = os.environ.get("RINGEX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
EV = records.EventKind


def synthetic_batches(n_trades: int, batch: int, k: int, symbol: int = 0, seed: int = 1):
    """EVENT arrays of ``batch`` trades each, shaped like the matcher's (rules.md)."""
    rng = np.random.default_rng(seed)
    out, seq, oid = [], 0, 1
    per_group = 3 * k + 1
    for start in range(0, n_trades, batch):
        g = max(1, min(batch, n_trades - start) // k)
        ev = np.zeros(g * per_group, records.EVENT)
        base = oid + np.arange(g) * (k + 1)                      # first maker id per group
        sell = rng.integers(0, 2, g).astype(bool)                # taker side
        acct = rng.integers(1, 1000, (g, k + 1))
        v = ev.reshape(g, per_group)
        j = np.arange(k)
        # maker ACKs
        mk = v[:, :k]
        mk["kind"], mk["qty"], mk["leaves"] = EV.ACK, 2, 2
        mk["order_id"] = base[:, None] + j
        mk["price"] = 1000 + j
        mk["account"] = acct[:, :k]
        mk["info"] = np.where(sell, 0, records.INFO_SELL)[:, None]
        # taker ACK
        tk = v[:, k]
        tk["kind"], tk["qty"], tk["leaves"] = EV.ACK, 2 * k, 2 * k
        tk["order_id"], tk["price"] = base + k, np.where(sell, 1, 2000)
        tk["account"], tk["info"] = acct[:, k], np.where(sell, records.INFO_SELL, 0)
        # fills: taker at odd offsets, maker right after
        tf, mf = v[:, k + 1::2], v[:, k + 2::2]
        for f in (tf, mf):
            f["kind"], f["qty"], f["price"] = EV.FILL, 2, 1000 + j
        tf["order_id"], tf["other_id"] = (base + k)[:, None], base[:, None] + j
        tf["leaves"] = 2 * k - 2 * (j + 1)
        tf["account"] = acct[:, k:k + 1]
        tf["info"] = np.where(sell, records.INFO_SELL, 0)[:, None]
        mf["order_id"], mf["other_id"], mf["leaves"] = base[:, None] + j, (base + k)[:, None], 0
        mf["account"] = acct[:, :k]
        mf["info"] = (np.where(sell, 0, records.INFO_SELL) | records.INFO_MAKER)[:, None]
        ev["symbol"] = symbol
        ev["seq"] = seq + 1 + np.arange(len(ev))
        seq += len(ev)
        oid += g * (k + 1)
        out.append(ev)
    return out


def resting(batches, k: int, rest: int):
    """The same batches with each batch's maker ACKs sent ``rest`` batches earlier."""
    per_group = 3 * k + 1
    makers, takers = [], []
    for ev in batches:
        v = ev.reshape(-1, per_group)
        makers.append(v[:, :k].reshape(-1))
        takers.append(v[:, k:].reshape(-1))
    out, seq = [], 0
    for b in range(len(batches)):
        parts = makers[:rest] if b == 0 else []
        parts = [*parts, takers[b]] + ([makers[b + rest]] if b + rest < len(batches) else [])
        ev = np.concatenate(parts)
        ev["seq"] = seq + 1 + np.arange(len(ev))
        seq += len(ev)
        out.append(ev)
    return out


def run_writer(url: str, config: Config, batches, label: str, batch: int,
               rest_batches: int = 0) -> None:
    q = TradeQueue(256 << 20)
    w = start_writer(q, url, config)
    try:
        deadline = time.monotonic() + 60
        while not w.stats()["connected"] and time.monotonic() < deadline:
            time.sleep(0.01)
        p = q.producer(0, first_batch=1)
        cpu0 = w.stats().get("cpu_ns")
        t0 = time.perf_counter()
        for ev in batches:
            p.put_events(ev)
        if not w.wait_payloads(len(batches), timeout=600):
            raise SystemExit(f"{label}: writer did not finish: {w.stats()}")
        seconds = time.perf_counter() - t0
        s = w.stats()
        cpu = None if cpu0 is None else (s["cpu_ns"] - cpu0) / 1e9     # older writers: None
        emit_throughput("writer_throughput", s["trades"], seconds, unit="trades/s", db=label,
                        batch=batch, rest_batches=rest_batches, rows=s["rows"],
                        rows_per_s=round(s["rows"] / seconds),
                        groups=s["groups"], writer_cpu_s=cpu and round(cpu, 3),
                        trades_per_writer_cpu_s=cpu and round(s["trades"] / cpu),
                        producer_blocked_s=round(p.blocked_s, 3), **machine())
    finally:
        w.stop(timeout=60)


def queue_only(batches) -> None:
    """Payloads/s through faster-fifo: identity (ours) against default pickling of bytes."""
    payloads = [encode(PayloadKind.EVENTS, 0, i + 1, ev) for i, ev in enumerate(batches[:50])]
    size = len(payloads[0])
    for name, q in (("raw", TradeQueue(64 << 20)._q), ("pickled", faster_fifo.Queue(64 << 20))):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            for b in payloads:
                q.put_nowait(b)
            left = len(payloads)
            while left:
                left -= len(q.get_many(timeout=1))
            n += len(payloads)
        dt = time.perf_counter() - t0
        emit_throughput("trade_queue_put_get", n, dt, unit="payloads/s", mode=name,
                        payload_bytes=size, gbytes_per_s=round(n * size / dt / 1e9, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k trades per database")
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--trades", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="trades per payload")
    ap.add_argument("--makers-per-taker", type=int, default=4)
    ap.add_argument("--rest-batches", type=int, default=0,
                    help="makers rest this many batches before they trade")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.trades
    config = Config.default()
    batches = synthetic_batches(n, args.batch, args.makers_per_taker)
    if args.rest_batches:
        batches = resting(batches, args.makers_per_taker, args.rest_batches)
    queue_only(batches)
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="ringex-perf-") as d:
            run_writer(os.path.join(d, "perf.db"), config, batches, "sqlite", args.batch,
                       args.rest_batches)
    if args.db in ("postgresql", "both"):
        import psycopg
        schema = f"rx_perf_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in PG_DSN else "?"
            url = f"{PG_DSN}{sep}options={quote(f'-csearch_path={schema}')}"
            run_writer(url, config, batches, "postgresql", args.batch, args.rest_batches)
        finally:
            with psycopg.connect(PG_DSN, autocommit=True) as c:
                c.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
