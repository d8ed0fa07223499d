"""Rounds of ``kill -9`` of the engine, the trade queue's main producer, at random moments
under a live order stream, each followed by an operator's restart and the convergence
check (tests/faults/rig.py), with the persistence stall of each round measured:

    kill -> the run has exited (the supervisor stopped the rest: shutdown_s)
         -> restarted and running (restart_s)
         -> the database holds every journal entry (stall_s counts from the kill)

A kill that lands inside faster-fifo's ``put`` leaves the queue locked for good; the
supervisor then says so ("trade queue is locked by thread") and kills instead of
waiting (ringex/storage/queue_lock.py); ``queue_locked`` reports those rounds. Used by
tests/faults/test_queue_kill.py (a few rounds) and perf/queue_kill.py (``--rounds N``).
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable

from tests.faults.rig import (Run, Seen, archive_journal, ask_engine, check_converged, fund,
                              make_accounts, replay_journal, run_async, stream)

CATCH_UP_TIMEOUT_S = 60.0
LOCKED = "trade queue is locked by thread"


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _caught_up(run: Run) -> bool:
    return run.db_last_batch() == run.journal_last_batch()


class EngineKills:
    """One data dir, one database, one set of traders, across every round."""

    def __init__(self, workdir: Path, seed: int, traders: int = 6):
        self.workdir = Path(workdir)
        self.run = Run(self.workdir / "data")
        self.archive = self.workdir / "journal-archive"
        self.rng = random.Random(seed)
        self.seen = Seen()
        self.traders = traders
        self.keys: dict[int, str] = {}

    def start(self) -> "EngineKills":
        self.run.start()
        self.keys = make_accounts(self.run, self.traders)
        run_async(fund(self.run, self.keys, self.seen))
        return self

    def round(self, index: int) -> dict:
        """Stream, kill the engine after a random delay, restart, wait for the database,
        check everything; what was measured."""
        run, marks = self.run, {}
        delay = self.rng.uniform(0.3, 2.0)

        def kill() -> None:
            marks["kill"] = time.monotonic()
            run.kill_engine()

        acks_before = len(self.seen.acks)
        run_async(stream(run, self.keys, self.seen, kill, warmup_s=delay))
        code = run.wait_exit()
        marks["exited"] = time.monotonic()
        locked = LOCKED in run.log()
        held, last = run.db_last_batch(), run.journal_last_batch()
        run.start()
        marks["running"] = time.monotonic()
        _wait(lambda: _caught_up(run), CATCH_UP_TIMEOUT_S, "the database to catch up")
        marks["caught_up"] = time.monotonic()
        rec = run.recovery()
        assert rec["batch"] == last and rec["resent"] == last - held, (rec, held, last)
        live = run_async(ask_engine(run, self.keys))      # its book queries are journaled
        _wait(lambda: _caught_up(run), CATCH_UP_TIMEOUT_S, "the database to catch up")
        archive_journal(run.data_dir, self.archive)
        counts = check_converged(run, replay_journal(run.data_dir, self.archive), self.keys,
                                 self.seen, live)
        return {"round": index, "kill_after_s": round(delay, 2), "exit_code": code,
                "queue_locked": locked, "acks": len(self.seen.acks) - acks_before,
                "db_behind_at_kill": last - held,
                "shutdown_s": round(marks["exited"] - marks["kill"], 2),
                "restart_s": round(marks["running"] - marks["exited"], 2),
                "stall_s": round(marks["caught_up"] - marks["kill"], 2), **counts}

    def finish(self) -> dict:
        """A clean stop and the full check once more (snapshot, then journal replay)."""
        live = run_async(ask_engine(self.run, self.keys))
        assert self.run.stop() == 0, self.run.log()
        archive_journal(self.run.data_dir, self.archive)
        return check_converged(self.run, replay_journal(self.run.data_dir, self.archive),
                               self.keys, self.seen, live)

    def cleanup(self) -> None:
        self.run.cleanup()
