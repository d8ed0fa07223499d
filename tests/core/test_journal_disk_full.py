"""A journal on a full disk: the failed append is cut back to the last whole entry, says
it was for want of space, and the same entry can be appended once space is back. Both
ways a disk fills: at the write (the reservation failed or is used up) and at the
reservation (``PREALLOC`` reserved, then the next reservation fails, then the write)."""
from __future__ import annotations

import os

import pytest

from ringex.core.journal import J_RESERVED, J_SIZE, PREALLOC, Journal, read_journal
from ringex.errors import StorageError
from tests.core.test_journal import command_stream
from tests.util.tmpfs import fill, small_tmpfs


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
