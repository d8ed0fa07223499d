"""The readable views (trades_view, orders_view, order_history_view, transfers_view,
balances_view and their helpers asset_steps, symbol_steps) on SQLite and PostgreSQL:
rows written through the writer's path (projection, then ``repo.write``) read back as
names, exact decimal strings and enum words; the SQL decimal formatter agrees with
``ringex.units.Step`` to the last digit; new and older databases get the same views."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ringex.config import Config
from ringex.protocol.client_ids import pack_client_id
from ringex.records import CancelReason, RejectCode, Side
from ringex.storage.projection import Projector
from ringex.storage.schema import decimal_text, readable_views
from ringex.storage.stores import is_postgres_url, open_repository
from ringex.units import Step
from tests.storage.storage_events import Script
from tests.storage.test_repository import payloads

USD, BTC, ETH = 0, 1, 2
BTCUSD, ETHBTC = 0, 2
P = 3_000_050                 # 30000.50 in ticks of 0.01
READABLE = ["asset_steps", "symbol_steps", "trades_view", "orders_view",
            "order_history_view", "transfers_view", "balances_view"]


def steps() -> list:
    m, out = Script(), []

    def step(fn):
        fn()
        out.append(m.take())

    step(lambda: (m.deposit(1, USD, 100_000_000, ref=1), m.deposit(2, BTC, 1_000_000, ref=2)))
    step(lambda: m.new(BTCUSD, 1, Side.BUY, P, 10, coid=pack_client_id("mm-1")))    # order 1
    step(lambda: m.trade(m.new(BTCUSD, 2, Side.SELL, 0, 4), 1, 4))       # 2: market, takes
    step(lambda: m.cancel(m.new(BTCUSD, 2, Side.SELL, 3_100_000, 5), CancelReason.STP))  # 3
    step(lambda: m.modify(m.new(BTCUSD, 2, Side.SELL, 3_200_000, 5), 3_150_000, 3))      # 4
    step(lambda: (m.withdraw(1, USD, 1_000_000, ref=3),
                  m.reject(BTCUSD, 1, RejectCode.INVALID_PRICE, price=0, qty=1)))
    step(lambda: m.new(ETHBTC, 1, Side.BUY, 5_000, 2_000, coid=pack_client_id("e")))   # 5
    return out


@pytest.fixture
def repo(db_url, market_config):
    r = open_repository(db_url, market_config)
    assert (r.add_account("alice"), r.add_account("bob")) == (1, 2)
    r.write(Projector(market_config).project(payloads(steps())))
    yield r
    r.close()


def rows(repo, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in repo._fetch(sql)]


def query(repo, sql: str) -> list[dict]:
    """Rows of ``sql`` sent as is (no parameters: psycopg would read ``%`` as one)."""
    cur = repo.conn.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def utc(ts_ns: int) -> str:
    """An independent reference for the views' ``time``: ISO 8601 UTC, nanoseconds."""
    t = datetime.fromtimestamp(ts_ns // 10**9, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns % 10**9:09d}Z"


def test_trades_view_shows_names_decimals_and_words(repo):
    got = repo._fetch("SELECT * FROM trades_view ORDER BY symbol, seq")
    fees = rows(repo, "SELECT taker_fee, maker_fee FROM trades")
    assert fees == [(6_000, 1_200)]       # 12.000200 USD: taker 5 bp, maker 1 bp, floored
    assert [{k: v for k, v in r.items() if k not in ("time", "ts_ns")} for r in got] == [{
        "symbol": "BTC-USD", "seq": 3, "price": "30000.50", "qty": "0.0004",
        "notional": "12.000200", "quote_asset": "USD", "taker_side": "sell",
        "taker_order_id": 2, "taker_account": 2, "taker_name": "bob",
        "taker_fee": "0.006000", "taker_leaves": "0.0000",
        "maker_order_id": 1, "maker_account": 1, "maker_name": "alice",
        "maker_fee": "0.001200", "maker_leaves": "0.0006"}]
    assert got[0]["time"] == utc(got[0]["ts_ns"])


def test_orders_view_shows_type_status_reason_and_client_ids(repo):
    got = rows(repo, "SELECT order_id, symbol, account, account_name, side, type, price, qty, "
                     "leaves, filled, status, reason, client_order_id FROM orders_view "
                     "ORDER BY order_id")
    assert got == [
        (1, "BTC-USD", 1, "alice", "buy", "limit", "30000.50", "0.0010", "0.0006", "0.0004",
         "partially_filled", None, "mm-1"),
        (2, "BTC-USD", 2, "bob", "sell", "market", None, "0.0004", "0.0000", "0.0004",
         "filled", None, None),
        (3, "BTC-USD", 2, "bob", "sell", "limit", "31000.00", "0.0005", "0.0000", "0.0000",
         "cancelled", "stp", None),
        (4, "BTC-USD", 2, "bob", "sell", "limit", "31500.00", "0.0005", "0.0003", "0.0000",
         "open", None, None),
        (5, "ETH-BTC", 1, "alice", "buy", "limit", "0.05000", "2.000", "2.000", "0.000",
         "open", None, "e"),
    ]
    times = repo._fetch("SELECT o.created_time, r.created_ts_ns FROM orders_view o "
                        "JOIN orders r ON r.order_id = o.order_id")
    assert all(t["created_time"] == utc(t["created_ts_ns"]) for t in times)


def test_order_history_view_lists_every_event_with_liquidity_and_reasons(repo):
    got = rows(repo, "SELECT symbol, seq, kind, order_id, account_name, side, price, qty, "
                     "leaves, reason, liquidity, client_order_id, counter_order_id "
                     "FROM order_history_view ORDER BY symbol, seq")
    assert got == [
        ("BTC-USD", 1, "ack", 1, "alice", "buy", "30000.50", "0.0010", "0.0010", None, None,
         "mm-1", None),
        ("BTC-USD", 2, "ack", 2, "bob", "sell", None, "0.0004", "0.0004", None, None, None,
         None),
        ("BTC-USD", 3, "fill", 2, "bob", "sell", "30000.50", "0.0004", "0.0000", None,
         "taker", None, 1),
        ("BTC-USD", 4, "fill", 1, "alice", "buy", "30000.50", "0.0004", "0.0006", None,
         "maker", "mm-1", 2),
        ("BTC-USD", 5, "ack", 3, "bob", "sell", "31000.00", "0.0005", "0.0005", None, None,
         None, None),
        ("BTC-USD", 6, "cancelled", 3, "bob", "sell", "31000.00", "0.0005", "0.0000", "stp",
         None, None, None),
        ("BTC-USD", 7, "ack", 4, "bob", "sell", "32000.00", "0.0005", "0.0005", None, None,
         None, None),
        ("BTC-USD", 8, "modified", 4, "bob", "sell", "31500.00", "0.0003", "0.0003", None,
         None, None, None),
        ("BTC-USD", 9, "reject", 0, "alice", "buy", None, "0.0001", "0.0000",
         "price_out_of_band", None, None, None),
        ("ETH-BTC", 1, "ack", 5, "alice", "buy", "0.05000", "2.000", "2.000", None, None, "e",
         None),
    ]
    times = repo._fetch("SELECT time, ts_ns FROM order_history_view")
    assert all(t["time"] == utc(t["ts_ns"]) for t in times)


def test_transfers_view_shows_signed_amounts_and_balances_after(repo):
    got = rows(repo, "SELECT account, account_name, kind, asset, amount, available, locked "
                     "FROM transfers_view ORDER BY batch, idx")
    assert got == [(1, "alice", "deposit", "USD", "100.000000", "100.000000", "0.000000"),
                   (2, "bob", "deposit", "BTC", "0.01000000", "0.01000000", "0.00000000"),
                   (1, "alice", "withdraw", "USD", "-1.000000", "99.000000", "0.000000")]


def test_balances_view_sums_the_ledger_per_account_and_asset(repo):
    got = rows(repo, "SELECT account, account_name, asset, total FROM balances_view "
                     "ORDER BY account, asset")
    assert got == [
        (0, "fees", "USD", "0.007200"),                          # both fees of the trade
        (1, "alice", "BTC", "0.00040000"),
        (1, "alice", "USD", "86.998600"),    # 100 - 12.000200 - 0.001200 maker fee - 1
        (2, "bob", "BTC", "0.00960000"),
        (2, "bob", "USD", "11.994200"),      # 12.000200 - 0.006000 taker fee
    ]
    # the same totals as the repository's integer query
    ints = {(b["account"], b["asset_name"]): b["total"] for b in repo.balances()}
    scale = {"USD": 6, "BTC": 8}
    assert {(a, x): Step.minor_unit(scale[x]).format(t) for (a, x), t in ints.items()} == \
        {(a, x): t for a, _, x, t in got}


VALUES = [0, 1, 5, 9, 10, 99, 100, 12345, 10**6, 10**18 - 1, 10**18, 2**62, 2**63 - 1]


@pytest.mark.parametrize("scale", [0, 1, 2, 6, 8, 18])
def test_decimal_text_agrees_with_step_format_to_the_last_digit(db_url, scale):
    step = Step.minor_unit(scale)
    div = str(10**scale)
    exprs = ", ".join(f"{decimal_text(str(v), div)} AS p{i}, {decimal_text(f'(-{v})', div)} "
                      f"AS n{i}" for i, v in enumerate(VALUES))
    with open_repository(db_url) as repo:
        (got,) = query(repo, f"SELECT {exprs}")
    assert [got[f"p{i}"] for i in range(len(VALUES))] == [step.format(v) for v in VALUES]
    assert [got[f"n{i}"] for i in range(len(VALUES))] == [step.format(-v) for v in VALUES]


def test_symbol_steps_read_any_tick_and_lot_as_the_wire_does(db_url, tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text("""
[assets]
USD = { scale = 2 }
XYZ = { scale = 0 }
[symbols.XYZ-USD]
base = "XYZ"
quote = "USD"
tick = "0.05"
lot = "1E+1"
min_price = "0.05"
max_price = "1000"
""")
    config = Config.load(cfg)
    s = config.symbol("XYZ-USD")
    with open_repository(db_url, config) as repo:
        (st,) = repo._fetch("SELECT * FROM symbol_steps")
        assert (st["tick"], st["lot"]) == ("0.05", "10")       # stored plain, no exponent
        (got,) = query(
            repo, f"SELECT {decimal_text('7 * price_digits', 'price_div')} AS price, "
            f"{decimal_text('3 * qty_digits', 'qty_div')} AS qty FROM symbol_steps")
    assert (got["price"], got["qty"]) == (s.price_step.format(7), s.qty_step.format(3)) == \
        ("0.35", "30")


def test_views_have_the_same_columns_in_sqlite_and_postgresql(sqlite_url, pg_url,
                                                              market_config):
    columns = {}
    for url in (sqlite_url, pg_url):
        with open_repository(url, market_config) as repo:
            columns[is_postgres_url(url)] = {v: _columns(repo, v) for v in READABLE}
    assert columns[False] == columns[True]
    assert list(readable_views("sqlite")) == list(readable_views("postgresql")) == READABLE


def _columns(repo, view: str) -> list[str]:
    cur = repo.conn.execute(f"SELECT * FROM {view} LIMIT 0")
    return [d[0] for d in cur.description]          # sqlite3 tuples, psycopg Columns


def test_a_database_made_before_the_views_gets_them_on_its_next_open(db_url, market_config):
    with open_repository(db_url, market_config) as repo:
        for v in reversed(READABLE):
            repo._fetch(f"DROP VIEW {v}")                  # as an older ringex left it
        repo.add_account("alice")
    with open_repository(db_url, market_config) as repo:
        assert rows(repo, "SELECT account, account_name, asset, total FROM balances_view") == []
        assert rows(repo, "SELECT symbol, quote FROM symbol_steps ORDER BY symbol_id") == [
            ("BTC-USD", "USD"), ("ETH-USD", "USD"), ("ETH-BTC", "BTC")]
    with open_repository(db_url, market_config) as repo:       # and opening again is a no-op
        assert len(rows(repo, "SELECT * FROM asset_steps")) == 3


def test_docs_storage_lists_every_readable_view_with_its_columns(sqlite_url, market_config):
    doc = (Path(__file__).parents[2] / "docs" / "storage.md").read_text()
    section = doc.split("### Readable views", 1)[1].split("\n## ", 1)[0]
    documented = {name: [c.strip() for c in cols.split(",")] for name, cols in
                  re.findall(r"\*\*`(\w+)`\*\*\s+`\(([^)]*)\)`", section)}
    with open_repository(sqlite_url, market_config) as repo:
        assert documented == {v: _columns(repo, v) for v in READABLE}
