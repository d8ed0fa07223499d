"""The database's format version (ringex/storage/schema_version.py): a new database is
made at the current version, an older one is migrated in place, a newer one is refused
and left as it was."""
from __future__ import annotations

import pytest

from ringex.errors import StorageError
from ringex.storage.schema_version import SCHEMA_VERSION
from ringex.storage.stores import open_repository


def _versions(url: str) -> list[int]:
    with open_repository(url) as repo:
        return [r["version"] for r in repo._fetch("SELECT version FROM schema_version "
                                                  "ORDER BY version")]


def test_a_new_database_is_made_at_the_current_version(db_url):
    with open_repository(db_url) as repo:
        assert repo.migrated == [SCHEMA_VERSION]
    with open_repository(db_url) as repo:                 # reopening changes nothing
        assert repo.migrated == []
    assert _versions(db_url) == [SCHEMA_VERSION]


def test_a_database_made_before_versions_is_migrated_in_place(db_url):
    with open_repository(db_url) as repo:
        alice = repo.add_account("alice")
        repo._fetch("DROP TABLE schema_version")           # as the first releases left it
    with open_repository(db_url) as repo:
        assert repo.migrated == list(range(2, SCHEMA_VERSION + 1))
        assert [a["name"] for a in repo.list_accounts() if a["account_id"] == alice] == \
            ["alice"]
    assert _versions(db_url)[-1] == SCHEMA_VERSION


def test_a_database_of_a_newer_version_is_refused_and_left_alone(db_url):
    with open_repository(db_url) as repo:
        repo._fetch("INSERT INTO schema_version (version, migrated_at) VALUES (99, 'later')")
    with pytest.raises(StorageError, match="version 99, written by a newer ringex"):
        open_repository(db_url)
    with pytest.raises(StorageError):                     # still there, still refused
        open_repository(db_url)
    with pytest.raises(StorageError, match="newer ringex"):   # inspection too
        open_repository(db_url, readonly=True)
