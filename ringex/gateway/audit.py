"""AUDIT records of one gateway (connects, logins, auth failures, abusive closes,
disconnects) on their way to the writer through the trade queue.

``record`` only appends to a list; ``flush`` (the gateway calls it every housekeeping
tick) hands the batch to a worker thread, because a full trade queue blocks its
producer and the loop must never block. The thread is a daemon and ``close`` waits for it
a bounded time: a queue left locked by a producer killed inside ``put`` (faster-fifo's
lock is not robust) must not keep the gateway from stopping. Producer id
``1 + gateway index``.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time

import numpy as np

from ringex.records import AUDIT, AuditKind

log = logging.getLogger("ringex.gateway")

CLOSE_WAIT_S = 5.0                # close: longest wait for the last batches to be queued


class AuditLog:
    def __init__(self, trade_queue, gateway_index: int):
        self._producer = trade_queue.producer(1 + gateway_index) if trade_queue else None
        self._rows: list[tuple] = []
        self._batches: queue.SimpleQueue = queue.SimpleQueue()
        self._in_flight = threading.Event()       # set while a batch is being put
        self._thread: threading.Thread | None = None
        if self._producer is not None:
            self._thread = threading.Thread(target=self._run, name="ringex-audit",
                                            daemon=True)
            self._thread.start()

    def record(self, kind: AuditKind, session: int, account: int, addr: bytes, port: int,
               code: int = 0) -> None:
        """``addr``: the peer's packed IPv4 (4 bytes) or IPv6 (16) address."""
        if self._producer is not None:
            self._rows.append((time.time_ns(), session, account, int(kind), code, port, addr))

    def flush(self) -> None:
        """Send what is buffered, unless the previous batch is still on its way."""
        if not self._rows or self._in_flight.is_set():
            return    # (rows are only buffered when there is a producer)
        rows, self._rows = self._rows, []
        recs = np.zeros(len(rows), dtype=AUDIT)
        for i, (ts, sid, account, kind, code, port, addr) in enumerate(rows):
            r = recs[i]
            r["ts_ns"], r["session"], r["account"], r["kind"] = ts, sid, account, kind
            r["code"], r["port"] = code, port
            r["addr"][:len(addr)] = np.frombuffer(addr, np.uint8)
        self._in_flight.set()
        self._batches.put(recs)

    def _run(self) -> None:
        producer = self._producer
        assert producer is not None
        while (recs := self._batches.get()) is not None:
            try:
                producer.put_audit(recs)
            finally:
                self._in_flight.clear()

    async def close(self) -> None:
        """Send everything still buffered (waiting at most CLOSE_WAIT_S), then stop the
        worker thread."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + CLOSE_WAIT_S
        while self._rows and time.monotonic() < deadline:
            self.flush()
            await asyncio.sleep(0.005)
        self._batches.put(None)
        while thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if thread.is_alive() or self._rows:
            log.error("gateway: audit records not queued within %.0f s (trade queue full or "
                      "locked); %d left unsent", CLOSE_WAIT_S, len(self._rows))
