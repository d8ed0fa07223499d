"""``ringex standby`` beside a replicated primary: it follows the stream to the primary's
state and journal, watches the lease, and takes over (marker, fencing) after kill -9 of
the primary (docs/cluster.md, "Hot standby")."""
from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

import pytest

from ringex import records
from ringex.cluster.lease import holder_id
from ringex.cluster.reader import stream_entries
from ringex.cluster.stream import connect as nats_connect, entry_batch
from ringex.cluster.takeover import TAKEOVER_HEADER, marker_entry
from ringex.core.journal import Journal, check_entry
from ringex.core.order_service import OrderService
from tests.cluster.conftest import cluster_config, cluster_options, replicated_run
from tests.cluster.standby_rig import StandbyRun, canonical_state, recovered
from tests.cluster.test_replicated_journal import journal_entries, trade
from tests.faults.rig import (CONFIG, Replay, Seen, ask_engine, fund, make_accounts,
                              replay_books, run_async, stream)

SMALL_SNAPSHOTS = {"RINGEX_STATE": "snapshot_every_bytes=2048"}   # many, pruned


def test_the_takeover_marker_is_an_empty_journal_entry(tmp_path):
    data = marker_entry(7)
    batch, cmds = check_entry(data)
    assert (batch, len(cmds)) == (7, 0)
    with Journal.open(tmp_path / "seg.rxj", next_batch=7) as j:     # what a standby journals
        assert j.append(records.commands(0)) == 7
    assert (tmp_path / "seg.rxj").read_bytes() == data


def _standby_matches_live(svc: OrderService, live, keys) -> None:
    """The standby's book, balances and open orders are what the live primary answered."""
    assert replay_books(Replay(svc, records.events(0), 0)) == live.books
    for account in keys:
        for asset, total in live.balances[account].items():
            avail, locked = svc.balance(account, asset)
            assert Decimal(avail + locked).scaleb(-CONFIG.asset(asset).scale) == total
        assert {o["order_id"] for o in svc.open_orders(account)} == \
            set(live.open_orders[account])


def test_standby_follows_the_primary_to_the_same_state_and_journal(nats_cluster, tmp_path):
    primary = replicated_run(tmp_path, nats_cluster, "follow")
    config = cluster_config(tmp_path, "follow")
    sb = StandbyRun(tmp_path / "standby", nats_cluster.url, config, "--no-takeover",
                    env=SMALL_SNAPSHOTS)
    opts = cluster_options(nats_cluster, "follow")
    try:
        primary.start()
        sb.start()
        me = holder_id(primary.data_dir / "state")
        sb.wait_for(lambda s: s["lease"] == "alive" and me in s["primary"],
                    "the primary's lease")
        # a standby given other markets would build another state: it refuses to follow
        other = tmp_path / "other.toml"
        other.write_text(config.read_text().replace("taker_fee_bps = 5", "taker_fee_bps = 6"))
        wrong = StandbyRun(tmp_path / "wrong", nats_cluster.url, other)
        with pytest.raises(AssertionError, match=r"standby exited \(1\)"):
            wrong.start()
        assert "runs other markets" in wrong.log(), wrong.log()
        keys = make_accounts(primary, 3)
        seen = Seen()
        run_async(fund(primary, keys, seen))
        run_async(stream(primary, keys, seen, lambda: None, warmup_s=1.0))
        followed = sb.wait_for(lambda s: s["batch"] == primary.journal_last_batch(),
                               "the flow's last batch")
        print(f"standby: at most {followed['most_behind']} entries behind while following")
        assert followed["snapshots"] > 0            # > 2048 bytes of journal by now
        # killed and started again: it goes on from its own snapshot and journal
        sb.cleanup()
        first = primary.journal_last_batch()
        run_async(trade(primary, keys))
        sb.start()
        assert f"from sequence {sb_batch(sb) + 1}" in sb.log(), sb.log()
        live = run_async(ask_engine(primary, keys))
        last = primary.journal_last_batch()
        assert last > first
        s = sb.wait_for(lambda s: s["batch"] == last, f"batch {last} applied")
        assert s["behind"] == 0 and s["lease"] == "alive"
        assert primary.stop() == 0, primary.log()
        stored = stream_entries(opts)
        sb.wait_for(lambda s: s["batch"] == stored[-1].batch, "the stream's last batch")
        # a clean stop leaves the lease to lapse too; a standby without takeover says so
        sb.wait_for(lambda s: s["lease"] == "lapsed", "the lease to lapse")
        assert sb.stop() == 0, sb.log()
        log = sb.log()
        assert "standby: primary alive: lease held by primary" in log
        assert "standby: primary lapsed" in log and "took over" not in log
        assert "behind the stream" in log and "standby: snapshot at batch" in log

        assert [e.data for e in stored] == journal_entries(primary.data_dir)
        # the standby pruned what its snapshots cover; what it kept is the stream's
        kept = journal_entries(sb.data_dir)
        first = entry_batch(kept[0])
        assert kept == [e.data for e in stored if e.batch >= first] and first > 1
        standby = recovered(CONFIG, sb.data_dir / "state")
        assert canonical_state(standby) == canonical_state(
            recovered(CONFIG, primary.data_dir / "state"))
        _standby_matches_live(standby, live, keys)
    finally:
        sb.cleanup()
        primary.cleanup()


