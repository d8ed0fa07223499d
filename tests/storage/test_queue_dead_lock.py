"""A producer killed inside faster-fifo's ``put`` while it holds the queue's lock (copying
its payload in) leaves the queue locked for good; the supervisor's side sees it
(``queue_lock.dead_owner``) and a writer stop no longer waits out its timeout.
Deterministic: the producer is killed once the lock is seen held by it, copying a payload
large enough to be caught there; three rounds, each on a new queue and writer, as a
restart makes them. Producers killed while they *wait* in ``put`` for room (a full queue)
hold no lock: the queue stays usable."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from queue import Full

import numpy as np
import pytest

from ringex import records
from ringex.config import Config
from ringex.storage.queue_lock import dead_owner, lock_owner
from ringex.storage.trade_queue import PayloadKind, TradeQueue, encode
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


def _put_small(queue: TradeQueue) -> None:
    queue.put_payload(encode(PayloadKind.EVENTS, 5, 1, np.zeros(100, records.EVENT)))


@pytest.mark.timeout(120)
def test_producers_killed_while_waiting_for_room_leave_the_queue_usable():
    queue = TradeQueue(1 << 20)
    payload = encode(PayloadKind.EVENTS, 5, 1, np.zeros(100, records.EVENT))
    try:
        with pytest.raises(Full):
            for _ in range(100_000):
                queue._q.put_nowait(payload)
        queued = queue.qsize()
        ctx = multiprocessing.get_context("spawn")
        waiting = [ctx.Process(target=_put_small, args=(queue,), daemon=True)
                   for _ in range(3)]
        for p in waiting:
            p.start()
        deadline = time.monotonic() + 60          # each is in put's loop of timed waits
        while not all(_in_put(p.pid) for p in waiting):
            assert time.monotonic() < deadline, "the producers never waited in put"
            time.sleep(0.05)
        for p in waiting:
            os.kill(p.pid, signal.SIGKILL)
            p.join(10)
        assert dead_owner(queue) is None
        got = 0                                   # drain, put, get: nothing blocks
        for _ in range(50):
            got += len(queue.get(timeout=1.0))
            if got >= queued:
                break
        assert got == queued                      # the dead producers' puts never landed
        assert queue.put_payload(payload) == 0.0
        assert [p.batch for p in queue.get(timeout=1.0)] == [1]
    finally:
        queue.close()


def _in_put(pid: int) -> bool:
    """Blocked in a futex wait (faster-fifo's timed condition wait)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "futex" in f.read()
    except OSError:
        return False


class _StuckEngine:
    """An engine process whose clean stop would block for good (its hand-off waits on the
    locked queue): ``stop`` must not be called."""

    def __init__(self) -> None:
        self.process = multiprocessing.get_context("spawn").Process(
            target=time.sleep, args=(600,), daemon=True)
        self.process.start()

    def stop(self, timeout: float) -> int:
        raise AssertionError("a clean stop was tried on a locked queue")

    def kill(self) -> None:
        self.process.kill()
        self.process.join(10)


@pytest.mark.timeout(120)
def test_supervisor_kills_the_engine_at_once_when_the_queue_is_locked(tmp_path):
    from ringex.ops.supervisor import RunOptions, Supervisor
    queue = TradeQueue(BIG + (32 << 20))
    engine = _StuckEngine()
    try:
        sup = Supervisor(RunOptions(data_dir=tmp_path / "data"))
        sup.queue, sup.engine = queue, engine          # type: ignore[assignment]
        _kill_inside_put(queue)
        t0 = time.monotonic()
        assert sup._stop_engine(30.0) is False          # not a clean stop
        assert not engine.process.is_alive() and time.monotonic() - t0 < 10
    finally:
        engine.kill()
        queue.close()
