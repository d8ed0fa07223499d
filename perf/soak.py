"""Soak: a fixed-rate order flow over many connections for many minutes, market-data
subscribers listening; memory and latency must stay flat and nothing may be lost.

    .venv/bin/python perf/soak.py --minutes 30                  # SQLite
    .venv/bin/python perf/soak.py --minutes 30 --db postgres    # a throwaway cluster

Starts ``ringex run`` (two gateways) on a temp data dir. ``--connections`` clients over
``--accounts`` accounts send ``--rate`` requests a second in all, each on a fixed
schedule (~75 % limit orders a few ticks around the mid on two symbols, so many trade;
~25 % cancels of an earlier order; a client with 20 orders out cancels its oldest, so
the book stays bounded), and time each request to its reply;
``--subscribers`` more connections take the book and trades of every symbol. Every
``--every`` seconds (default: a minute) it prints a ``soak_sample`` JSON line: per
process RSS and PSS (shared pages split among the processes mapping them; their sum,
``pss_total_mb``, is the run's real memory: a process mapping a page of the trade queue
or a ring for the first time grows its RSS but not the total), and of RSS RssAnon (the
process's own memory, what a leak grows) and RssShmem (rings and the trade queue's 64
MiB buffer: it grows until every page was written once, then stays), in MB; place->reply
p50/p99 (us) of that interval, the database's lag (``ringex_writer_lag_payloads`` /
``_seconds`` from /metrics), the gateways' own place->ack of the interval from their
/metrics histogram (``gw_mean_us`` exact, ``gw_p50_le_us``/``gw_p99_le_us`` the bucket
bounds holding p50/p99: what the exchange took, apart from the harness's own loop, which
shares the two cores), the journal's size on disk, the /dev/shm segments and open fds of
the run, orders acknowledged and market-data messages received.
At the end it stops the run, replays the journal and runs the full
convergence check (every acknowledged order, trades once, balances conserved, book =
replay, database = engine), then prints ``soak``: each process's RSS and RssAnon growth
from the first sample to the last (%), the per-interval p99s, and the check's result. Exit 1 if
the check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import _emit, machine  # noqa: E402
from perf.footprint import memory  # noqa: E402
from ringex.client import ClientError, connect  # noqa: E402
from tests.faults.rig import (  # noqa: E402
    LOT, MID, SYMBOLS, Run, Seen, ask_engine, check_converged, close_noting, fund,
    make_accounts, replay_journal, run_async,
)


LIVE_PER_CLIENT = 20     # a client cancels its oldest order once it has this many out


class Window:
    """Latencies (s) of the current interval; acks and md messages so far."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.md = 0
        # the gateways' place->ack histogram at the last sample (cumulative)
        self.place_ack: tuple[dict[float, float], float] = ({}, 0.0)

    def take(self) -> list[float]:
        lat, self.lat = self.lat, []
        return lat


async def _client(url: str, key: str, account: int, rate: float, seed: int, seen: Seen,
                  win: Window, stop: asyncio.Event) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    try:
        c = await connect(url, key, timeout=30)
    except (ClientError, OSError) as exc:
        seen.errors.append(f"connect: {exc}")
        return
    mine: list[tuple[str, int]] = []
    due = loop.time() + rng.random() / rate
    try:
        while not stop.is_set():
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = max(due + 1 / rate, loop.time())        # behind: no burst to catch up
            seen.requests += 1
            t = time.perf_counter()
            if len(mine) >= LIVE_PER_CLIENT or (mine and rng.random() < 0.25):
                # the oldest when the client has many out: live orders stay bounded
                symbol, oid = mine.pop(0 if len(mine) >= LIVE_PER_CLIENT
                                       else rng.randrange(len(mine)))
                res = await c.cancel(symbol, oid)
            else:
                symbol = rng.choice(SYMBOLS)
                price = MID[symbol] + Decimal(rng.randint(-4, 4)) / 100
                res = await c.place(symbol, rng.choice(("buy", "sell")),
                                    LOT[symbol] * rng.randint(1, 20), price)
            win.lat.append(time.perf_counter() - t)
            seen.answered(c, account, symbol, res, mine)
    except ClientError as exc:
        seen.errors.append(f"{account}: {exc.code}")
    finally:
        await close_noting(c, seen)


async def _subscriber(url: str, win: Window, stop: asyncio.Event) -> None:
    """Reads every market-data message (``events()``: a plain queue read each, so the
    harness's own loop does not become what the latencies measure)."""
    c = await connect(url, timeout=30)
    closer = asyncio.create_task(_close_when(stop, c))
    try:
        for channel in ("book", "trades"):
            await c.subscribe(channel, list(SYMBOLS))
        async for _ in c.events():
            win.md += 1
    finally:
        await closer


