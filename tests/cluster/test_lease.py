"""The primary's lease (ringex/cluster/lease.py) on a private 3-node cluster: it lapses
without heartbeats, one of two racing takers wins, a primary takes its own lapsed lease
back and is fenced when another holder has it."""
from __future__ import annotations

import asyncio

import pytest

from ringex.cluster.lease import PrimaryLease, lease_bucket, read_lease, take_lease
from ringex.cluster.stream import connect
from ringex.errors import Fenced
from tests.cluster.conftest import cluster_options

TTL_MS = 600


def _scenario(nats_cluster, name: str, body) -> None:
    opts = cluster_options(nats_cluster, name, lease_ttl_ms=TTL_MS)

    async def main() -> None:
        nc = await connect(opts)
        try:
            kv = await lease_bucket(nc.jetstream(), opts)
            await body(kv, opts)
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(main(), 60))


async def _lapsed(kv) -> None:
    while await read_lease(kv) is not None:
        await asyncio.sleep(0.02)


def test_two_standbys_take_a_lapsed_lease_and_one_wins(nats_cluster):
    async def body(kv, opts) -> None:
        primary = PrimaryLease(kv, opts, "box-a:/data")
        await primary.acquire()
        held = await read_lease(kv)
        assert held is not None and (held.holder, held.role) == ("box-a:/data", "primary")
        await _lapsed(kv)                      # no heartbeat: the server removes it
        won = await asyncio.gather(take_lease(kv, "box-b:/data", "primary"),
                                   take_lease(kv, "box-c:/data", "primary"))
        assert sorted(w is None for w in won) == [False, True]
        holder = await read_lease(kv)
        assert holder is not None
        assert holder.holder == ("box-b:/data" if won[0] else "box-c:/data")

    _scenario(nats_cluster, "race", body)


def test_a_primary_takes_its_lapsed_lease_back_at_its_next_heartbeat(nats_cluster):
    async def body(kv, opts) -> None:
        lease = PrimaryLease(kv, opts, "box-a:/data")
        await lease.acquire()
        await lease.beat()
        await _lapsed(kv)                      # e.g. NATS unreachable for a while
        await lease.beat()
        held = await read_lease(kv)
        assert held is not None and held.holder == "box-a:/data"
        assert held.revision == lease.revision

    _scenario(nats_cluster, "retake", body)


def test_a_primary_finding_another_holder_is_fenced(nats_cluster):
    async def body(kv, opts) -> None:
        lease = PrimaryLease(kv, opts, "box-a:/data")
        await lease.acquire()
        await _lapsed(kv)
        assert await take_lease(kv, "box-b:/standby", "primary") is not None
        with pytest.raises(Fenced, match="held by primary box-b:/standby"):
            await lease.beat()
        with pytest.raises(Fenced):            # and a new start of it too
            await PrimaryLease(kv, opts, "box-a:/data").acquire()

    _scenario(nats_cluster, "deposed", body)


def test_a_primary_that_takes_its_lapsed_lease_back_checks_the_stream_first(nats_cluster):
    """A lapse long enough for a standby to take over and let go again: the lease looks
    free, but the stream moved; the holder's check (the replicator's: the stream past
    what it sent) fences it."""
    async def body(kv, opts) -> None:
        lease = PrimaryLease(kv, opts, "box-a:/data")
        checks = []

        async def stream_moved() -> None:
            checks.append(1)
            raise Fenced("cluster: fenced: the stream moved")

        lease.on_retake = stream_moved
        await lease.acquire()
        await lease.beat()
        assert checks == []                    # a plain heartbeat asks nothing
        await _lapsed(kv)
        with pytest.raises(Fenced, match="the stream moved"):
            await lease.beat()
        assert checks == [1]

    _scenario(nats_cluster, "moved", body)
