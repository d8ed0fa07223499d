"""Reading the replicated journal back: every entry from a sequence on, checked.

    async for entry in read_stream(opts):            # from sequence 1 to the stream's end
        svc.submit(entry.cmds)                       # a standby's replay
    entries = stream_entries(opts)                   # the same, from synchronous code
    async for entry in follow_stream(nc, opts, seq, stop):   # and on as it grows, until
        ...                                          # stop.is_set() (entry.pending: lag)

Each message must be one whole RXJ3 entry whose check holds (``journal.check_entry``),
at the sequence its batch says (``batch - offset``, the same offset for all), with no
sequence missing: a reader that got every message got every entry. The base for the
hot standby and for a writer fed from the stream (docs/cluster.md, "Not built yet").
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ringex.cluster.settings import ClusterOptions
from ringex.cluster.stream import connect
from ringex.core.journal import check_entry
from ringex.errors import StorageError

log = logging.getLogger("ringex.cluster")

FETCH = 256
FOLLOW_WAIT_S = 0.25        # a fetch waits this long for news (then stop is looked at)


@dataclass
class StreamEntry:
    seq: int
    batch: int
    cmds: np.ndarray        # records.COMMAND
    data: bytes             # the entry as stored (== the primary's journal bytes)
    pending: int = 0        # entries after it in the stream when it was delivered


async def read_stream(opts: ClusterOptions, start: int = 1,
                      upto: int | None = None) -> AsyncIterator[StreamEntry]:
    """Entries at sequences ``start`` .. ``upto`` (None: the stream's last when called)."""
    nc = await connect(opts, "ringex-reader")
    try:
        js = nc.jetstream()
        state = (await js.stream_info(opts.stream_name)).state
        last = state.last_seq if upto is None else min(upto, state.last_seq)
        seq = max(start, state.first_seq)
        if seq > last:
            return
        sub = await _consumer(js, opts, seq)
        offset = None
        try:
            while seq <= last:
                for msg in await sub.fetch(min(FETCH, last - seq + 1), timeout=5):
                    entry = _checked(opts, msg, seq, offset)
                    offset = entry.batch - seq
                    yield entry
                    seq += 1
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


async def _consumer(js: JetStreamContext, opts: ClusterOptions, seq: int):
    """An ephemeral pull consumer from sequence ``seq`` (no acks: a reader only)."""
    return await js.pull_subscribe(
        opts.subject, stream=opts.stream_name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                              opt_start_seq=seq, ack_policy=AckPolicy.NONE,
                              inactive_threshold=30.0, mem_storage=True))


def _checked(opts: ClusterOptions, msg: Msg, seq: int, offset: int | None) -> StreamEntry:
    """The entry in ``msg``, due at sequence ``seq`` with ``batch - seq == offset`` (None:
    any); StorageError otherwise."""
    got = msg.metadata.sequence.stream
    if got != seq:
        raise StorageError(f"stream {opts.stream_name}: sequence {got} where {seq} was due")
    batch, cmds = check_entry(msg.data)
    if offset is not None and batch - seq != offset:
        raise StorageError(f"stream {opts.stream_name}: batch {batch} at sequence {seq} "
                           f"(offset {offset} before)")
    return StreamEntry(seq, batch, cmds, msg.data, msg.metadata.num_pending or 0)


async def follow_stream(nc: Client, opts: ClusterOptions, start: int,
                        stop) -> AsyncIterator[StreamEntry]:
    """Entries from sequence ``start`` on, as the stream grows, until ``stop.is_set()``
    (looked at every FOLLOW_WAIT_S while nothing comes). A consumer lost with a NATS node
    is made again from the next sequence."""
    js = nc.jetstream()
    seq, offset, sub, said = start, None, None, 0.0
    want = 1
    try:
        while not stop.is_set():
            try:
                if sub is None:
                    sub = await _consumer(js, opts, seq)
                # only as many as are known to be there: a fetch for more would wait
                # FOLLOW_WAIT_S to fill up (nats-py), a standby that much behind
                msgs = await sub.fetch(want, timeout=FOLLOW_WAIT_S)
            except nats.errors.TimeoutError:
                continue
            except (nats.errors.Error, OSError) as exc:
                if time.monotonic() - said > 5:
                    log.warning("cluster: reading %s at sequence %d: %r; trying again",
                                opts.stream_name, seq, exc)
                    said = time.monotonic()
                await _drop(sub)
                sub = None
                await asyncio.sleep(FOLLOW_WAIT_S)
                continue
            for msg in msgs:
                entry = _checked(opts, msg, seq, offset)
                offset = entry.batch - seq
                want = max(1, min(FETCH, entry.pending))
                yield entry
                seq += 1
    finally:
        await _drop(sub)


async def _drop(sub) -> None:
    if sub is not None:
        try:
            await sub.unsubscribe()
        except (nats.errors.Error, OSError):
            pass


def stream_entries(opts: ClusterOptions, start: int = 1,
                   upto: int | None = None) -> list[StreamEntry]:
    """``read_stream`` from synchronous code (its own event loop)."""
    async def collect() -> list[StreamEntry]:
        return [e async for e in read_stream(opts, start, upto)]
    return asyncio.run(collect())
