"""``ringex run --cluster``: the stream holds exactly the journal, a standby's replay of it
is the primary's book, and a second writer is fenced out (docs/cluster.md)."""
from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import nats
import numpy as np
import pytest

from ringex import records
from ringex.client import Ack, connect
from ringex.cluster.appender import NeedsResync, StreamAppender
from ringex.cluster.reader import stream_entries
from ringex.cluster.stream import connect as nats_connect, ensure_stream, stream_end
from ringex.core.journal import Journal, entry_bounds
from ringex.core.order_service import OrderService
from ringex.errors import Fenced
from tests.cluster.conftest import cluster_options, replicated_run
from tests.faults.rig import (CONFIG, Replay, Seen, ask_engine, fund, make_accounts,
                              replay_books, run_async)


def journal_entries(data_dir: Path) -> list[bytes]:
    """Every entry of the run's journal segments, as raw bytes, in order."""
    out = []
    for seg in sorted((data_dir / "state" / "journal").glob("seg-*.rxj"),
                      key=lambda p: int(p.stem.split("-")[1])):
        buf, pos = seg.read_bytes(), 0
        while (end := entry_bounds(buf, pos)) > 0:
            out.append(buf[pos:end])
            pos = end
        assert pos == len(buf), f"{seg.name}: torn tail"
    return out


async def trade(run, keys: dict[int, str], orders: int = 12) -> list[Ack]:
    """Crossing orders from two accounts: acks, fills, resting orders on both sides."""
    (a, ka), (b, kb) = list(keys.items())[:2]
    ca, cb = await connect(run.url, ka), await connect(run.url, kb)
    acks = []
    try:
        for i in range(orders):
            price = Decimal("100.00") + Decimal(i % 5) / 100
            for c, side in ((ca, "buy"), (cb, "sell")):
                res = await c.place("BTC-USD", side, Decimal("0.0003"), price)
                assert isinstance(res, Ack), res
                acks.append(res)
        await cb.place("BTC-USD", "sell", Decimal("0.0001"), Decimal("150.00"))
        await ca.place("BTC-USD", "buy", Decimal("0.0002"), Decimal("90.00"))
    finally:
        await ca.close()
        await cb.close()
    return acks


METRICS: dict[str, float] = {}      # the traded run's ringex_replicator_* before it stopped


def _replicator_metrics(run) -> dict[str, float]:
    """The run's ringex_replicator_* metrics, once every batch it sent is stored (the last
    acks came after their groups were stored; later commands may still be in flight)."""
    http = json.loads((run.data_dir / "ringex.run").read_text())["http"]
    for _ in range(200):
        text = urllib.request.urlopen(http + "metrics", timeout=5).read().decode()
        found = {k: v for k, v in ((m.group(1), float(m.group(2))) for m in re.finditer(
            r"^ringex_replicator_(\w+?)(?:_total)? (\S+)$", text, re.M))}
        if found.get("unstored_batches") == 0:
            return found
        time.sleep(0.05)
    raise AssertionError(f"batches still unstored: {found}")


@pytest.fixture(scope="module")
def traded(nats_cluster, tmp_path_factory):
    """A replicated run that traded and stopped cleanly: (run, its live books, options)."""
    run = replicated_run(tmp_path_factory.mktemp("traded"), nats_cluster, "traded")
    try:
        run.start()
        keys = make_accounts(run, 2)
        run_async(fund(run, keys, Seen()))
        run_async(trade(run, keys))
        live = run_async(ask_engine(run, keys))
        METRICS.update(_replicator_metrics(run))
        assert run.stop() == 0, run.log()
        yield run, live, cluster_options(nats_cluster, "traded")
    finally:
        run.cleanup()


def test_replicator_metrics_say_what_the_stream_stored(traded):
    m = METRICS
    assert (m["state"], m["fenced"], m["unstored_batches"]) == (1, 0, 0)
    # a fresh stream, one entry a batch: the stored batch is the count of stored entries
    assert m["stored_batch"] == m["stored_entries"] > 0 and m["resyncs"] == 0
    assert 0 <= m["heartbeat_age_seconds"] < 60


def test_stream_holds_the_journal_byte_for_byte(traded):
    run, _, opts = traded
    local = journal_entries(run.data_dir)
    stored = stream_entries(opts)
    assert len(local) > 20
    assert [e.data for e in stored] == local
    assert [e.batch for e in stored] == [e.seq for e in stored] == list(range(1, len(local) + 1))
    assert "replicator started" in run.log() and "durability replicated" in run.log()


