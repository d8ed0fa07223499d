"""Shared-memory histograms: Prometheus-style cumulative buckets, shared with children."""
from __future__ import annotations

import multiprocessing

from ringex.ops.counters import Histogram


def test_histogram_counts_are_cumulative_with_an_inf_bucket_and_a_sum():
    h = Histogram.alloc(multiprocessing.get_context(), bounds=(10, 100))
    for ns in (5, 10, 11, 100, 1000):
        h.observe(ns)
    assert h.counts() == [2, 4, 5]            # <= 10, <= 100, +Inf
    assert h.sum_ns == 5 + 10 + 11 + 100 + 1000


def _observe(h: Histogram) -> None:
    h.observe(3)


def test_a_spawned_child_observes_into_the_parents_histogram():
    ctx = multiprocessing.get_context("spawn")
    h = Histogram.alloc(ctx, bounds=(10,))
    p = ctx.Process(target=_observe, args=(h,))
    p.start()
    p.join(60)
    assert p.exitcode == 0 and h.counts() == [1, 1] and h.sum_ns == 3
