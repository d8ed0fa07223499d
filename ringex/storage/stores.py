"""Which store a database URL names, and opening it (SQLite or PostgreSQL).

Kept apart from ``repository`` (the base both stores derive from) so that neither store
module imports the other and the base imports neither.
"""
from __future__ import annotations

from pathlib import Path

from ringex.config import Config
from ringex.storage.repository import Repository


def open_repository(url_or_path: str | Path, config: Config | None = None,
                    readonly: bool = False) -> Repository:
    """A PostgreSQL repository for ``postgresql://`` / ``postgres://`` URLs, else SQLite.

    SQLite takes a file path or ``sqlite:///path``. The schema is created if missing; with
    ``config`` the assets and symbols are synced too. ``readonly`` (inspection) creates
    nothing and refuses every write: the SQLite file must exist, and ``config`` is only
    checked against what is stored (``check_config``), never written.
    """
    target = str(url_or_path)
    if is_postgres_url(target):            # imported here: psycopg costs a SQLite user time
        from ringex.storage.pg_store import PgRepository
        repo: Repository = PgRepository(target, readonly=readonly)
    else:
        from ringex.storage.sqlite_store import SqliteRepository
        repo = SqliteRepository(sqlite_path(target), readonly=readonly)
    if config is not None:
        try:
            repo.check_config(config) if readonly else repo.sync_config(config)
        except BaseException:
            repo.close()
            raise
    return repo


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def sqlite_path(target: str) -> str:
    """The file of a SQLite target (a path or ``sqlite:///path``)."""
    return target.removeprefix("sqlite:///")
