"""Shared-memory segments of runs that are gone, swept at start.

A ``kill -9`` of a whole ``ringex run`` leaves every ring it made in /dev/shm (about 8 MB
per gateway ring pair, more for market data): nothing of the run is alive to unlink them.
Every ringex segment is named ``ringex-<pid>-...`` (or ``ringex-<pid>x<n>-...``) after
the process that made it (ring/shm.py, ops/supervisor.py), so a segment whose creator no
longer exists is stale. A live creator's segments are never touched, whoever it is: if a
dead run's pid has been reused, its segments stay until that process is gone too.
"""
from __future__ import annotations

import errno
import os

from ringex.ring.shm import creator_pid

SHM_DIR = "/dev/shm"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                      # someone else's live process
        return True
    return True


def stale_segments(shm_dir: str = SHM_DIR) -> list[str]:
    """Names of ringex segments in ``shm_dir`` whose creating process no longer exists."""
    try:
        names = os.listdir(shm_dir)
    except FileNotFoundError:
        return []
    out = []
    for name in sorted(names):
        pid = creator_pid(name)
        if pid is not None and not _alive(pid):
            out.append(name)
    return out


def sweep(shm_dir: str = SHM_DIR) -> tuple[list[str], int]:
    """Unlink the stale segments; (their names, their bytes). A segment another sweeper
    removed first is skipped."""
    removed, size = [], 0
    for name in stale_segments(shm_dir):
        path = os.path.join(shm_dir, name)
        try:
            nbytes = os.stat(path).st_size
            os.unlink(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        removed.append(name)
        size += nbytes
    return removed, size
