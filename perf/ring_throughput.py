"""Ring throughput: batched records per second from one process to another.

A spawned producer writes ``--records`` COMMAND records in batches of ``--batch`` into an
SPSC ring; the parent reads them in batches of the same size. The clock runs from the
first batch received to the last (the producer's start-up is not counted).

    .venv/bin/python perf/ring_throughput.py             # ~10 s
    .venv/bin/python perf/ring_throughput.py --quick     # a few seconds
    .venv/bin/python perf/ring_throughput.py --batch 64 --capacity 4096 --sides python

Sides:
  numba    producer and consumer loops are @njit (``ring_write`` / ``ring_read_into``
           inlined into a loop that spins with PAUSE when full / empty).
  python   ``SpscRing.write`` / ``SpscRing.read_into`` called from a Python loop
           (one numba call per batch), busy-polling.

Every record carries its index in ``order_id``; the consumer checks the last one of each
batch, so a lost or reordered batch fails the run. Target: >= 30 M records/s at batch 1024.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import numpy as np
from numba import njit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from perf._report import emit_throughput, machine  # noqa: E402
from ringex.ring.atomics import cpu_relax  # noqa: E402
from ringex.records import COMMAND  # noqa: E402
from ringex.ring.shm import segment_name  # noqa: E402
from ringex.ring.kernels import ring_available, ring_free, ring_read_into, ring_write  # noqa: E402
from ringex.ring.spsc import SpscRing  # noqa: E402

IDLE_SPINS = 5_000_000       # numba loops return to Python this often when stalled


@njit(cache=True)
def numba_produce(hdr, slots, buf, start, total, batch, idle_spins):
    """Write records start..total-1 (order_id = index); return the next index to write."""
    i = start
    idle = 0
    while i < total and idle < idle_spins:
        k = min(batch, total - i)
        if ring_free(hdr) < k:
            idle += 1
            cpu_relax()
            continue
        idle = 0
        for j in range(k):
            buf[j].order_id = i + j
        i += ring_write(hdr, slots, buf, k)
    return i


@njit(cache=True)
def numba_consume(hdr, slots, out, start, total, batch, idle_spins):
    """Read until ``total`` records; return the count so far, or -1 on a wrong record."""
    i = start
    idle = 0
    while i < total and idle < idle_spins:
        if ring_available(hdr) == 0:
            idle += 1
            cpu_relax()
            continue
        idle = 0
        n = ring_read_into(hdr, slots, out, batch)
        if out[n - 1].order_id != i + n - 1:
            return -1
        i += n
    return i


def producer(name: str, total: int, batch: int, side: str) -> None:
    ring = SpscRing.attach(name, COMMAND, role="producer")
    parent = os.getppid()
    buf = np.zeros(batch, COMMAND)
    try:
        i = 0
        if side == "numba":
            while i < total and os.getppid() == parent:
                i = numba_produce(ring.hdr, ring.slots, buf, i, total, batch, IDLE_SPINS)
            return
        ids = buf.view(np.int64)[::8]                     # order_id of each record
        ramp = np.arange(batch, dtype=np.int64)
        spins = 0
        while i < total:
            k = min(batch, total - i)
            np.add(ramp[:k], i, out=ids[:k])
            n = ring.write(buf[:k])
            while n < k:                                  # full: busy-poll for room
                spins += 1
                if not spins & 0xFFFFF and os.getppid() != parent:
                    return
                n += ring.write(buf[n:k])
            i += k
    finally:
        ring.close()


def run(side: str, total: int, batch: int, capacity: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    name = segment_name("tput")
    child = None
    with SpscRing.create(name, COMMAND, capacity, role="consumer") as ring:
        try:
            child = ctx.Process(target=producer, args=(name, total, batch, side), daemon=True)
            child.start()
            out = np.zeros(batch, COMMAND)
            ids = out.view(np.int64)[::8]
            numba_consume(ring.hdr, ring.slots, out, 0, 0, batch, 1)   # load / compile now
            ring.read_into(out[:0])
            deadline = time.monotonic() + 60
            while not len(ring):                          # producer starting up
                if time.monotonic() > deadline or not child.is_alive():
                    raise RuntimeError("producer never wrote")
                time.sleep(0.001)
            t0 = time.perf_counter()
            i = 0
            if side == "numba":
                while i < total:
                    i = numba_consume(ring.hdr, ring.slots, out, i, total, batch, IDLE_SPINS)
                    if i < 0:
                        raise RuntimeError("wrong record received")
                    if i < total and not child.is_alive():
                        raise RuntimeError("producer died")
            else:
                read_into = ring.read_into
                spins = 0
                while i < total:
                    n = read_into(out)
                    if n:
                        if ids[n - 1] != i + n - 1:
                            raise RuntimeError("wrong record received")
                        i += n
                    else:
                        spins += 1
                        if not spins & 0xFFFFF and not child.is_alive():
                            raise RuntimeError("producer died")
            seconds = time.perf_counter() - t0
            child.join(10)
            emit_throughput("ring_throughput", total, seconds, unit="records/s", side=side,
                            batch=batch, capacity=capacity, record_bytes=COMMAND.itemsize,
                            **machine())
        finally:
            if child is not None and child.is_alive():
                child.kill()
                child.join(5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds in total")
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--capacity", type=int, default=65536)
    ap.add_argument("--sides", default="numba,python", help="comma-separated: numba, python")
    args = ap.parse_args(argv)
    total = args.records or (5_000_000 if args.quick else 100_000_000)
    for side in args.sides.split(","):
        side = side.strip()
        if side not in ("numba", "python"):
            ap.error(f"unknown side {side!r}")
        run(side, total, args.batch, args.capacity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
