"""Wait strategies: factory, back-off schedule, timeouts, peer death, eventfd handshake."""
from __future__ import annotations

import os
import time
from multiprocessing.connection import wait as wait_for_sentinels

import numpy as np
import pytest

from ringex.errors import ConfigError, RingError
from ringex.records import COMMAND, EVENT
from ringex.ring.shm import CONSUMER_SLEEPING, PID_CLOSED, PRODUCER_PID, segment_name
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import (BusySpinWait, EventfdWait, Gate, PeerGone, SpinThenSleepWait,
                              make_wait, pid_alive)
from tests.ring import _workers
from tests.ring._workers import command_records
from tests.ring.conftest import join_ok

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("name,cls", [("busy_spin", BusySpinWait), ("busy-spin", BusySpinWait),
                                      ("Spin_Then_Sleep", SpinThenSleepWait),
                                      ("eventfd", EventfdWait)])
def test_make_wait_by_config_name(name, cls):
    w = make_wait(name)
    try:
        assert type(w) is cls and "Trade-off:" in type(w).__doc__
    finally:
        w.close()


def test_make_wait_rejects_unknown_names_and_options():
    with pytest.raises(ConfigError, match="unknown wait strategy"):
        make_wait("yield")
    with pytest.raises(ConfigError):
        make_wait("busy_spin", spin=3)
    with pytest.raises(ConfigError):
        make_wait("spin_then_sleep", min_sleep=0)


def test_spin_then_sleep_backs_off_exponentially_to_a_cap():
    w = SpinThenSleepWait(spin=3, min_sleep=1e-5, max_sleep=1e-4)
    assert [w.sleep_for(i) for i in range(3)] == [0, 0, 0]
    assert [w.sleep_for(i) for i in range(3, 8)] == [1e-5, 2e-5, 4e-5, 8e-5, 1e-4]
    assert w.sleep_for(10_000) == 1e-4


@pytest.mark.parametrize("w", [BusySpinWait(), SpinThenSleepWait(spin=10)])
def test_wait_returns_the_poll_count_or_zero_on_timeout(w):
    calls = iter([0, 0, 0, 5])
    assert w.wait(lambda: next(calls)) == 5
    assert w.wait(lambda: 0, timeout=0.02) == 0


def test_peer_states(ring_name, spawn):
    with SpscRing.create(ring_name, COMMAND, 8) as ring:
        gate = ring.data_gate
        assert gate.peer_state() == 0                     # nobody registered: assume alive
        ring.hdr[PRODUCER_PID] = os.getpid()
        assert gate.peer_state() == 0
        ring.hdr[PRODUCER_PID] = PID_CLOSED
        assert gate.peer_state() == PID_CLOSED
        child = spawn(os.getpid)                          # exits at once
        wait_for_sentinels([child.sentinel], 30)
        deadline = time.monotonic() + 30
        while pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        with open(f"/proc/{child.pid}/stat") as f:        # exited but not reaped: a zombie
            assert f.read().rsplit(")", 1)[1].split()[0] == "Z"
        assert not pid_alive(child.pid)
        ring.hdr[PRODUCER_PID] = child.pid
        with pytest.raises(PeerGone, match=str(child.pid)):
            SpinThenSleepWait(spin=5, peer_check_s=0).wait(lambda: 0, gate, timeout=10)
        join_ok(child)


def test_eventfd_signal_writes_only_when_the_waiter_sleeps(ring_name):
    with SpscRing.create(ring_name, COMMAND, 8) as ring:
        w = EventfdWait()
        try:
            gate = ring.data_gate
            w.signal(gate)
            with pytest.raises(BlockingIOError):
                os.eventfd_read(w.fileno())
            assert w.arm(gate, lambda: 0) == 0 and ring.hdr[CONSUMER_SLEEPING] == 1
            w.signal(gate)
            assert os.eventfd_read(w.fileno()) == 1
            w.disarm(gate)
            assert ring.hdr[CONSUMER_SLEEPING] == 0
            assert w.arm(gate, lambda: 3) == 3 and ring.hdr[CONSUMER_SLEEPING] == 0
        finally:
            w.close()


def test_eventfd_wait_needs_a_sleeping_flag():
    w = EventfdWait()
    try:
        with pytest.raises(RingError, match="sleeping flag"):
            w.wait(lambda: 0, Gate(np.zeros(64, np.int64), None, 24), timeout=0.01)
    finally:
        w.close()


def test_eventfd_wait_times_out(ring_name):
    with SpscRing.create(ring_name, COMMAND, 8) as ring, EventfdWaitCM(spin=3) as w:
        assert len(ring.read_wait(4, w, timeout=0.02)) == 0
        assert ring.hdr[CONSUMER_SLEEPING] == 0


@pytest.mark.parametrize("strategy", ["busy_spin", "spin_then_sleep", "eventfd"])
def test_each_strategy_carries_a_ping_pong_between_processes(spawn, strategy):
    count = 200
    cmd_name, ev_name = segment_name("cmd"), segment_name("ev")
    with SpscRing.create(cmd_name, COMMAND, 8, role="producer") as cmds, \
            SpscRing.create(ev_name, EVENT, 8, role="consumer") as evs:
        mine = make_wait(strategy)
        theirs = make_wait(strategy)
        try:
            wake_out = mine if strategy == "eventfd" else None
            child_wait = theirs if strategy == "eventfd" else None
            child = spawn(_workers.echo, cmd_name, ev_name, count, strategy, child_wait, wake_out)
            for i in range(count):
                assert cmds.write(command_records(i, 1)) == 1
                theirs.signal(cmds.data_gate)
                reply = evs.read_wait(1, mine, timeout=20)
                assert len(reply) == 1 and reply["order_id"][0] == i
            join_ok(child)
        finally:
            mine.close()
            theirs.close()


class EventfdWaitCM(EventfdWait):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
