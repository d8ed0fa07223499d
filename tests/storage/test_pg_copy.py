"""PostgreSQL binary COPY encoding (ringex.storage.pg_copy): the stream's bytes, and the rows
PostgreSQL stores from it against the rows SQLite stores for the same input.

Every stored column is a NOT NULL BIGINT (docs/storage.md), so there are no NULLs to
encode; the extremes are int64's, which both stores hold exactly.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from ringex.records import CancelReason, Side
from ringex.storage.pg_copy import SIGNATURE, TRAILER, copy_binary
from ringex.storage.projection import Projector, Rows
from ringex.storage.schema import TABLES, row_dtype
from tests.storage.storage_events import Script, fill_stream
from tests.storage.test_repository import payloads, session_steps

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
EXTREMES = [I64_MIN, I64_MIN + 1, -(1 << 31), -1, 0, 1, 1 << 31, I64_MAX - 1, I64_MAX]
HOT = ("trades", "order_changes", "transfers", "orders")


def parse(stream: bytes) -> list[tuple[int, ...]]:
    """The rows of a binary COPY stream of BIGINTs, read field by field."""
    assert stream[:len(SIGNATURE)] == SIGNATURE and stream[-len(TRAILER):] == TRAILER
    rows, pos, end = [], len(SIGNATURE), len(stream) - len(TRAILER)
    while pos < end:
        (count,) = struct.unpack_from(">h", stream, pos)
        pos += 2
        row = []
        for _ in range(count):
            length, value = struct.unpack_from(">iq", stream, pos)
            assert length == 8
            row.append(value)
            pos += 12
        rows.append(tuple(row))
    assert pos == end
    return rows


def extreme_rows(table: str, shift: int = 0, random_rows: int = 0) -> np.ndarray:
    """Every column takes every extreme; key columns differ between rows."""
    cols = TABLES[table].column_names
    n = len(EXTREMES)
    a = np.array([[EXTREMES[(i + j + shift) % n] for j in range(len(cols))]
                  for i in range(n)], np.int64)
    if random_rows:
        rng = np.random.default_rng(7)
        a = np.vstack([a, rng.integers(I64_MIN, I64_MAX, (random_rows, len(cols)),
                                       dtype=np.int64, endpoint=True)])
    return a.view(row_dtype(table)).reshape(-1)


@pytest.mark.parametrize("table", HOT)
@pytest.mark.parametrize("n_random", [0, 500])
def test_should_encode_every_value_as_a_big_endian_field(table, n_random):
    arr = extreme_rows(table, random_rows=n_random)
    want = [tuple(r) for r in arr.tolist()]
    assert parse(bytes(copy_binary(arr))) == want
    assert parse(bytes(copy_binary(arr[::2]))) == want[::2]          # a strided selection


@pytest.mark.parametrize("pick", ["some", "all", "none"])
def test_should_encode_only_the_rows_selected(pick):
    arr = extreme_rows("orders", random_rows=100)
    where = {"some": np.arange(len(arr)) % 3 == 1, "all": np.ones(len(arr), bool),
             "none": np.zeros(len(arr), bool)}[pick]
    assert parse(bytes(copy_binary(arr, where))) == [tuple(r) for r in arr[where].tolist()]


def test_should_encode_no_rows_as_an_empty_stream():
    assert bytes(copy_binary(np.zeros(0, row_dtype("trades")))) == SIGNATURE + TRAILER


def test_should_refuse_rows_that_are_not_all_int64():
    with pytest.raises(AssertionError):
        copy_binary(np.zeros(2, [("a", "<i8"), ("b", "<i4")]))


# ------------------------------------------------------------------ against SQLite
def _stores(tmp_path, pg_url, market_config):
    from ringex.storage.pg_store import PgRepository
    from ringex.storage.sqlite_store import SqliteRepository
    out = [SqliteRepository(str(tmp_path / "same.db")), PgRepository(pg_url)]
    for repo in out:
        repo.sync_config(market_config)
    return out


def _dump(repo) -> dict[str, list[tuple]]:
    out = {}
    for t in HOT:
        keys = ", ".join(TABLES[t].pk)
        out[t] = [tuple(r.values()) for r in repo._fetch(f"SELECT * FROM {t} ORDER BY {keys}")]
    out["order_events"] = [tuple(r.values()) for r in repo._fetch(
        "SELECT * FROM order_events ORDER BY symbol, seq")]
    out["meta"] = [tuple(r.values()) for r in repo._fetch(
        "SELECT producer, last_batch FROM meta ORDER BY producer")]
    return out


def _extreme_groups() -> list[Rows]:
    """Two groups of hand-made rows: every path of the PostgreSQL store (COPY, replay through
    staging, orders upsert) meets int64's extremes in every column."""
    orders = extreme_rows("orders", random_rows=200)
    orders["filled"] = np.arange(len(orders)) % 7         # the upsert adds filled: no overflow
    orders["status"] = 1
    first = Rows(trades=extreme_rows("trades", random_rows=300),
                 order_changes=extreme_rows("order_changes", 1, random_rows=300),
                 orders=orders, transfers=extreme_rows("transfers", 2, random_rows=300),
                 orders_new=np.arange(len(orders)) % 2 == 0,      # COPY and staging upsert
                 meta={0: 5})
    later = orders[orders["updated_seq"] < I64_MAX].copy()   # fills of stored orders
    later["updated_seq"] += 1
    later["filled"], later["leaves"], later["price"] = 3, I64_MIN, I64_MAX
    second = Rows(trades=first.trades, order_changes=first.order_changes,   # a replay
                  orders=later, transfers=first.transfers,
                  orders_new=np.zeros(len(later), bool), meta={0: 6})
    return [first, second]


