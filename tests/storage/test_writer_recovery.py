"""Database down, then back: the writer keeps every batch and catches up completely.

Runs against a throwaway PostgreSQL cluster (never the shared server), stopped and removed
whatever happens.
"""
from __future__ import annotations

import time

from ringex.storage.stores import open_repository
from ringex.storage.trade_queue import TradeQueue
from ringex.storage.writer import start_writer
from tests.db import throwaway_cluster
from tests.storage.storage_events import Script, fill_stream

BATCHES, TRADES_PER_BATCH = 30, 100


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_should_catch_up_after_the_database_comes_back(market_config):
    script = Script()
    batches = [fill_stream(TRADES_PER_BATCH, script=script, seed=i).take()[0]
               for i in range(BATCHES)]
    with throwaway_cluster() as pg:
        q = TradeQueue(4 << 20)
        # small drains and backlog: most of the outage stays in the queue (the writer holds
        # at most max_backlog_bytes + max_drain_bytes + one payload)
        w = start_writer(q, pg.url, market_config, retry_max_s=0.2, max_group_bytes=32 << 10,
                         max_drain_bytes=64 << 10, max_backlog_bytes=64 << 10)
        try:
            p = q.producer(0, first_batch=1)
            for ev in batches[:10]:
                p.put_events(ev)
            assert w.wait_payloads(10, timeout=30)

            pg.stop()
            for ev in batches[10:20]:
                p.put_events(ev)
            _wait(lambda: w.stats()["failures"] >= 2, 30)
            down = w.stats()
            assert down["payloads"] == 10 and not down["connected"]
            assert 0 < down["backlog_bytes"] <= (128 << 10) + 64 * 400 and q.qsize() > 0

            pg.start()
            for ev in batches[20:]:
                p.put_events(ev)
            assert w.wait_payloads(BATCHES, timeout=30)
            assert w.stop(timeout=30) == 0
        finally:
            w.kill()
        with open_repository(pg.url) as repo:
            n = repo._fetch("SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d FROM trades")[0]
            assert n == {"n": BATCHES * TRADES_PER_BATCH, "d": BATCHES * TRADES_PER_BATCH}
            assert repo.last_batches() == {0: BATCHES}
            assert len(repo.orders(status="filled")) == BATCHES * TRADES_PER_BATCH * 5 // 4
