"""Ring round-trip latency: ping-pong between two processes.

The parent writes one COMMAND into a command ring; a spawned echo child reads it and writes
one EVENT back into an event ring; the parent reads it. One sample = one round trip.

    .venv/bin/python perf/ring_latency.py            # all cases, ~10 s
    .venv/bin/python perf/ring_latency.py --quick    # a few seconds
    .venv/bin/python perf/ring_latency.py --cases numba,python-busy_spin --trips 200000

Cases:
  numba                  both sides in @njit loops (busy-spin with PAUSE). Each trip is
                         timed inside the loop with the CPU cycle counter
                         (``llvm.readcyclecounter``: rdtsc, invariant on this CPU), converted
                         to ns with a factor calibrated against perf_counter_ns over 0.2 s.
  python-<strategy>      both sides in Python: ``SpscRing.write``, then
                         ``wait.wait(ring.__len__, ring.data_gate)`` with the named strategy
                         (busy_spin, spin_then_sleep, eventfd) and ``read_into`` a
                         preallocated record; each trip timed with time.perf_counter_ns.
                         In a ping-pong the reply comes within every strategy's spin
                         window, so they all measure the spinning path;
  python-eventfd_block   EventfdWait(spin=0) on both sides: every trip blocks twice in the
                         kernel (the wake-up cost the eventfd strategy pays when idle).

Output: one JSON line per case (perf/_report.py): p50/p99/p999/max/mean in microseconds.
Targets on an idle machine: numba p50 <= 0.5 us, p99.9 <= 2 us; Python p50 <= 2.5 us.
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

from perf._clock import ns_per_cycle, read_cycles  # noqa: E402
from perf._report import emit_latency, machine  # noqa: E402
from ringex.ring.atomics import cpu_relax, load_acquire, load_relaxed, store_release  # noqa: E402
from ringex.records import COMMAND, EVENT  # noqa: E402
from ringex.ring.shm import HEAD, TAIL, segment_name  # noqa: E402
from ringex.ring.spsc import SpscRing  # noqa: E402
from ringex.ring.wait import EventfdWait, PeerGone, make_wait  # noqa: E402

STOP = 255                 # COMMAND.kind that ends the echo child
IDLE_SPINS = 5_000_000     # an idle numba echo returns to Python this often (~0.1-0.5 s)
STALL_SPINS = 1 << 32      # the numba ping gives up after this many spins without a reply
CAPACITY = 1024
STRATEGIES = ("busy_spin", "spin_then_sleep", "eventfd", "eventfd_block")


# ------------------------------------------------------------------ numba loops
@njit(cache=True)
def numba_echo(cmd_hdr, cmd_slots, ev_hdr, ev_slots, idle_spins):
    """Answer every command with one event until STOP (returns 1) or idle (returns 0)."""
    cmask = len(cmd_slots) - 1
    emask = len(ev_slots) - 1
    idle = 0
    while idle < idle_spins:
        tail = load_relaxed(cmd_hdr, TAIL)
        if load_acquire(cmd_hdr, HEAD) == tail:
            idle += 1
            cpu_relax()
            continue
        idle = 0
        cmd = cmd_slots[tail & cmask]
        kind = cmd.kind
        oid = cmd.order_id
        store_release(cmd_hdr, TAIL, tail + 1)
        if kind == STOP:
            return 1
        head = load_relaxed(ev_hdr, HEAD)
        while head - load_acquire(ev_hdr, TAIL) >= len(ev_slots):
            cpu_relax()                          # never happens in ping-pong
        ev_slots[head & emask].order_id = oid
        store_release(ev_hdr, HEAD, head + 1)
    return 0


@njit(cache=True)
def numba_ping(cmd_hdr, cmd_slots, ev_hdr, ev_slots, samples, first_id, idle_spins):
    """Round trips, each timed in cycles into ``samples``; returns how many completed."""
    cmask = len(cmd_slots) - 1
    emask = len(ev_slots) - 1
    for i in range(len(samples)):
        t0 = read_cycles()
        head = load_relaxed(cmd_hdr, HEAD)
        cmd_slots[head & cmask].order_id = first_id + i
        cmd_slots[head & cmask].kind = 1
        store_release(cmd_hdr, HEAD, head + 1)
        tail = load_relaxed(ev_hdr, TAIL)
        spins = 0
        while load_acquire(ev_hdr, HEAD) == tail:
            cpu_relax()
            spins += 1
            if spins > idle_spins:
                return i
        if ev_slots[tail & emask].order_id != first_id + i:
            return -1 - i
        store_release(ev_hdr, TAIL, tail + 1)
        samples[i] = read_cycles() - t0
    return len(samples)


# ------------------------------------------------------------------ child
def echo_child(cmd_name: str, ev_name: str, case: str, wait_in, wake_out) -> None:
    cmds = SpscRing.attach(cmd_name, COMMAND, role="consumer")
    evs = SpscRing.attach(ev_name, EVENT, role="producer")
    parent = os.getppid()
    try:
        if case == "numba":
            while numba_echo(cmds.hdr, cmds.slots, evs.hdr, evs.slots, IDLE_SPINS) == 0:
                if os.getppid() != parent:
                    return                      # parent died: do not spin forever
            return
        wait = wait_in if wait_in is not None else make_wait(case.split("-", 1)[1])
        got = np.zeros(1, COMMAND)
        reply = np.zeros(1, EVENT)
        got_id, got_kind = got.view(np.int64), got.view(np.uint8)   # no field views: slow
        reply_id = reply.view(np.int64)
        kind_at = COMMAND.fields["kind"][1]
        poll = cmds.__len__
        while True:
            try:
                wait.wait(poll, cmds.data_gate)
            except PeerGone:
                return
            cmds.read_into(got)
            if got_kind[kind_at] == STOP:
                return
            reply_id[1] = got_id[0]                 # EVENT.order_id <- COMMAND.order_id
            evs.write(reply)
            if wake_out is not None:
                wake_out.signal(evs.data_gate)
    finally:
        cmds.close()
        evs.close()


# ------------------------------------------------------------------ parent
def run_case(case: str, trips: int, warmup: int, cycle_ns: float) -> None:
    ctx = multiprocessing.get_context("spawn")
    cmd_name, ev_name = segment_name("lat-cmd"), segment_name("lat-ev")
    wakes = []
    child = None
    with SpscRing.create(cmd_name, COMMAND, CAPACITY, role="producer") as cmds, \
            SpscRing.create(ev_name, EVENT, CAPACITY, role="consumer") as evs:
        try:
            strategy = case.split("-", 1)[1] if case != "numba" else None
            to_child = to_parent = None
            if strategy in ("eventfd", "eventfd_block"):
                spin = 0 if strategy == "eventfd_block" else EventfdWait.spin_default
                to_child, to_parent = EventfdWait(spin=spin), EventfdWait(spin=spin)
                wakes = [to_child, to_parent]
            child = ctx.Process(target=echo_child, daemon=True,
                                args=(cmd_name, ev_name, case, to_child, to_parent))
            child.start()
            if case == "numba":
                samples = _numba_trips(cmds, evs, warmup, trips, cycle_ns)
            else:
                mine = to_parent if to_parent is not None else make_wait(strategy)
                theirs = to_child
                samples = _python_trips(cmds, evs, mine, theirs, warmup, trips)
            stop = np.zeros(1, COMMAND)
            stop["kind"] = STOP
            cmds.write(stop)
            if to_child is not None:
                to_child.signal(cmds.data_gate)
            child.join(10)
            emit_latency("ring_rtt", samples, unit="us", case=case, trips=len(samples),
                         capacity=CAPACITY, **machine())
        finally:
            if child is not None and child.is_alive():
                child.kill()
                child.join(5)
            for w in wakes:
                w.close()


def _numba_trips(cmds, evs, warmup, trips, cycle_ns):
    for n in (warmup, trips):
        samples = np.zeros(n, np.int64)
        done = numba_ping(cmds.hdr, cmds.slots, evs.hdr, evs.slots, samples, 1, STALL_SPINS)
        if done != n:
            raise RuntimeError(f"numba ping-pong stopped after {done} of {n} trips")
    return samples * cycle_ns


def _python_trips(cmds, evs, mine, theirs, warmup, trips):
    cmd = np.zeros(1, COMMAND)
    cmd["kind"] = 1
    got = np.zeros(1, EVENT)
    cmd_id, got_id = cmd.view(np.int64), got.view(np.int64)
    poll, gate = evs.__len__, evs.data_gate
    clock = time.perf_counter_ns
    samples = np.zeros(trips, np.int64)
    for phase, n in (("warmup", warmup), ("measure", trips)):
        for i in range(n):
            cmd_id[0] = i
            t0 = clock()
            cmds.write(cmd)
            if theirs is not None:
                theirs.signal(cmds.data_gate)
            mine.wait(poll, gate, 10)
            evs.read_into(got)
            t1 = clock()
            if got_id[1] != i:
                raise RuntimeError(f"ping-pong broke at trip {i} ({phase})")
            if phase == "measure":
                samples[i] = t1 - t0
    return samples


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds in total")
    ap.add_argument("--cases", default="numba," + ",".join(f"python-{s}" for s in STRATEGIES),
                    help="comma-separated: numba, python-busy_spin, python-spin_then_sleep, "
                         "python-eventfd, python-eventfd_block")
    ap.add_argument("--trips", type=int, default=None, help="round trips per case")
    args = ap.parse_args(argv)
    cycle_ns = ns_per_cycle()
    for case in args.cases.split(","):
        case = case.strip()
        if case != "numba" and case.split("-", 1)[-1] not in STRATEGIES:
            ap.error(f"unknown case {case!r}")
        if args.trips:
            trips = args.trips
        elif case == "numba":
            trips = 100_000 if args.quick else 2_000_000
        elif case == "python-eventfd_block":
            trips = 2_000 if args.quick else 50_000
        else:
            trips = 20_000 if args.quick else 300_000
        run_case(case, trips, max(1000, trips // 10), cycle_ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
