"""A full disk under a live order stream (issue 13), on a small tmpfs made by the test:

- the journal's: acknowledgements stop with one logged error and the metric set, nothing
  unjournaled is acknowledged, and trading resumes by itself once space is back;
- the database's: the writer logs it once, counts it, retries, and catches up once space
  is back, while acknowledgements go on (the journal has everything).

Either way the stopped run then converges (tests/faults/rig.py: database == journal
replay == what clients were told)."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest

from ringex.client import ClientError, connect
from ringex.core.journal import read_journal
from tests.faults.rig import (LOT, MID, Run, Seen, _trader, ask_engine, check_converged,
                              fund, make_accounts, replay_journal, run_async)
from tests.util.tmpfs import fill, small_tmpfs

FS_BYTES = 8 << 20
LEAVE_BYTES = 96 << 10       # free space left by the filler: a few seconds of trading
DEADLINE_S = 30.0


def metric(run: Run, name: str) -> float:
    """One sample of ``/status.json`` (the family's first)."""
    http = json.loads((run.data_dir / "ringex.run").read_text())["http"]
    with urllib.request.urlopen(f"{http}/status.json", timeout=5) as r:
        return float(json.load(r)[name]["samples"][0][1])


async def until(pred, what: str, timeout: float = DEADLINE_S) -> float:
    """Wait for ``pred()`` (polled, off the event loop's thread); seconds it took."""
    t0 = time.monotonic()
    while not await asyncio.to_thread(pred):
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def place_times_out(run: Run, key: str) -> bool:
    """A place that gets no reply within 1 s (acknowledgements are paused)."""
    c = await connect(run.url, key, timeout=1.0)
    try:
        await c.place("BTC-USD", "buy", LOT["BTC-USD"], MID["BTC-USD"] - 1)
        return False
    except ClientError as exc:
        assert exc.code == "timeout", exc
        return True
    finally:
        await c.close()


def converge(run: Run, keys, seen: Seen) -> dict:
    live = run_async(ask_engine(run, keys))
    assert run.stop() == 0, run.log()
    for seg in (run.data_dir / "state" / "journal").glob("seg-*.rxj"):
        assert read_journal(seg)[1].torn_bytes == 0, seg     # cut back to whole entries
    return check_converged(run, replay_journal(run.data_dir), keys, seen, live)


def start_traders(run: Run, keys, seen: Seen, stop: asyncio.Event) -> list[asyncio.Task]:
    return [asyncio.create_task(_trader(run.url, k, a, 7 + a, seen, stop))
            for a, k in keys.items()]


@pytest.mark.timeout(240)
def test_journal_disk_full_pauses_acks_and_resumes(tmp_path):
    data = tmp_path / "data"
    with small_tmpfs(data / "state", FS_BYTES) as state:
        run = Run(data)
        try:
            run.start()
            keys = make_accounts(run)
            seen = Seen()
            run_async(fund(run, keys, seen))
            filler = fill(state, leave=LEAVE_BYTES)
            found: dict = {}

            async def scenario():
                stop = asyncio.Event()
                traders = start_traders(run, keys, seen, stop)
                found["fill_s"] = await until(
                    lambda: metric(run, "ringex_engine_journal_disk_full") == 1, "the pause")
                assert "journal: disk full at " + str(state / "journal") in run.log()
                held = len(seen.acks)
                assert await place_times_out(run, next(iter(keys.values())))
                assert len(seen.acks) == held, "acknowledged while the journal was full"
                filler.unlink()
                found["resume_s"] = await until(
                    lambda: metric(run, "ringex_engine_journal_disk_full") == 0, "resuming")
                await until(lambda: len(seen.acks) > held + 50, "acks after the pause")
                stop.set()
                await asyncio.wait_for(asyncio.gather(*traders), 30)

            run_async(scenario(), timeout=120)
            assert not seen.errors, seen.errors
            log = run.log()
            assert log.count("journal: disk full at") == 1, log
            assert "journal: space is back" in log, log
            assert metric(run, "ringex_engine_journal_disk_full_pauses") == 1
            assert metric(run, "ringex_engine_journal_paused_seconds") > 0.5
            counts = converge(run, keys, seen)
            print("journal disk full", counts, "acks", len(seen.acks), found)
        finally:
            run.cleanup()


@pytest.mark.timeout(240)
def test_database_disk_full_keeps_acking_and_catches_up(tmp_path):
    with small_tmpfs(tmp_path / "db", FS_BYTES) as db_dir:
        run = Run(tmp_path / "data", db=str(Path(db_dir) / "ringex.db"))
        try:
            run.start()
            keys = make_accounts(run)
            seen = Seen()
            run_async(fund(run, keys, seen))
            filler = fill(db_dir, leave=LEAVE_BYTES)
            found: dict = {}

            async def scenario():
                stop = asyncio.Event()
                traders = start_traders(run, keys, seen, stop)
                found["fill_s"] = await until(
                    lambda: metric(run, "ringex_writer_disk_full") == 1, "a failed write")
                held = len(seen.acks)
                # several retries fail (space is not back by itself), and acks go on
                await until(lambda: metric(run, "ringex_writer_database_errors") >= 4,
                            "failed retries")
                await until(lambda: len(seen.acks) > held + 100, "acks while the db is full")
                assert metric(run, "ringex_writer_disk_full") == 1
                filler.unlink()
                stop.set()
                await asyncio.wait_for(asyncio.gather(*traders), 30)
                found["catch_up_s"] = await until(
                    lambda: run.db_last_batch() == run.journal_last_batch(), "catching up")
                assert metric(run, "ringex_writer_disk_full") == 0

            run_async(scenario(), timeout=120)
            assert not seen.errors, seen.errors
            log = run.log()
            assert log.count("writer: database disk full") == 1, log
            assert "is back: writes succeed again" in log, log
            counts = converge(run, keys, seen)
            print("database disk full", counts, "acks", len(seen.acks), found)
        finally:
            run.cleanup()
