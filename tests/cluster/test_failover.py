"""Failover under a steady order flow: ``kill -9`` of the primary's whole process group; a
standby given the primary's database (``--db``) takes over and serves as ``ringex run``
on its own data dir (docs/cluster.md, "Serving after a takeover")."""
from __future__ import annotations

import os
import re
import signal
import time

import numpy as np

from ringex import records
from ringex.cluster.reader import stream_entries
from ringex.core.order_service import OrderService
from tests.cluster.conftest import cluster_config, cluster_options, replicated_run
from tests.cluster.standby_rig import StandbyRun, serving
from tests.cluster.test_replicated_journal import trade
from tests.faults.rig import (CONFIG, Replay, Seen, ask_engine, check_converged, fund,
                              make_accounts, run_async, stream)

SMALL_SNAPSHOTS = {"RINGEX_STATE": "snapshot_every_bytes=4096"}   # pruned while following


def stream_replay(opts) -> Replay:
    """A fresh OrderService fed every entry of the stream (batch 1 on, no gap)."""
    svc, evs = OrderService(CONFIG), []
    entries = stream_entries(opts)
    assert [e.batch for e in entries] == list(range(1, len(entries) + 1))
    for e in entries:
        evs.append(svc.submit(e.cmds).copy())
    return Replay(svc, np.concatenate(evs) if evs else records.events(0), entries[-1].batch)


def test_failover_serves_every_acknowledged_order_and_takes_new_ones(nats_cluster, tmp_path):
    primary = replicated_run(tmp_path, nats_cluster, "serve")
    config = cluster_config(tmp_path, "serve")
    sb = StandbyRun(tmp_path / "standby", nats_cluster.url, config, "--db", primary.db,
                    "--durability", "replicated", "--port", "0", "--http-port", "-1",
                    env=SMALL_SNAPSHOTS)
    new = None
    try:
        primary.start()
        sb.start()
        sb.wait_for(lambda s: s["lease"] == "alive", "the primary's lease")
        keys = make_accounts(primary, 3)
        seen = Seen()
        run_async(fund(primary, keys, seen))
        killed = []

        def kill() -> None:
            primary.kill_group()
            killed.append(time.monotonic())

        run_async(stream(primary, keys, seen, kill, warmup_s=2.0))   # until the kill
        primary.unlink_rings()
        assert len(seen.acks) > 50, "too little flow before the kill"
        new = serving(sb, primary.db)
        served_s = time.monotonic() - killed[0]
        log = sb.log()
        assert "standby: took over: takeover marker at batch" in log, log
        assert "standby: serving:" in log and "entries resent to the writer" in log, log
        # the pruning counted on the database: the engine found what it had to resend
        assert "snapshot at batch" in log, log

        # the clients reconnect to the new primary: it takes new orders
        before = len(seen.acks)
        run_async(stream(new, keys, seen, lambda: None, warmup_s=1.5))
        assert len(seen.acks) > before, "no order acknowledged after the takeover"
        live = run_async(ask_engine(new, keys))
        assert new.stop() == 0, new.log()[-4000:]
        new_log = new.log()
        assert "cluster: fenced" not in new_log and "Traceback" not in new_log, new_log

        # every acknowledged order in the database with its state, trades once, balances
        # conserved, the book = a clean replay of the stream (which holds the marker)
        rep = stream_replay(cluster_options(nats_cluster, "serve"))
        counts = check_converged(new, rep, keys, seen, live)
        print(f"failover: ready {served_s:.2f} s after the kill; {counts}")
    finally:
        if new is not None:
            new.cleanup()
        sb.cleanup()
        primary.cleanup()


def test_no_takeover_while_the_database_holds_what_the_stream_lacks(nats_cluster, tmp_path):
    """Durability local, the primary's replicator frozen: the engine goes on acknowledging
    and the writer storing what never reaches the stream, and the lease lapses. Taking
    over would contradict those orders: the standby refuses and follows on; resumed, the
    primary takes its lease back and replicates the tail."""
    primary = replicated_run(tmp_path, nats_cluster, "ahead", durability="local")
    config = cluster_config(tmp_path, "ahead")
    sb = StandbyRun(tmp_path / "standby", nats_cluster.url, config, "--db", primary.db,
                    "--port", "0", "--http-port", "-1")
    try:
        primary.start()
        sb.start()
        sb.wait_for(lambda s: s["lease"] == "alive", "the primary's lease")
        keys = make_accounts(primary, 2)
        run_async(fund(primary, keys, Seen()))
        replicator = int(re.search(r"replicator started \(pid (\d+)\)",
                                   primary.log()).group(1))
        os.kill(replicator, signal.SIGSTOP)
        try:
            run_async(trade(primary, keys))            # acknowledged: local durability
            assert primary.db_last_batch() > stream_entries(
                cluster_options(nats_cluster, "ahead"))[-1].batch
            s = sb.wait_for(lambda s: s["refused"], "the takeover refused")
            assert s["state"] == "following" and s["lease"] == "lapsed"
            # it stays refused while the stream lacks the tail (one log line per lapse)
            sb.wait_for(lambda s: s["refused"] and s["batch"] < primary.db_last_batch()
                        and sb.log().count("standby: not taking over") == 1, "refused")
            # (resumed now, the primary and the standby would race for the lease, and the
            # standby may rightly win once the stream has the tail: stop it first)
            assert sb.stop() == 0, sb.log()
        finally:
            os.kill(replicator, signal.SIGCONT)
        assert "standby: not taking over: the database holds batch" in sb.log(), sb.log()
        assert "took over" not in sb.log()
        run_async(trade(primary, keys, orders=2))      # the primary retakes its lease
        assert primary.stop() == 0, primary.log()
        assert "fenced" not in primary.log()
        assert primary.journal_last_batch() == stream_entries(
            cluster_options(nats_cluster, "ahead"))[-1].batch
    finally:
        sb.cleanup()
        primary.cleanup()


def test_a_clean_stop_of_the_primary_hands_over_to_the_standby(nats_cluster, tmp_path):
    """A planned switch-over: the stopping primary stores everything, then releases its
    lease; the standby takes over without waiting for it to lapse, and serves."""
    primary = replicated_run(tmp_path, nats_cluster, "handover")
    config = cluster_config(tmp_path, "handover")
    sb = StandbyRun(tmp_path / "standby", nats_cluster.url, config, "--db", primary.db,
                    "--durability", "replicated", "--port", "0", "--http-port", "-1")
    new = None
    try:
        primary.start()
        sb.start()
        sb.wait_for(lambda s: s["lease"] == "alive", "the primary's lease")
        keys = make_accounts(primary, 2)
        seen = Seen()
        run_async(fund(primary, keys, seen))
        run_async(trade(primary, keys))
        assert primary.stop() == 0, primary.log()
        assert "lease handover-lease released" in primary.log(), primary.log()
        new = serving(sb, primary.db)
        assert "standby: primary lapsed: lease released by primary" in sb.log(), sb.log()
        run_async(trade(new, keys, orders=3))
        live = run_async(ask_engine(new, keys))
        assert new.stop() == 0, new.log()[-4000:]
        # the old writer stored everything: only the takeover marker was resent
        assert new.recovery()["resent"] == 1
        rep = stream_replay(cluster_options(nats_cluster, "handover"))
        check_converged(new, rep, keys, seen, live)
    finally:
        if new is not None:
            new.cleanup()
        sb.cleanup()
        primary.cleanup()
