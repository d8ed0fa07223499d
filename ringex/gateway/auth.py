"""API key and account lookups for the gateway: repository queries on a worker thread,
with a cache.

``await KeyLookup(db_url, data_dir).lookup(key)`` -> ``(account, admin)`` or None.
``await keys.account_exists(account)`` -> True, False, or None (cannot tell: the
database failed); ``keys.known_account(account)``: True when the cache knows it (no wait).

- The repository is queried on a worker thread (``RepoWorker``), so a slow database
  never blocks the loop and a restarted one serves logins again at once.
- Found keys are cached for ``ttl_s`` (keys are random and only ever added); unknown
  keys are not cached, so a key added while the exchange runs works at once.
- Accounts that exist are cached for good (accounts are never removed); unknown ones
  are not cached, so an account added while the exchange runs can be funded at once. An
  admin deposit or withdrawal goes to the engine only for an account that exists
  (``Gateway._check_transfer``): the engine's wallet table has a row for every id below
  its capacity and cannot tell an opened account from one nobody created.
- The admin key maps to ``ADMIN_ACCOUNT`` (docs/architecture.md section 5): it is an API
  key of that account in the repository; ``<data-dir>/admin.key`` is also accepted
  directly, so the admin can log in even before the key reached the database.
"""
from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path
from typing import Any

from ringex.gateway.repo_worker import RepoWorker
from ringex.ops.accounts import ADMIN_ACCOUNT, ADMIN_KEY_FILE

log = logging.getLogger("ringex.gateway")

MAX_CACHE = 100_000


class KeyLookup:
    def __init__(self, db_url: str | None, data_dir: str | None = None, ttl_s: float = 60.0):
        self.db_url = db_url
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, int]] = {}
        self._accounts: set[int] = set()           # accounts known to exist
        self._worker = RepoWorker(db_url, "auth") if db_url is not None else None
        self._admin_key: str | None = None
        if data_dir is not None:
            path = Path(data_dir) / ADMIN_KEY_FILE
            if path.exists():
                self._admin_key = path.read_text().strip() or None

    async def lookup(self, key: str) -> tuple[int, bool] | None:
        """``(account, admin)`` for a known key, else None (also when the database fails)."""
        if type(key) is not str or not key:
            return None
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[1] == ADMIN_ACCOUNT
        if self._admin_key is not None and hmac.compare_digest(key.encode(),
                                                               self._admin_key.encode()):
            return ADMIN_ACCOUNT, True
        if self.db_url is None:
            return None
        ok, account = await self._on_worker(self._query, key, "API key")
        if not ok or account is None:
            return None
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[key] = (now + self.ttl_s, account)
        return account, account == ADMIN_ACCOUNT

    def known_account(self, account: int) -> bool:
        """True when ``account`` is known to exist without asking the database."""
        return account in self._accounts

    async def account_exists(self, account: int) -> bool | None:
        """Whether ``account`` exists in the repository; None when that cannot be told
        (no database, or it failed). Found accounts are cached for good."""
        if account in self._accounts:
            return True
        if self.db_url is None:
            return None
        ok, found = await self._on_worker(self._has_account, account, "account")
        if not ok:
            return None
        if found:
            if len(self._accounts) >= MAX_CACHE:
                self._accounts.clear()
            self._accounts.add(account)
        return found

    async def _on_worker(self, fn, arg, what: str) -> tuple[bool, Any]:
        """``(True, fn(repo, arg))`` run on the worker thread, or ``(False, None)``
        (logged) when the database failed."""
        assert self._worker is not None             # queries run only with a database
        try:
            return True, await self._worker.run(fn, arg)
        except Exception:
            log.exception("gateway: %s lookup failed", what)
            return False, None

    @staticmethod
    def _query(repo, key: str) -> int | None:
        return repo.account_for_key(key)

    @staticmethod
    def _has_account(repo, account: int) -> bool:
        return bool(repo.has_account(account))

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
