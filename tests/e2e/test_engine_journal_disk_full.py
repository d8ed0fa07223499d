"""The loop on a full journal disk: the group it could not journal is held (nothing of it
is routed or published, nothing new is polled), the journal is cut back to its last whole
entry, and the same group goes on once space is back. Any other journal failure stops."""
from __future__ import annotations

import os

import pytest

from ringex.config import Config
from ringex.core.engine import loop as L
from ringex.core.engine.front import Engine
from ringex.core.journal import J_FD, J_SIZE, Journal, read_journal
from ringex.errors import StorageError
from ringex import records
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.shm import HEAD
from ringex.ring.spsc import SpscRing
from tests.util.tmpfs import fill, small_tmpfs


def _rings(tag: str):
    return (SpscRing.create(f"{tag}-g0-cmd", records.COMMAND, 1024),
            SpscRing.create(f"{tag}-g0-evt", records.EVENT, 1024),
            BroadcastRing.create(f"{tag}-md", records.EVENT, 1024))


def _step_until(eng: Engine, pred, steps: int = 10_000) -> None:
    for _ in range(steps):
        if pred():
            return
        eng.step(max_idle=8)
    raise AssertionError("the engine never got there")


class Routed:
    """Records routed (event ring) and published (md ring) so far, the groups' CLOCKs
    aside; reading drains the rings."""

    def __init__(self, evt: SpscRing, md: BroadcastRing):
        self._evt, self._md = evt, md.reader()
        self._events = self._published = 0

    def events(self) -> int:
        recs = self._evt.read(1 << 16)
        self._events += int((recs["kind"] != records.EventKind.CLOCK).sum())
        return self._events

    def published(self) -> int:
        recs, lost = self._md.read(1 << 16)
        assert lost == 0
        self._published += int((recs["kind"] != records.EventKind.CLOCK).sum())
        return self._published


def _orders(first: int, n: int):
    return records.batch(*[records.new_order(0, 1, 0, 1_000_000 + i, 1, session=1, ref=i + 1)
                           for i in range(first, first + n)])


@pytest.mark.timeout(120)
def test_full_journal_disk_holds_the_group_until_space_is_back(tmp_path):
    cmd, evt, md = _rings(f"ringex-{os.getpid()}-df")
    mnt = tmp_path / "mnt"
    try:
        with small_tmpfs(mnt, 1 << 20):
            path = mnt / "seg.rxj"
            journal = Journal.open(path)
            eng = Engine(Config.default(), [cmd], [evt], md, None, wait="busy_spin")
            eng.use_journal(journal)
            eng.warm_up()
            eng.svc.deposit(1, "USD", 10**12)
            seen = Routed(evt, md)
            cmd.write(_orders(0, 4))
            for _ in range(10):
                eng.step(max_idle=8)
            routed = seen.events()
            assert routed == 4 and not eng.disk_full.active
            filler = fill(mnt, leave=0)
            sent = 4
            while not eng.disk_full.active:     # the journal's last page still has room
                assert sent < 500, "the journal never filled"
                cmd.write(_orders(sent, 1))
                sent += 1
                _step_until(eng, lambda: len(cmd) == 0 and eng.st[L.S_GROUP] == 0)
            routed = seen.events()
            assert routed == sent - 1 and seen.published() == routed  # all but the held one
            held = eng.st[L.S_ACC_NC]
            cmd.write(_orders(sent, 3))
            sent += 3
            for _ in range(50):                 # retries fail: nothing moves
                assert eng.step(max_idle=8) == L.RET_JOURNAL_FAILED
            assert seen.events() == routed and seen.published() == routed  # nothing left
            assert len(cmd) == 3 and eng.st[L.S_ACC_NC] == held           # nothing polled
            assert os.path.getsize(path) == journal.state[J_SIZE]         # cut back
            with pytest.raises(RuntimeError):
                eng.hand_off()
            eng.snapshot_if_due()                           # a no-op while paused

            filler.unlink()
            _step_until(eng, lambda: not eng.disk_full.active and len(cmd) == 0
                        and eng.st[L.S_GROUP] == 0)
            assert seen.events() == sent and eng.disk_full.pauses == 1
            entries, scan = read_journal(path)
            assert sum(len(c) for _, c in entries) == sent and scan.torn_bytes == 0
            assert [b for b, _ in entries] == list(range(1, len(entries) + 1))
            journal.close()
    finally:
        for r in (cmd, evt, md):
            r.close()


@pytest.mark.timeout(120)
def test_any_other_journal_failure_stops_the_engine(tmp_path):
    cmd, evt, md = _rings(f"ringex-{os.getpid()}-jf")
    journal = Journal.open(tmp_path / "seg.rxj")
    try:
        eng = Engine(Config.default(), [cmd], [evt], md, None, wait="busy_spin")
        eng.use_journal(journal)
        eng.warm_up()
        eng.svc.deposit(1, "USD", 10**12)
        fd = int(journal.state[J_FD])
        os.close(fd)
        os.open(os.devnull, os.O_RDONLY)    # the fd number now names a read-only file
        cmd.write(_orders(0, 2))
        with pytest.raises(StorageError, match="journal write failed: Bad file descriptor"):
            for _ in range(10):
                eng.step(max_idle=8)
        assert int(evt.hdr[HEAD]) == 0 and not eng.disk_full.active
        os.close(fd)
        journal.state[J_FD] = -1
    finally:
        for r in (cmd, evt, md):
            r.close()
