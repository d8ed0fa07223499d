"""The trade queue: many producers (matcher, gateways) -> one writer, over faster-fifo.

One ``put`` carries one payload: a 32-byte header followed by raw numpy records (no
pickling of records, no pickling of the payload either: the queue's ``dumps``/``loads``
are the identity, so faster-fifo copies bytes into its shared circular buffer and the
consumer reads them back as numpy views)::

    offset 0   HEADER (32 bytes, little-endian, see ``HEADER``)
    offset 32  n_commands x COMMAND (64 bytes each)   EVENTS payloads only, may be 0
    then       n_records  x EVENT or AUDIT (64 bytes each)

Memory is bounded by ``max_size_bytes``. A producer never drops: when the queue is full
``put`` waits in a loop of short timed waits (faster-fifo wakes only one blocked producer
per ``get``) and returns how long it was blocked; long waits are logged.

Payloads returned by ``get`` are *views into the consumer's receive buffer*: they are
valid until the next ``get`` on the same queue object. ``Payload.detach()`` copies one
so it can be kept longer (the writer does that only while the database is down).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from enum import IntEnum
from queue import Empty, Full

import faster_fifo
import faster_fifo_reduction  # noqa: F401  (lets the queue be pickled to spawned processes)
import numpy as np

from ringex.errors import StorageError
from ringex.records import AUDIT, COMMAND, EVENT

log = logging.getLogger(__name__)


class QueueAbandoned(StorageError):
    """A producer blocked on a full queue after its parent (the supervisor) died."""

HEADER = np.dtype(
    [
        ("magic", "<u2"),        # MAGIC, catches a stray or misaligned message
        ("version", "u1"),       # VERSION
        ("kind", "u1"),          # PayloadKind
        ("producer", "<u2"),     # producer id: 0 the matcher, 1 + i gateway i (unique per process)
        ("_pad", "<u2"),
        ("n_commands", "<u4"),   # COMMAND records after the header (EVENTS only)
        ("n_records", "<u4"),    # EVENT (EVENTS) or AUDIT (AUDIT) records after the commands
        ("batch", "<u8"),        # producer's batch number: strictly increasing, never reused
        ("ts_ns", "<i8"),        # time.time_ns() when the producer put it (writer lag)
    ]
)
assert HEADER.itemsize == 32

MAGIC = 0x5852                   # "RX"
VERSION = 1
RECORD_SIZE = 64
_SIZE_PREFIX = 8                 # faster-fifo stores a size_t before every message


class PayloadKind(IntEnum):
    EVENTS = 1                   # matcher: EVENT batch
    AUDIT = 2                    # gateway: AUDIT records
    STOP = 3                     # supervisor: the writer flushes everything before it and exits


@dataclass
class Payload:
    """One decoded put: numpy arrays over the received bytes (zero-copy)."""

    kind: PayloadKind
    producer: int
    batch: int
    ts_ns: int
    commands: np.ndarray         # COMMAND records (empty unless EVENTS carried some)
    records: np.ndarray          # EVENT or AUDIT records
    nbytes: int

    def detach(self) -> "Payload":
        """A copy that survives the next ``get`` (the views point into a reused buffer)."""
        return Payload(self.kind, self.producer, self.batch, self.ts_ns,
                       self.commands.copy(), self.records.copy(), self.nbytes)


def encode(kind: PayloadKind, producer: int, batch: int, records: np.ndarray,
           commands: np.ndarray | None = None) -> bytes:
    """Build the bytes of one payload (header + raw records)."""
    head = np.zeros(1, dtype=HEADER)
    head["magic"], head["version"], head["kind"] = MAGIC, VERSION, kind
    head["producer"], head["batch"], head["ts_ns"] = producer, batch, time.time_ns()
    head["n_commands"] = 0 if commands is None else len(commands)
    head["n_records"] = len(records)
    parts = [head.tobytes()]
    if commands is not None and len(commands):
        parts.append(np.ascontiguousarray(commands).tobytes())
    if len(records):
        parts.append(np.ascontiguousarray(records).tobytes())
    return b"".join(parts)


def decode(buf) -> Payload:
    """Arrays over ``buf`` (bytes or memoryview); raises ValueError on a malformed payload."""
    if len(buf) < HEADER.itemsize:
        raise ValueError(f"payload of {len(buf)} bytes is shorter than its header")
    h = np.frombuffer(buf, dtype=HEADER, count=1)[0]
    if h["magic"] != MAGIC or h["version"] != VERSION:
        raise ValueError(f"bad payload header (magic {h['magic']:#x}, version {h['version']})")
    kind = PayloadKind(int(h["kind"]))
    nc, nr = int(h["n_commands"]), int(h["n_records"])
    if len(buf) != HEADER.itemsize + RECORD_SIZE * (nc + nr):
        raise ValueError(f"payload length {len(buf)} does not match {nc} + {nr} records")
    rec_dtype = AUDIT if kind == PayloadKind.AUDIT else EVENT
    off = HEADER.itemsize
    commands = np.frombuffer(buf, dtype=COMMAND, count=nc, offset=off)
    records = np.frombuffer(buf, dtype=rec_dtype, count=nr, offset=off + RECORD_SIZE * nc)
    return Payload(kind, int(h["producer"]), int(h["batch"]), int(h["ts_ns"]),
                   commands, records, len(buf))


# faster-fifo calls these per message; module-level so the queue pickles to spawned children
def _identity_dumps(payload):
    return payload


def _identity_loads(view):
    return view


class TradeQueue:
    """Bounded multi-producer queue of payloads to the writer (create it in the parent).

    ``max_size_bytes`` bounds the shared circular buffer; one payload must fit in it. The
    default, 32 MiB, holds about 20 of the engine's largest payloads (16,384 events) and
    seconds of a busy exchange's flow while the writer is stalled; faster-fifo zero-fills it
    at creation, so it is resident from the start (64 MiB made a third of an idle
    exchange's memory).
    """

    def __init__(self, max_size_bytes: int = 32 << 20):
        self.max_size_bytes = max_size_bytes
        self._q = faster_fifo.Queue(max_size_bytes, loads=_identity_loads,
                                    dumps=_identity_dumps)

    # ---------------------------------------------------------------- producer side
    def producer(self, producer_id: int, first_batch: int | None = None) -> "Producer":
        """A numbered sender for one process; see ``Producer``."""
        return Producer(self, producer_id, first_batch)

    def put_payload(self, payload: bytes, wait_s: float = 0.05, warn_every_s: float = 5.0,
                    parent: int | None = None) -> float:
        """Enqueue one encoded payload; block while full. Returns seconds spent blocked.

        ``parent``: the pid that started this process; once it is gone (the supervisor
        died, and with it, most likely, the writer), a blocked put raises QueueAbandoned
        instead of waiting forever in a process nobody will stop."""
        if len(payload) + _SIZE_PREFIX > self.max_size_bytes:
            raise ValueError(f"payload of {len(payload)} bytes can never fit a queue of "
                             f"{self.max_size_bytes} bytes: split the batch")
        try:
            self._q.put_nowait(payload)
            return 0.0
        except Full:
            pass
        start = time.perf_counter()
        next_warn = start + warn_every_s
        while True:
            try:
                self._q.put(payload, block=True, timeout=wait_s)
                return time.perf_counter() - start
            except Full:
                if parent is not None and os.getppid() != parent:
                    raise QueueAbandoned("trade queue full and the process that started "
                                         "this one is gone: giving up") from None
                now = time.perf_counter()
                if now >= next_warn:
                    log.warning("trade queue full: producer blocked for %.1f s "
                                "(is the writer running?)", now - start)
                    next_warn = now + warn_every_s

    def put_stop(self) -> float:
        """Ask the writer to flush everything queued before this and exit."""
        return self.put_payload(encode(PayloadKind.STOP, 0, 0, np.zeros(0, EVENT)))

    # ---------------------------------------------------------------- consumer side
    def get(self, timeout: float = 0.1, max_bytes: int | None = None) -> list[Payload]:
        """Drain what is queued (waits up to ``timeout`` for the first one); [] if none.

        The arrays are views valid until the next ``get`` on this object (``detach`` to keep).
        """
        if max_bytes is not None:
            self._q.max_bytes_to_read = max_bytes
        try:
            raw = self._q.get_many(block=timeout > 0, timeout=timeout)
        except Empty:
            return []
        return [decode(view) for view in raw]

    def qsize(self) -> int:
        """Messages queued right now (approximate across processes)."""
        return self._q.qsize()

    def close(self) -> None:
        self._q.close()


class Producer:
    """Numbers and sends one process's batches.

    Batch numbers must grow strictly across restarts of the producer: the writer skips a
    batch numbered at or below the last one it committed for that producer (that is what
    makes a replay idempotent). The matcher passes numbers tied to its journal; by default
    a producer starts at the current time in microseconds, which a restart never repeats.
    """

    def __init__(self, queue: TradeQueue, producer_id: int, first_batch: int | None = None):
        if not 0 <= producer_id <= 0xFFFF:
            raise ValueError(f"producer id {producer_id} does not fit 16 bits")
        self.queue = queue
        self.producer_id = producer_id
        self.next_batch = time.time_ns() // 1000 if first_batch is None else first_batch
        self.blocked_s = 0.0       # total time spent waiting on a full queue
        self.blocked_puts = 0      # puts that had to wait
        self.parent = os.getppid()  # a blocked put gives up once it is gone

    def put_events(self, events: np.ndarray, batch: int | None = None) -> float:
        """Send one matcher batch's EVENT array (a BALANCE says which command it answers
        and what a transfer moved, so no command travels). Returns seconds blocked."""
        return self._put(PayloadKind.EVENTS, events, None, batch)

    def put_audit(self, records: np.ndarray, batch: int | None = None) -> float:
        """Send AUDIT records (gateways). Returns seconds blocked."""
        return self._put(PayloadKind.AUDIT, records, None, batch)

    def _put(self, kind, records, commands, batch) -> float:
        if batch is None:
            batch = self.next_batch
        self.next_batch = batch + 1
        blocked = self.queue.put_payload(encode(kind, self.producer_id, batch, records, commands),
                                         parent=self.parent)
        if blocked:
            self.blocked_s += blocked
            self.blocked_puts += 1
        return blocked
