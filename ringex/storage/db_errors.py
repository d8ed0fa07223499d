"""What a failed database write says about its cause: a full disk or anything else.

A full disk is worth telling apart: the operator frees space (or grows the volume), and
the writer's retries then succeed by themselves; the metrics show it
(``ringex_writer_disk_full``).
"""
from __future__ import annotations

import errno
import sqlite3

SQLITE_FULL = 13             # "database or disk is full"
PG_DISK_FULL = "53100"       # SQLSTATE disk_full
_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) reports a full disk or an exhausted quota."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, sqlite3.Error) and \
                getattr(cause, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(cause, "sqlstate", None) == PG_DISK_FULL:        # psycopg
            return True
        if any(w in str(cause).lower() for w in _WORDS):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