async def _close_when(stop: asyncio.Event, c) -> None:
    await stop.wait()
    await c.close()


def _metrics(http: str) -> str:
    return urllib.request.urlopen(http + "metrics", timeout=5).read().decode()


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else -1.0


_ACK_BUCKET = re.compile(r'^ringex_gateway_place_ack_seconds_bucket\{gateway="\d+",'
                         r'le="([^"]+)"\} (\S+)$', re.M)
_ACK_SUM = re.compile(r"^ringex_gateway_place_ack_seconds_sum\{[^}]*\} (\S+)$", re.M)


def _place_ack(text: str) -> tuple[dict[float, float], float]:
    """The gateways' own place->ack histogram (command ring, engine, event ring), summed
    over gateways: cumulative count per upper bound (s), and the sum of seconds."""
    buckets: dict[float, float] = {}
    for le, n in _ACK_BUCKET.findall(text):
        buckets[float(le)] = buckets.get(float(le), 0.0) + float(n)
    return buckets, sum(float(x) for x in _ACK_SUM.findall(text))


def _interval_place_ack(now: tuple[dict[float, float], float],
                        before: tuple[dict[float, float], float]) -> dict:
    """The interval's gateway place->ack: mean (exact) and the bucket bounds holding its
    p50 and p99 (the histogram's resolution), in us."""
    (b1, s1), (b0, s0) = now, before
    delta = {le: n - b0.get(le, 0.0) for le, n in sorted(b1.items())}
    count = delta.get(float("inf"), 0.0)
    if count <= 0:
        return {"gw_count": 0}

    def bound(q: float) -> float:
        le = next(le for le, n in delta.items() if n >= q * count)
        return -1.0 if le == float("inf") else round(le * 1e6, 1)
    return {"gw_count": int(count), "gw_mean_us": round((s1 - s0) / count * 1e6, 1),
            "gw_p50_le_us": bound(0.5), "gw_p99_le_us": bound(0.99)}


