"""Repository on SQLite and PostgreSQL: exact rows for a hand-made session, idempotency,
ledger conservation, accounts and keys, inspection queries."""
from __future__ import annotations

import pytest

from ringex.errors import StorageError
from ringex.storage.projection import Projector
from ringex.storage.repository import hash_key
from ringex.storage.stores import open_repository
from ringex.storage.trade_queue import PayloadKind, decode, encode
from ringex.records import CancelReason, EventKind, RejectCode, Side
from tests.storage.storage_events import Script

USD, BTC, ETH = 0, 1, 2
BTCUSD = 0
P = 3_000_000            # $30,000.00 in ticks of 0.01; BTC-USD tick x lot = 1 USD minor unit


def session_steps() -> list:
    """(events, commands) per step of a small trading session on BTC-USD."""
    m, steps = Script(), []

    def step(fn):
        fn()
        steps.append(m.take())

    step(lambda: (m.deposit(1, USD, 100_000_000, ref=1), m.deposit(2, BTC, 1_000_000, ref=1)))
    step(lambda: m.new(BTCUSD, 1, Side.BUY, P, 10, coid=77))                       # order 1
    step(lambda: m.trade(m.new(BTCUSD, 2, Side.SELL, P - 10_000, 4), 1, 4))       # 2 fills 1 partly
    step(lambda: m.trade(m.new(BTCUSD, 2, Side.SELL, P, 6), 1, 6))                # 3 fills 1 fully
    step(lambda: m.cancel(m.new(BTCUSD, 2, Side.SELL, P + 100_000, 5)))           # 4 cancelled
    step(lambda: m.modify(m.new(BTCUSD, 2, Side.SELL, P + 200_000, 5), P + 150_000, 3))  # 5
    step(lambda: (m.withdraw(1, USD, 1_000_000, ref=2), m.withdraw(1, USD, 10**12, ref=3),
                  m.query_balances(1, (USD, BTC, ETH), ref=4),
                  m.reject(BTCUSD, 1, RejectCode.INVALID_PRICE, price=0, qty=1)))
    return steps


def payloads(steps, first_batch=1):
    return [decode(encode(PayloadKind.EVENTS, 0, first_batch + i, ev, cmds))
            for i, (ev, cmds) in enumerate(steps)]


@pytest.fixture
def repo(db_url, market_config):
    r = open_repository(db_url, market_config)
    yield r
    r.close()


def _table(repo, sql):
    return [tuple(r.values()) for r in repo._fetch(sql)]


