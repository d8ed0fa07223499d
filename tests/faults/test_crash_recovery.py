"""kill -9 during a live order stream, restart on the same data dir: nothing acknowledged
is lost, nothing is stored twice, balances are conserved, and the restarted book, open
orders and balances equal a clean replay of the journal (tests/faults/rig.py)."""
from __future__ import annotations

import os
import signal
import time
from decimal import Decimal

import psycopg
import pytest

from ringex.core.snapshot import STATE_ENV
from tests.faults.rig import (CONFIG, Run, Seen, ask_engine, check_converged, fund,
                              make_accounts, replay_journal, run_async, stream)
from tests.faults.test_storage_faults import _wait


def _kill_writer_inside_its_transaction(run: Run, pg_url: str | None) -> None:
    """Hold ``meta`` locked: the writer's next group has written its trades and orders
    and waits on its last INSERT (meta), inside its transaction; kill it there. Its
    transaction dies with it; the lock is let go after."""
    assert pg_url is not None
    with psycopg.connect(pg_url) as lock, psycopg.connect(pg_url, autocommit=True) as look:
        lock.execute("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")
        deadline = time.monotonic() + 20
        while True:
            row = look.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND state = 'active' AND query LIKE 'INSERT INTO meta%'").fetchone()
            if row and row[0] or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert row and row[0] == 1, "the writer never waited inside its transaction"
        run.kill_writer()
        lock.rollback()


def _crash_and_recover(tmp_path, fault: str, db: str | None = None) -> dict:
    run = Run(tmp_path / "data", db=db)
    try:
        run.start()
        keys = make_accounts(run)
        seen = Seen()
        run_async(fund(run, keys, seen))
        left: list[str] = []

        def crash():
            if fault == "engine":
                run.kill_engine()
            elif fault == "writer_in_commit":
                _kill_writer_inside_its_transaction(run, db)
            elif fault == "writer":   # let a backlog build, then kill it while it writes
                os.kill(run.writer_pid, signal.SIGSTOP)
                time.sleep(0.7)
                os.kill(run.writer_pid, signal.SIGCONT)
                time.sleep(0.005)
                run.kill_writer()
            else:                  # the writer lags (stopped) while orders flow, then all die
                os.kill(run.writer_pid, signal.SIGSTOP)
                time.sleep(1.0)
                left.extend(run.kill_group())

        run_async(stream(run, keys, seen, crash))
        if fault != "group":
            assert run.wait_exit() == 1, run.log()        # a child died: the rest stops
            assert "exited unexpectedly" in run.log()
        assert len(seen.acks) > 50, (len(seen.acks), seen.errors)

        held, last = run.db_last_batch(), run.journal_last_batch()
        run.start()                                       # same data dir, same database
        rec = run.recovery()
        assert rec["batch"] == last and rec["resent"] == last - held, (rec, held, last)
        if fault == "group":       # what the lagging writer lost comes back from the journal
            assert last - held > 10, (held, last)
            # the dead run's rings stayed in /dev/shm; the restart swept them and said so
            assert left and not [n for n in left if os.path.exists(f"/dev/shm/{n}")], left
            swept = [line for line in run.log().splitlines()
                     if "shared-memory segments of runs" in line]
            assert swept and all(n in swept[0] for n in left), (swept, left)
        live = run_async(ask_engine(run, keys))
        assert run.stop() == 0, run.log()
        counts = check_converged(run, replay_journal(run.data_dir), keys, seen, live)
        assert counts["trades"] > 0
        print(fault, counts, "db held", held, "journal", last, "acks", len(seen.acks),
              "errors", seen.errors[:3])
        return counts
    finally:
        run.cleanup()


@pytest.mark.timeout(120)
def test_matcher_killed_mid_stream_loses_nothing(tmp_path):
    _crash_and_recover(tmp_path, "engine")


@pytest.mark.timeout(120)
def test_writer_killed_mid_stream_database_converges(tmp_path):
    _crash_and_recover(tmp_path, "writer")


@pytest.mark.timeout(120)
def test_whole_group_killed_while_the_writer_lags_database_converges(tmp_path):
    _crash_and_recover(tmp_path, "group")


@pytest.mark.timeout(120)
def test_postgres_writer_killed_inside_its_transaction_converges(tmp_path, pg_url):
    _crash_and_recover(tmp_path, "writer_in_commit", pg_url)


@pytest.mark.timeout(120)
def test_postgres_matcher_killed_mid_stream_loses_nothing(tmp_path, pg_url):
    _crash_and_recover(tmp_path, "engine", pg_url)


@pytest.mark.timeout(120)
def test_postgres_whole_group_killed_while_the_writer_lags_converges(tmp_path, pg_url):
    _crash_and_recover(tmp_path, "group", pg_url)


