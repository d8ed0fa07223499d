"""The writer process end to end: queue -> writer -> SQLite / PostgreSQL."""
from __future__ import annotations

import time

import numpy as np

from ringex.storage.stores import open_repository
from ringex.storage.trade_queue import TradeQueue
from ringex.storage.writer import start_writer
from ringex import records
from tests.storage.storage_events import Script, fill_stream
from tests.storage.test_repository import session_steps


def _counts(url, config):
    with open_repository(url, config) as repo:
        return {t: repo._fetch(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
                for t in ("trades", "orders", "order_events", "transfers", "audit",
                          "dead_letters")}


def _audit(n):
    a = np.zeros(n, records.AUDIT)
    a["ts_ns"], a["session"], a["kind"], a["port"] = 1_700_000_000 * 10**9, 5, 1, 40000
    a["addr"][:, :4] = (127, 0, 0, 1)
    return a


def test_should_write_batches_from_several_producers(db_url, market_config):
    q = TradeQueue(1 << 20)
    w = start_writer(q, db_url, market_config)
    try:
        matcher, gateway = q.producer(0, first_batch=1), q.producer(1, first_batch=1)
        for ev, _ in session_steps():
            matcher.put_events(ev)
        gateway.put_audit(_audit(3))
        ev, _ = fill_stream(3_000, symbol=1, first_order_id=100).take()     # ETH-USD
        matcher.put_events(ev)
        assert w.stop(timeout=60) == 0
    finally:
        w.kill()
    stats = w.stats()
    assert stats["payloads"] == 9 and stats["trades"] == 3_002 and stats["failures"] == 0
    assert _counts(db_url, market_config) == {
        "trades": 3_002, "orders": 5 + 3_000 + 750, "order_events": 8 + 3_750,
        "transfers": 3, "audit": 3, "dead_letters": 0}
    with open_repository(db_url) as repo:
        assert repo.last_batches() == {0: 8, 1: 1}
        a = repo._fetch("SELECT addr, port, kind FROM audit ORDER BY idx")
        assert a[0] == {"addr": "127.0.0.1", "port": 40000, "kind": 1}


def test_should_skip_batches_already_written(db_url, market_config):
    steps = session_steps()
    for attempt in range(2):                          # the second run replays every batch
        q = TradeQueue(1 << 20)
        w = start_writer(q, db_url, market_config)
        try:
            p = q.producer(0, first_batch=1)
            for ev, _ in steps:
                p.put_events(ev)
            assert w.stop(timeout=60) == 0
        finally:
            w.kill()
        s = w.stats()
        assert (s["payloads"], s["skipped"]) == ((7, 0) if attempt == 0 else (0, 7))
    assert _counts(db_url, market_config) == {
        "trades": 2, "orders": 5, "order_events": 8, "transfers": 3, "audit": 0,
        "dead_letters": 0}
    with open_repository(db_url) as repo:
        assert [o["filled"] for o in repo.orders()] == [10, 4, 6, 0, 0]


def test_should_keep_a_malformed_batch_as_a_dead_letter(sqlite_url, market_config):
    m = Script()
    m.trade(m.new(0, 1, 0, 100, 1), m.new(0, 2, 1, 100, 1), 1)
    bad, _ = m.take()
    bad = bad[[0, 1, 3]]                              # drop the maker FILL
    good, _ = fill_stream(4, script=m).take()
    q = TradeQueue(1 << 20)
    w = start_writer(q, sqlite_url, market_config)
    try:
        p = q.producer(0, first_batch=1)
        p.put_events(bad)
        p.put_events(good)
        assert w.stop(timeout=60) == 0
    finally:
        w.kill()
    with open_repository(sqlite_url) as repo:
        dead = repo._fetch("SELECT batch, reason FROM dead_letters")
        assert dead == [{"batch": 1, "reason": "FILL events are not in taker/maker pairs"}]
        assert len(repo.recent_trades(last=100)) == 4
        assert repo.last_batches() == {0: 2}


def test_should_flush_and_exit_on_sigterm(sqlite_url, market_config):
    q = TradeQueue(1 << 20)
    w = start_writer(q, sqlite_url, market_config)
    try:
        p = q.producer(0, first_batch=1)
        for ev, _ in session_steps():
            p.put_events(ev)
        assert w.wait_payloads(7, timeout=30)
        w.process.terminate()
        w.process.join(30)
        assert w.process.exitcode == 0
    finally:
        w.kill()
    assert _counts(sqlite_url, market_config)["trades"] == 2


def test_should_give_up_after_stop_timeout_when_the_database_never_comes(market_config):
    from tests.db import _free_port
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/nowhere"   # nothing listens
    q = TradeQueue(1 << 20)
    w = start_writer(q, url, market_config, retry_max_s=0.1, stop_timeout_s=0.5)
    try:
        ev, _ = session_steps()[0]
        q.producer(0).put_events(ev)
        t0 = time.monotonic()
        assert w.stop(timeout=30) == 1                 # says so, does not hang
        assert time.monotonic() - t0 < 10
        assert w.stats()["failures"] >= 2
    finally:
        w.kill()
