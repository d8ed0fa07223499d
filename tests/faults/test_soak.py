"""The soak harness, bounded (perf/soak.py runs it for 30 minutes): a fixed-rate flow over
many connections with market-data subscribers, samples of memory, latency and database
lag, then the full convergence check."""
from __future__ import annotations

import pytest

from perf.soak import soak


@pytest.mark.timeout(240)
def test_soak_for_a_minute_loses_nothing_and_leaves_nothing():
    out = soak(["--minutes", "0.75", "--connections", "20", "--accounts", "4",
                "--rate", "150", "--subscribers", "3", "--every", "15"])
    assert out["ok"], out["why"]
    assert out["acks"] > 500 and out["checked"], out
    assert len(out["p99_us_per_interval"]) == 3 and min(out["p50_us_per_interval"]) > 0
    # the run's segments stayed as they were, and every process was sampled each time
    first, last = out["shm_first_last"]
    assert first == last > 0
    assert set(out["rss_growth_pct"]) >= {"supervisor", "engine", "writer", "gateway 0",
                                          "gateway 1"}
