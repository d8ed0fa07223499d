"""Storage faults at the run level: PostgreSQL down during load, a torn journal tail,
a corrupt newest snapshot. Each restart must start, say what it found (the run's log),
and continue from the last good point with the database converged (tests/faults/rig.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ringex.core.journal import read_journal
from tests.faults.rig import (Run, Seen, archive_journal, ask_engine, check_converged, fund,
                              make_accounts, replay_journal, run_async, stream)
from tests.db import PG_BIN, throwaway_cluster


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.timeout(150)
def test_postgres_down_during_load_catches_up_without_loss(tmp_path):
    if not os.path.exists(f"{PG_BIN}/initdb"):
        msg = f"no PostgreSQL binaries in {PG_BIN} for a throwaway cluster"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: PostgreSQL fault tests must run)")
        pytest.skip(msg)
    with throwaway_cluster() as pg:
        run = Run(tmp_path / "data", db=pg.url)
        try:
            run.start()
            keys = make_accounts(run)
            seen = Seen()
            run_async(fund(run, keys, seen))

            def outage():                          # the clients keep trading throughout
                pg.stop("fast")
                time.sleep(2.0)
                pg.start()

            run_async(stream(run, keys, seen, outage, warmup_s=1.0, tail_s=1.5))
            assert len(seen.acks) > 50 and not seen.errors, (len(seen.acks), seen.errors)
            assert "writer:" in run.log() and "retrying" in run.log(), run.log()
            # caught up while running: the database holds every journal entry
            _wait(lambda: run.db_last_batch() == run.journal_last_batch(), 30, "catch-up")
            live = run_async(ask_engine(run, keys))
            assert run.stop() == 0, run.log()
            counts = check_converged(run, replay_journal(run.data_dir), keys, seen, live)
            print("postgres outage", counts, "acks", len(seen.acks))
        finally:
            run.cleanup()


def _newest_segment(data_dir: Path) -> Path:
    return sorted((data_dir / "state" / "journal").glob("seg-*.rxj"))[-1]


@pytest.mark.timeout(120)
def test_torn_journal_tail_is_cut_reported_and_recovered(tmp_path):
    run = Run(tmp_path / "data")
    try:
        run.start()
        keys = make_accounts(run)
        seen = Seen()
        run_async(fund(run, keys, seen))
        run_async(stream(run, keys, seen, run.kill_group, warmup_s=1.0))
        held, last = run.db_last_batch(), run.journal_last_batch()
        seg = _newest_segment(run.data_dir)
        data = seg.read_bytes()
        entries, scan = read_journal(seg)
        assert scan.torn_bytes == 0 and entries
        if last > held:            # tear the last entry (never one the database holds)
            size = 20 + 64 * len(entries[-1][1])
            seg.write_bytes(data[:len(data) - size // 2])
            expect = last - 1
        else:                      # a torn write of the next entry
            size = 20 + 64 * len(entries[-1][1])
            seg.write_bytes(data + data[len(data) - size:len(data) - size // 2])
            expect = last
        assert read_journal(seg)[1].torn_bytes > 0

        run.start()
        log = run.log()
        assert "engine: recovery:" in log and "bytes cut" in log, log
        assert f"recovered batch {expect} " in log, log
        live = run_async(ask_engine(run, keys))
        assert run.stop() == 0, run.log()
        rep = replay_journal(run.data_dir)
        check_converged(run, rep, keys, None, live)
        assert read_journal(seg)[1].torn_bytes == 0
    finally:
        run.cleanup()


@pytest.mark.timeout(150)
def test_corrupt_newest_snapshot_is_skipped_reported_and_recovered(tmp_path):
    run = Run(tmp_path / "data")
    archive = tmp_path / "journal-archive"
    try:
        run.start()
        keys = make_accounts(run)
        seen = Seen()
        run_async(fund(run, keys, seen))
        run_async(stream(run, keys, seen, lambda: None, warmup_s=1.0))
        assert run.stop() == 0, run.log()                       # snapshot 1
        archive_journal(run.data_dir, archive)

        run.start()
        run_async(stream(run, keys, seen, lambda: None, warmup_s=1.0))
        before = run_async(ask_engine(run, keys))
        assert run.stop() == 0, run.log()                       # snapshot 2
        archive_journal(run.data_dir, archive)
        snaps = sorted((run.data_dir / "state" / "snapshots").glob("snap-*.npz"))
        assert len(snaps) == 2, snaps
        newest = snaps[-1]
        raw = bytearray(newest.read_bytes())
        for i in range(len(raw) // 2, len(raw) // 2 + 64):     # flip bytes mid-file
            raw[i] ^= 0xFF
        newest.write_bytes(bytes(raw))

        run.start()
        log = run.log()
        assert "snapshot skipped" in log and newest.name in log, log
        batch = int(snaps[0].stem.split("-")[1])
        assert f"(snapshot {batch} + " in log, log           # the older, good one
        after = run_async(ask_engine(run, keys))
        assert after == before, "state after recovery differs from before the corruption"
        assert run.stop() == 0, run.log()
        archive_journal(run.data_dir, archive)
        rep = replay_journal(run.data_dir, archive)
        counts = check_converged(run, rep, keys, seen, after)
        print("snapshot", counts, "acks", len(seen.acks))
    finally:
        run.cleanup()
