"""End-to-end restart after a crash: ``kill -9`` of the whole ``ringex run`` group, then
``ringex run`` again on the same data dir, timed from the launch.

    .venv/bin/python perf/crash_restart.py            # 100,000 resting orders, 1,000,000 entries
    .venv/bin/python perf/crash_restart.py --quick    # 2,000 orders, small journals

Target (issue "Operate it"): restart ≤ 3 s after a crash with the default snapshot interval.

Each case gets a fresh temporary data dir (SQLite) and is built like this: ``ringex run``
once (creates the database; a client account with an API key is added and funded), a
clean stop (a snapshot); offline, the resting book is journaled and snapshotted, then
``entries`` one-command journal entries of perf/workload.py are appended, each processed
by an OrderService recovered from that state (so they are valid for it: perf/restart.py's
``journal_entries``); ``ringex run`` again, which replays them and resends them to the
writer; once the database's last batch equals the journal's, ``kill -9`` of the group
(a clean stop would write a snapshot). The database then holds everything the journal
holds, as with a running exchange whose writer is well under a second behind.

Measured, ``--repeat`` times (each a crash again, once ready; the recovered run writes no
snapshot until a new interval of journal): ``ready_s`` (launch -> ``ringex.run``),
``first_ack_s`` (launch -> a logged-in client's order acknowledged), ``replayed`` and
``resent`` (the engine's "recovered batch" line), and from the log's timestamps
``log_first_s`` / ``log_recovered_s`` / ``log_running_s`` (launch -> the run's first log
line / the engine's "recovered batch" / its "running" line; ``--logs DIR`` keeps the
logs). Once per case, ``recovery_in_process``: the engine's recovery alone on the crashed
data dir (snapshot load + replay in this process; the log does not time it).

Cases: ``fresh snapshot`` (nothing journaled since the newest snapshot but the entry each
start journals), ``default interval`` (just under one ``[state] snapshot_every_bytes`` of
one-command entries: the worst shape), ``--entries`` entries (``RINGEX_STATE`` raises the
interval above them, else the engine would snapshot at once), and one interval with the
database ``--behind`` entries behind at the crash (appended offline after it: the restart
resends them; a repeat's crash comes once ready, so it finds what the writer had not
stored yet: ``resent``). One JSON line per case (perf/_report.py) and a summary line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from perf._report import machine  # noqa: E402
from perf.restart import journal_entries, resting_book  # noqa: E402
from perf.workload import Workload  # noqa: E402
from ringex.client import Ack, Reject, connect  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.core.journal import HEADER, J_SIZE  # noqa: E402
from ringex.core.order_service import OrderService  # noqa: E402
from ringex.core.snapshot import STATE_ENV, StateStore  # noqa: E402
from tests.faults.rig import Run  # noqa: E402

CATCH_UP_TIMEOUT_S = 600.0
ENTRY_BYTES = HEADER.size + 64               # a one-command journal entry
HEADROOM = 1 << 16      # below the interval: the measured runs' own orders must not trigger one
CLIENT_USD = "1000000"


def _emit(obj: dict) -> None:
    print(json.dumps({**obj, "loadavg": [round(x, 2) for x in os.getloadavg()],
                      **machine()}), flush=True)


async def _fund(url: str, admin_key: str, account: int) -> None:
    admin = await connect(url, admin_key)
    try:
        res = await admin.deposit(account, "USD", CLIENT_USD)
        assert not isinstance(res, Reject), res
    finally:
        await admin.close()


async def _first_ack(url: str, key: str) -> float:
    """Connect as soon as the gateway listens, place one resting bid; when it is acked."""
    c = await connect(url, key, login="message")
    try:
        res = await c.place("BTC-USD", "buy", "0.0001", "50.00")
        assert isinstance(res, Ack), res
        return time.monotonic()
    finally:
        await c.close()


def _stamp(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _log_phases(log: str, launched: float) -> dict:
    """Seconds from the launch (wall clock) to the run's first log line and to the
    engine's "recovered batch" and "running" lines: where the start's time goes."""
    lines = [ln for ln in log.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", ln)]
    out = {}
    for key, text in (("log_first_s", ""), ("log_recovered_s", "engine: recovered batch"),
                      ("log_running_s", "engine: running")):
        hit = next((ln for ln in lines if text in ln), None)
        if hit:
            out[key] = round(_stamp(hit) - launched, 3)
    return out


def _newest_snapshot(data_dir: Path) -> str:
    return max(p.name for p in (data_dir / "state" / "snapshots").glob("snap-*.npz"))


def _crash(run: Run, newest: str) -> None:
    """kill -9 of the group; the run must have written no snapshot after ``newest``."""
    run.kill_group()
    now = _newest_snapshot(run.data_dir)
    assert now == newest, f"the crashed run wrote a snapshot: {newest} -> {now}"


def _append_offline(data_dir: Path, config: Config, orders: int | None, entries: int,
                    limit: int) -> tuple[int, int]:
    """Journal the resting book (and the workload's funding) and snapshot it (not when
    ``orders`` is None), then append ``entries`` one-command entries; (journal bytes
    appended, last batch)."""
    svc = OrderService(config)
    store = StateStore(data_dir / "state", config)
    rec = store.recover(svc)
    journal = store.open_journal(rec.last_batch + 1)
    wl = Workload(config, seed=1 if orders is not None else 2, wallets=True)
    if orders is not None:
        funding = wl.funding()
        for cmds in np.array_split(resting_book(config, orders), max(1, orders // 4096)):
            journal.append(cmds)
            svc.submit(cmds)
        journal.append(funding)
        svc.submit(funding)
        store.save_snapshot(svc, journal.last_batch)        # starts a new segment
        assert store.journal is not None
        journal = store.journal
    size = journal_entries(svc, wl, journal, entries, 1)
    assert journal.state[J_SIZE] <= limit, (int(journal.state[J_SIZE]), limit)
    last = journal.last_batch
    store.close()
    return size, last


def _catch_up(run: Run, last: int) -> None:
    """Wait until the database's last batch is the journal's (at least ``last``)."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while run.db_last_batch() < last or run.db_last_batch() != run.journal_last_batch():
        assert time.monotonic() < deadline, f"the writer never reached batch {last}"
        assert run.proc is not None and run.proc.poll() is None, run.log()
        time.sleep(0.2)


