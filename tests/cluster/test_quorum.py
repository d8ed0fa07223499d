"""With durability replicated nothing is acknowledged that the stream's quorum does not
hold: not while 2 of 3 NATS nodes are down, not while the replicator is dead; once the
quorum (or a new replicator) is back the orders are acknowledged and nothing is lost."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from decimal import Decimal

from ringex.client import Ack, connect
from ringex.cluster.reader import stream_entries
from ringex.cluster.stream import connect as nats_connect
from tests.cluster.conftest import cluster_options, replicated_run
from tests.cluster.test_replicated_journal import journal_entries
from tests.faults.rig import Seen, fund, make_accounts, run_async, stream

HELD_S = 2.0           # how long an order must stay unacknowledged while the fault lasts
ELECTION_S = 30.0      # a stream's new leader is elected within seconds; generous here


async def _held_then_acked(run, key: str, fault, repair) -> Ack:
    """Place an order while ``fault()`` holds: no ack for HELD_S; after ``repair()``, the
    ack. Both run in a thread (they block)."""
    c = await connect(run.url, key, timeout=60)
    try:
        first = await c.place("BTC-USD", "buy", Decimal("0.0001"), Decimal("80.00"))
        assert isinstance(first, Ack), first
        await asyncio.to_thread(fault)
        order = asyncio.create_task(
            c.place("BTC-USD", "buy", Decimal("0.0002"), Decimal("81.00")))
        done, _ = await asyncio.wait({order}, timeout=HELD_S)
        assert not done, f"acknowledged without a quorum: {order.result()}"
        await asyncio.to_thread(repair)
        res = await asyncio.wait_for(order, 60)
        assert isinstance(res, Ack), res
        assert res.order_id != first.order_id
        return res
    finally:
        await c.close()


def _check_nothing_lost(run, opts) -> None:
    """Every local journal entry is in the stream. A node restarted just before may still
    be catching up and answer a read from its own copy: read again until the stream
    shows them all (an entry truly lost never shows up)."""
    assert run.stop() == 0, run.log()
    local = journal_entries(run.data_dir)
    deadline = time.monotonic() + 20
    while True:
        stored = [e.data for e in stream_entries(opts)]
        if stored == local or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stored == local, (len(stored), len(local), run.log()[-4000:])


def _start_funded(run) -> str:
    """Start ``run`` with one funded account; its API key."""
    run.start()
    keys = make_accounts(run, 1)
    run_async(fund(run, keys, Seen()))
    return next(iter(keys.values()))


def test_no_ack_while_the_replicator_is_dead(nats_cluster, tmp_path):
    run = replicated_run(tmp_path, nats_cluster, "dead-replicator")
    try:
        key = _start_funded(run)
        pid = int(re.search(r"replicator started \(pid (\d+)\)", run.log()).group(1))
        gate = {"stopped": False}

        def stop_replicator() -> None:       # a stopped replicator answers no append
            os.kill(pid, signal.SIGSTOP)
            gate["stopped"] = True

        def kill_replicator() -> None:       # ... and a dead one is started again
            os.kill(pid, signal.SIGKILL)

        run_async(_held_then_acked(run, key, stop_replicator,
                                   kill_replicator), timeout=90)
        assert gate["stopped"]
        assert "starting a new one" in run.log(), run.log()
        _check_nothing_lost(run, cluster_options(nats_cluster, "dead-replicator"))
    finally:
        run.cleanup()


def test_no_ack_without_the_streams_quorum(nats_cluster, tmp_path):
    run = replicated_run(tmp_path, nats_cluster, "quorum")
    try:
        key = _start_funded(run)

        def two_nodes_down() -> None:
            nats_cluster.stop_node(1)
            nats_cluster.stop_node(2)

        run_async(_held_then_acked(run, key, two_nodes_down,
                                   lambda: nats_cluster.start_node(1)), timeout=120)
        nats_cluster.start_node(2)
        _check_nothing_lost(run, cluster_options(nats_cluster, "quorum"))
    finally:
        run.cleanup()


def test_one_node_down_under_load_keeps_trading_and_loses_nothing(nats_cluster, tmp_path):
    """Three traders stream orders; the stream's leader node is killed midway and comes
    back after: the other two elect a leader and store every group, so orders are
    acknowledged again after a pause (the election), and the stream ends with the whole
    journal."""
    run = replicated_run(tmp_path, nats_cluster, "one-down")
    opts = cluster_options(nats_cluster, "one-down")
    try:
        run.start()
        keys = make_accounts(run, 3)
        seen = Seen()
        run_async(fund(run, keys, seen))
        leader = run_async(_stream_leader(opts))
        paused: list[float] = []

        async def probe() -> None:
            """An order placed right after the kill: how long until it is acknowledged."""
            c = await connect(run.url, next(iter(keys.values())), timeout=ELECTION_S)
            try:
                t0 = time.monotonic()
                res = await c.place("BTC-USD", "buy", Decimal("0.0001"), Decimal("80.00"))
                assert isinstance(res, Ack), res
                paused.append(time.monotonic() - t0)
            finally:
                await c.close()

        def leader_down() -> None:
            nats_cluster.stop_node(leader)
            asyncio.run(probe())

        try:
            run_async(stream(run, keys, seen, leader_down, warmup_s=1.0, tail_s=2.0,
                             timeout=ELECTION_S), timeout=120)
        finally:
            nats_cluster.start_node(leader)
        print(f"leader n{leader} killed: an order placed then acknowledged in "
              f"{paused[0]:.2f} s")
        assert paused and not seen.errors, seen.errors
        _check_nothing_lost(run, opts)
    finally:
        run.cleanup()


async def _stream_leader(opts) -> int:
    nc = await nats_connect(opts)
    try:
        info = await nc.jetstream().stream_info(opts.stream_name)
        assert info.cluster is not None and info.cluster.leader
        return int(info.cluster.leader.removeprefix("n"))
    finally:
        await nc.close()
