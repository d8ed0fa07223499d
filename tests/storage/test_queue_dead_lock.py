"""A producer killed inside faster-fifo's ``put`` leaves the queue locked for good; the
supervisor's side sees it (``queue_lock.dead_owner``) and a writer stop no longer waits
out its timeout. Deterministic: the producer is killed while the queue's lock is held by
it, copying in a payload large enough to be caught there; three rounds, each on a new
queue and writer, as a restart makes them."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from ringex.config import Config
from ringex.storage.queue_lock import dead_owner, lock_owner
from ringex.storage.trade_queue import TradeQueue
from ringex.storage.writer import start_writer

BIG = 96 << 20               # a payload whose copy into the queue takes tens of ms


def _put_big(queue: TradeQueue) -> None:
    queue.put_payload(np.zeros(BIG, np.uint8).tobytes())


def _kill_inside_put(queue: TradeQueue) -> tuple[int, float]:
    """Start a producer putting BIG bytes; SIGKILL it once it holds the queue's lock.
    Returns its pid and how long the lock was watched for."""
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_put_big, args=(queue,), daemon=True)
    p.start()
    t0 = time.monotonic()
    while lock_owner(queue) != p.pid:
        assert p.is_alive() and time.monotonic() - t0 < 60, "the producer never held the lock"
    assert dead_owner(queue) is None             # held by a live producer
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    return p.pid, time.monotonic() - t0


@pytest.mark.timeout(180)
def test_producer_killed_inside_put_is_seen_and_the_writer_stop_is_quick(tmp_path):
    stops = []
    for round_ in range(3):
        queue = TradeQueue(BIG + (32 << 20))
        writer = start_writer(queue, str(tmp_path / f"r{round_}.db"), Config.default())
        try:
            assert dead_owner(queue) is None and lock_owner(queue) is None
            pid, _ = _kill_inside_put(queue)
            assert dead_owner(queue) == pid           # locked for good, by the dead one
            t0 = time.monotonic()
            code = writer.stop(timeout=30)
            stops.append(time.monotonic() - t0)
            assert code == -signal.SIGKILL, code       # blocked in get: killed, not stopped
            assert stops[-1] < 10, stops               # not the 30 s timeout
        finally:
            writer.kill()
            queue.close()
    print("writer stop with a dead lock holder, s:", [round(s, 2) for s in stops])
