"""A journal on a full disk: the failed append is cut back to the last whole entry, says
it was for want of space, and the same entry can be appended once space is back. Both
ways a disk fills: at the write (the reservation failed or is used up) and at the
reservation (``PREALLOC`` reserved, then the next reservation fails, then the write)."""
from __future__ import annotations

import os

import pytest

from ringex.core.journal import J_LAST, J_RESERVED, J_SIZE, PREALLOC, Journal, read_journal
from ringex.core.snapshot import STATE_ENV
from ringex.errors import StorageError
from tests.core.test_journal import command_stream
from tests.core.test_snapshot_periodic import ENTRY, Rig, funding
from tests.core.test_snapshot_format import Flow
from tests.util.exchange import rule_config
from tests.util.tmpfs import fill, fill_inodes, small_tmpfs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("leave, size, n", [(200 << 10, 16, 400),
                                            (PREALLOC + (200 << 10), 1024, 280)],
                         ids=["at-write", "after-reservation"])
def test_full_disk_append_is_cut_back_and_retried(tmp_path, leave, size, n):
    """n entries of ``size`` commands fit the file system, not with the filler."""
    mnt = tmp_path / "mnt"
    with small_tmpfs(mnt, PREALLOC + (4 << 20)):
        filler = fill(mnt, leave=leave)
        batches = command_stream(3, n, size=size)
        j = Journal.open(mnt / "seg.rxj")
        written = 0
        with pytest.raises(StorageError, match="No space left on device"):
            for cmds in batches:
                j.append(cmds)
                written += 1
        assert 0 < written < len(batches)
        assert j.disk_full()
        good = int(j.state[J_SIZE])
        assert os.path.getsize(mnt / "seg.rxj") == good == written * (20 + size * 64)
        assert j.state[J_RESERVED] == good               # reserved again at the next write
        entries, scan = read_journal(mnt / "seg.rxj")
        assert len(entries) == written and scan.torn_bytes == 0
        with pytest.raises(StorageError):                # still full: fails the same way
            j.append(batches[written])
        assert os.path.getsize(mnt / "seg.rxj") == good and j.disk_full()

        filler.unlink()                                  # space is back
        for cmds in batches[written:]:
            j.append(cmds)
        j.close()
        entries, scan = read_journal(mnt / "seg.rxj")
        assert [b for b, _ in entries] == list(range(1, len(batches) + 1))
        assert all((c == want).all() for (_, c), want in zip(entries, batches))
        assert scan.torn_bytes == 0


@pytest.mark.timeout(60)
def test_a_snapshot_the_full_disk_refuses_is_postponed_and_the_journal_goes_on(
        tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_ENV, f"snapshot_every_bytes={8 * ENTRY - 100}")
    root = tmp_path / "state"
    with small_tmpfs(root, 8 << 20, inodes=64):
        rig = Rig(root, rule_config(), "pf")
        try:
            flow = Flow(13)
            rig.feed(funding())
            fillers = fill_inodes(root)              # no room for the next segment's file
            for _ in range(8):
                rig.feed(flow.batch())
            assert rig.eng.snapshots.taken == 0 and rig.store.snapshots() == []
            assert len(rig.store.segments()) == 1    # journaling on in the same segment
            assert int(rig.journal[J_LAST]) == 9 and not rig.eng.disk_full.active
            fillers[-1].unlink()
            fillers[-2].unlink()                     # room for a segment and a snapshot
            for _ in range(8):                       # the next try: one interval later
                rig.feed(flow.batch())
            assert rig.eng.snapshots.taken == 1
            rig.store.wait()
            assert "error" not in rig.eng.snapshots.reports[-1]
        finally:
            rig.close()
