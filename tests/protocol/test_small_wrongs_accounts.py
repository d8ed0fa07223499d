"""Issue 11's small wrongs about accounts, below the CLI and the live gateway: the
repository refuses blank and duplicate names, and the gateway's lookup tells which
accounts exist (on SQLite and PostgreSQL)."""
from __future__ import annotations

import asyncio

import pytest

from ringex.errors import StorageError
from ringex.gateway.auth import KeyLookup
from ringex.storage.stores import open_repository


@pytest.fixture
def repo(db_url):
    r = open_repository(db_url)
    yield r
    r.close()


@pytest.mark.parametrize("name", ["", " ", "\t\n"])
def test_add_account_refuses_an_empty_name(repo, name):
    with pytest.raises(StorageError, match="an account name must not be empty"):
        repo.add_account(name)
    assert [a["account_id"] for a in repo.list_accounts()] == [0]


def test_add_account_refuses_a_name_another_account_has(repo):
    assert repo.add_account("alice") == 1
    with pytest.raises(StorageError, match=r'an account named "alice" exists already '
                                           r'\(account 1\)'):
        repo.add_account("alice")
    with pytest.raises(StorageError, match=r'"fees" exists already \(account 0\)'):
        repo.add_account("fees")
    assert repo.add_account("Alice") == 2                  # names are compared exactly
    assert [a["name"] for a in repo.list_accounts()] == ["fees", "alice", "Alice"]


def test_has_account_knows_only_created_accounts(repo):
    assert repo.has_account(0) and not repo.has_account(1) and not repo.has_account(17)
    repo.add_account("a")
    assert repo.has_account(1) and not repo.has_account(2)


def test_key_lookup_tells_which_accounts_exist_and_remembers_only_found_ones(db_url):
    with open_repository(db_url) as repo:
        repo.add_account("a")
    keys = KeyLookup(db_url)

    async def go():
        assert await keys.account_exists(1) is True
        assert keys.known_account(1)                       # cached: no wait next time
        assert await keys.account_exists(17) is False
        assert not keys.known_account(17)                  # a miss is not remembered ...
        with open_repository(db_url) as repo:
            for name in "bcdefghijklmnopq":
                repo.add_account(name)                     # ... so account 17, made now,
        assert await keys.account_exists(17) is True       # can be funded at once
    try:
        asyncio.run(go())
    finally:
        keys.close()


def test_key_lookup_cannot_tell_without_a_working_database(tmp_path):
    none = KeyLookup(None)
    broken = KeyLookup(str(tmp_path / "no" / "such" / "dir" / "r.db"))
    try:
        assert asyncio.run(none.account_exists(1)) is None
        assert asyncio.run(broken.account_exists(1)) is None      # logged, not raised
    finally:
        none.close()
        broken.close()
