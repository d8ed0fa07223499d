"""The journal hook: a Python journal sees every processed group's commands, in order,
before any result of the group is in an event ring or on the market-data ring."""
from __future__ import annotations

import os

import numpy as np
import pytest

from ringex.config import Config
from ringex.core.engine_front import Engine
from ringex.ring import layout
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.shm import HEAD
from ringex.ring.spsc import SpscRing


class SpyJournal:
    """Records entries, and how many results had left the process at each append."""

    def __init__(self, evt: SpscRing, md: BroadcastRing):
        self.evt, self.md = evt, md
        self.entries: list[tuple[int, np.ndarray]] = []
        self.out_at_append: list[tuple[int, int, int]] = []

    def append(self, batch: int, cmds: np.ndarray) -> None:
        before = sum(len(c) for _, c in self.entries)
        self.out_at_append.append((before, int(self.evt.hdr[HEAD]), self.md.head))
        self.entries.append((batch, cmds.copy()))


@pytest.mark.timeout(300)
def test_python_journal_gets_each_group_before_its_results_leave():
    tag = f"ringex-{os.getpid()}-jh"
    cmd = SpscRing.create(f"{tag}-g0-cmd", layout.COMMAND, 1024)
    evt = SpscRing.create(f"{tag}-g0-evt", layout.EVENT, 1024)
    md = BroadcastRing.create(f"{tag}-md", layout.EVENT, 1024)
    try:
        spy = SpyJournal(evt, md)
        eng = Engine(Config.default(), [cmd], [evt], md, None, wait="busy_spin",
                     journal=spy, first_journal_batch=7)
        eng.warm_up()
        eng.svc.deposit(1, "USD", 10**12)
        # resting buys at distinct prices: one ACK and one BOOK_LEVEL per command
        sent = layout.batch(*[layout.new_order(0, 1, 0, 1_000_000 + i, 1, session=1, ref=i + 1)
                              for i in range(12)])
        for part in (sent[:3], sent[3:4], sent[4:]):
            cmd.write(part)
            for _ in range(20):
                eng.step(max_idle=8)
        assert evt.hdr[HEAD] == len(sent) and md.head == len(sent)
        batches = [b for b, _ in spy.entries]
        assert batches == list(range(7, 7 + len(batches))) and len(batches) >= 3
        journaled = np.concatenate([c for _, c in spy.entries])
        assert journaled.tobytes() == sent.tobytes()          # every command, in order
        for before, evt_out, md_out in spy.out_at_append:     # nothing of the group was out
            assert evt_out == before and md_out == before
    finally:
        for r in (cmd, evt, md):
            r.close()
