"""Soak: a steady order flow for many minutes; memory, file descriptors and shared memory
must stay flat, and nothing may be lost.

    .venv/bin/python perf/soak.py --minutes 30                  # SQLite
    .venv/bin/python perf/soak.py --minutes 30 --db postgres    # a throwaway cluster

Starts ``ringex run`` (two gateways) on a temp data dir, funds ``--traders`` accounts and
lets each trade as fast as its answers come (tests/faults/rig.py ``_trader``: crossing
limit orders and cancels around a mid price on two symbols). Every ``--every`` seconds it
prints a ``soak_sample`` JSON line: per process RSS and PSS (MB, from smaps_rollup) and
open file descriptors, the /dev/shm segments of the run, the journal's size on disk and
the orders acknowledged so far. At the end it stops the run, replays the journal and
runs the full convergence check (every acknowledged order, trades once, balances
conserved, book = replay, database = engine), then prints ``soak``: the growth of each
process's RSS from the first sample after ``--warmup`` to the last (MB and MB/hour, with
a least-squares slope over the same samples), the fd and segment counts first and last,
orders acknowledged, and the check's result. Exit 1 if the check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import _emit, machine  # noqa: E402
from perf.footprint import memory  # noqa: E402
from tests.faults.rig import (  # noqa: E402
    Run, Seen, _trader, ask_engine, check_converged, fund, make_accounts, replay_journal,
    run_async,
)


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


def _sample(run: Run, seen: Seen, t0: float) -> dict:
    procs = {"supervisor": run.pid, **run.children()}
    segments = [n for n in os.listdir("/dev/shm") if n.startswith(f"ringex-{run.pid}-")]
    journal = sum(p.stat().st_size for p in (run.data_dir / "state").rglob("*") if p.is_file())
    return {"name": "soak_sample", "t_s": round(time.monotonic() - t0, 1),
            "acks": len(seen.acks), "requests": seen.requests,
            "rss_mb": {r: memory(p)["rss_mb"] for r, p in procs.items()},
            "pss_mb": {r: memory(p)["pss_mb"] for r, p in procs.items()},
            "fds": {r: _fds(p) for r, p in procs.items()},
            "shm_segments": len(segments), "state_mb": round(journal / 2**20, 1)}


def _slope_mb_per_h(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mt) * (v - mv) for t, v in points) / var * 3600


async def _trade(run: Run, keys: dict[int, str], seen: Seen, minutes: float, every: float,
                 samples: list[dict], archive: Path) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_trader(run.url, k, a, 17 + a, seen, stop))
             for a, k in keys.items()]
    t0 = time.monotonic()
    end = t0 + minutes * 60
    while time.monotonic() < end:
        for _ in range(int(every)):         # links often enough to beat the pruning
            _keep_segments(run, archive)
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        _keep_segments(run, archive)
        s = await asyncio.to_thread(_sample, run, seen, t0)
        samples.append(s)
        _emit(s)
        print(f"{s['t_s']:.0f} s: {s['acks']} acks, rss {s['rss_mb']}", file=sys.stderr,
              flush=True)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="seconds of samples left out of the growth figures")
    ap.add_argument("--traders", type=int, default=6)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ringex-soak-"))
    samples: list[dict] = []
    with ExitStack() as stack:
        db = None
        if args.db == "postgres":
            from tests.db import throwaway_cluster
            db = stack.enter_context(throwaway_cluster()).url
        run = Run(work / "data", db=db, gateways=2)
        try:
            run.start()
            keys = make_accounts(run, args.traders)
            seen = Seen()
            run_async(fund(run, keys, seen))
            archive = work / "journal-archive"
            archive.mkdir()
            asyncio.run(_trade(run, keys, seen, args.minutes, args.every, samples, archive))
            live = run_async(ask_engine(run, keys), timeout=120)
            code = run.stop()
            _keep_segments(run, archive)
            counts = check_converged(run, replay_journal(run.data_dir, archive), keys, seen,
                                     live)
            ok, why = code == 0 and not seen.errors, ""
        except AssertionError as exc:
            ok, why, counts = False, str(exc)[:2000], {}
        finally:
            run.cleanup()
    steady = [s for s in samples if s["t_s"] >= args.warmup] or samples[-1:]
    growth = {}
    for role in steady[0]["rss_mb"] if steady else ():
        pts = [(s["t_s"], s["rss_mb"][role]) for s in steady if role in s["rss_mb"]]
        growth[role] = {"first_mb": pts[0][1], "last_mb": pts[-1][1],
                        "grew_mb": round(pts[-1][1] - pts[0][1], 1),
                        "slope_mb_per_h": round(_slope_mb_per_h(pts), 1)}
    _emit({"name": "soak", "minutes": args.minutes, "db": args.db, "traders": args.traders,
           "acks": samples[-1]["acks"] if samples else 0, "rss": growth,
           "fds_first_last": [samples[0]["fds"], samples[-1]["fds"]] if samples else [],
           "shm_first_last": [samples[0]["shm_segments"], samples[-1]["shm_segments"]]
           if samples else [], "checked": counts, "ok": ok, "why": why,
           "load_avg_1m": os.getloadavg()[0], **machine()})
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"soak failed; work dir kept: {work}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
