"""SQLite backend: sqlite-utils creates and inspects the schema; rows go in as a page image.

Pragmas, and what each one risks:

- ``journal_mode=WAL``: readers (the CLI, sqlite-utils) never block the writer. Nothing.
- ``synchronous=NORMAL``: no fsync per commit, only at checkpoints. A commit survives a
  crash of any process; an OS crash or power loss may lose the last commits (never corrupts
  the file). Lost groups come back from the matcher's journal: ``meta`` rolls back with
  them, so their batches are not skipped.
- ``page_size=16384`` (new files only): a quarter of the per-page work of 4 KiB pages on
  bulk inserts; an update rewrites (and logs to the WAL) a 16 KiB page instead of 4 KiB.
- ``cache_size`` 2 MiB, SQLite's default: 64 MiB wrote no faster and grew the writer's
  memory with the file. ``busy_timeout`` 5 s (the CLI and the writer share the file).

Hot path (``write``): the group's row arrays become one in-memory SQLite database image
(``sqlite_image.StageImage``, numpy), ``deserialize``d into the attached schema
``stage``; then one ``INSERT ... SELECT`` per table, all in one transaction. That skips
the Python int and the bind call per value, which cost as much as SQLite's own insert.
``bulk="executemany"`` selects the plain path (multi-row ``INSERT ... VALUES`` statements
bound from ``tolist()``); the tests check that both store the same rows.
"""
from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import sqlite_utils

from ringex.errors import StorageError
from ringex.storage.projection import Rows
from ringex.storage.repository import Repository, _now
from ringex.storage.schema_version import (
    FIRST, RECORD, VERSION_TABLE, check_readable, migrate,
)
from ringex.storage.schema import (
    APPEND_ONLY, BLOB, INT, ORDERS_ON_CONFLICT, TABLES, VIEWS, readable_views,
)
from ringex.storage.sqlite_image import StageImage

_PY_TYPES = {INT: int, "text": str, BLOB: bytes}
_MAX_VARS = 32766                  # SQLITE_MAX_VARIABLE_NUMBER since 3.32
_CHUNK_ROWS = 512
PAGE_SIZE = 16384
HOT = (*APPEND_ONLY, "orders")     # the all-integer tables the projection fills

ORDERS_UPSERT = " " + ORDERS_ON_CONFLICT