def _status_mb(pid: int) -> dict[str, float]:
    """RssAnon (the process's own memory: what a leak grows) and RssShmem (the rings and
    the trade queue's buffer, touched once round and then flat) from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssShmem:")):
                key, kb = line.split()[:2]
                out[key[:-1]] = round(int(kb) / 1024, 1)
    return out


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def _keep_segments(run: Run, archive: Path) -> None:
    """Hard-link every journal segment into ``archive``: the engine prunes old segments
    after its periodic snapshots, and the final check replays the journal from batch 1
    (a link keeps the file; segments only grow, so the link sees all of it)."""
    for seg in (run.data_dir / "state" / "journal").glob("seg-*.rxj"):
        target = archive / seg.name
        if not target.exists():
            try:
                os.link(seg, target)
            except FileNotFoundError:
                pass                        # pruned between the listing and the link


def _percentile_us(lat: list[float], q: float) -> float:
    if not lat:
        return -1.0
    s = sorted(lat)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1e6, 1)


def _sample(run: Run, http: str, seen: Seen, win: Window, t0: float) -> dict:
    procs = {"supervisor": run.pid, **run.children()}
    lat = win.take()
    state = sum(p.stat().st_size for p in (run.data_dir / "state").rglob("*") if p.is_file())
    mem = {r: memory(p) for r, p in procs.items()}
    text = _metrics(http)
    ack = _place_ack(text)
    gw = _interval_place_ack(ack, win.place_ack)
    win.place_ack = ack
    return {"name": "soak_sample", "t_s": round(time.monotonic() - t0, 1),
            "acks": len(seen.acks), "requests": len(lat), "md_messages": win.md,
            "p50_us": _percentile_us(lat, 0.5), "p99_us": _percentile_us(lat, 0.99), **gw,
            "load_1m": os.getloadavg()[0],
            "db_lag_payloads": _metric(text, "ringex_writer_lag_payloads"),
            "db_lag_s": _metric(text, "ringex_writer_lag_seconds"),
            "state_mb": round(state / 2**20, 1),
            "rss_mb": {r: m["rss_mb"] for r, m in mem.items()},
            "pss_mb": {r: m["pss_mb"] for r, m in mem.items()},
            "pss_total_mb": round(sum(m["pss_mb"] for m in mem.values()), 1),
            "anon_mb": {r: _status_mb(p)["RssAnon"] for r, p in procs.items()},
            "shmem_mb": {r: _status_mb(p)["RssShmem"] for r, p in procs.items()},
            "fds": {r: _fds(p) for r, p in procs.items()},
            "shm_segments": len([n for n in os.listdir("/dev/shm")
                                 if n.startswith(f"ringex-{run.pid}-")])}


async def _soak(run: Run, http: str, keys: dict[int, str], seen: Seen, args,
                samples: list[dict], archive: Path) -> None:
    stop = asyncio.Event()
    win = Window()
    accounts = sorted(keys)
    per_conn = args.rate / args.connections
    tasks = [asyncio.create_task(_client(run.url, keys[accounts[i % len(accounts)]],
                                         accounts[i % len(accounts)], per_conn, 100 + i,
                                         seen, win, stop))
             for i in range(args.connections)]
    tasks += [asyncio.create_task(_subscriber(run.url, win, stop))
              for _ in range(args.subscribers)]
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    next_sample = t0 + args.every
    while time.monotonic() < end:
        _keep_segments(run, archive)
        await asyncio.sleep(max(0.0, min(1.0, end - time.monotonic(),
                                         next_sample - time.monotonic())))
        if time.monotonic() >= next_sample or time.monotonic() >= end:
            # the harness keeps every ack for the final check: hundreds of thousands of
            # objects; freezing them keeps Python's full collections (which would stall
            # this loop, and the latencies it measures, longer and longer) short
            gc.freeze()
            s = await asyncio.to_thread(_sample, run, http, seen, win, t0)
            samples.append(s)
            _emit(s)
            print(f"{s['t_s']:.0f} s: {s['acks']} acks, p99 {s['p99_us']} us, "
                  f"rss {s['rss_mb']}", file=sys.stderr, flush=True)
            next_sample += args.every
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)


def soak(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--rate", type=float, default=500.0, help="requests a second, in all")
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ringex-soak-"))
    samples: list[dict] = []
    counts: dict = {}
    with ExitStack() as stack:
        db = None
        if args.db == "postgres":
            from tests.db import throwaway_cluster
            db = stack.enter_context(throwaway_cluster()).url
        run = Run(work / "data", db=db, gateways=2)
        try:
            run.start()
            http = json.loads((run.data_dir / "ringex.run").read_text())["http"]
            keys = make_accounts(run, args.accounts)
            seen = Seen()
            run_async(fund(run, keys, seen))
            archive = work / "journal-archive"
            archive.mkdir()
            asyncio.run(_soak(run, http, keys, seen, args, samples, archive))
            live = run_async(ask_engine(run, keys), timeout=120)
            code = run.stop()
            _keep_segments(run, archive)
            counts = check_converged(run, replay_journal(run.data_dir, archive), keys, seen,
                                     live)
            ok, why = code == 0 and not seen.errors, "; ".join(seen.errors[:5])
        except AssertionError as exc:
            ok, why = False, str(exc)[:2000]
        finally:
            run.cleanup()
    growth, anon_growth = {}, {}
    if samples:
        for key, out in (("rss_mb", growth), ("anon_mb", anon_growth)):
            first, last = samples[0][key], samples[-1][key]
            out.update({r: round((last[r] - first[r]) / first[r] * 100, 1)
                        for r in first if r in last and first[r]})
    summary = {"name": "soak", "minutes": args.minutes, "db": args.db,
               "connections": args.connections, "rate": args.rate,
               "subscribers": args.subscribers,
               "acks": samples[-1]["acks"] if samples else 0,
               "rss_growth_pct": growth, "anon_growth_pct": anon_growth,
               "rss_first_last_mb": [samples[0]["rss_mb"], samples[-1]["rss_mb"]]
               if samples else [],
               "pss_total_first_last_mb": [samples[0]["pss_total_mb"],
                                           samples[-1]["pss_total_mb"]] if samples else [],
               "anon_first_last_mb": [samples[0]["anon_mb"], samples[-1]["anon_mb"]]
               if samples else [],
               "p99_us_per_interval": [s["p99_us"] for s in samples],
               "p50_us_per_interval": [s["p50_us"] for s in samples],
               "gw_mean_us_per_interval": [s.get("gw_mean_us") for s in samples],
               "db_lag_s_max": max((s["db_lag_s"] for s in samples), default=-1),
               "shm_first_last": [samples[0]["shm_segments"], samples[-1]["shm_segments"]]
               if samples else [], "checked": counts, "ok": ok, "why": why,
               "load_avg_1m": os.getloadavg()[0], **machine()}
    _emit(summary)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"soak failed; work dir kept: {work}", file=sys.stderr)
    return summary


if __name__ == "__main__":
    sys.exit(0 if soak()["ok"] else 1)
