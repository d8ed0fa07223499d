"""Repository queries off the gateway's event loop: one worker thread, one repository.

``await RepoWorker(db_url).run(fn, *args)`` runs ``fn(repo, *args)`` on the worker and
returns its result; it raises what ``fn`` raised on a second try. The repository (SQLite
or PostgreSQL) is opened on the thread that uses it (a SQLite connection belongs to its
thread), so a slow database never blocks the loop; a failed query drops the connection
and is tried once more on a new one, so a restarted database serves again at once.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


class RepoWorker:
    def __init__(self, db_url: str, name: str):
        self.db_url = db_url
        self._repo: Any = None              # touched on the worker thread only
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"ringex-{name}")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._with_fresh_retry, fn, args)

    def _with_fresh_retry(self, fn, args):
        try:
            return fn(self._open(), *args)
        except Exception:
            self._drop()
            return fn(self._open(), *args)

    def _open(self):
        if self._repo is None:
            from ringex.storage.stores import open_repository
            self._repo = open_repository(self.db_url)
        return self._repo

    def _drop(self) -> None:
        repo, self._repo = self._repo, None
        if repo is not None:
            try:
                repo.close()
            except Exception:
                pass                    # the connection is already gone

    def close(self) -> None:
        try:
            self._pool.submit(self._drop).result(5)
        except Exception:
            pass
        self._pool.shutdown(wait=True)