class SqliteRepository(Repository):
    def __init__(self, path: str, readonly: bool = False, bulk: str = "image"):
        self.url = path
        if readonly:            # inspection: the file must exist; nothing is created or written
            uri = Path(path).absolute().as_uri() + "?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout=5000")
            self.db = sqlite_utils.Database(self.conn)
            check_readable(self._stored_version(), self.url)
            return
        if bulk not in ("image", "executemany"):
            raise ValueError(f"bulk must be 'image' or 'executemany', not {bulk!r}")
        self.bulk = bulk
        # seconds per write phase (perf/writer_breakdown.py)
        self.timings: defaultdict[str, float] = defaultdict(float)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")     # no effect on an existing file
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA cache_size=-2048")           # 2 MiB: 64 MiB measured no faster
        self.db = sqlite_utils.Database(self.conn)
        self._sql: dict[tuple, str] = {}
        self._create_schema()
        self._stage = None
        if bulk == "image":
            self._stage = StageImage({t: TABLES[t].column_names for t in HOT})
            self.conn.execute("ATTACH DATABASE ':memory:' AS stage")

    def _create_schema(self) -> None:
        kind = self.conn.execute("SELECT type FROM sqlite_master WHERE name = 'order_events'")
        if (kind.fetchone() or ("view",))[0] != "view":
            raise StorageError(f"{self.url}: made by an older ringex (order_events is a "
                               "table); start from a new file (the journal rebuilds it)")
        self.migrated = migrate(self._stored_version(), self._step, self.url)
        for t in TABLES.values():
            table = self.db.table(t.name)       # (db[name] may also be a View)
            table.create(
                {c: _PY_TYPES[k] for c, k in t.columns},
                pk=t.pk[0] if len(t.pk) == 1 else t.pk,
                not_null=set(t.column_names), if_not_exists=True)
            for cols in t.indexes:
                table.create_index(cols, if_not_exists=True)
        for name, sql in {**VIEWS, **readable_views("sqlite")}.items():
            self.db.create_view(name, sql, ignore=True)    # an older file gets new ones
        self.conn.execute("INSERT OR IGNORE INTO accounts (account_id, name, created_at) "
                          "VALUES (0, 'fees', '')")

    def _stored_version(self) -> int | None:
        def exists(name: str) -> bool:
            return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                     "name = ?", (name,)).fetchone() is not None
        if exists("schema_version"):
            return int(self.conn.execute("SELECT MAX(version) FROM schema_version")
                       .fetchone()[0])
        return FIRST if exists("orders") else None

    def _step(self, statements: list[str], version: int) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for sql in (*statements, VERSION_TABLE, RECORD.format(v=version, at=_now())):
                self.conn.execute(sql)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _fetch(self, sql: str, params: tuple = ()) -> list[dict]:
        cur = self.conn.execute(sql, params)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    # ------------------------------------------------------------ hot path
    def prepare(self, rows: Rows):
        """The stage image of the group's hot rows (None if it has none, or executemany)."""
        if self._stage is None:
            return None
        arrays = {t: getattr(rows, t) for t in HOT}
        if not any(len(a) for a in arrays.values()):
            return None
        t0 = time.perf_counter()
        image = self._stage.build({t: a.view(np.int64).reshape(len(a), len(a.dtype.names))
                                   for t, a in arrays.items() if len(a)})
        self.timings["stage_build"] += time.perf_counter() - t0
        return image

    def write(self, rows: Rows, prepared=None) -> None:
        c, clock = self.conn, time.perf_counter
        image = prepared if prepared is not None else self.prepare(rows)
        if image is not None:
            t0 = clock()
            c.deserialize(image, name="stage")
            self.timings["stage_load"] += clock() - t0
        staged = image is not None
        c.execute("BEGIN IMMEDIATE")
        try:
            for table in HOT:
                t0 = clock()
                arr = getattr(rows, table)
                verb, suffix = ("INSERT OR IGNORE", "") if table != "orders" else (
                    "INSERT", ORDERS_UPSERT)
                if staged:
                    if len(arr):
                        cols = ", ".join(TABLES[table].column_names)
                        # WHERE true: lets SQLite parse the upsert after a SELECT
                        c.execute(f"{verb} INTO main.{table} ({cols}) SELECT {cols} "
                                  f"FROM stage.{table} WHERE true{suffix}")
                else:
                    self._insert(table, arr, verb, suffix)
                self.timings[table] += clock() - t0
            t0 = clock()
            if rows.audit:
                c.executemany(self._values_sql("audit", 1, "INSERT OR IGNORE"), rows.audit)
            if rows.dead_letters:
                c.executemany("INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?)",
                              rows.dead_letters)
            if rows.client_ids:
                c.executemany("INSERT OR IGNORE INTO client_ids (account, client_order_id, "
                              "client_text) VALUES (?, ?, ?)", rows.client_ids)
            now = time.time_ns()
            c.executemany(
                "INSERT INTO meta (producer, last_batch, updated_ns) VALUES (?, ?, ?) "
                "ON CONFLICT (producer) DO UPDATE SET "
                "last_batch = max(meta.last_batch, excluded.last_batch), "
                "updated_ns = excluded.updated_ns",
                [(p, b, now) for p, b in rows.meta.items()])
            c.execute("COMMIT")
            self.timings["commit"] += clock() - t0
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def _insert(self, table: str, arr: np.ndarray, verb: str, suffix: str = "") -> None:
        n = len(arr)
        if not n:
            return
        names = arr.dtype.names
        assert names is not None                    # a structured row array
        ncols = len(names)
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