@pytest.mark.parametrize("grouping", ["one_group", "group_per_step"])
def test_should_store_exact_rows_for_a_session(repo, market_config, grouping):
    proj = Projector(market_config)
    ps = payloads(session_steps())
    for group in ([ps] if grouping == "one_group" else [[p] for p in ps]):
        repo.write(proj.project(group))

    trades = _table(repo, "SELECT symbol, seq, price, qty, notional, taker_order_id, "
                          "maker_order_id, taker_account, maker_account, taker_side, "
                          "taker_leaves, maker_leaves, taker_fee, maker_fee FROM trades "
                          "ORDER BY seq")
    # notional = price x qty x 1; fees: taker 5 bps, maker 1 bps, floored
    assert trades == [
        (0, 3, P, 4, 12_000_000, 2, 1, 2, 1, Side.SELL, 0, 6, 6_000, 1_200),
        (0, 6, P, 6, 18_000_000, 3, 1, 2, 1, Side.SELL, 0, 0, 9_000, 1_800),
    ]
    orders = _table(repo, "SELECT order_id, account, side, price, qty, leaves, filled, status, "
                          "reason, client_order_id, created_seq, updated_seq FROM orders "
                          "ORDER BY order_id")
    assert orders == [
        (1, 1, 0, P, 10, 0, 10, 3, 0, 77, 1, 7),
        (2, 2, 1, P - 10_000, 4, 0, 4, 3, 0, 0, 2, 3),
        (3, 2, 1, P, 6, 0, 6, 3, 0, 0, 5, 6),
        (4, 2, 1, P + 100_000, 5, 0, 0, 4, CancelReason.USER, 0, 8, 9),
        (5, 2, 1, P + 150_000, 5, 3, 0, 1, 0, 0, 10, 11),
    ]
    events = _table(repo, "SELECT seq, kind, order_id, qty, leaves, code FROM order_events "
                          "ORDER BY seq")
    assert events == [
        (1, EventKind.ACK, 1, 10, 10, 0), (2, EventKind.ACK, 2, 4, 4, 0),
        (5, EventKind.ACK, 3, 6, 6, 0), (8, EventKind.ACK, 4, 5, 5, 0),
        (9, EventKind.CANCELLED, 4, 5, 0, CancelReason.USER),
        (10, EventKind.ACK, 5, 5, 5, 0), (11, EventKind.MODIFIED, 5, 3, 3, 0),
        (12, EventKind.REJECT, 0, 1, 0, RejectCode.INVALID_PRICE),
    ]
    history = _table(repo, "SELECT seq, order_id, other_id, leaves, maker FROM order_history "
                           "WHERE kind = 3 ORDER BY seq")
    assert history == [(3, 2, 1, 0, 0), (4, 1, 2, 6, 1), (6, 3, 1, 0, 0), (7, 1, 3, 0, 1)]
    transfers = _table(repo, "SELECT account, asset, amount, kind, available FROM transfers "
                             "ORDER BY batch, idx")
    assert transfers == [(1, USD, 100_000_000, 5, 100_000_000), (2, BTC, 1_000_000, 5, 1_000_000),
                         (1, USD, -1_000_000, 6, 99_000_000)]
    balances = {(b["account"], b["asset_name"]): b["total"] for b in repo.balances()}
    assert balances == {
        (0, "USD"): 18_000,                                  # all four fees
        (1, "USD"): 100_000_000 - 30_003_000 - 1_000_000,    # paid notional + maker fees
        (1, "BTC"): 100_000,                                 # 10 lots x 10,000 sat
        (2, "USD"): 30_000_000 - 15_000,                     # received notional - taker fees
        (2, "BTC"): 900_000,
    }
    assert repo.last_batches() == {0: 7}


def test_should_conserve_every_asset_but_deposits_and_withdrawals(repo, market_config):
    from tests.storage.storage_events import fill_stream
    m = Script()
    for a in range(1, 30):
        m.deposit(a, USD, 10**12, ref=a)
        m.deposit(a, BTC, 10**10, ref=a + 100)
    fill_stream(500, script=m, accounts=30, seed=3)
    m.withdraw(5, USD, 123_456, ref=999)
    repo.write(Projector(market_config).project(payloads([m.take()])))
    totals = {}
    for b in repo.balances():
        totals[b["asset"]] = totals.get(b["asset"], 0) + b["total"]
    assert totals == {USD: 29 * 10**12 - 123_456, BTC: 29 * 10**10}
    fees = [b["total"] for b in repo.balances(account=0)]
    assert len(fees) == 1 and fees[0] > 0


def test_should_ignore_a_replayed_group(repo, market_config):
    proj = Projector(market_config)
    ps = payloads(session_steps())
    rows = proj.project(ps)
    repo.write(rows)
    before = {t: _table(repo, f"SELECT * FROM {t} ORDER BY 1, 2")
              for t in ("trades", "orders", "order_events", "transfers")}
    repo.write(rows)                        # the same group again: keys conflict, nothing moves
    repo.write(proj.project(ps[2:4]))       # and a partial replay
    after = {t: _table(repo, f"SELECT * FROM {t} ORDER BY 1, 2") for t in before}
    assert after == before


def test_should_manage_accounts_and_hashed_keys(repo):
    alice, bob = repo.add_account("alice"), repo.add_account("bob")
    assert (alice, bob) == (1, 2)
    key = repo.add_api_key(alice)
    assert key.startswith("rx_") and len(key) > 40
    assert repo.account_for_key(key) == alice
    assert repo.account_for_key(key + "x") is None
    stored = _table(repo, "SELECT key_hash FROM api_keys")
    assert stored == [(hash_key(key),)] and key not in str(stored)
    assert [(a["account_id"], a["name"], a["api_keys"]) for a in repo.list_accounts()] == [
        (0, "fees", 0), (1, "alice", 1), (2, "bob", 0)]
    with pytest.raises(StorageError, match="no account 99"):
        repo.add_api_key(99)


