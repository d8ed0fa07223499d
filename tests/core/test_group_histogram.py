"""The engine loop's group-time histogram: power-of-two buckets from 512 ns, then a sum."""
from __future__ import annotations

import numpy as np

from ringex.core.engine import loop as L
from ringex.core.engine.control import HIST_BUCKETS, HIST_FIRST_NS, HIST_WORDS


def test_group_times_land_in_power_of_two_buckets_with_a_running_sum():
    hist = np.zeros(HIST_WORDS, np.int64)
    times = [0, 511, 512, 1023, 1024, HIST_FIRST_NS << 20]
    for ns in times:
        L.observe(hist, ns)
    assert list(hist[:3]) == [2, 2, 1]                 # < 512, < 1024, < 2048
    assert hist[HIST_BUCKETS - 1] == 1               # the last bucket takes the rest
    assert hist[HIST_BUCKETS] == sum(times)
