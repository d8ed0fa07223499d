"""Pruning keeps what recovery needs: once the database holds batch ``held``, the newest
``keep_snapshots`` recovery points at or below it, every snapshot above it, and the journal
from the oldest point kept; whatever the database holds later (it only grows), recovery
from what is left gives the uninterrupted state and the events the database lacks."""
from __future__ import annotations

import numpy as np
import pytest

from ringex.core.snapshot import STATE_ENV, StateStore
from tests.core.test_snapshot_format import Flow, funded, state_bytes
from tests.util.exchange import rule_config

EVERY, BATCHES = 10, 60


def live_run(root):
    """60 batches journaled, a snapshot every 10 (10 .. 60); the live service and the
    events of every batch."""
    svc, flow = funded(), Flow(21)
    store = StateStore(root, svc.config)
    store.open_journal(1)
    events = {}
    for i in range(1, BATCHES + 1):
        cmds = flow.batch()
        assert store.journal.append(cmds) == i
        events[i] = svc.submit(cmds)
        flow.observe(events[i])
        if i % EVERY == 0:
            store.save_snapshot(svc, i)
    store.close()
    return svc, events


def files(store) -> tuple[list[int], list[int]]:
    return [b for b, _ in store.snapshots()], [b for b, _ in store.segments()]


def test_prune_keeps_the_two_newest_points_the_database_holds_and_everything_after(tmp_path):
    live_run(tmp_path)
    store = StateStore(tmp_path, rule_config())
    assert files(store) == ([10, 20, 30, 40, 50, 60], [1, 11, 21, 31, 41, 51, 61])
    gone = store.prune_before(35)
    # points held: 0 (the journal's start), 10, 20, 30 -> keep 20 and 30
    assert files(store) == ([20, 30, 40, 50, 60], [21, 31, 41, 51, 61])
    assert sorted(p.name for p in gone) == ["seg-00000000000000000001.rxj",
                                            "seg-00000000000000000011.rxj",
                                            "snap-00000000000000000010.npz"]
    store.prune_before(60)
    assert files(store) == ([50, 60], [51, 61])
    store.prune_before(60)                           # nothing more to give
    assert files(store) == ([50, 60], [51, 61])


def test_nothing_is_pruned_while_the_database_holds_a_single_point(tmp_path):
    live_run(tmp_path)
    store = StateStore(tmp_path, rule_config())
    assert store.prune_before(5) == [] and store.prune_before(15) == []
    assert files(store)[1][0] == 1                   # the journal from batch 1: a fallback


@pytest.mark.parametrize("pruned_at", [0, 25, 40, 60])
def test_recovery_from_what_pruning_left_gives_the_uninterrupted_state(tmp_path, pruned_at):
    live, events = live_run(tmp_path)
    StateStore(tmp_path, rule_config()).prune_before(pruned_at)
    for held in range(pruned_at, BATCHES + 1, 5):    # whatever the database holds later
        svc = funded()                               # deposits came before the journal
        rec = StateStore(tmp_path, rule_config()).recover(svc, keep_events=True, upto=held,
                                                          keep_after=held)
        assert not rec.problems and rec.last_batch == BATCHES, (held, rec.problems)
        assert rec.snapshot_batch == held - held % EVERY or rec.snapshot_batch == 0
        assert [b for b, _, _ in rec.entries] == list(range(held + 1, BATCHES + 1))
        for b, _, ev in rec.entries:                 # what is resent to the writer
            assert ev.tobytes() == events[b].tobytes(), (held, b)
        assert state_bytes(svc) == state_bytes(live), held


def test_a_corrupt_snapshot_is_not_counted_as_a_recovery_point(tmp_path):
    live, _ = live_run(tmp_path)
    store = StateStore(tmp_path, rule_config())
    path = dict(store.snapshots())[30]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    svc = funded()
    rec = store.recover(svc, upto=35)
    assert rec.snapshot_batch == 20 and store.bad == {30}
    store.prune_before(35)
    # 20 is what recovery used; 10 is its fallback, with the journal from 11 on
    assert files(store) == ([10, 20, 30, 40, 50, 60], [11, 21, 31, 41, 51, 61])
    assert state_bytes(svc) == state_bytes(live)


def test_keep_snapshots_sets_how_many_points_are_kept(tmp_path, monkeypatch):
    live_run(tmp_path)
    monkeypatch.setenv(STATE_ENV, "keep_snapshots=4")
    store = StateStore(tmp_path, rule_config())
    assert store.options.keep_snapshots == 4
    store.prune_before(60)
    assert files(store) == ([30, 40, 50, 60], [31, 41, 51, 61])


def test_snapshot_files_stay_small(tmp_path):
    live, _ = live_run(tmp_path)
    full = sum(a.nbytes for a in live.state_arrays().values())
    sizes = [p.stat().st_size for _, p in StateStore(tmp_path, rule_config()).snapshots()]
    assert max(sizes) < full / 5 and np.all(np.array(sizes) > 0), (sizes, full)
