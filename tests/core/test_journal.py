"""Journal, snapshots and recovery: torn tails, corruption, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from ringex.core.journal import Journal, read_journal
from ringex.core.order_service import OrderService
from ringex.core.snapshot import StateStore
from ringex.errors import StorageError
from ringex import records
from tests.util.exchange import rule_config


def command_stream(seed: int, n_batches: int, size: int = 64) -> list[np.ndarray]:
    """Random new orders around a mid price and cancels of earlier client ids."""
    rng = np.random.default_rng(seed)
    out, coid = [], 1
    for _ in range(n_batches):
        c = records.commands(size)
        c["kind"] = np.where(rng.random(size) < 0.25, records.CommandKind.CANCEL,
                             records.CommandKind.NEW)
        c["symbol"] = rng.integers(0, 2, size)
        c["account"] = rng.integers(1, 6, size)
        c["side"] = rng.integers(0, 2, size)
        c["price"] = 500 + rng.integers(-5, 6, size)
        c["qty"] = rng.integers(1, 20, size)
        c["tif"] = np.where(rng.random(size) < 0.2, 1, 0)
        ids = np.arange(coid, coid + size)
        c["client_order_id"] = np.where(c["kind"] == records.CommandKind.NEW, ids,
                                        rng.integers(1, coid + size, size))
        coid += size
        out.append(c)
    return out


def funded(config) -> OrderService:
    svc = OrderService(config, wallets=True)
    for acct in range(1, 6):
        svc.deposit(acct, "USD", 10**14)
        svc.deposit(acct, "X", 10**14)
    return svc


def state_bytes(svc) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in svc.state_arrays().items()}


def test_should_read_back_every_appended_batch(tmp_path):
    batches = command_stream(1, 20)
    with Journal.open(tmp_path / "j.rxj") as j:
        for i, b in enumerate(batches, 1):
            assert j.append(b) == i
    entries, scan = read_journal(tmp_path / "j.rxj")
    assert [n for n, _ in entries] == list(range(1, 21)) and scan.torn_bytes == 0
    assert all(np.array_equal(a, b) for (_, a), b in zip(entries, batches))


@pytest.mark.parametrize("cut", [1, 7, 20, 64, 100, 1000])
def test_should_cut_a_torn_tail_and_keep_every_whole_entry(tmp_path, cut):
    path = tmp_path / "j.rxj"
    with Journal.open(path) as j:
        for b in command_stream(2, 5):
            j.append(b)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - cut)
    entries, scan = read_journal(path)
    assert len(entries) == 4 and scan.torn_bytes > 0 and scan.reason
    with Journal.open(path) as j:                      # opening cuts the tail
        assert j.scan.torn_bytes == scan.torn_bytes and j.last_batch == 4
        assert j.append(command_stream(3, 1)[0]) == 5
    entries, scan = read_journal(path)
    assert [n for n, _ in entries] == [1, 2, 3, 4, 5] and scan.torn_bytes == 0


def test_should_detect_a_corrupted_payload_by_checksum(tmp_path):
    path = tmp_path / "j.rxj"
    with Journal.open(path) as j:
        for b in command_stream(4, 3):
            j.append(b)
    raw = bytearray(path.read_bytes())
    entry = 20 + 64 * 64
    raw[entry + 20 + 100] ^= 0xFF                      # a byte inside batch 2's payload
    path.write_bytes(bytes(raw))
    entries, scan = read_journal(path)
    assert [n for n, _ in entries] == [1] and "checksum" in scan.reason


def test_should_refuse_an_unknown_fsync_policy(tmp_path):
    with pytest.raises(StorageError):
        Journal.open(tmp_path / "j.rxj", fsync="sometimes")


def test_should_number_a_new_segment_from_next_batch_and_fsync_each_entry(tmp_path):
    with Journal.open(tmp_path / "j.rxj", fsync="batch", next_batch=41) as j:
        assert j.append(command_stream(5, 1)[0]) == 41
        assert j.append(command_stream(5, 1)[0][:3]) == 42
    entries, _ = read_journal(tmp_path / "j.rxj")
    assert [(n, len(c)) for n, c in entries] == [(41, 64), (42, 3)]


def run_with_store(root, batches, snapshot_every=None):
    config = rule_config()
    svc = funded(config)
    store = StateStore(root, config)
    store.open_journal(1)
    for i, b in enumerate(batches, 1):
        assert store.journal.append(b) == i
        svc.submit(b)
        if snapshot_every and i % snapshot_every == 0:
            store.save_snapshot(svc, i)
    store.close()
    return svc


def recovered(root):
    config = rule_config()
    svc = funded(config)
    store = StateStore(root, config)
    rec = store.recover(svc)
    store.close()
    return svc, rec


def test_should_recover_exactly_the_uninterrupted_state_from_journal_alone(tmp_path):
    # deposits happen before the journal here, so both sides start from funded()
    live = run_with_store(tmp_path, command_stream(6, 30))
    svc, rec = recovered(tmp_path)
    assert rec.replayed_batches == 30 and rec.snapshot_batch == 0 and not rec.problems
    assert state_bytes(svc) == state_bytes(live)


def test_should_recover_from_snapshot_plus_journal_after_it(tmp_path):
    live = run_with_store(tmp_path, command_stream(7, 35), snapshot_every=10)
    svc, rec = recovered(tmp_path)
    assert rec.snapshot_batch == 30 and rec.replayed_batches == 5 and not rec.problems
    assert state_bytes(svc) == state_bytes(live)


def test_should_fall_back_to_the_older_snapshot_when_the_newest_is_corrupt(tmp_path):
    live = run_with_store(tmp_path, command_stream(8, 35), snapshot_every=10)
    newest = sorted((tmp_path / "snapshots").glob("snap-*.npz"))[-1]
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    newest.write_bytes(bytes(raw))
    svc, rec = recovered(tmp_path)
    assert rec.snapshot_batch == 20 and rec.replayed_batches == 15
    assert any("snapshot skipped" in p for p in rec.problems)
    assert state_bytes(svc) == state_bytes(live)


def test_should_recover_up_to_a_torn_journal_tail(tmp_path):
    batches = command_stream(9, 12)
    run_with_store(tmp_path, batches)
    seg = sorted((tmp_path / "journal").glob("seg-*.rxj"))[-1]
    with open(seg, "r+b") as f:
        f.truncate(seg.stat().st_size - 10)
    svc, rec = recovered(tmp_path)
    assert rec.last_batch == 11 and any("cut" in p for p in rec.problems)
    expect = funded(rule_config())
    for b in batches[:11]:
        expect.submit(b)
    assert state_bytes(svc) == state_bytes(expect)


def test_should_replay_a_journal_into_byte_identical_event_streams(tmp_path):
    run_with_store(tmp_path, command_stream(10, 25))
    streams = []
    for _ in range(2):
        config = rule_config()
        store = StateStore(tmp_path, config)
        rec = store.recover(funded(config), keep_events=True)
        streams.append(b"".join(e.tobytes() for _, _, e in rec.entries))
    assert streams[0] == streams[1] and len(streams[0]) > 25 * 64


def test_should_use_only_snapshots_the_database_already_holds(tmp_path):
    live = run_with_store(tmp_path, command_stream(11, 35), snapshot_every=10)
    config = rule_config()
    svc = funded(config)
    rec = StateStore(tmp_path, config).recover(svc, keep_events=True, upto=25)
    assert rec.snapshot_batch == 20 and [b for b, _, _ in rec.entries] == list(range(21, 36))
    assert state_bytes(svc) == state_bytes(live)
