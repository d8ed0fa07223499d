"""Bounded restarts: what a snapshot costs the engine loop and the disk, and how long a
restart after a crash takes.

    .venv/bin/python perf/restart.py            # 100,000 resting orders, 1,000,000 entries
    .venv/bin/python perf/restart.py --quick    # 20,000 orders, 100,000 entries

Default config (1,048,577 order slots: 157 MB of state arrays). Prints JSON lines
(perf/_report.py):

- ``snapshot`` (``book`` empty / N resting orders, ``format``): ``bytes`` on disk,
  ``pause_ms`` (the engine loop's pause, as ``save_snapshot_async`` takes it with a full
  ``[state] snapshot_every_bytes`` segment open: ``capture_ms`` -- reset dead slots, copy
  out the live parts -- and the start of a new segment; p50/max over ``--repeat``),
  in the snapshot thread ``close_segment_ms`` (closing the old segment: its fsync) and
  ``write_ms`` (the file: write, fsync, rename), and ``load_ms`` (into a fresh service).
  Formats: ``compact`` (FORMAT 2, what is written), ``compact_zlib`` (the same arrays
  through ``np.savez_compressed``), ``full`` (every array whole: FORMAT 1, what a stop
  wrote before).
- ``snapshot_loop``: the loop's step times (submits of 16 commands) while the snapshot
  thread closes a full segment and writes a snapshot of the book, next to the same loop
  without it (p50/p99/max).
- ``restart``: recovery as the engine does it after a crash (newest snapshot + journal
  replay, events kept for what the database lacks: nothing here), with ``entries``
  journal entries of ``per_entry`` commands since the snapshot: ``construct_s`` (a fresh
  OrderService), ``load_s``, ``replay_s``, ``total_s``. Rows: a fresh snapshot (no
  entries), ``--entries`` entries, and one snapshot interval (``[state]
  snapshot_every_bytes``) of the worst case, one command per entry. Target: total ≤ 3 s
  at the default interval.
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from perf._report import emit_latency, machine  # noqa: E402
from perf.workload import Workload  # noqa: E402
from ringex import records  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.core.journal import HEADER, J_SIZE  # noqa: E402
from ringex.core.order_service import OrderService  # noqa: E402
from ringex.core.snapshot import StateStore  # noqa: E402
from ringex.records import CommandKind, TimeInForce  # noqa: E402


def _emit(obj: dict) -> None:
    print(json.dumps({**obj, **machine()}), flush=True)


def resting_book(config: Config, n: int, seed: int = 7, accounts: int = 2000) -> np.ndarray:
    """Funding, then n GTC orders that rest: bids well below and asks well above where
    perf/workload.py trades (a tenth into each band), over a few hundred levels a side."""
    rng = np.random.default_rng(seed)
    assets = [a.id for a in config.assets]
    fund = records.commands(len(assets) * accounts)
    fund["kind"] = CommandKind.DEPOSIT
    fund["account"] = np.repeat(np.arange(1, accounts + 1), len(assets))
    fund["symbol"], fund["qty"] = np.tile(assets, accounts), 10**16
    c = records.commands(n)
    sym = rng.integers(0, len(config.symbols), n)
    side = rng.integers(0, 2, n)
    lo = np.array([s.min_tick for s in config.symbols])
    mid = lo + np.array([(s.max_tick - s.min_tick) // 10 for s in config.symbols])
    away = rng.geometric(0.005, n)
    c["kind"], c["symbol"], c["side"] = CommandKind.NEW, sym, side
    c["account"] = rng.integers(1, accounts + 1, n)
    c["price"] = np.where(side == 0, mid[sym] // 2 - away, 3 * mid[sym] + away)
    c["qty"] = rng.integers(1, 100, n)
    c["client_order_id"] = 1_000_000_000 + np.arange(n)
    return np.concatenate([fund, c])


def fresh_service(config: Config) -> OrderService:
    return OrderService(config)


def fill_segment(journal, nbytes: int) -> None:
    """Append entries of 64 commands until the open segment holds ``nbytes`` (what it
    holds when a periodic snapshot is due; closing it fsyncs that much)."""
    cmds = records.commands(64)
    while journal.state[J_SIZE] < nbytes:
        journal.append(cmds)


def measure_snapshots(config: Config, n_orders: int, repeat: int, folder: Path) -> None:
    every = config.state.snapshot_every_bytes
    for n in (0, n_orders):
        svc = fresh_service(config)
        svc.submit(resting_book(config, n))
        book = f"{svc.live_orders()} resting orders" if n else "empty"
        store = StateStore(folder / f"snap-{n}", config)
        journal = store.open_journal(1)
        captures, pauses, closes, writes, sizes, loads = [], [], [], [], [], []
        reports: list[dict] = []
        cap = None
        for _ in range(repeat):
            fill_segment(journal, every)
            t0 = time.perf_counter()
            cap = store.save_snapshot_async(svc, journal.last_batch, done=reports.append)
            pauses.append(time.perf_counter() - t0)
            journal = store.journal
            store.wait()
            assert cap is not None
            captures.append(cap.seconds)
            closes.append(reports[-1]["close_s"])
            writes.append(store.last_write["write_s"])
            path = store.snapshots()[-1][1]
            sizes.append(path.stat().st_size)
            target = fresh_service(config)
            t0 = time.perf_counter()
            StateStore(folder / f"snap-{n}", config).load_snapshot(path, target)
            loads.append(time.perf_counter() - t0)
        assert cap is not None
        ms = lambda xs: {"p50": round(1e3 * float(np.median(xs)), 2),  # noqa: E731
                         "max": round(1e3 * max(xs), 2)}
        _emit({"name": "snapshot", "book": book, "format": "compact", "bytes": sizes[-1],
               "live_bytes": cap.nbytes, "pause_ms": ms(pauses), "capture_ms": ms(captures),
               "segment_bytes": every, "close_segment_ms": ms(closes),
               "write_ms": ms(writes), "load_ms": ms(loads), "repeat": repeat})
        t0 = time.perf_counter()
        buf = io.BytesIO()
        np.savez_compressed(buf, **cap.stored)
        _emit({"name": "snapshot", "book": book, "format": "compact_zlib",
               "bytes": len(buf.getvalue()),
               "write_ms": {"p50": round(1e3 * (time.perf_counter() - t0), 2)}})
        full = folder / f"full-{n}.npz"
        t0 = time.perf_counter()
        with open(full, "wb") as f:
            np.savez(f, **svc.state_arrays())
            f.flush()
            os.fsync(f.fileno())
        _emit({"name": "snapshot", "book": book, "format": "full",
               "bytes": full.stat().st_size,
               "write_ms": {"p50": round(1e3 * (time.perf_counter() - t0), 2)}})
        full.unlink()
        if n:
            fill_segment(journal, every)
            loop_beside_write(config, svc, store)
        store.close()


def loop_beside_write(config: Config, svc: OrderService, store: StateStore) -> None:
    """The loop's step times while the snapshot thread writes, and without it. A step:
    16 IOC orders that find nothing to take (an ACK and a CANCELLED each; the book does
    not change)."""
    steps = [resting_book(config, 16, seed=i, accounts=1)[-16:] for i in range(64)]
    for cmds in steps:
        cmds["tif"] = TimeInForce.IOC
    clock = time.perf_counter_ns

    def run(until) -> np.ndarray:
        out, i = [], 0
        while until(i):
            t0 = clock()
            svc.submit(steps[i % len(steps)])
            out.append(clock() - t0)
            i += 1
        return np.array(out)

    gc.collect()
    end = time.perf_counter() + 1.0
    base = run(lambda i: time.perf_counter() < end)
    store.save_snapshot_async(svc, store.journal.last_batch)
    during = run(lambda i: store.busy() or i < 50)
    store.wait()
    for what, samples in (("alone", base), ("beside_write", during)):
        emit_latency("snapshot_loop", samples, unit="us", loop=what,
                     over_2ms=int((samples > 2_000_000).sum()), **machine())


def journal_entries(svc: OrderService, wl: Workload, journal, entries: int, per: int) -> int:
    """Append ``entries`` journal entries of ``per`` commands of the workload (processed
    by svc, as the engine would have); returns the journal bytes written."""
    size, done = 0, 0
    big = max(1024, per)
    while done < entries:
        cmds = wl.next_batch(big)
        wl.observe(svc.submit(cmds))
        for a in range(0, len(cmds), per):
            if done == entries:
                break
            journal.append(cmds[a:a + per])
            size += HEADER.size + 64 * len(cmds[a:a + per])
            done += 1
    return size


def restart(config: Config, root: Path, label: str, last: int, entries: int, per: int,
            nbytes: int, behind: int = 0) -> None:
    """Recovery into a fresh service, as the engine's start does it, the database
    ``behind`` entries behind the journal (their events are kept, to be resent)."""
    gc.collect()
    t0 = time.perf_counter()
    svc = fresh_service(config)
    t1 = time.perf_counter()
    store = StateStore(root, config)
    held = last - behind
    rec = store.recover(svc, keep_events=True, upto=held, keep_after=held)
    total = time.perf_counter() - t0
    store.close()
    _emit({"name": "restart", "case": label, "entries": entries, "per_entry": per,
           "journal_bytes": nbytes, "database_behind": behind,
           "snapshot_batch": rec.snapshot_batch,
           "replayed": rec.replayed_batches, "live_orders": svc.live_orders(),
           "construct_s": round(t1 - t0, 3), "load_s": round(rec.load_s, 3),
           "replay_s": round(rec.replay_s, 3), "total_s": round(total, 3)})
    assert rec.replayed_batches == entries and not rec.problems, rec.problems


def measure_restarts(config: Config, n_orders: int, entries: int, per: int,
                     folder: Path) -> None:
    every = config.state.snapshot_every_bytes
    root = folder / "restart"
    svc = fresh_service(config)
    store = StateStore(root, config)
    store.recover(svc)
    journal = store.open_journal(1)
    book = resting_book(config, n_orders)
    for a in range(0, len(book), 4096):
        journal.append(book[a:a + 4096])
        svc.submit(book[a:a + 4096])
    wl = Workload(config, seed=1, wallets=True)
    f = wl.funding()
    journal.append(f)
    svc.submit(f)
    store.save_snapshot(svc, journal.last_batch)
    journal = store.journal
    restart(config, root, "fresh snapshot", journal.last_batch, 0, per, 0)   # warm-up
    restart(config, root, "fresh snapshot", journal.last_batch, 0, per, 0)
    worst = HEADER.size + 64                        # one command per entry
    size = journal_entries(svc, wl, journal, every // worst, 1)
    restart(config, root, "default interval, 1 command per entry", journal.last_batch,
            every // worst, 1, size)
    store.save_snapshot(svc, journal.last_batch)
    journal = store.journal
    size = journal_entries(svc, wl, journal, entries, per)
    restart(config, root, f"{entries} entries since the snapshot", journal.last_batch,
            entries, per, size)
    behind = min(entries, 100_000)
    restart(config, root, f"{entries} entries since the snapshot, the database "
            f"{behind} behind", journal.last_batch, entries, per, size, behind)
    store.close()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--orders", type=int, default=100_000, help="resting orders (100,000)")
    ap.add_argument("--entries", type=int, default=1_000_000,
                    help="journal entries since the last snapshot (1,000,000)")
    ap.add_argument("--per-entry", type=int, default=1, help="commands per entry (1)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=("snapshot", "restart"))
    args = ap.parse_args(argv)
    if args.quick:
        args.orders, args.entries, args.repeat = 20_000, 100_000, 3
    config = Config.default()
    with tempfile.TemporaryDirectory(prefix="ringex-restart-", dir=ROOT) as tmp:
        if args.only != "restart":
            measure_snapshots(config, args.orders, args.repeat, Path(tmp))
        if args.only != "snapshot":
            measure_restarts(config, args.orders, args.entries, args.per_entry, Path(tmp))


if __name__ == "__main__":
    main()
