"""Where the writer's time goes, per phase and table: projection, encoding, database.

    .venv/bin/python perf/writer_breakdown.py [--db sqlite|postgresql|both] [--trades N]
                                              [--bulk image|executemany] [--rest-batches R]

In one process, no queue: the synthetic batches of ``writer_throughput.py`` are grouped
as the writer groups them (``max_group_bytes``), projected (``Projector.project``), then
written with ``Repository.write``, whose ``timings`` split the write into phases. One JSON
line per phase: seconds, ns per trade, ns per row of that table, share of the total.
Python work: ``project`` and ``stage_build`` (SQLite image) or ``encode`` (PostgreSQL
binary COPY); the other phases are the database (for PostgreSQL they include the wire).
``server_cpu_s`` (PostgreSQL on this host): CPU time of the connection's backend process,
steadier than wall time on a busy machine. The backend is one process on one core, so the
writer cannot exceed trades / server_cpu_s whatever the client does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from urllib.parse import quote

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from perf._report import machine  # noqa: E402
from perf.writer_throughput import PG_DSN, resting, synthetic_batches  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.storage.projection import Projector  # noqa: E402
from ringex.storage.trade_queue import PayloadKind, decode, encode  # noqa: E402
from ringex.storage.writer import WriterOptions  # noqa: E402

HOT = ("trades", "order_changes", "transfers", "orders")


def _emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def groups_of(payloads, max_bytes):
    group, size = [], 0
    for p in payloads:
        if group and size + p.nbytes > max_bytes:
            yield group
            group, size = [], 0
        group.append(p)
        size += p.nbytes
    if group:
        yield group


def backend_cpu_s(pid: int) -> float | None:
    """CPU seconds of a local PostgreSQL backend process so far (None if not readable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(repo, config, batches, label: str) -> None:
    payloads = [decode(encode(PayloadKind.EVENTS, 0, i + 1, ev)) for i, ev in enumerate(batches)]
    proj = Projector(config)
    project_s, counts, trades = 0.0, dict.fromkeys(HOT, 0), 0
    pid = repo.conn.info.backend_pid if label == "postgresql" else None
    server0 = backend_cpu_s(pid) if pid else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for group in groups_of(payloads, WriterOptions().max_group_bytes):
        t0 = time.perf_counter()
        rows = proj.project(group)
        project_s += time.perf_counter() - t0
        for t in HOT:
            counts[t] += len(getattr(rows, t))
        trades += len(rows.trades)
        repo.write(rows)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    server1 = backend_cpu_s(pid) if pid else None
    server = round(server1 - server0, 4) if server0 is not None and server1 is not None else None
    phases = {"project": project_s, **repo.timings}
    total = sum(phases.values())
    for phase, s in phases.items():
        n = counts.get(phase)
        _emit({"name": "writer_breakdown", "db": label, "phase": phase,
               "seconds": round(s, 4), "ns_per_trade": round(s / trades * 1e9),
               "ns_per_row": round(s / n * 1e9) if n else None, "rows": n,
               "share": round(s / total, 3)})
    _emit({"name": "writer_breakdown", "db": label, "phase": "total", "trades": trades,
           "rows": sum(counts.values()), "seconds": round(wall, 4),
           "writer_cpu_s": round(cpu, 4), "server_cpu_s": server,
           "server_ns_per_trade": server and round(server / trades * 1e9),
           "trades_per_s": round(trades / wall),
           "rows_per_s": round(sum(counts.values()) / wall), **machine()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--trades", type=int, default=300_000)
    ap.add_argument("--bulk", choices=("image", "executemany"), default="image",
                    help="SQLite write path")
    ap.add_argument("--rest-batches", type=int, default=0,
                    help="makers rest this many batches before they trade")
    args = ap.parse_args()
    config = Config.default()
    batches = synthetic_batches(args.trades, 1000, 4)
    if args.rest_batches:
        batches = resting(batches, 4, args.rest_batches)
    if args.db in ("sqlite", "both"):
        from ringex.storage.sqlite_store import SqliteRepository
        with tempfile.TemporaryDirectory(prefix="ringex-perf-") as d:
            repo = SqliteRepository(os.path.join(d, "perf.db"), bulk=args.bulk)
            repo.sync_config(config)
            try:
                breakdown(repo, config, batches, f"sqlite/{args.bulk}")
            finally:
                repo.close()
    if args.db in ("postgresql", "both"):
        import psycopg
        from ringex.storage.pg_store import PgRepository
        schema = f"rx_perf_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in PG_DSN else "?"
            repo = PgRepository(f"{PG_DSN}{sep}options={quote(f'-csearch_path={schema}')}")
            repo.sync_config(config)
            try:
                breakdown(repo, config, batches, "postgresql")
            finally:
                repo.close()
        finally:
            with psycopg.connect(PG_DSN, autocommit=True) as c:
                c.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