def test_should_answer_inspection_queries(repo, market_config):
    repo.write(Projector(market_config).project(payloads(session_steps())))
    last = repo.recent_trades("BTC-USD", last=1)
    assert [(t["seq"], t["qty"], t["taker_side"], t["symbol_name"]) for t in last] == [
        (6, 6, "sell", "BTC-USD")]
    assert [t["seq"] for t in repo.recent_trades()] == [6, 3]
    assert [o["order_id"] for o in repo.orders(account=2, status="filled")] == [2, 3]
    assert [(o["order_id"], o["status"]) for o in repo.orders(status="live")] == [(5, "open")]
    assert repo.orders(status="cancelled")[0]["reason"] == "user"
    assert [b["total"] for b in repo.balances(account=2)] == [29_985_000, 900_000]
    with pytest.raises(StorageError, match="unknown order status"):
        repo.orders(status="gone")


def test_should_refuse_a_config_that_changes_a_stored_symbol(db_url, market_config):
    from ringex.config import Config
    open_repository(db_url, market_config).close()
    other = Config.build({"USD": 6, "BTC": 8}, {"BTC-USD": {
        "base": "BTC", "quote": "USD", "tick": "0.01", "lot": "0.001",
        "min_price": "0.01", "max_price": "100000"}})
    with pytest.raises(StorageError, match="symbol 0 is stored as"):
        open_repository(db_url, other)


def _dump(repo):
    tables = ("trades", "orders", "order_changes", "transfers", "order_events")
    out = {t: _table(repo, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    return {**out, "meta": _table(repo, "SELECT producer, last_batch FROM meta")}


def test_should_store_the_same_rows_with_either_sqlite_write_path(tmp_path, market_config):
    from ringex.storage.sqlite_store import SqliteRepository
    from tests.storage.storage_events import fill_stream
    m = Script(first_order_id=100)
    fill_stream(600, script=m, symbol=1, seed=5)
    stream = payloads([*session_steps(), m.take()], first_batch=1)
    proj = Projector(market_config)
    dumps = []
    for bulk in ("image", "executemany"):
        repo = SqliteRepository(str(tmp_path / f"{bulk}.db"), bulk=bulk)
        repo.sync_config(market_config)
        for group in (stream[:3], stream[3:], stream[2:5]):     # the last one is a replay
            repo.write(proj.project(group))
        dumps.append(_dump(repo))
        repo.close()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["trades"]) == 602 and len(dumps[0]["order_events"]) == 8 + 750


def test_should_keep_each_ack_once_in_its_order_row(repo, market_config):
    proj = Projector(market_config)
    ps = payloads(session_steps())
    repo.write(proj.project(ps[:2]))                    # order 1's ACK (seq 1, coid 77)
    row = repo._fetch("SELECT * FROM orders WHERE order_id = 1")[0]
    assert (row["created_seq"], row["created_price"], row["created_ref"]) == (1, P, 0)
    assert row["created_ts_ns"] == ps[1].ts_ns
    assert _table(repo, "SELECT kind FROM order_changes") == []
    # an order first seen without its ACK (say the ACK's payload was lost) has no ACK event
    m = Script(first_order_id=50)
    maker = m.new(BTCUSD, 3, Side.SELL, P, 2)
    m.take()
    m.seq[BTCUSD] = 100
    m.trade(m.new(BTCUSD, 4, Side.BUY, P, 2), maker, 2)
    repo.write(proj.project(payloads([m.take()], first_batch=20)))
    row = repo._fetch("SELECT created_seq, qty, filled, status FROM orders "
                      "WHERE order_id = 50")[0]
    assert row == {"created_seq": 0, "qty": 2, "filled": 2, "status": 3}
    assert _table(repo, "SELECT order_id, seq FROM order_events WHERE order_id >= 50") == [
        (51, 101)]
    assert repo.last_sequences() == {BTCUSD: 103}
    assert repo.last_order_id() == 51


def test_should_refuse_a_database_of_the_older_schema(db_url):
    import psycopg
    import sqlite3
    ddl = "CREATE TABLE order_events (symbol BIGINT, seq BIGINT)"
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute(ddl)
    else:
        with sqlite3.connect(db_url) as c:
            c.execute(ddl)
    with pytest.raises(StorageError, match="older ringex"):
        open_repository(db_url)
