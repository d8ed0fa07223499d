"""The database's format version: stored, checked at every open, migrated in place.

``schema_version`` holds one row per version the database has been at (``version``,
``migrated_at``); the highest is its version. A database is never misread:

- a new database gets every table at ``SCHEMA_VERSION``;
- one at an older version is migrated in place, one step at a time (``STEPS[v]`` takes a
  database from v to v + 1), each step and its row in one transaction, before the tables
  are checked; a database made before this table existed is version 1;
- one at a newer version (written by a later ringex) is refused with a clear message.

Versions: 1 the tables and views of the first releases (no ``schema_version``); 2 the
``schema_version`` table itself (and the readable views, which any open creates); 3 the
``client_ids`` table (long client ids' texts; created with the schema, as any new table)
and the two readable views that show them, dropped here so the open recreates them.
"""
from __future__ import annotations

from collections.abc import Callable

from ringex.errors import StorageError

SCHEMA_VERSION = 3
FIRST = 1                     # a database with tables but no schema_version

# v -> the statements that take a database from v to v + 1 (both dialects)
STEPS: dict[int, list[str]] = {
    1: [],                    # 1 -> 2: nothing to change but the version row itself
    2: ["DROP VIEW IF EXISTS orders_view",          # 2 -> 3: they now join client_ids
        "DROP VIEW IF EXISTS order_history_view"],
}


VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL "
                 "PRIMARY KEY, migrated_at TEXT NOT NULL)")
RECORD = "INSERT INTO schema_version (version, migrated_at) VALUES ({v}, '{at}')"


def check_readable(found: int | None, url: str) -> None:
    """Inspection (read only, nothing migrated): refuse a database this ringex would
    misread. An older one reads as it is: every step so far only added things."""
    if found is not None and found > SCHEMA_VERSION:
        raise StorageError(_newer(url, found))


def _newer(url: str, found: int) -> str:
    return (f"{url}: database schema version {found}, written by a newer ringex; this one "
            f"reads up to version {SCHEMA_VERSION}: upgrade ringex (nothing was changed)")


def migrate(found: int | None, run: Callable[[list[str], int], None], url: str) -> list[int]:
    """Bring a database at version ``found`` (None: a new one) to SCHEMA_VERSION through
    ``run(statements, new_version)``, which applies one step and records its version in
    one transaction. Returns the versions stepped to; StorageError for a newer database."""
    if found is not None and found > SCHEMA_VERSION:
        raise StorageError(_newer(url, found))
    if found is None:
        run([], SCHEMA_VERSION)
        return [SCHEMA_VERSION]
    done = []
    for v in range(found, SCHEMA_VERSION):
        run(STEPS[v], v + 1)
        done.append(v + 1)
    return done
