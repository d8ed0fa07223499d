"""AUDIT records of one gateway (connects, logins, auth failures, abusive closes,
disconnects) on their way to the writer through the trade queue.

``record`` only appends to a list; ``flush`` (the gateway calls it every housekeeping
tick) hands the batch to a worker thread, because a full trade queue blocks its
producer and the loop must never block. Producer id ``1 + gateway index``.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ringex.records import AUDIT, AuditKind


class AuditLog:
    def __init__(self, queue, gateway_index: int):
        self._producer = queue.producer(1 + gateway_index) if queue is not None else None
        self._rows: list[tuple] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ringex-audit")
        self._task: asyncio.Future | None = None

    def record(self, kind: AuditKind, session: int, account: int, addr: bytes, port: int,
               code: int = 0) -> None:
        """``addr``: the peer's packed IPv4 (4 bytes) or IPv6 (16) address."""
        if self._producer is not None:
            self._rows.append((time.time_ns(), session, account, int(kind), code, port, addr))

    def flush(self) -> None:
        """Send what is buffered, unless the previous batch is still on its way."""
        producer = self._producer
        if (producer is None or not self._rows
                or (self._task is not None and not self._task.done())):
            return    # (rows are only buffered when there is a producer)
        rows, self._rows = self._rows, []
        recs = np.zeros(len(rows), dtype=AUDIT)
        for i, (ts, sid, account, kind, code, port, addr) in enumerate(rows):
            r = recs[i]
            r["ts_ns"], r["session"], r["account"], r["kind"] = ts, sid, account, kind
            r["code"], r["port"] = code, port
            r["addr"][:len(addr)] = np.frombuffer(addr, np.uint8)
        self._task = asyncio.get_running_loop().run_in_executor(
            self._pool, producer.put_audit, recs)

    async def close(self) -> None:
        """Send everything still buffered, then stop the worker thread."""
        if self._task is not None:
            await self._task
        self.flush()
        if self._task is not None:
            await self._task
        self._pool.shutdown(wait=True)
