"""Repeated ``kill -9`` of the engine (the trade queue's producer) under load: every round
the restarted run converges (database == journal replay == what clients were told) and
persistence catches up within a generous deadline (tests/faults/queue_kill.py; the stall
times are printed, not asserted; perf/queue_kill.py --rounds N for more)."""
from __future__ import annotations

import os

import pytest

from tests.faults.queue_kill import EngineKills

ROUNDS = 3


@pytest.mark.timeout(400)
def test_engine_killed_repeatedly_under_load_persistence_converges(tmp_path):
    seed = int(os.environ.get("RINGEX_SEED", "13"))
    kills = EngineKills(tmp_path, seed)
    try:
        kills.start()
        rounds = [kills.round(i) for i in range(ROUNDS)]
        final = kills.finish()
    finally:
        kills.cleanup()
    for r in rounds:
        print("queue kill", r)
        assert r["exit_code"] == 1 and r["acks"] > 20, r     # a child died: the run stopped
    print("queue kill final", final, "seed", seed)
