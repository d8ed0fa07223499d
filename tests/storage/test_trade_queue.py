"""The trade queue: payload format, zero-copy decode, many producers, bounded and lossless."""
from __future__ import annotations

import multiprocessing
import os
import threading
import time

import numpy as np
import pytest

from ringex.storage.trade_queue import (HEADER, PayloadKind, QueueAbandoned, TradeQueue, decode,
                                        encode)
from ringex import records


def _events(n, start=0):
    ev = records.events(n)
    ev["seq"] = np.arange(start, start + n)
    ev["order_id"] = np.arange(start, start + n) * 7
    ev["kind"] = records.EventKind.ACK
    return ev


def test_should_round_trip_header_commands_and_events():
    ev = _events(5)
    cmds = records.batch(records.deposit(3, 0, 100), records.withdraw(3, 0, 50))
    raw = encode(PayloadKind.EVENTS, 7, 42, ev, cmds)
    assert len(raw) == HEADER.itemsize + 64 * 7
    p = decode(raw)
    assert (p.kind, p.producer, p.batch) == (PayloadKind.EVENTS, 7, 42)
    assert np.array_equal(p.records, ev) and np.array_equal(p.commands, cmds)
    assert p.records.base is not None and not p.records.flags.owndata   # a view, no copy


def test_should_refuse_a_malformed_payload():
    raw = encode(PayloadKind.EVENTS, 1, 1, _events(2))
    with pytest.raises(ValueError, match="does not match"):
        decode(raw[:-1])
    with pytest.raises(ValueError, match="bad payload header"):
        decode(b"\0" * 32)


def test_should_ship_events_without_commands_and_number_batches():
    q = TradeQueue(1 << 20)
    p = q.producer(2, first_batch=10)
    p.put_events(_events(3))
    p.put_audit(np.zeros(2, records.AUDIT))
    got = q.get(timeout=1)
    got += q.get(timeout=0.2) if len(got) < 2 else []
    assert [(g.kind, g.batch) for g in got] == [(PayloadKind.EVENTS, 10), (PayloadKind.AUDIT, 11)]
    assert len(got[0].commands) == 0 and len(got[0].records) == 3
    assert got[1].records.dtype == records.AUDIT and len(got[1].records) == 2


def test_should_refuse_a_payload_that_can_never_fit():
    q = TradeQueue(4096)
    with pytest.raises(ValueError, match="can never fit"):
        q.producer(0).put_events(_events(100))


def test_should_block_when_full_and_lose_nothing():
    q = TradeQueue(16 * 1024)                    # room for 3 payloads of 4 KiB
    p = q.producer(0, first_batch=1)
    blocked = []

    def produce():
        for b in range(12):
            blocked.append(p.put_events(_events(60, start=b * 60)))

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()                          # stuck on a full queue, not dropping
    got = []
    while len(got) < 12:
        got += [(g.batch, g.records.copy()) for g in q.get(timeout=1)]
        time.sleep(0.02)
    t.join(5)
    assert [b for b, _ in got] == list(range(1, 13))
    assert all(np.array_equal(r["seq"], np.arange(i * 60, i * 60 + 60))
               for i, (_, r) in enumerate(got))
    assert max(blocked) > 0.2 and p.blocked_puts >= 1 and p.blocked_s >= max(blocked)


def test_a_producer_blocked_on_a_full_queue_gives_up_once_its_parent_is_gone(monkeypatch):
    q = TradeQueue(16 * 1024)
    p = q.producer(0, first_batch=1)
    for b in range(4):                           # full: nobody reads
        p.put_events(_events(60, start=b * 60))
    monkeypatch.setattr(os, "getppid", lambda: p.parent + 1)     # the supervisor died
    with pytest.raises(QueueAbandoned, match="gone"):
        p.put_events(_events(60))


def _producer(q, pid, n, out):
    p = q.producer(pid, first_batch=1)
    for b in range(n):
        p.put_events(_events(50, start=pid * 100000 + b * 50))
    out.put((pid, p.blocked_s))


def test_should_carry_several_producer_processes_through_a_small_queue():
    q = TradeQueue(32 * 1024)
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_producer, args=(q, pid, 40, results))
             for pid in (1, 2, 3)]
    for pr in procs:
        pr.start()
    try:
        seen: dict[int, list[int]] = {1: [], 2: [], 3: []}
        deadline = time.monotonic() + 30
        while sum(map(len, seen.values())) < 120 and time.monotonic() < deadline:
            for g in q.get(timeout=0.5):
                first = int(g.records["seq"][0])
                assert first == g.producer * 100000 + (g.batch - 1) * 50
                seen[g.producer].append(g.batch)
            time.sleep(0.005)                    # a slow consumer: producers must wait
        assert all(v == list(range(1, 41)) for v in seen.values())   # all, once, in order
        stats = dict(results.get(timeout=5) for _ in procs)
        assert set(stats) == {1, 2, 3}
    finally:
        for pr in procs:
            pr.join(5)
            if pr.is_alive():
                pr.kill()
                pr.join()
    results.close()
    results.join_thread()