def prepare(run: Run, config: Config, orders: int, entries: int, limit: int,
            behind: int = 0) -> tuple[str, int, int]:
    """Leave ``run``'s data dir crashed with ``entries`` journal entries since its newest
    snapshot (module docstring), the last ``behind`` of them appended after the crash
    (the database lacks them); (the client's API key, journal bytes, last batch)."""
    run.start()
    with run.repo() as repo:
        account = repo.add_account("crash-restart")
        key = repo.add_api_key(account)
    asyncio.run(_fund(run.url, run.admin_key, account))
    os.kill(run.pid, signal.SIGINT)          # clean stop: a snapshot
    assert run.wait_exit() == 0, run.log()
    size, last = _append_offline(run.data_dir, config, orders, entries - behind, limit)
    newest = _newest_snapshot(run.data_dir)
    run.start()
    _catch_up(run, last)
    _crash(run, newest)
    if behind:
        # (+ room for the entry the catch-up run journaled at its start)
        more, last = _append_offline(run.data_dir, config, None, behind, limit + 4096)
        size += more
    return key, size, last


def recovery_in_process(run: Run, config: Config) -> dict:
    """The engine's recovery alone, on the crashed data dir (its log does not time it):
    what ``_recover`` does, into a fresh OrderService (perf/restart.py's ``restart``)."""
    held = run.db_last_batch()
    t0 = time.perf_counter()
    svc = OrderService(config)
    store = StateStore(run.data_dir / "state", config)
    rec = store.recover(svc, keep_events=True, upto=held, keep_after=held)
    total = time.perf_counter() - t0
    store.close()
    assert not rec.problems, rec.problems
    return {"load_s": round(rec.load_s, 3), "replay_s": round(rec.replay_s, 3),
            "total_s": round(total, 3), "replayed": rec.replayed_batches}


def measure(run: Run, key: str, keep_log: Path | None) -> dict:
    launched, t0 = time.time(), time.monotonic()
    run.start()
    ready = time.monotonic() - t0
    first_ack = asyncio.run(_first_ack(run.url, key)) - t0
    log = run.log()
    if keep_log is not None:
        keep_log.parent.mkdir(parents=True, exist_ok=True)
        keep_log.write_text(log)
    return {"ready_s": round(ready, 3), "first_ack_s": round(first_ack, 3),
            **run.recovery(), **_log_phases(log, launched)}


