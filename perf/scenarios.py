"""Named, seeded workloads for the matcher benchmark: ``Workload(config, mix=SCENARIOS[name])``.

- ``calm``: a quiet book under heavy cancel/replace; about two commands in three cancel or
  modify a live order, the rest are mostly new GTC quotes; few takers, a tiny walk.
- ``normal``: ``Mix()``, the workload perf/workload.py describes.
- ``swing25``, ``swing40``: the normal mix while the mid swings +/-25 % (40 %) of its
  start over 250,000 commands: ladder pages ahead are touched, those behind empty and free.
  On BTC-USD the mid moves up to 6 (10) ticks per command, faster than quotes live: those
  ahead of it trade (about 0.7 trades per command), the book stays thin (tens of orders)
  and most cancels/modifies find no order out of its way, so they become new orders.
- ``flash``: wide resting depth (about 200 ticks on average from the mid, so hundreds of
  levels hold orders); every 16,384 commands the mid drops 15 % and three IOC sells per
  symbol at the new mid sweep every bid above it; the book refills there, and half-way to
  the next crash the mid comes back with three IOC buys per symbol sweeping the asks.
- ``stale``: most commands are cancels (by id and by client id) and modifies of orders
  already filled or cancelled, i.e. UNKNOWN_ORDER rejects, with enough new orders to
  keep a book.
"""
from __future__ import annotations

from perf.workload import Mix

SCENARIOS: dict[str, Mix] = {
    "calm": Mix(gtc=0.36, ioc=0.012, market=0.003, cancel_id=0.19, cancel_cid=0.145,
                modify=0.31, walk_p=0.0002),
    "normal": Mix(),
    "swing25": Mix(swing=0.25, swing_period=250_000),
    "swing40": Mix(swing=0.40, swing_period=250_000),
    "flash": Mix(depth_p=0.005, flash_every=16_384, flash_drop=0.15, flash_sweeps=3),
    "stale": Mix(gtc=0.2, ioc=0.03, market=0.005, cancel_id=0.3, cancel_cid=0.25,
                 modify=0.2, stale=0.75),
}