# ---------------------------------------------------------------- periodic snapshots
def _funded(run: Run) -> tuple[dict[int, str], Seen]:
    """Start ``run`` and make three funded accounts: (keys, what the clients were told)."""
    run.start()
    keys = make_accounts(run)
    seen = Seen()
    run_async(fund(run, keys, seen))
    return keys, seen


def _state_files(run: Run) -> tuple[list[int], list[int]]:
    state = run.data_dir / "state"
    return ([int(p.stem.split("-")[1]) for p in sorted(state.glob("snapshots/snap-*.npz"))],
            [int(p.stem.split("-")[1]) for p in sorted(state.glob("journal/seg-*.rxj"))])


@pytest.mark.timeout(180)
def test_matcher_killed_after_periodic_snapshots_replays_only_the_tail(tmp_path, monkeypatch):
    # a snapshot every ~20 kB of journal; every recovery point kept, so that the whole
    # journal is still there for the convergence check
    monkeypatch.setenv(STATE_ENV, "snapshot_every_bytes=20000,keep_snapshots=1000")
    run = Run(tmp_path / "data")
    try:
        keys, seen = _funded(run)

        def crash():               # kill -9 once the running engine has taken three
            _wait(lambda: len(_state_files(run)[0]) >= 3, 60, "three periodic snapshots")
            run.kill_engine()

        run_async(stream(run, keys, seen, crash, warmup_s=0.2), timeout=120)
        assert run.wait_exit() == 1, run.log()
        assert run.log().count("captured") >= 3, run.log()
        snaps, _ = _state_files(run)
        held, last = run.db_last_batch(), run.journal_last_batch()
        point = max(b for b in snaps if b <= held)         # the newest the database holds

        run.start()
        rec = run.recovery()
        assert rec["snapshot"] == point > 0, (rec, snaps, held)
        assert rec["batch"] == last and rec["replayed"] == last - point, (rec, last)
        assert rec["resent"] == last - held and rec["replayed"] < last / 2, (rec, held, last)
        live = run_async(ask_engine(run, keys))
        assert run.stop() == 0, run.log()
        counts = check_converged(run, replay_journal(run.data_dir), keys, seen, live)
        print("periodic", counts, "snapshots", snaps, "held", held, "recovery", rec)
    finally:
        run.cleanup()


@pytest.mark.timeout(180)
def test_matcher_killed_after_pruning_recovers_the_same_state(tmp_path, monkeypatch):
    _prune_then_crash(tmp_path, monkeypatch)


@pytest.mark.timeout(180)
def test_postgres_matcher_killed_after_pruning_recovers_the_same_state(tmp_path, monkeypatch,
                                                                       pg_url):
    _prune_then_crash(tmp_path, monkeypatch, pg_url)


def _prune_then_crash(tmp_path, monkeypatch, db: str | None = None) -> None:
    """The running engine prunes (it reads the database's progress itself), then kill -9."""
    monkeypatch.setenv(STATE_ENV, "snapshot_every_bytes=20000")       # keep_snapshots 2
    run = Run(tmp_path / "data", db=db)
    try:
        keys, seen = _funded(run)

        def pruned() -> bool:      # the first segment and snapshot went while it ran
            snaps, segs = _state_files(run)
            return len(snaps) >= 2 and segs[0] > 1 and snaps[0] > 0

        run_async(stream(run, keys, seen, lambda: _wait(pruned, 60, "pruning"),
                         warmup_s=0.2), timeout=120)
        # the engine said what it pruned, journal segments among it (a snapshot may come
        # first in the list)
        assert any("pruned [" in line and "'seg-" in line for line in run.log().splitlines()), \
            run.log()
        snaps, segs = _state_files(run)
        assert segs[0] - 1 in snaps, (snaps, segs)   # the journal starts at a snapshot
        before = run_async(ask_engine(run, keys))
        run.kill_engine()
        assert run.wait_exit() == 1, run.log()
        last = run.journal_last_batch()
        snaps, _ = _state_files(run)     # the queries above may have led to one more

        run.start()
        rec = run.recovery()
        assert rec["snapshot"] in snaps and rec["snapshot"] > 0, (rec, snaps)
        assert rec["batch"] == last and rec["replayed"] == last - rec["snapshot"], rec
        assert "journal gap" not in run.log() and "skipped" not in run.log(), run.log()
        after = run_async(ask_engine(run, keys))
        assert after == before, "state after recovery differs from before the crash"
        assert run.stop() == 0, run.log()
        assert run.db_last_batch() == run.journal_last_batch()
        with run.repo() as repo:
            stored = {(int(r["account"]), r["asset_name"]): int(r["total"])
                      for r in repo.balances()}
        for account, balances in after.balances.items():
            for asset, total in balances.items():
                scale = CONFIG.asset(asset).scale
                assert Decimal(stored.get((account, asset), 0)).scaleb(-scale) == total, \
                    (account, asset)
        print("pruned", "snapshots", snaps, "segments", segs, "recovery", rec)
    finally:
        run.cleanup()
