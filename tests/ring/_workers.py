"""Child-process bodies for the ring tests (spawned: importable, no test state).

Records carry their own index in every field (``command_records`` / ``event_records``), so a
reader can check both order and that no record is torn or stale.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from ringex.ring.atomics import atomic_store, spin_until_changed
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.kernels import (bcast_write, ring_free, ring_read_into, ring_wait_available,
                                 ring_write)
from ringex.records import COMMAND, EVENT
from ringex.ring.shm import HEAD, TAIL
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import SpinThenSleepWait, make_wait

TIMEOUT = 20.0     # no child ever waits longer than this for its peer


# ------------------------------------------------------------------ record contents
def command_records(start: int, n: int) -> np.ndarray:
    idx = np.arange(start, start + n, dtype=np.int64)
    r = np.zeros(n, COMMAND)
    r["order_id"] = idx
    r["client_order_id"] = idx * 7 + 1
    r["price"] = -idx
    r["qty"] = idx ^ 0x5A5A5A
    r["ts_ns"] = idx * 3
    r["account"] = idx & 0xFFFFFFFF
    r["ref"] = (idx * 5) & 0xFFFFFFFF
    r["symbol"] = idx & 0xFFFF
    r["kind"] = idx & 0xFF
    return r


def commands_ok(recs: np.ndarray, start: int) -> bool:
    return bool(np.array_equal(recs, command_records(start, len(recs))))


def event_records(start: int, n: int) -> np.ndarray:
    return events_for(np.arange(start, start + n, dtype=np.int64))


def events_for(idx: np.ndarray) -> np.ndarray:
    """The EVENT records with these indexes (every field derived from the index)."""
    r = np.zeros(len(idx), EVENT)
    r["seq"] = idx
    r["order_id"] = idx * 7 + 1
    r["other_id"] = -idx
    r["price"] = idx * 3
    r["qty"] = idx ^ 0x5A5A5A
    r["leaves"] = idx * 11
    r["account"] = idx & 0xFFFFFFFF
    r["session"] = (idx * 13) & 0xFFFFFFFF
    r["info"] = idx & 0xFF
    return r


def events_consistent(recs: np.ndarray) -> bool:
    """Every field of every record matches its own ``seq`` (nothing torn)."""
    return bool(np.array_equal(recs, events_for(recs["seq"].astype(np.int64))))


# ------------------------------------------------------------------ children
def spin_on_head(name: str) -> None:
    """Atomics test: spin in numba on HEAD until the parent changes it; report in TAIL."""
    ring = SpscRing.attach(name, COMMAND, role="consumer")   # pid word = "I am spinning"
    spins = spin_until_changed(ring.hdr, HEAD, 0, 20_000_000_000)
    atomic_store(ring.hdr, TAIL, spins + 1 if spins >= 0 else -1)
    ring.close()


def spsc_producer(name: str, total: int, seed: int, max_batch: int, mode: str) -> None:
    """Write records 0..total-1 in random batch sizes (Python or numba side)."""
    ring = SpscRing.attach(name, COMMAND, role="producer")
    rng = np.random.default_rng(seed)
    wait = SpinThenSleepWait(spin=200, max_sleep=200e-6)
    i = 0
    while i < total:
        k = min(int(rng.integers(1, max_batch + 1)), total - i)
        recs = command_records(i, k)
        if mode == "python":
            done = ring.write_all(recs, wait, timeout=TIMEOUT)
        else:
            done = 0
            while done < k:
                done += ring_write(ring.hdr, ring.slots, recs[done:], k - done)
                if done < k and not wait.wait(lambda: ring_free(ring.hdr), ring.space_gate,
                                              TIMEOUT):
                    break
        if done != k:
            os._exit(3)
        i += k
    ring.close()


def spsc_producer_dies(name: str, count: int) -> None:
    """Write ``count`` records, then die by SIGKILL without closing anything."""
    ring = SpscRing.attach(name, COMMAND, role="producer")
    ring.write_all(command_records(0, count), SpinThenSleepWait(), timeout=TIMEOUT)
    os.kill(os.getpid(), signal.SIGKILL)


def spsc_consumer_dies(name: str) -> None:
    ring = SpscRing.attach(name, COMMAND, role="consumer")
    ring.read(1)
    os.kill(os.getpid(), signal.SIGKILL)


def spsc_consumer_check(name: str, total: int, seed: int, mode: str) -> None:
    """Read records 0..total-1 with random max_n; exit 4 on any wrong record."""
    ring = SpscRing.attach(name, COMMAND, role="consumer")
    rng = np.random.default_rng(seed)
    wait = SpinThenSleepWait(spin=200, max_sleep=200e-6)
    out = np.zeros(4 * ring.capacity, COMMAND)
    i = 0
    while i < total:
        max_n = int(rng.integers(1, len(out) + 1))
        if mode == "python":
            got = ring.read_wait(max_n, wait, timeout=TIMEOUT)
        else:
            if not ring_wait_available(ring.hdr, 1000) and not wait.wait(
                    ring.__len__, ring.data_gate, TIMEOUT):
                break
            got = out[:ring_read_into(ring.hdr, ring.slots, out, max_n)]
        if not commands_ok(got, i):
            os._exit(4)
        i += len(got)
        if not len(got):
            os._exit(5)
    ring.close()


def slow_consumer(name: str, total: int) -> None:
    """Read ``total`` records one at a time, sleeping now and then (producer must wait)."""
    ring = SpscRing.attach(name, COMMAND, role="consumer")
    wait = SpinThenSleepWait()
    for i in range(total):
        got = ring.read_wait(1, wait, timeout=TIMEOUT)
        if not commands_ok(got, i) or len(got) != 1:
            os._exit(4)
        if i % 16 == 0:
            time.sleep(0.001)
    ring.close()


def echo(cmd_name: str, ev_name: str, count: int, wait_name: str, wait_in, wake_out) -> None:
    """Ping-pong peer: read one command, answer one event, ``count`` times.

    ``wait_in`` (strategy for the command ring, or None: make ``wait_name``) and
    ``wake_out`` (the parent's strategy for the event ring, signalled after each answer)."""
    cmds = SpscRing.attach(cmd_name, COMMAND, role="consumer")
    evs = SpscRing.attach(ev_name, EVENT, role="producer")
    wait = wait_in if wait_in is not None else make_wait(wait_name)
    reply = np.zeros(1, EVENT)
    for _ in range(count):
        got = cmds.read_wait(1, wait, timeout=TIMEOUT)
        if len(got) != 1:
            os._exit(5)
        reply["order_id"] = got["order_id"]
        if evs.write(reply) != 1:
            os._exit(6)
        if wake_out is not None:
            wake_out.signal(evs.data_gate)
    cmds.close()
    evs.close()


def bcast_producer(name: str, total: int, seed: int, mode: str) -> None:
    """Publish records 0..total-1 in random batches as fast as possible, then close."""
    ring = BroadcastRing.attach(name, EVENT, role="producer")
    rng = np.random.default_rng(seed)
    i = 0
    while i < total:
        k = min(int(rng.integers(1, 2 * ring.capacity)), total - i)
        recs = event_records(i, k)
        if mode == "python":
            ring.write(recs)
        else:
            bcast_write(ring.hdr, ring.stamps, ring.slots, recs, k)
        i += k
    ring.close()
