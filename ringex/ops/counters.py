"""Counter arrays in shared memory that the supervisor's metrics read (``ops.metrics``).

    h = Histogram.alloc(ctx, LATENCY_BOUNDS_NS)    # in the process that creates it
    h.observe(1_234)                               # in the process that owns it
    h.counts(), h.sum_ns                           # anywhere: cumulative, Prometheus-style

A ``multiprocessing.RawArray("q")`` per histogram or counter set: no lock (one writer per
array; a reader may see a count one observation behind the sum, which a scrape tolerates).
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence

# place -> ack at the gateway: the command written to the ring until the ack is turned
# into a message (ring, engine, ring, pump); log-spaced from 10 us to 100 ms
LATENCY_BOUNDS_NS = (10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
                     2_500_000, 5_000_000, 10_000_000, 25_000_000, 100_000_000)


class Histogram:
    """Buckets ``<= bounds[i]`` plus one for everything above, then the sum (ns)."""

    __slots__ = ("bounds", "words")

    def __init__(self, words, bounds: Sequence[int]):
        if len(words) != len(bounds) + 2:
            raise ValueError(f"a histogram of {len(bounds)} bounds needs {len(bounds) + 2} "
                             f"words, got {len(words)}")
        self.words = words
        self.bounds = tuple(bounds)

    @classmethod
    def alloc(cls, ctx, bounds: Sequence[int] = LATENCY_BOUNDS_NS) -> "Histogram":
        return cls(ctx.RawArray("q", len(bounds) + 2), bounds)

    def observe(self, ns: int) -> None:
        w = self.words
        w[bisect.bisect_left(self.bounds, ns)] += 1
        w[-1] += ns

    def counts(self) -> list[int]:
        """Cumulative counts per bound, the last one (+Inf) being the total."""
        out, total = [], 0
        for i in range(len(self.bounds) + 1):
            total += self.words[i]
            out.append(total)
        return out

    @property
    def sum_ns(self) -> int:
        return int(self.words[-1])

    def __getstate__(self):
        return self.words, self.bounds

    def __setstate__(self, state) -> None:
        self.words, self.bounds = state
