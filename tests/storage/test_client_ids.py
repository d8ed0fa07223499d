"""Long client ids in the database (docs/storage.md, ``client_ids``): the writer stores
each text once from the engine's CLIENT_ID events, the readable views and ``repo.orders``
show it exactly, and a version 2 database is migrated to hold them, in SQLite and
PostgreSQL alike."""
from __future__ import annotations

from ringex.records import Side
from ringex.storage.projection import Projector
from ringex.storage.stores import open_repository
from tests.storage.storage_events import Script
from tests.storage.test_repository import payloads

UUID = "7f0c2a3e-5b1d-4c8e-9a6f-0d2b4e6c8a1f"
BTCUSD, USD = 0, 0
P = 3_000_000


def long_id_steps() -> list:
    """Account 1 rests a buy with a 36-char id; account 2 sells into it (a fill); the same
    text for account 2 is another account's id (its own row)."""
    m, out = Script(), []
    key = m.client_id(1, UUID, ref=7)
    maker = m.new(BTCUSD, 1, Side.BUY, P, 10, coid=key, ref=7)
    out.append(m.take())
    m.client_id(2, UUID)
    m.trade(m.new(BTCUSD, 2, Side.SELL, 0, 4, coid=key), maker, 4)
    out.append(m.take())
    return out


def test_the_writer_stores_each_long_client_id_once(db_url, market_config):
    with open_repository(db_url, market_config) as repo:
        rows = Projector(market_config).project(payloads(long_id_steps()))
        assert [r[0] for r in rows.client_ids] == [1, 2]
        repo.write(rows)
        repo.write(rows)                              # a replay adds nothing
        got = repo._fetch("SELECT account, client_order_id, client_text FROM client_ids "
                          "ORDER BY account")
    key = got[0]["client_order_id"]
    assert key < 0 and got == [{"account": 1, "client_order_id": key, "client_text": UUID},
                               {"account": 2, "client_order_id": key, "client_text": UUID}]


def test_the_readable_views_show_a_long_client_id_exactly(db_url, market_config):
    with open_repository(db_url, market_config) as repo:
        repo.write(Projector(market_config).project(payloads(long_id_steps())))
        orders = repo._fetch("SELECT order_id, client_order_id FROM orders_view "
                             "ORDER BY order_id")
        history = repo._fetch("SELECT kind, order_id, client_order_id FROM "
                              "order_history_view ORDER BY seq")
    assert orders == [{"order_id": 1, "client_order_id": UUID},
                      {"order_id": 2, "client_order_id": UUID}]
    assert [tuple(r.values()) for r in history] == [
        ("ack", 1, UUID), ("ack", 2, UUID), ("fill", 2, UUID), ("fill", 1, UUID)]


def test_ringex_orders_rows_carry_the_client_id_text(db_url, market_config):
    with open_repository(db_url, market_config) as repo:
        repo.write(Projector(market_config).project(payloads(long_id_steps())))
        assert [o["client_order_text"] for o in repo.orders()] == [UUID, UUID]


def test_a_version_2_database_gets_the_client_ids_table_and_views(db_url, market_config):
    with open_repository(db_url, market_config) as repo:
        repo._fetch("DROP VIEW order_history_view")
        repo._fetch("DROP VIEW orders_view")
        repo._fetch("CREATE VIEW orders_view AS SELECT order_id FROM orders")  # any older one
        repo._fetch("DROP TABLE client_ids")
        repo._fetch("DELETE FROM schema_version WHERE version = 3")       # a new one has
        repo._fetch("INSERT INTO schema_version (version, migrated_at) "   # only its own
                    "VALUES (2, 'before')")
    with open_repository(db_url, market_config) as repo:
        assert repo.migrated == [3]
        repo.write(Projector(market_config).project(payloads(long_id_steps())))
        assert [r["client_order_id"] for r in repo._fetch(
            "SELECT client_order_id FROM orders_view ORDER BY order_id")] == [UUID, UUID]
