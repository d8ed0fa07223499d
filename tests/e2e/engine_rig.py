"""An engine process driven purely through its rings: the test plays every gateway.

    with EngineRig(gateways=2) as rig:
        rig.send(0, records.new_order(..., session=rig.session(0)))
        evs = rig.events(0, 2)          # from gateway 0's event ring
        md = rig.md(3)                  # from the market-data ring

The rig creates the rings as the supervisor would (docs/architecture.md), holds the
gateway roles (command producer, event consumer, an md reader) and starts an
``EngineProcess``. ``close()`` gives up the gateway roles first (so the engine's drain
ends at once), then stops the engine and unlinks the rings.
"""
from __future__ import annotations

import time

import numpy as np

from ringex.core.engine.control import EngineProcess, EngineSpec
from ringex.core.engine.start import StartState
from ringex.protocol.session import session_number
from ringex import records
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import EventfdWait
from ringex.ops.supervisor import new_run_id, ring_names

EV = records.EventKind


class EngineRig:
    def __init__(self, gateways: int = 2, capacity: int = 4096, evt_capacity: int | None = None,
                 md_capacity: int = 1 << 14, queue=None, wait: str = "spin_then_sleep",
                 start: StartState | None = None, run: str | None = None,
                 run_engine: bool = True):
        self.run = run or new_run_id()
        names = ring_names(self.run, gateways)
        self.names = names
        self.cmd, self.evt = [], []
        self.md_ring = None
        self.engine = None
        self.cmd_wakeups = self.evt_wakeups = None
        self.queue = queue
        try:
            for g in names["gateways"]:
                self.cmd.append(SpscRing.create(g["cmd"], records.COMMAND, capacity,
                                                role="producer"))
                self.evt.append(SpscRing.create(g["evt"], records.EVENT,
                                                evt_capacity or capacity, role="consumer"))
            self.md_ring = BroadcastRing.create(names["md"], records.EVENT, md_capacity, role=None)
            self.md_reader = self.md_ring.reader("oldest")
            self.cmd_wakeups = self.evt_wakeups = None
            if wait == "eventfd":
                self.cmd_wakeups = [EventfdWait() for _ in range(gateways)]
                self.evt_wakeups = [EventfdWait() for _ in range(gateways)]
            self.spec = EngineSpec([g["cmd"] for g in names["gateways"]],
                                   [g["evt"] for g in names["gateways"]], names["md"],
                                   wait=wait, start=start or StartState(),
                                   cmd_wakeups=self.cmd_wakeups, evt_wakeups=self.evt_wakeups)
            if run_engine:
                self.engine = EngineProcess(self.spec, queue)
                self.engine.start(timeout=280)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def session(g: int, conn: int = 1) -> int:
        return session_number(g, conn)

    def send(self, g: int, *cmds: np.ndarray) -> None:
        recs = records.batch(*cmds)
        assert self.cmd[g].write(recs) == len(recs), "command ring full"
        if self.cmd_wakeups is not None:
            self.cmd_wakeups[g].signal(self.cmd[g].data_gate)

    def events(self, g: int, n: int, timeout: float = 10.0) -> np.ndarray:
        """Exactly ``n`` events from gateway g's ring (fails on timeout)."""
        got = self._collect(lambda m: without_clocks(self.evt[g].read(m)), n, timeout)
        assert len(got) == n, f"gateway {g}: {len(got)} of {n} events within {timeout} s"
        return got

    def events_until_quiet(self, g: int, quiet: float = 0.3, timeout: float = 10.0) -> np.ndarray:
        """Every event on gateway g's ring until none arrives for ``quiet`` seconds."""
        parts, deadline, last = [], time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            got = without_clocks(self.evt[g].read(1 << 16))
            if len(got):
                parts.append(got)
                last = time.monotonic()
            else:
                time.sleep(0.002)
        return np.concatenate(parts) if parts else records.events(0)

    def md(self, n: int, timeout: float = 10.0) -> np.ndarray:
        def read(m):
            recs, lost = self.md_reader.read(m)
            assert lost == 0
            return without_clocks(recs)
        got = self._collect(read, n, timeout)
        assert len(got) == n, f"md: {len(got)} of {n} records within {timeout} s"
        return got

    def md_until_quiet(self, quiet: float = 0.3) -> np.ndarray:
        parts, last = [], time.monotonic()
        while time.monotonic() - last < quiet:
            recs, lost = self.md_reader.read(1 << 16)
            assert lost == 0
            recs = without_clocks(recs)
            if len(recs):
                parts.append(recs)
                last = time.monotonic()
            else:
                time.sleep(0.002)
        return np.concatenate(parts) if parts else records.events(0)

    @staticmethod
    def _collect(read, n: int, timeout: float) -> np.ndarray:
        parts, have = [], 0
        deadline = time.monotonic() + timeout
        while have < n and time.monotonic() < deadline:
            got = read(n - have)
            if len(got):
                parts.append(got)
                have += len(got)
            else:
                time.sleep(0.001)
        return np.concatenate(parts) if parts else records.events(0)

    def release_gateways(self) -> None:
        """Give up the command-producer roles (as gateways do when they stop)."""
        for r in self.cmd:
            r.close()

    def close(self) -> None:
        for r in self.cmd + self.evt:
            r.close()
        if self.engine is not None:
            self.engine.stop(timeout=30)
        if self.md_ring is not None:
            self.md_ring.close()
        for w in (self.cmd_wakeups or []) + (self.evt_wakeups or []):
            w.close()

    def __enter__(self) -> "EngineRig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def without_clocks(recs: np.ndarray) -> np.ndarray:
    """The records but the CLOCKs that stamp each group (tests that count events)."""
    return recs[recs["kind"] != EV.CLOCK]


def book_from_levels(levels: np.ndarray, book: dict | None = None) -> dict:
    """Apply BOOK_LEVEL records to {(symbol, side, price): (qty, orders)} (qty 0 removes)."""
    book = {} if book is None else book
    for r in levels:
        if r["kind"] != EV.BOOK_LEVEL:
            continue
        key = (int(r["symbol"]), int(records.event_side(int(r["info"]))), int(r["price"]))
        if r["qty"] == 0:
            book.pop(key, None)
        else:
            book[key] = (int(r["qty"]), int(r["leaves"]))
    return book
