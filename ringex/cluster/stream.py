"""Reaching NATS and the journal's stream: connect, create or check the stream, ask where
it ends, fetch one stored entry.

Stream sequence and journal batch: the stream holds consecutive journal entries, so entry
``batch`` is at sequence ``batch - offset``, where ``offset`` is the batch of the stream's
first entry minus its sequence (0 for an exchange replicated from its first batch: then
the sequence *is* the batch number). ``StreamEnd`` says both.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from ringex.cluster.settings import ClusterOptions

log = logging.getLogger("ringex.cluster")

_BATCH = struct.Struct("<Q")       # an entry's batch number: bytes 4..12 of its header


def entry_batch(data: bytes) -> int:
    return _BATCH.unpack_from(data, 4)[0]


async def connect(opts: ClusterOptions, name: str = "ringex") -> Client:
    """A connection that reconnects for ever, quickly (a NATS node restarting must not
    leave the replicator waiting seconds between tries)."""
    return await nats.connect(
        servers=opts.servers, name=name, connect_timeout=2, reconnect_time_wait=0.2,
        max_reconnect_attempts=-1, allow_reconnect=True, ping_interval=5,
        max_outstanding_pings=3)


async def ensure_stream(js: JetStreamContext, opts: ClusterOptions) -> None:
    """Create the stream if it does not exist; check an existing one carries our subject."""
    try:
        info = await js.stream_info(opts.stream_name)
    except NotFoundError:
        await js.add_stream(StreamConfig(
            name=opts.stream_name, subjects=[opts.subject], num_replicas=opts.replicas,
            retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.NEW,
            storage=StorageType.FILE, allow_direct=True))
        log.info("cluster: created stream %s (%d replicas) for %s", opts.stream_name,
                 opts.replicas, opts.subject)
        return
    subjects = info.config.subjects or []
    if opts.subject not in subjects:
        raise RuntimeError(f"stream {opts.stream_name} exists for {subjects}, "
                           f"not {opts.subject}")


@dataclass(frozen=True)
class StreamEnd:
    last_seq: int          # 0: empty
    offset: int | None     # batch - seq of every entry; None while empty

    @property
    def last_batch(self) -> int:
        return self.last_seq + (self.offset or 0)

    def seq(self, batch: int) -> int:
        return batch - (self.offset or 0)


async def stream_end(js: JetStreamContext, opts: ClusterOptions) -> StreamEnd:
    state = (await js.stream_info(opts.stream_name)).state
    if not state.messages:
        return StreamEnd(state.last_seq, None)
    first = await js.get_msg(opts.stream_name, state.first_seq)
    assert first.data is not None
    return StreamEnd(state.last_seq, entry_batch(first.data) - state.first_seq)


async def stored_entry(js: JetStreamContext, opts: ClusterOptions, seq: int) -> bytes:
    msg = await js.get_msg(opts.stream_name, seq)
    return msg.data or b""


async def retrying(what: str, call, timeout_s: float | None, stop=None):
    """``await call()`` until it answers (NATS down, a leader being elected), at most
    ``timeout_s`` seconds (None: for ever, until ``stop`` is set)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout_s is None else loop.time() + timeout_s
    pause, logged = 0.05, 0.0
    while True:
        try:
            return await call()
        except (asyncio.TimeoutError, nats.errors.Error, OSError) as exc:
            now = loop.time()
            if deadline is not None and now > deadline:
                raise RuntimeError(f"cluster: {what}: no answer in {timeout_s:.0f} s "
                                   f"({exc!r})") from None
            if stop is not None and stop.is_set():
                raise
            if now - logged > 5:
                log.warning("cluster: %s: %r; trying again", what, exc)
                logged = now
            await asyncio.sleep(pause)
            pause = min(1.0, pause * 2)
