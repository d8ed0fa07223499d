"""The journal stage: the loop writes every processed group's commands to the journal, in
order, numbered on from the journal's next batch, and routes nothing it has not written."""
from __future__ import annotations

import os

import numpy as np
import pytest

from ringex.config import Config
from ringex.core.engine.front import Engine
from ringex.core.journal import Journal, read_journal
from ringex import records
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.shm import HEAD
from ringex.ring.spsc import SpscRing


@pytest.mark.timeout(300)
def test_the_loop_journals_each_group_before_its_results_leave(tmp_path):
    tag = f"ringex-{os.getpid()}-jh"
    cmd = SpscRing.create(f"{tag}-g0-cmd", records.COMMAND, 1024)
    evt = SpscRing.create(f"{tag}-g0-evt", records.EVENT, 1024)
    md = BroadcastRing.create(f"{tag}-md", records.EVENT, 1024)
    path = tmp_path / "seg.rxj"
    journal = Journal.open(path, next_batch=7)
    try:
        eng = Engine(Config.default(), [cmd], [evt], md, None, wait="busy_spin")
        eng.use_journal(journal)
        eng.warm_up()
        eng.svc.deposit(1, "USD", 10**12)
        # resting buys at distinct prices: one ACK and one BOOK_LEVEL per command
        sent = records.batch(*[records.new_order(0, 1, 0, 1_000_000 + i, 1, session=1, ref=i + 1)
                              for i in range(12)])
        done = 0
        for part in (sent[:3], sent[3:4], sent[4:]):
            cmd.write(part)
            for _ in range(20):
                eng.step(max_idle=8)
            done += len(part)
            entries, _ = read_journal(path)
            # every result that left the process belongs to a journaled command (each
            # journaled group also sent one CLOCK on either ring)
            assert sum(len(c) for _, c in entries) == done
            assert evt.hdr[HEAD] == md.head == done + len(entries)
        entries, scan = read_journal(path)
        batches = [b for b, _ in entries]
        assert batches == list(range(7, 7 + len(batches))) and len(batches) >= 3
        assert journal.last_batch == batches[-1] and scan.torn_bytes == 0
        journaled = np.concatenate([c for _, c in entries])
        assert journaled.tobytes() == sent.tobytes()          # every command, in order
    finally:
        journal.close()
        for r in (cmd, evt, md):
            r.close()
