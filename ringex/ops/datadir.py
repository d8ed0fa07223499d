"""One exchange's data directory: the files in it, its lock and its run file.

    <data-dir>/
      ringex.db                  the SQLite database (unless ``--db`` names another)
      ringex.lock                flock: exclusive while an exchange runs on the folder,
                                 shared while a CLI command stores a pending transfer
      ringex.run                 JSON {pid, run, host, port, url, gateways, db} while it runs
      admin.key                  the admin API key (mode 0600; ``ringex.ops.accounts``)
      pending_transfers.jsonl    deposits and withdrawals for the next start
      state/                     journal and snapshots (``ringex.core.snapshot``)
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ringex.errors import RingexError

DEFAULT_DATA_DIR = "ringex-data"
DB_FILE = "ringex.db"
LOCK_FILE = "ringex.lock"
RUN_FILE = "ringex.run"
ADMIN_KEY_FILE = "admin.key"
PENDING_FILE = "pending_transfers.jsonl"
STATE_DIR = "state"

LOCK_WAIT_S = 2.0              # a CLI transfer may hold the lock (shared) for a moment
RUN_FILE_WAIT_S = 120.0        # an exchange that is starting: wait this long for its URL


def db_url(data_dir: str | Path, db: str | None = None) -> str:
    """The database of a data dir: ``db`` when given, else its SQLite file."""
    return db or str(Path(data_dir) / DB_FILE)


def lock_exclusive(data_dir: Path, wait_s: float = LOCK_WAIT_S) -> int:
    """Take the data dir's lock for a running exchange; returns the fd to close (which
    releases it). RingexError when another exchange holds it after ``wait_s``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RingexError(f"another ringex runs on {data_dir}") from None
            time.sleep(0.05)


@contextmanager
def offline(data_dir: str | Path) -> Iterator[bool]:
    """Yields True while holding the lock shared (no exchange runs on the folder, and
    none can start until the block ends), else False (one runs)."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_run_file(data_dir: Path, info: dict) -> None:
    tmp = data_dir / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(info) + "\n")
    os.replace(tmp, data_dir / RUN_FILE)


def remove_run_file(data_dir: Path) -> None:
    (data_dir / RUN_FILE).unlink(missing_ok=True)


def running_url(data_dir: str | Path, wait_s: float = RUN_FILE_WAIT_S) -> str:
    """The WebSocket URL of the exchange that holds the data dir's lock (waits while it
    starts and has not written its run file yet)."""
    path = Path(data_dir) / RUN_FILE
    deadline = time.monotonic() + wait_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise RingexError(f"an exchange holds {data_dir} but wrote no {RUN_FILE}")
        time.sleep(0.2)
    return json.loads(path.read_text())["url"]
