"""SpscRing between two spawned processes: order, content, back-pressure, peer death."""
from __future__ import annotations

import numpy as np
import pytest

from ringex.records import COMMAND, EVENT
from ringex.ring.shm import segment_name
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import EventfdWait, PeerGone, SpinThenSleepWait
from tests.ring import _workers
from tests.ring._workers import command_records, commands_ok
from tests.ring.conftest import join_ok

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("producer_mode,consumer_mode,seed",
                         [("python", "numba", 1), ("numba", "python", 2)])
def test_order_and_content_across_processes(ring_name, spawn, producer_mode, consumer_mode,
                                            seed):
    total = 100_000          # ~1500 laps of a 64-slot ring, random batch sizes on both sides
    with SpscRing.create(ring_name, COMMAND, 64):
        producer = spawn(_workers.spsc_producer, ring_name, total, seed, 100, producer_mode)
        consumer = spawn(_workers.spsc_consumer_check, ring_name, total, seed + 10,
                         consumer_mode)
        join_ok(producer)
        join_ok(consumer)


def test_slow_consumer_makes_the_producer_wait_without_loss(ring_name, spawn):
    total = 600
    with SpscRing.create(ring_name, COMMAND, 8, role="producer") as ring:
        consumer = spawn(_workers.slow_consumer, ring_name, total)
        wait = SpinThenSleepWait(spin=100, max_sleep=500e-6)
        for start in range(0, total, 50):    # batches of 50 into 8 slots: must wait
            assert ring.write_all(command_records(start, 50), wait, timeout=20) == 50
        join_ok(consumer)
        assert len(ring) == 0


def test_consumer_detects_producer_death_and_keeps_its_records(ring_name, spawn):
    count = 300
    with SpscRing.create(ring_name, COMMAND, 64, role="consumer") as ring:
        producer = spawn(_workers.spsc_producer_dies, ring_name, count)
        wait = SpinThenSleepWait(spin=100, max_sleep=1e-3, peer_check_s=0.01)
        got = []
        with pytest.raises(PeerGone) as info:
            while True:
                batch = ring.read_wait(50, wait, timeout=30)
                assert len(batch), "timed out instead of noticing the dead producer"
                got.append(batch)
        assert info.value.pid == producer.pid
        producer.join(10)
        assert producer.exitcode == -9
        records = np.concatenate(got)
        assert len(records) == count and commands_ok(records, 0)


def test_producer_detects_consumer_death_on_a_full_ring(ring_name, spawn):
    with SpscRing.create(ring_name, COMMAND, 8, role="producer") as ring:
        consumer = spawn(_workers.spsc_consumer_dies, ring_name)
        consumer.join(30)
        wait = SpinThenSleepWait(spin=10, peer_check_s=0.01)
        with pytest.raises(PeerGone):
            ring.write_all(command_records(0, 100), wait, timeout=30)


def test_eventfd_ping_pong_never_loses_a_wakeup(spawn):
    # Both sides always block (spin=0). A lost wake-up would stall until peer_check_s
    # (1000 s here), so the join times out and the test fails.
    count = 300
    cmd_name, ev_name = segment_name("cmd"), segment_name("ev")
    with SpscRing.create(cmd_name, COMMAND, 16, role="producer") as cmds, \
            SpscRing.create(ev_name, EVENT, 16, role="consumer") as evs:
        to_child = EventfdWait(spin=0, peer_check_s=1000)
        to_parent = EventfdWait(spin=0, peer_check_s=1000)
        try:
            child = spawn(_workers.echo, cmd_name, ev_name, count, "eventfd", to_child, to_parent)
            for i in range(count):
                assert cmds.write(command_records(i, 1)) == 1
                to_child.signal(cmds.data_gate)
                reply = evs.read_wait(1, to_parent, timeout=20)
                assert len(reply) == 1 and reply["order_id"][0] == i
            join_ok(child)
        finally:
            to_child.close()
            to_parent.close()