def sb_batch(sb: StandbyRun) -> int:
    """The batch the standby's log says it recovered at its latest start."""
    line = [x for x in sb.log().splitlines() if "standby: recovered batch" in x][-1]
    return int(line.split("recovered batch ")[1].split()[0])


def start_funded(primary, sb) -> list:
    """Start the primary and the standby, wait for the lease, fund two accounts."""
    primary.start()
    sb.start()
    sb.wait_for(lambda s: s["lease"] == "alive", "the primary's lease")
    keys = make_accounts(primary, 2)
    run_async(fund(primary, keys, Seen()))
    return keys


def test_standby_takes_over_after_kill_9_and_the_old_primary_is_fenced(nats_cluster, tmp_path):
    primary = replicated_run(tmp_path, nats_cluster, "failover")
    config = cluster_config(tmp_path, "failover")
    sb = StandbyRun(tmp_path / "standby", nats_cluster.url, config)
    opts = cluster_options(nats_cluster, "failover")
    try:
        keys = start_funded(primary, sb)
        run_async(trade(primary, keys))
        primary.kill_group()
        primary.unlink_rings()
        assert sb.wait_exit() == 4, sb.log()
        log = sb.log()
        assert "standby: primary lapsed" in log
        assert "standby: took over: takeover marker at batch" in log
        assert "ready to serve from" in log

        stored = stream_entries(opts)
        marker = stored[-1]
        assert len(marker.cmds) == 0 and marker.data == marker_entry(marker.batch)
        assert _header(opts, marker.seq) == holder_id(sb.data_dir / "state")
        assert journal_entries(sb.data_dir) == [e.data for e in stored]
        # the standby's state is the replay of everything the primary replicated
        replay = OrderService(CONFIG)
        for e in stored:
            replay.submit(e.cmds)
        assert canonical_state(recovered(CONFIG, sb.data_dir / "state")) == \
            canonical_state(replay)
        # the old primary comes back: the stream moved past its journal, it stops itself
        with pytest.raises(AssertionError, match="did not start"):
            primary.start()
        assert primary.proc is not None and primary.proc.wait(30) == 1
        assert "fenced" in primary.log(), primary.log()
    finally:
        sb.cleanup()
        primary.cleanup()


def test_a_primary_stopped_past_its_lease_stops_itself_when_it_resumes(nats_cluster, tmp_path):
    """The primary's processes frozen (SIGSTOP: a stalled box, a long GC, a partition)
    longer than the lease: the standby takes over; resumed, the old primary finds the
    lease or the stream taken and stops by itself, without any order arriving."""
    primary = replicated_run(tmp_path, nats_cluster, "frozen")
    config = cluster_config(tmp_path, "frozen")
    sb = StandbyRun(tmp_path / "standby", nats_cluster.url, config)
    try:
        start_funded(primary, sb)
        os.killpg(primary.pid, signal.SIGSTOP)
        try:
            assert sb.wait_exit() == 4, sb.log()
        finally:
            os.killpg(primary.pid, signal.SIGCONT)
        assert primary.wait_exit() == 1, primary.log()
        assert "cluster: fenced" in primary.log(), primary.log()
        assert journal_entries(sb.data_dir) == \
            [e.data for e in stream_entries(cluster_options(nats_cluster, "frozen"))]
    finally:
        sb.cleanup()
        primary.cleanup()


def _header(opts, seq: int) -> str | None:
    async def get() -> str | None:
        nc = await nats_connect(opts)
        try:
            msg = await nc.jetstream().get_msg(opts.stream_name, seq)
            return (msg.headers or {}).get(TAKEOVER_HEADER)
        finally:
            await nc.close()
    return asyncio.run(asyncio.wait_for(get(), 30))

