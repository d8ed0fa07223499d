"""SIGINT or SIGTERM to ``ringex run`` while clients trade on two gateways: every round it
exits 0 within the stop timeout, leaves no process and no shared-memory segment, and the
restart holds everything that was acknowledged (tests/faults/rig.py's checks).
"""
from __future__ import annotations

import os
import signal

import pytest

from tests.faults.rig import (Run, Seen, archive_journal, ask_engine, check_converged, fund,
                              make_accounts, replay_journal, run_async, stream)

ROUNDS = (signal.SIGTERM, signal.SIGINT, signal.SIGTERM)


def _segments(run: Run) -> list[str]:
    return sorted(n for n in os.listdir("/dev/shm")
                  for pgid in run.pgids if n.startswith(f"ringex-{pgid}-"))


@pytest.mark.timeout(240)
def test_stop_signals_under_load_stop_everything_cleanly_every_time(tmp_path):
    run = Run(tmp_path / "data", gateways=2)
    journal = tmp_path / "journal"
    try:
        run.start()
        keys = make_accounts(run, 4)
        seen = Seen()
        run_async(fund(run, keys, seen))
        codes = []
        for sig in ROUNDS:
            stop = lambda s=sig: run.proc.send_signal(s)  # noqa: E731
            run_async(stream(run, keys, seen, stop, warmup_s=1.0))
            codes.append(run.wait_exit())             # also: no process of the run left
            assert _segments(run) == [], _segments(run)
            archive_journal(run.data_dir, journal)    # a start may prune old segments
            run.start()
            assert "shared-memory segments of runs" not in run.log()  # nothing to sweep
        assert codes == [0] * len(ROUNDS), (codes, run.log())
        assert len(seen.acks) > 100, (len(seen.acks), seen.errors)
        live = run_async(ask_engine(run, keys))
        assert run.stop() == 0, run.log()
        archive_journal(run.data_dir, journal)
        check_converged(run, replay_journal(run.data_dir, journal), keys, seen, live)
    finally:
        run.cleanup()
