"""A recovery that replays for a while says how far it is (every PROGRESS_EVERY_S)."""
from __future__ import annotations

import logging

from ringex.core import snapshot
from ringex.core.journal import Journal
from ringex.core.order_service import OrderService
from ringex.core.snapshot import StateStore
from tests.core.test_journal import command_stream
from tests.util.exchange import rule_config


def test_a_long_replay_logs_its_progress_segment_by_segment(tmp_path, caplog, monkeypatch):
    config = rule_config()
    store = StateStore(tmp_path / "state", config)
    batches = command_stream(3, 6)
    for first in (1, 4):                      # two segments of three entries
        with Journal.open(store.journal_dir / f"seg-{first:020d}.rxj",
                          next_batch=first) as j:
            for b in batches[first - 1:first + 2]:
                j.append(b)
    monkeypatch.setattr(snapshot, "PROGRESS_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="ringex.core.snapshot"):
        rec = store.recover(OrderService(config))
    assert rec.last_batch == 6
    lines = [r.getMessage() for r in caplog.records if "recovery: replaying" in r.message]
    assert [line.split(" (")[0] for line in lines] == [
        "recovery: replaying journal segment 1/2", "recovery: replaying journal segment 2/2"]
    assert "3 entries replayed" in lines[1]
