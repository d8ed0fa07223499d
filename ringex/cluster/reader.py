"""Reading the replicated journal back: every entry from a sequence on, checked.

    async for entry in read_stream(opts):            # from sequence 1 to the stream's end
        svc.submit(entry.cmds)                       # a standby's replay
    entries = stream_entries(opts)                   # the same, from synchronous code

Each message must be one whole RXJ3 entry whose check holds (``journal.check_entry``),
at the sequence its batch says (``batch - offset``, the same offset for all), with no
sequence missing: a reader that got every message got every entry. The base for the
hot standby and for a writer fed from the stream (docs/cluster.md, "Not built yet").
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ringex.cluster.settings import ClusterOptions
from ringex.cluster.stream import connect
from ringex.core.journal import check_entry
from ringex.errors import StorageError

FETCH = 256


@dataclass
class StreamEntry:
    seq: int
    batch: int
    cmds: np.ndarray        # records.COMMAND
    data: bytes             # the entry as stored (== the primary's journal bytes)


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
        sub = await js.pull_subscribe(
            opts.subject, stream=opts.stream_name,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                  opt_start_seq=seq, ack_policy=AckPolicy.NONE,
                                  inactive_threshold=30.0, mem_storage=True))
        offset = None
        try:
            while seq <= last:
                for msg in await sub.fetch(min(FETCH, last - seq + 1), timeout=5):
                    got = msg.metadata.sequence.stream
                    if got != seq:
                        raise StorageError(f"stream {opts.stream_name}: sequence {got} "
                                           f"where {seq} was due")
                    batch, cmds = check_entry(msg.data)
                    offset = batch - seq if offset is None else offset
                    if batch - seq != offset:
                        raise StorageError(f"stream {opts.stream_name}: batch {batch} at "
                                           f"sequence {seq} (offset {offset} before)")
                    yield StreamEntry(seq, batch, cmds, msg.data)
                    seq += 1
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def stream_entries(opts: ClusterOptions, start: int = 1,
                   upto: int | None = None) -> list[StreamEntry]:
    """``read_stream`` from synchronous code (its own event loop)."""
    async def collect() -> list[StreamEntry]:
        return [e async for e in read_stream(opts, start, upto)]
    return asyncio.run(collect())
