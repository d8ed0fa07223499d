"""The engine process's life: start state, hand-off to the writer, stop and drain, a dead
gateway, a dead parent."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from ringex.core.engine.control import EngineProcess, State
from ringex.core.engine.start import StartState
from ringex.storage.trade_queue import PayloadKind, TradeQueue
from ringex import records
from ringex.records import CommandKind as CK, EventKind as EV
from ringex.ring.wait import pid_alive
from tests.e2e.engine_rig import EngineRig

BUY, SELL = records.Side.BUY, records.Side.SELL
S0, S1 = EngineRig.session(0), EngineRig.session(1)


def drain_queue(q: TradeQueue, want_events: int, timeout: float = 10.0) -> list:
    out, have, deadline = [], 0, time.monotonic() + timeout
    while have < want_events and time.monotonic() < deadline:
        for p in q.get(timeout=0.05):
            out.append(p.detach())
            have += len(p.records)
    return out


@pytest.mark.timeout(300)
def test_should_continue_from_start_state_and_hand_every_batch_to_the_writer():
    start = StartState(balances=[(1, 0, 10**12), (2, 1, 10**10)], seqs=[500, 7, 0],
                       last_order_id=123_456_789,
                       transfers=[(int(CK.DEPOSIT), 3, 0, 5_000_000),
                                  (int(CK.WITHDRAW), 3, 0, 10**12)],   # rejected: no funds
                       first_batch=41)
    q = TradeQueue(8 << 20)
    try:
        with EngineRig(gateways=2, queue=q, start=start) as rig:
            first = drain_queue(q, 2)                    # the pending transfers, applied first
            assert first[0].batch == 41 and first[0].producer == 0
            ev = np.concatenate([p.records for p in first])
            assert list(ev["kind"]) == [EV.BALANCE, EV.REJECT]
            assert (int(ev[0]["info"]), int(ev[0]["price"])) == (CK.DEPOSIT, 5_000_000)
            assert not any(len(p.commands) for p in first)     # events say it all
            rig.send(0, records.new_order(0, 1, BUY, 3_000_000, 2, session=S0, ref=1))
            rig.send(1, records.new_order(0, 2, SELL, 3_000_000, 2, session=S1, ref=1))
            a = rig.events(0, 2)
            b = rig.events(1, 2)
            acks = np.concatenate([a, b])
            acks = acks[acks["kind"] == EV.ACK]
            assert sorted(acks["seq"])[0] == 501            # continues the stored sequence
            assert acks["order_id"].min() > 123_456_789      # and the stored order ids
            rest = drain_queue(q, 4)
            assert [p.batch for p in rest] == list(range(first[-1].batch + 1,
                                                         first[-1].batch + 1 + len(rest)))
            persisted = np.concatenate([p.records for p in rest])
            assert sorted(persisted["seq"]) == sorted(np.concatenate([a, b])["seq"])
            assert all(p.kind == PayloadKind.EVENTS for p in first + rest)
    finally:
        q.close()


@pytest.mark.timeout(300)
def test_should_drain_the_command_rings_then_cancel_resting_orders_on_stop():
    q = TradeQueue(8 << 20)
    rig = EngineRig(gateways=2, queue=q)
    try:
        rig.send(0, records.deposit(1, 0, 10**12))
        n = 200
        rig.send(0, *[records.new_order(0, 1, BUY, 1_000_000 + i, 1, session=S0, ref=i + 1)
                      for i in range(n)])
        rig.release_gateways()                   # the "gateways" are gone ...
        rig.engine.request_stop()                # ... and stop comes at once
        rig.engine.process.join(60)
        assert rig.engine.process.exitcode == 0 and rig.engine.state == State.STOPPED
        ev = rig.events_until_quiet(0, 0.2)
        assert list(ev["kind"]) == [EV.ACK] * n              # every command was processed
        persisted = np.concatenate([p.records for p in drain_queue(q, 1 + 2 * n)])
        cancelled = persisted[persisted["kind"] == EV.CANCELLED]
        assert sorted(cancelled["order_id"]) == sorted(ev["order_id"])   # nothing left open
        assert {records.info_code(int(i)) for i in cancelled["info"]} == \
            {records.CancelReason.CANCEL_ALL}
        assert set(cancelled["session"]) == {0}             # internal: routed nowhere
    finally:
        rig.close()
        q.close()


@pytest.mark.timeout(300)
def test_should_wait_for_a_full_live_gateway_and_drop_a_dead_ones_events():
    with EngineRig(gateways=2, evt_capacity=64) as rig:
        # 40 balance queries answer 120 events: gateway 1's ring (64) fills; nobody reads it
        rig.send(1, *[records.query_balances(1, session=S1, ref=r) for r in range(40)])
        time.sleep(0.3)
        rig.send(0, records.query_balances(1, session=S0, ref=1))
        assert rig.events_until_quiet(0, 0.5).size == 0        # the engine waits: no drop
        rig.evt[1].close()                                     # gateway 1 goes away
        assert len(rig.events(0, 3, timeout=10)) == 3          # now gateway 0 is served
        time.sleep(0.1)
        assert rig.engine.counters()["dropped_gateways"] == 1
        assert rig.engine.process.is_alive()


@pytest.mark.timeout(300)
def test_should_stop_in_bounded_time_when_a_gateway_never_reads_nor_leaves():
    with EngineRig(gateways=2, evt_capacity=64, run_engine=False) as rig:
        rig.spec.drain_timeout_s = 1.0
        rig.engine = EngineProcess(rig.spec).start(timeout=280)
        rig.send(1, *[records.query_balances(1, session=S1, ref=r) for r in range(40)])
        time.sleep(0.3)                                  # gateway 1's ring is full: blocked
        t = time.monotonic()
        rig.engine.request_stop()                        # gateway 1 neither reads nor closes
        rig.engine.process.join(30)
        assert rig.engine.process.exitcode == 0 and time.monotonic() - t < 10
        assert rig.engine.state == State.STOPPED


def _orphan_parent(spec, pid_box) -> None:
    eng = EngineProcess(spec).start(timeout=280)
    pid_box.value = eng.process.pid
    time.sleep(600)


@pytest.mark.timeout(300)
def test_should_exit_when_its_parent_dies():
    with EngineRig(gateways=1, run_engine=False) as rig:
        ctx = multiprocessing.get_context("spawn")
        pid_box = ctx.Value("q", 0)
        parent = ctx.Process(target=_orphan_parent, args=(rig.spec, pid_box))
        parent.start()
        try:
            deadline = time.monotonic() + 280
            while pid_box.value == 0 and time.monotonic() < deadline and parent.is_alive():
                time.sleep(0.05)
            engine_pid = pid_box.value
            assert engine_pid and pid_alive(engine_pid)
            os.kill(parent.pid, signal.SIGKILL)
            parent.join(10)
            deadline = time.monotonic() + 10
            while pid_alive(engine_pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not pid_alive(engine_pid), "engine outlived its parent"
        finally:
            if parent.is_alive():
                parent.kill()
                parent.join(5)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("wait,max_idle_cpu", [("spin_then_sleep", 0.25), ("eventfd", 0.05)])
def test_should_sleep_when_idle_and_wake_for_commands(wait, max_idle_cpu):
    with EngineRig(gateways=2, wait=wait) as rig:
        pid = rig.engine.process.pid
        time.sleep(0.5)
        c0 = _cpu_seconds(pid)
        time.sleep(2.0)
        assert (_cpu_seconds(pid) - c0) / 2.0 < max_idle_cpu    # not a busy spinner
        for i in range(20):                                     # and still answers
            g = i % 2
            rig.send(g, records.query_balances(1, session=EngineRig.session(g), ref=i + 1))
            assert rig.events(g, 3, timeout=5)[0]["ref"] == i + 1
            time.sleep(0.02)
