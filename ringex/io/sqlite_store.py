"""SQLite backend: sqlite-utils creates and inspects the schema; the hot path is executemany.

WAL journal, ``synchronous=NORMAL`` (a commit survives a process crash; an OS crash may
lose the last commits, which the writer replays from the journal), 5 s busy timeout so the
CLI and the writer can share the file. Rows go in through ``executemany`` of a multi-row
``INSERT OR IGNORE ... VALUES (...), (...)`` statement: binding a flat list per chunk is
about twice as fast as one row per execute.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import sqlite_utils

from ringex.io.projection import Rows
from ringex.io.repository import Repository
from ringex.io.schema import APPEND_ONLY, BLOB, INT, TABLES, VIEWS

_PY_TYPES = {INT: int, "text": str, BLOB: bytes}
_MAX_VARS = 32766                  # SQLITE_MAX_VARIABLE_NUMBER since 3.32
_CHUNK_ROWS = 512

# orders: static columns only on first sight; `filled` accumulates; a later event wins
ORDERS_UPSERT = """ ON CONFLICT (order_id) DO UPDATE SET
  price = excluded.price, leaves = excluded.leaves,
  filled = orders.filled + excluded.filled,
  status = CASE WHEN excluded.status IN (3, 4) THEN excluded.status
                WHEN orders.filled + excluded.filled > 0 THEN 2 ELSE 1 END,
  reason = excluded.reason, updated_seq = excluded.updated_seq
  WHERE excluded.updated_seq > orders.updated_seq"""


class SqliteRepository(Repository):
    def __init__(self, path: str, readonly: bool = False):
        self.url = path
        if readonly:            # inspection: the file must exist; nothing is created or written
            uri = Path(path).absolute().as_uri() + "?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout=5000")
            self.db = sqlite_utils.Database(self.conn)
            return
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("PRAGMA cache_size=-65536")          # 64 MiB of pages
        self.db = sqlite_utils.Database(self.conn)
        self._sql: dict[tuple, str] = {}
        self._create_schema()

    def _create_schema(self) -> None:
        for t in TABLES.values():
            self.db[t.name].create(
                {c: _PY_TYPES[k] for c, k in t.columns},
                pk=t.pk[0] if len(t.pk) == 1 else t.pk,
                not_null=set(t.column_names), if_not_exists=True)
            for cols in t.indexes:
                self.db[t.name].create_index(cols, if_not_exists=True)
        for name, sql in VIEWS.items():
            self.db.create_view(name, sql, ignore=True)
        self.conn.execute("INSERT OR IGNORE INTO accounts (account_id, name, created_at) "
                          "VALUES (0, 'fees', '')")

    def _fetch(self, sql: str, params: tuple = ()) -> list[dict]:
        cur = self.conn.execute(sql, params)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    # ------------------------------------------------------------ hot path
    def write(self, rows: Rows) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for table in APPEND_ONLY:
                self._insert(table, getattr(rows, table), "INSERT OR IGNORE")
            self._insert("orders", rows.orders, "INSERT", ORDERS_UPSERT)
            if rows.audit:
                c.executemany(self._values_sql("audit", 1, "INSERT OR IGNORE"), rows.audit)
            if rows.dead_letters:
                c.executemany("INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?)",
                              rows.dead_letters)
            now = time.time_ns()
            c.executemany(
                "INSERT INTO meta (producer, last_batch, updated_ns) VALUES (?, ?, ?) "
                "ON CONFLICT (producer) DO UPDATE SET "
                "last_batch = max(meta.last_batch, excluded.last_batch), "
                "updated_ns = excluded.updated_ns",
                [(p, b, now) for p, b in rows.meta.items()])
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def _insert(self, table: str, arr: np.ndarray, verb: str, suffix: str = "") -> None:
        n = len(arr)
        if not n:
            return
        ncols = len(arr.dtype.names)
        flat = arr.view(np.int64).reshape(n, ncols)
        k = min(_CHUNK_ROWS, _MAX_VARS // ncols)
        full = n - n % k
        if full:
            self.conn.executemany(self._values_sql(table, k, verb) + suffix,
                                  (flat[i:i + k].ravel().tolist() for i in range(0, full, k)))
        if n > full:
            self.conn.execute(self._values_sql(table, n - full, verb) + suffix,
                              flat[full:].ravel().tolist())

    def _values_sql(self, table: str, k: int, verb: str) -> str:
        key = (table, k, verb)
        sql = self._sql.get(key)
        if sql is None:
            cols = TABLES[table].column_names
            row = "(" + ", ".join("?" * len(cols)) + ")"
            sql = (f"{verb} INTO {table} ({', '.join(cols)}) VALUES "
                   + ", ".join([row] * k))
            self._sql[key] = sql
        return sql

    def close(self) -> None:
        self.conn.close()