def run_case(label: str, config: Config, orders: int, entries: int, repeat: int,
             interval: int, behind: int, logs: Path | None = None) -> dict:
    """Build the crashed data dir, measure ``repeat`` restarts (a crash between them),
    stop cleanly; one JSON line."""
    with tempfile.TemporaryDirectory(prefix="ringex-crash-", dir=ROOT) as tmp:
        run = Run(Path(tmp) / "data")
        try:
            t_prep = time.monotonic()
            key, size, last = prepare(run, config, orders, entries, interval - HEADROOM,
                                      behind)
            prep_s = time.monotonic() - t_prep
            in_process = recovery_in_process(run, config)
            newest = _newest_snapshot(run.data_dir)
            rounds = []
            for i in range(repeat):
                keep = logs / f"{label.replace(' ', '-')}-{i}.log" if logs else None
                rounds.append(measure(run, key, keep))
                if i + 1 < repeat:
                    _crash(run, newest)
            os.kill(run.pid, signal.SIGINT)
            code = run.wait_exit()
            left = run.segments()
        finally:
            run.cleanup()
    assert code == 0, f"ringex run exited {code}"
    assert not left, f"shared memory left: {left}"
    pick = lambda k: [r.get(k) for r in rounds]  # noqa: E731
    out = {"name": "crash_restart", "unit": "s", "case": label, "resting_orders": orders,
           "entries": entries, "journal_bytes": size, "last_batch": last,
           "snapshot_every_bytes": interval, "database_behind": behind,
           "ready_s": pick("ready_s"), "first_ack_s": pick("first_ack_s"),
           "replayed": pick("replayed"), "resent": pick("resent"),
           "log_first_s": pick("log_first_s"), "log_recovered_s": pick("log_recovered_s"),
           "log_running_s": pick("log_running_s"),
           "recovery_in_process": in_process, "prepare_s": round(prep_s, 1),
           "exit_code": code, "repeat": repeat}
    _emit(out)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2,000 orders, 20,000 entries, a 4 MiB interval, 2 repeats")
    ap.add_argument("--orders", type=int, default=100_000, help="resting orders (100,000)")
    ap.add_argument("--entries", type=int, default=1_000_000,
                    help="journal entries since the snapshot, third case (1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="restarts per case (3)")
    ap.add_argument("--behind", type=int, default=100_000,
                    help="the last case: one interval, the database this many entries "
                         "behind at the crash (100,000; 0: no such case)")
    ap.add_argument("--only", choices=("fresh", "interval", "entries", "behind"))
    ap.add_argument("--logs", type=Path, default=None,
                    help="keep each measured run's log in this folder (<case>-<n>.log)")
    args = ap.parse_args(argv)
    config = Config.default()
    interval = config.state.snapshot_every_bytes
    saved_env = os.environ.get(STATE_ENV)
    if args.quick:
        args.orders, args.entries, args.repeat, args.behind = 2_000, 20_000, 2, 5_000
        interval = 4 << 20
    one_interval = (interval - HEADROOM) // ENTRY_BYTES
    name = "default interval" if not args.quick else "one interval"
    cases: list[tuple[str, int, int, int]] = []
    if args.only in (None, "fresh"):
        cases.append(("fresh snapshot", 0, interval, 0))
    if args.only in (None, "interval"):
        cases.append((name, one_interval, interval, 0))
    if args.only in (None, "entries"):
        # a larger interval, or the recovered engine would snapshot straight away
        big = max(interval, 2 * (args.entries * ENTRY_BYTES + HEADROOM))
        cases.append((f"{args.entries} entries", args.entries, big, 0))
    if args.only in (None, "behind") and args.behind:
        cases.append((f"{name}, database {args.behind} behind", one_interval, interval,
                      args.behind))
    results = []
    try:
        for label, entries, every, behind in cases:
            os.environ[STATE_ENV] = f"snapshot_every_bytes={every}"
            results.append(run_case(label, config, args.orders, entries, args.repeat, every,
                                    behind, args.logs))
    finally:
        if saved_env is None:
            os.environ.pop(STATE_ENV, None)
        else:
            os.environ[STATE_ENV] = saved_env
    _emit({"name": "crash_restart_summary", "unit": "s", "target_ready_s": 3.0,
           "cases": {r["case"]: {"ready_s_max": max(r["ready_s"]),
                                 "first_ack_s_max": max(r["first_ack_s"]),
                                 "replayed": r["replayed"][0]} for r in results}})


if __name__ == "__main__":
    main()