def _write_to_both(tmp_path, pg_url, market_config, groups) -> tuple[dict, dict]:
    """Write each group of rows to a SQLite and a PostgreSQL store; both tables, dumped."""
    stores = _stores(tmp_path, pg_url, market_config)
    try:
        for rows in groups:
            for repo in stores:
                repo.write(rows)
        sqlite, pg = (_dump(r) for r in stores)
    finally:
        for repo in stores:
            repo.close()
    return sqlite, pg


def test_should_store_extreme_rows_as_sqlite_does(tmp_path, pg_url, market_config):
    sqlite, pg = _write_to_both(tmp_path, pg_url, market_config, _extreme_groups())
    assert pg == sqlite
    assert len(pg["trades"]) == len(EXTREMES) + 300
    assert {v for row in pg["trades"] for v in row} >= set(EXTREMES)
    assert pg["meta"] == [(0, 6)]


def _extreme_session() -> list[tuple]:
    """Orders and transfers whose event fields reach int64's (or uint32's) ends (ETH-BTC)."""
    m, steps = Script(first_order_id=10_000), []
    big = m.new(2, 2**32 - 1, Side.SELL, I64_MAX, I64_MAX, coid=I64_MIN, session=2**32 - 1,
                ref=2**32 - 1)
    low = m.new(2, 3, Side.BUY, -5, 1, coid=-1)
    m.modify(low, I64_MIN, 7)
    m.cancel(big, CancelReason.USER)
    m.cancel(low)
    m.deposit(4, 1, I64_MAX, ref=9)
    m.deposit(5, 1, 100, ref=1)
    m.withdraw(5, 1, 40, ref=2)
    steps.append(m.take())
    m.seq[2] = I64_MAX - 200                 # sequence numbers near int64's end
    fill_stream(40, script=m, symbol=2, seed=3)
    steps.append(m.take())
    return steps


def test_should_store_an_event_stream_as_sqlite_does(tmp_path, pg_url, market_config):
    m = Script(first_order_id=100)
    fill_stream(600, script=m, symbol=1, seed=5)
    stream = payloads([*session_steps(), m.take(), *_extreme_session()], first_batch=1)
    proj = Projector(market_config)
    groups = (stream[:3], stream[3:8], stream[2:6], stream[8:])          # [2:6]: a replay
    sqlite, pg = _write_to_both(tmp_path, pg_url, market_config,
                                (proj.project(g) for g in groups))
    assert pg == sqlite
    assert len(pg["trades"]) == 2 + 600 + 40
    values = {v for t in HOT for row in pg[t] for v in row}
    assert {I64_MIN, I64_MAX, -5, -40, 2**32 - 1} <= values
