"""Periodic snapshots in the engine loop: taken between steps once the open journal segment
passes ``[state] snapshot_every_bytes``, written by a helper thread while the loop goes on,
the journal continuing in a new segment; restarting from one gives the engine's state."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from ringex import records
from ringex.config import Config, StateOptions
from ringex.core.engine import loop as L
from ringex.core.engine.front import Engine
from ringex.core.journal import J_BYTES, J_ENTRIES, J_FD, J_LAST, J_SIZE, Journal, read_journal
from ringex.core.order_service import OrderService
from ringex.core.snapshot import STATE_ENV, StateStore, state_options
from ringex.errors import ConfigError, StorageError
from ringex.records import CommandKind as K
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.spsc import SpscRing
from tests.core.test_snapshot_format import ACCOUNTS, Flow, state_bytes
from tests.util.exchange import rule_config

ENTRY = 20 + 64 * 64                 # bytes of a journal entry of 64 commands


class Rig:
    """An Engine in this process over its own rings, journaling into ``root``; the test
    writes session-0 commands (their events go to persistence only, never to a ring)."""

    def __init__(self, root, config, tag: str):
        name = f"ringex-{os.getpid()}-{tag}"
        self.cmd = SpscRing.create(f"{name}-g0-cmd", records.COMMAND, 4096)
        self.evt = SpscRing.create(f"{name}-g0-evt", records.EVENT, 4096)
        self.md = BroadcastRing.create(f"{name}-md", records.EVENT, 1 << 14)
        self.eng = Engine(config, [self.cmd], [self.evt], self.md, None, wait="busy_spin")
        self.store = StateStore(root, config)
        self.rec = self.store.recover(self.eng.svc)
        self.eng.use_journal(self.store.open_journal(self.rec.last_batch + 1))
        self.eng.warm_up()
        self.eng.snapshot_periodically(self.store)
        self.eng.snapshots.held = lambda: None       # no database: nothing pruned

    def feed(self, cmds: np.ndarray) -> None:
        """One command group through the loop (one journal entry), then housekeeping."""
        assert self.cmd.write(cmds) == len(cmds)
        while len(self.cmd) or self.eng.st[L.S_GROUP] \
                or self.eng.st[L.S_BATCH_I] < self.eng.st[L.S_BATCH_N]:
            self.eng.step(max_idle=4)
        self.eng.snapshot_if_due()

    @property
    def journal(self) -> np.ndarray:
        return self.eng.arrays.journal

    def close(self) -> None:
        self.store.close()
        self.eng.close()


def funding() -> np.ndarray:
    c = records.commands(2 * len(ACCOUNTS))
    c["kind"], c["account"] = K.DEPOSIT, np.repeat(list(ACCOUNTS), 2)
    c["symbol"], c["qty"] = np.tile([0, 1], len(ACCOUNTS)), 10**14
    return c


@pytest.fixture
def every_8_entries(monkeypatch):
    monkeypatch.setenv(STATE_ENV, f"snapshot_every_bytes={8 * ENTRY - 100}")


def test_snapshot_is_taken_when_the_journal_passes_the_threshold(tmp_path, every_8_entries):
    rig = Rig(tmp_path, rule_config(), "ps")
    try:
        flow = Flow(11)
        rig.feed(funding())
        for i in range(7):
            rig.feed(flow.batch())
            assert rig.store.snapshots() == [] and rig.eng.snapshots.taken == 0, i
        size_before = int(rig.journal[J_SIZE])
        rig.feed(flow.batch())                       # the 8th entry of 64: past it
        batch = int(rig.journal[J_LAST])
        assert rig.eng.snapshots.taken == 1 and size_before < 8 * ENTRY - 100
        assert int(rig.journal[J_SIZE]) == 0         # a new segment, from batch + 1 on
        rig.store.wait()
        assert [b for b, _ in rig.store.snapshots()] == [batch]
        assert [p.name for _, p in rig.store.segments()] == \
            [f"seg-{1:020d}.rxj", f"seg-{batch + 1:020d}.rxj"]
        report = rig.eng.snapshots.reports[-1]
        assert report["batch"] == batch and report["bytes"] > 0 and "error" not in report
        for _ in range(3):                           # the loop journals on, numbered on
            rig.feed(flow.batch())
        entries, _ = read_journal(rig.store.segments()[-1][1])
        assert [b for b, _ in entries] == [batch + 1, batch + 2, batch + 3]
        assert int(rig.journal[J_ENTRIES]) == batch + 3      # counters carry over
        assert int(rig.journal[J_BYTES]) > 10 * ENTRY
        # a restart from that snapshot plus the new segment: the engine's very state
        restored = OrderService(rig.eng.svc.config)
        rec = StateStore(tmp_path, rig.eng.svc.config).recover(restored)
        assert (rec.snapshot_batch, rec.replayed_batches, rec.problems) == (batch, 3, [])
        assert state_bytes(restored) == state_bytes(rig.eng.svc)
    finally:
        rig.close()


def test_snapshots_go_on_every_interval_and_the_stop_snapshot_is_not_repeated(
        tmp_path, every_8_entries):
    rig = Rig(tmp_path, rule_config(), "pt")
    try:
        flow = Flow(12)
        rig.feed(funding())
        taken = []
        for _ in range(40):
            rig.feed(flow.batch())
            if rig.eng.snapshots.taken > len(taken):
                taken.append(int(rig.journal[J_LAST]))
            rig.store.wait()        # written before the next is due (else it waits its turn)
        rig.store.wait()
        assert len(taken) == 5 and np.all(np.diff(taken) == 8), taken
        assert [b for b, _ in rig.store.snapshots()] == taken
        # a stop right after a periodic snapshot writes nothing new
        rig.feed(flow.batch())
        while rig.eng.snapshots.taken == len(taken):
            rig.feed(flow.batch())
        last = int(rig.journal[J_LAST])
        path = rig.store.save_snapshot(rig.eng.svc, last)
        assert path.name == f"snap-{last:020d}.npz"
        assert len(rig.store.segments()) == len(taken) + 2
    finally:
        rig.close()


def test_the_snapshot_thread_prunes_what_the_database_holds(tmp_path, every_8_entries):
    rig = Rig(tmp_path, rule_config(), "pp")
    try:
        flow = Flow(13)
        rig.feed(funding())
        held = {"batch": 0}
        rig.eng.snapshots.held = lambda: held["batch"]
        while rig.eng.snapshots.taken < 4:
            held["batch"] = int(rig.journal[J_LAST])        # the writer keeps up
            rig.feed(flow.batch())
            rig.store.wait()
        rig.store.wait()
        snaps = [b for b, _ in rig.store.snapshots()]
        # the 4th snapshot pruned with the database at the batch before it: the 3rd
        # snapshot and the 2nd (its fallback) stay, with the journal from the 2nd on
        assert len(snaps) == 3 and rig.eng.snapshots.reports[-1]["pruned"], snaps
        assert rig.store.segments()[0][0] == snaps[0] + 1
        restored = OrderService(rig.eng.svc.config)
        rec = StateStore(tmp_path, rig.eng.svc.config).recover(restored, upto=snaps[0])
        assert rec.snapshot_batch == snaps[0] and not rec.problems
        assert state_bytes(restored) == state_bytes(rig.eng.svc)
    finally:
        rig.close()


def test_state_options_come_from_the_config_and_the_environment():
    config = Config.from_dict({**_config_dict(), "state": {"snapshot_every_bytes": 1 << 20}})
    assert config.state == StateOptions(snapshot_every_bytes=1 << 20, keep_snapshots=2)
    assert state_options(config, "") == config.state
    assert state_options(config, "keep_snapshots=5") == StateOptions(1 << 20, 5)
    assert Config.default().state.snapshot_every_bytes == StateOptions().snapshot_every_bytes
    with pytest.raises(ConfigError, match="keep_snapshots must be at least 2"):
        Config.from_dict({**_config_dict(), "state": {"keep_snapshots": 1}})
    with pytest.raises(ConfigError, match="unknown field"):
        Config.from_dict({**_config_dict(), "state": {"snapshot_every": 5}})
    with pytest.raises(StorageError, match="bad item"):
        state_options(config, "keep_snapshots=many")
    # not part of what a snapshot's fingerprint covers
    assert repr(config) == repr(Config.from_dict(_config_dict()))


def _config_dict() -> dict:
    return {"assets": {"USD": {"scale": 6}, "X": {"scale": 8}},
            "symbols": {"X-USD": {"base": "X", "quote": "USD", "tick": "1", "lot": "0.01",
                                  "min_price": "1", "max_price": "1000"}}}


def test_the_old_segment_is_closed_by_the_snapshot_thread_without_fsync(tmp_path, every_8_entries,
                                                          monkeypatch):
    closed_by = []
    close = Journal.close

    def recording_close(journal, sync=True):
        if journal.state[J_FD] >= 0:
            closed_by.append((journal.path.name, threading.current_thread().name, sync))
        close(journal, sync)

    monkeypatch.setattr(Journal, "close", recording_close)
    rig = Rig(tmp_path, rule_config(), "pc")
    try:
        flow = Flow(14)
        rig.feed(funding())
        while rig.eng.snapshots.taken == 0:
            rig.feed(flow.batch())
        rig.store.wait()
        # not in the loop's thread, and without an fsync (the snapshot covers the segment;
        # an fsync of a full one from any thread stalls the loop)
        assert closed_by == [(f"seg-{1:020d}.rxj", "ringex-snapshot", False)]
        assert rig.eng.snapshots.reports[-1]["close_s"] >= 0
    finally:
        rig.close()
