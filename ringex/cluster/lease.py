"""The primary's lease: one key in a JetStream key-value bucket whose entries age out.

    kv = await lease_bucket(js, opts)           # bucket <name>-lease, TTL lease_ttl_ms
    lease = PrimaryLease(kv, opts, holder_id(state_dir))
    await lease.acquire()                       # Fenced if another holder has it
    await lease.keep(stop)                      # a heartbeat every third of the TTL
    held = await read_lease(kv)                 # a standby's look: a Holder, or None

Why a bucket with a TTL: the server removes the key ``lease_ttl_ms`` after its last write,
so "the primary is gone" needs no clock shared between boxes. Every write names the
revision it replaces (``Nats-Expected-Last-Subject-Sequence``): of two standbys taking a
lapsed lease one wins (``take_lease``), and a primary whose heartbeat finds another
holder knows it was replaced. The lease says who should write; the stream's own fencing
(appender.py) is what stops a second writer.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

import nats
from ringex.cluster.settings import ClusterOptions
from ringex.config import Config
from ringex.errors import Fenced

log = logging.getLogger("ringex.cluster")

LEASE_KEY = "primary"


def holder_id(state_dir: str | Path) -> str:
    """Who holds the lease: this box and data dir, so a restarted primary (or a new
    replicator of the same run) takes its own lease back at once."""
    return f"{socket.gethostname()}:{Path(state_dir).resolve()}"


def markets_id(config: Config) -> str:
    """The markets a journal means something with (the snapshots' fingerprint recipe: the
    config's repr leaves out gateway, state and cluster settings)."""
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Holder:
    holder: str
    pid: int
    role: str              # "primary" (a standby that took over says so too)
    revision: int          # the key's revision (a stream sequence of the bucket)
    markets: str = ""      # markets_id of the holder's config ("" unknown)

    def describe(self) -> str:
        return f"{self.role} {self.holder} (pid {self.pid})"


def lease_value(holder: str, role: str, markets: str = "") -> bytes:
    return json.dumps({"holder": holder, "pid": os.getpid(), "role": role,
                       "markets": markets, "written": time.time()}).encode()


async def lease_bucket(js: JetStreamContext, opts: ClusterOptions) -> KeyValue:
    """The bucket, created if missing (its TTL is fixed then: a later lease_ttl_ms that
    differs only warns)."""
    ttl = opts.lease_ttl_ms / 1000
    try:
        kv = await js.key_value(opts.lease_bucket)
    except BucketNotFoundError:
        kv = await js.create_key_value(KeyValueConfig(
            bucket=opts.lease_bucket, history=1, ttl=ttl, replicas=opts.replicas,
            storage=StorageType.FILE))
    status = await kv.status()
    if status.ttl and abs(status.ttl - ttl) > 0.001:
        log.warning("cluster: lease bucket %s has a TTL of %.0f ms, not lease_ttl_ms %d "
                    "(it keeps the one it was created with)", opts.lease_bucket,
                    status.ttl * 1000, opts.lease_ttl_ms)
    return kv


async def read_lease(kv: KeyValue) -> Holder | None:
    """The lease's holder, or None when nobody holds it (lapsed, released, never taken)."""
    return (await lease_status(kv))[0]


async def lease_status(kv: KeyValue) -> tuple[Holder | None, bool]:
    """(holder, released): released when nobody holds it because its last holder let it
    go (``release_lease``: a clean stop) rather than let it lapse."""
    try:
        entry = await kv.get(LEASE_KEY)
    except KeyNotFoundError as exc:         # op: a delete marker's, until the bucket's TTL
        return None, exc.op is not None
    try:
        v = json.loads(entry.value or b"{}")
        return Holder(str(v["holder"]), int(v["pid"]), str(v["role"]), int(entry.revision or 0),
                      str(v.get("markets", ""))), False
    except (ValueError, KeyError, TypeError):
        return Holder("?", 0, "unreadable", int(entry.revision or 0)), False


async def take_lease(kv: KeyValue, holder: str, role: str, markets: str = "") -> int | None:
    """Create the lease (nobody holds it): its revision, or None when another took it
    first."""
    try:
        return await kv.create(LEASE_KEY, lease_value(holder, role, markets))
    except KeyWrongLastSequenceError:
        return None


async def release_lease(kv: KeyValue, revision: int) -> bool:
    """Let the lease go if it is still at ``revision`` (ours, unchanged): True if so."""
    try:
        await kv.delete(LEASE_KEY, last=revision)
        return True
    except KeyWrongLastSequenceError:
        return False


class PrimaryLease:
    """The primary's side: take the lease, then keep it written."""

    def __init__(self, kv: KeyValue, opts: ClusterOptions, holder: str, role: str = "primary",
                 markets: str = ""):
        self.kv, self.opts, self.holder, self.role = kv, opts, holder, role
        self.markets = markets
        self.revision = 0
        # after a refused heartbeat, once the lease is ours again: the holder checks the
        # stream (a lapse long enough for a standby to take over and let go again)
        self.on_retake: Callable[[], Awaitable[None]] | None = None
        self._check_due = False

    async def acquire(self) -> None:
        """Ours now (taken, or already ours); Fenced when another holder has it."""
        while True:
            held = await read_lease(self.kv)
            if held is None:
                rev = await take_lease(self.kv, self.holder, self.role, self.markets)
                if rev is not None:
                    self.revision = rev
                    return
                continue                             # taken meanwhile: who has it?
            if held.holder != self.holder:
                raise Fenced(f"cluster: fenced: the lease {self.opts.lease_bucket} is held "
                             f"by {held.describe()}")
            try:
                self.revision = await self.kv.update(LEASE_KEY, self._value(), last=held.revision)
                return
            except KeyWrongLastSequenceError:
                continue                             # written meanwhile: look again

    def _value(self) -> bytes:
        return lease_value(self.holder, self.role, self.markets)

    async def beat(self) -> None:
        """One heartbeat. A refused write means the lease changed: lapsed (take it
        again) or another's (Fenced)."""
        try:
            self.revision = await self.kv.update(LEASE_KEY, self._value(), last=self.revision)
        except KeyWrongLastSequenceError:
            log.warning("cluster: lease %s changed since our last heartbeat; looking at "
                        "it", self.opts.lease_bucket)
            self._check_due = True
            await self.acquire()
            log.info("cluster: lease %s ours again (revision %d)", self.opts.lease_bucket,
                     self.revision)
        if self._check_due and self.on_retake is not None:
            await self.on_retake()              # not answered: again at the next beat
        self._check_due = False

    async def keep(self, stop) -> None:
        """Heartbeats every third of the TTL until ``stop`` is set. NATS unreachable: try
        again next time (the lease may lapse meanwhile; the stream's fencing still holds)."""
        every = self.opts.lease_ttl_ms / 3000
        said = 0.0
        while not stop.is_set():
            await asyncio.sleep(every)
            try:
                await self.beat()
            except (asyncio.TimeoutError, nats.errors.Error, OSError) as exc:
                if time.monotonic() - said > 5:
                    log.warning("cluster: lease heartbeat: %r; trying again", exc)
                    said = time.monotonic()