def test_standby_replay_of_the_stream_is_the_primarys_book(traded):
    _, live, opts = traded
    svc = OrderService(CONFIG)
    events = [svc.submit(e.cmds).copy() for e in stream_entries(opts)]
    rep = Replay(svc, np.concatenate(events), len(events))
    assert replay_books(rep) == live.books
    assert any(bids and asks for bids, asks in live.books.values())   # both sides rest


def _entries(folder: Path, n: int, account: int) -> list[bytes]:
    """n valid journal entries (deposits of ``account``) as raw bytes."""
    with Journal.open(folder / "seg-1.rxj") as j:
        for i in range(n):
            cmds = records.commands(1)
            cmds["kind"], cmds["account"], cmds["qty"], cmds["ref"] = (
                records.CommandKind.DEPOSIT, account, 100, i + 1)
            j.append(cmds)
    data = (folder / "seg-1.rxj").read_bytes()
    out, pos = [], 0
    while (end := entry_bounds(data, pos)) > 0:
        out.append(data[pos:end])
        pos = end
    return out


async def _settled(app: StreamAppender, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.in_flight:
        app.settle()
        assert loop.time() < deadline, "appends not acknowledged in time"
        await asyncio.sleep(0.005)


def test_a_second_appender_with_a_stale_sequence_is_refused(nats_cluster, tmp_path):
    opts = cluster_options(nats_cluster, "fencing")
    ours, theirs = _entries(tmp_path / "a", 3, 1), _entries(tmp_path / "b", 3, 2)

    async def scenario() -> None:
        nc = await nats_connect(opts)
        try:
            js = nc.jetstream()
            await ensure_stream(js, opts)
            primary = StreamAppender(nc, opts, 0, None)
            await primary.start()
            for batch, data in enumerate(ours, 1):
                await primary.send(batch, data)
            await _settled(primary)
            assert primary.through == 3
            # the bare refusal: JetStream's own answer to a stale expectation
            reply = await nc.request(opts.subject, theirs[1], timeout=5,
                                     headers={"Nats-Expected-Last-Sequence": "1"})
            assert json.loads(reply.data)["error"]["err_code"] == 10071
            # a deposed primary that believes the stream ends at batch 1
            deposed = StreamAppender(nc, opts, 1, 0)
            await deposed.start()
            await deposed.send(2, theirs[1])
            with pytest.raises(NeedsResync, match="wrong last sequence"):
                await _settled(deposed)
            with pytest.raises(Fenced, match="not ours"):
                await deposed.resync()
            end = await stream_end(js, opts)
            assert (end.last_batch, end.offset) == (3, 0)
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [e.data for e in stream_entries(opts)] == ours


def test_a_primary_whose_stream_moved_on_stops_itself(nats_cluster, tmp_path):
    run = replicated_run(tmp_path, nats_cluster, "deposed")
    opts = cluster_options(nats_cluster, "deposed")
    try:
        run.start()
        keys = make_accounts(run, 2)
        run_async(fund(run, keys, Seen()))
        intruder = _entries(tmp_path / "intruder", 1, 1)[0]

        async def another_writer_appends() -> None:
            nc = await nats.connect(opts.servers)
            try:
                end = await stream_end(nc.jetstream(), opts)
                reply = await nc.request(opts.subject, intruder, timeout=5, headers={
                    "Nats-Expected-Last-Sequence": str(end.last_seq)})
                assert "error" not in json.loads(reply.data)
            finally:
                await nc.close()

        async def order_after_the_intrusion():
            await another_writer_appends()
            c = await connect(run.url, next(iter(keys.values())), timeout=3)
            try:
                return await c.place("BTC-USD", "buy", Decimal("0.0001"), Decimal("90.00"))
            except Exception as exc:                # noqa: BLE001 - the primary is going
                return exc
            finally:
                try:
                    await asyncio.wait_for(c.close(), 5)
                except Exception:                   # noqa: BLE001 - it may be gone already
                    pass

        res = run_async(order_after_the_intrusion())
        assert not isinstance(res, Ack), "an order the stream refused was acknowledged"
        assert run.wait_exit() == 1, run.log()
        assert "fenced: the stream's entry at batch" in run.log(), run.log()
        assert "engine: fenced" in run.log() or "stopping ringex" in run.log(), run.log()
    finally:
        run.cleanup()
