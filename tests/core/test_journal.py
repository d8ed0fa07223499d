"""Journal, snapshots and recovery: torn tails, corruption, determinism, RXJ2 entries."""
from __future__ import annotations

import os

import numpy as np
import pytest

from ringex.core import checksum
from ringex.core.journal import (HEADER, J_FD, J_FSYNC_NS, MAGIC, MAGIC_RXJ2, Journal,
                                 fnv_check, read_journal)
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


@pytest.mark.parametrize("fsync", ["none", "batch"])
def test_should_count_time_in_fsync_only_when_it_fsyncs(tmp_path, fsync):
    with Journal.open(tmp_path / "j.rxj", fsync=fsync) as j:
        for b in command_stream(2, 3):
            j.append(b)
        spent = int(j.state[J_FSYNC_NS])
    assert (spent > 0) == (fsync == "batch")


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


def test_should_refuse_a_segment_of_a_newer_format_and_cut_nothing(tmp_path):
    """A segment beginning "RXJ4" is a later ringex's, never a torn write of this one:
    reading or opening it refuses it and leaves the file as it is."""
    path = tmp_path / "j.rxj"
    with open(path, "wb") as f:
        f.write(b"RXJ4" + bytes(16) + bytes(records.COMMAND.itemsize))
    size = path.stat().st_size
    with pytest.raises(StorageError, match="format RXJ4, written by a newer ringex"):
        read_journal(path)
    with pytest.raises(StorageError, match="nothing was cut"):
        Journal.open(path)
    assert path.stat().st_size == size


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


def entry_offsets(raw: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(raw):
        out.append(pos)
        pos += HEADER.size + 64 * HEADER.unpack_from(raw, pos)[2]
    return out


def test_should_detect_any_single_bit_flip_in_the_last_entry(tmp_path):
    # the last entry: no later entry's batch number can give a corrupt one away
    path = tmp_path / "j.rxj"
    with Journal.open(path) as j:
        for b in command_stream(12, 3):
            j.append(b)
    clean = path.read_bytes()
    last = entry_offsets(clean)[-1]
    rng = np.random.default_rng(0)
    payload_bits = rng.integers(HEADER.size * 8, (len(clean) - last) * 8, 300)
    bits = [*range(HEADER.size * 8), *payload_bits, (len(clean) - last) * 8 - 1]
    for bit in bits:
        raw = bytearray(clean)
        raw[last + bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(raw))
        entries, scan = read_journal(path)
        assert [n for n, _ in entries] == [1, 2], bit
        assert scan.good_bytes == last and scan.reason, bit


@pytest.mark.parametrize("hardware", [True, False])
def test_should_compute_standard_crc32c_on_either_path(hardware):
    if hardware and not checksum.HARDWARE:
        pytest.skip("the JIT target has no SSE4.2")
    assert checksum.crc32c(b"123456789", hardware) == 0xE3069283
    assert checksum.crc32c(bytes(32), hardware) == 0x8A9136AA          # RFC 3720 B.4
    assert checksum.crc32c(b"", hardware) == 0


def test_should_give_the_same_crc32c_on_both_paths_for_any_length_and_alignment():
    if not checksum.HARDWARE:
        pytest.skip("the JIT target has no SSE4.2")
    data = np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    block = 3 * 8 * checksum.BLOCK                      # one round of three streams
    for n in (1, 7, 8, 9, block - 1, block, block + 1, 2 * block + 13, 19990):
        for start in (0, 1, 5):
            piece = data[start:start + n]
            assert checksum.crc32c(piece, True) == checksum.crc32c(piece, False), (n, start)


def write_rxj2(path, batches, first: int = 1) -> None:
    """Entries as the RXJ2 code wrote them: FNV check of the payload only."""
    with open(path, "ab") as f:
        for i, b in enumerate(batches, first):
            words = np.ascontiguousarray(b, dtype=records.COMMAND).view(np.uint64)
            f.write(HEADER.pack(MAGIC_RXJ2, i, len(b), int(fnv_check(words))) + b.tobytes())


def test_should_read_rxj2_entries_and_continue_them_with_rxj3(tmp_path):
    path, batches = tmp_path / "j.rxj", command_stream(13, 20)
    write_rxj2(path, batches[:10])
    entries, scan = read_journal(path)
    assert [n for n, _ in entries] == list(range(1, 11)) and scan.torn_bytes == 0
    with Journal.open(path) as j:                       # an upgraded engine continues
        assert j.last_batch == 10
        for b in batches[10:]:
            j.append(b)
    raw = path.read_bytes()
    magics = [HEADER.unpack_from(raw, pos)[0] for pos in entry_offsets(raw)]
    assert magics == [MAGIC_RXJ2] * 10 + [MAGIC] * 10
    entries, scan = read_journal(path)
    assert [n for n, _ in entries] == list(range(1, 21)) and scan.torn_bytes == 0
    assert all(np.array_equal(a, b) for (_, a), b in zip(entries, batches))


def test_should_still_detect_a_corrupt_rxj2_entry(tmp_path):
    path = tmp_path / "j.rxj"
    write_rxj2(path, command_stream(14, 3))
    raw = bytearray(path.read_bytes())
    raw[entry_offsets(bytes(raw))[1] + HEADER.size + 77] ^= 0x10
    path.write_bytes(bytes(raw))
    entries, scan = read_journal(path)
    assert [n for n, _ in entries] == [1] and "checksum" in scan.reason


def test_should_keep_the_file_at_its_last_entry_and_free_the_reservation(tmp_path):
    path, batches = tmp_path / "j.rxj", command_stream(15, 5)
    size = sum(HEADER.size + 64 * len(b) for b in batches)
    j = Journal.open(path)
    for b in batches:
        j.append(b)
    assert path.stat().st_size == size                  # what a crash would leave
    os.close(int(j.state[J_FD]))                        # "crash": no close()
    with Journal.open(path) as j2:                      # opening frees what was reserved
        assert j2.scan.torn_bytes == 0 and j2.last_batch == 5
        assert path.stat().st_blocks * 512 < size + (1 << 20)
        j2.append(batches[0])
    assert path.stat().st_blocks * 512 < path.stat().st_size + (1 << 20)


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


def test_should_recover_from_an_rxj2_segment_continued_by_rxj3(tmp_path):
    batches = command_stream(16, 30)
    live = run_with_store(tmp_path / "live", batches)
    root = tmp_path / "old"
    run_with_store(root, [])                            # the folders, no entries
    seg = sorted((root / "journal").glob("seg-*.rxj"))[-1]
    write_rxj2(seg, batches[:12])                       # written by the old engine
    config = rule_config()
    store = StateStore(root, config)
    assert store.recover(funded(config)).last_batch == 12
    journal = store.open_journal(13)                    # the upgraded engine goes on
    for i, b in enumerate(batches[12:], 13):
        assert journal.append(b) == i
    store.close()
    svc, rec = recovered(root)
    assert rec.replayed_batches == 30 and not rec.problems
    assert state_bytes(svc) == state_bytes(live)


def test_should_use_only_snapshots_the_database_already_holds(tmp_path):
    live = run_with_store(tmp_path, command_stream(11, 35), snapshot_every=10)
    config = rule_config()
    svc = funded(config)
    rec = StateStore(tmp_path, config).recover(svc, keep_events=True, upto=25)
    assert rec.snapshot_batch == 20 and [b for b, _, _ in rec.entries] == list(range(21, 36))
    assert state_bytes(svc) == state_bytes(live)
