"""kill -9 during a live order stream, restart on the same data dir: nothing acknowledged
is lost, nothing is stored twice, balances are conserved, and the restarted book, open
orders and balances equal a clean replay of the journal (tests/faults/rig.py)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults.rig import (Run, Seen, ask_engine, check_converged, fund, make_accounts,
                              replay_journal, run_async, stream)


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
def test_postgres_matcher_killed_mid_stream_loses_nothing(tmp_path, pg_url):
    _crash_and_recover(tmp_path, "engine", pg_url)


@pytest.mark.timeout(120)
def test_postgres_whole_group_killed_while_the_writer_lags_converges(tmp_path, pg_url):
    _crash_and_recover(tmp_path, "group", pg_url)
