"""Fenced, pipelined appends of journal entries to the stream.

    app = StreamAppender(nc, opts, through=end.last_batch, offset=end.offset)
    await app.start()
    app.send(batch, data)          # up to opts.window in flight; each says where the stream
                                   # must end before it (Nats-Expected-Last-Sequence)
    app.settle()                   # -> batches acknowledged, in order; raises NeedsResync
    await app.resync()             # after a refusal or a timeout: ask the stream

Why the header: the stream accepts entry ``b`` only right after entry ``b - 1``. A writer
that is not the stream's (a deposed primary, a second ringex on the same stream) is refused
with "wrong last sequence", and ``resync`` then finds entries in the stream that are not
ours: ``Fenced``. A timed-out append may or may not have been stored; ``resync`` compares
what the stream holds past our last acknowledged entry with what we sent, byte for byte,
takes the matching ones as acknowledged, and sends the rest again.
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque

from nats.aio.client import Client
from nats.aio.msg import Msg

from ringex.cluster.settings import ClusterOptions
from ringex.cluster.stream import StreamEnd, entry_batch, retrying, stored_entry, stream_end
from ringex.errors import Fenced

log = logging.getLogger("ringex.cluster")

EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
WRONG_LAST_SEQUENCE = 10071        # JetStream's error code for a refused expectation


class NeedsResync(Exception):
    """The oldest append in flight was refused or timed out."""


class StreamAppender:
    def __init__(self, nc: Client, opts: ClusterOptions, through: int, offset: int | None):
        self.nc, self.opts = nc, opts
        self.js = nc.jetstream(timeout=opts.ack_timeout_ms / 1000)
        self.through = through                     # last batch the stream acknowledged
        self.offset = offset                       # batch - stream sequence (None: empty)
        self.in_flight: deque[tuple[int, bytes, int]] = deque()   # (batch, data, sent_ns)
        self.replies: dict[int, dict] = {}         # batch -> the stream's answer
        self.generation = 0                        # replies of older sends are ignored
        self.resyncs = 0
        self.on_reply = lambda: None               # the replicator's wake-up
        self._inbox = ""

    async def start(self) -> None:
        self._inbox = self.nc.new_inbox()
        await self.nc.subscribe(f"{self._inbox}.*.*", cb=self._reply)

    async def _reply(self, msg: Msg) -> None:
        _, gen, batch = msg.subject.rsplit(".", 2)
        if int(gen) == self.generation:
            try:
                self.replies[int(batch)] = json.loads(msg.data)
            except ValueError:
                self.replies[int(batch)] = {"error": {"description": "unreadable reply"}}
            self.on_reply()

    @property
    def room(self) -> int:
        return self.opts.window - len(self.in_flight)

    async def send(self, batch: int, data: bytes) -> None:
        """Append entry ``batch`` (the next one after those in flight) without waiting."""
        last = self.in_flight[-1][0] if self.in_flight else self.through
        if last and batch != last + 1:
            raise RuntimeError(f"cluster: entry {batch} sent after {last}")
        if self.offset is None:                    # an empty stream: it starts here
            self.offset = batch - 1
        self.in_flight.append((batch, data, time.monotonic_ns()))
        await self._publish(batch, data)

    async def _publish(self, batch: int, data: bytes) -> None:
        assert self.offset is not None
        await self.nc.publish(self.opts.subject, data,
                              reply=f"{self._inbox}.{self.generation}.{batch}",
                              headers={EXPECTED_LAST_SEQ: str(batch - 1 - self.offset)})

    def settle(self) -> int:
        """Take the answered appends at the head, in order; returns how many were stored.
        NeedsResync when the head was refused or is older than the ack timeout."""
        done = 0
        timeout_ns = self.opts.ack_timeout_ms * 1_000_000
        while self.in_flight:
            batch, _, sent = self.in_flight[0]
            reply = self.replies.pop(batch, None)
            if reply is None:
                if time.monotonic_ns() - sent > timeout_ns:
                    raise NeedsResync(f"entry {batch} unanswered for "
                                      f"{self.opts.ack_timeout_ms} ms")
                break
            if "error" in reply:
                raise NeedsResync(f"entry {batch} refused: {reply['error']}")
            if reply.get("seq") != batch - (self.offset or 0):
                raise NeedsResync(f"entry {batch} stored at sequence {reply.get('seq')}")
            self.in_flight.popleft()
            self.through = batch
            done += 1
        return done

    async def resync(self, stop=None) -> None:
        """Where does the stream end, and is all of it ours? Afterwards every entry in
        flight that the stream does not hold is sent again; Fenced if it holds others."""
        self.resyncs += 1
        self.generation += 1
        self.replies.clear()
        end: StreamEnd = await retrying("stream state", lambda: stream_end(self.js, self.opts),
                                        None, stop)
        if end.offset is not None and self.offset is not None and end.offset != self.offset:
            raise Fenced(f"cluster: fenced: the stream's numbering changed (offset "
                         f"{end.offset}, ours {self.offset})")
        if end.last_batch < self.through:
            raise Fenced(f"cluster: the stream ends at batch {end.last_batch} but had "
                         f"acknowledged {self.through}: it lost entries or was replaced")
        sent = list(self.in_flight)
        for batch, data, _ in sent:
            if batch > end.last_batch:
                break
            stored = await retrying(f"entry {batch}",
                                    lambda b=batch: stored_entry(self.js, self.opts,
                                                                 end.seq(b)), None, stop)
            if stored != data:
                raise Fenced(f"cluster: fenced: the stream's entry at batch {batch} is not "
                             f"ours (batch {entry_batch(stored) if stored else '?'} written "
                             f"by another writer; the stream is at batch {end.last_batch})")
            self.in_flight.popleft()
            self.through = batch
        if end.last_batch > self.through:
            raise Fenced(f"cluster: fenced: another writer appended to the stream (it is at "
                         f"batch {end.last_batch}, this primary at {self.through})")
        if self.offset is None:
            self.offset = end.offset
        log.info("cluster: stream at batch %d; sending %d entries again", end.last_batch,
                 len(self.in_flight))
        for batch, data, _ in list(self.in_flight):
            await self._publish(batch, data)
        self.in_flight = deque((b, d, time.monotonic_ns()) for b, d, _ in self.in_flight)
