"""What the gateway asks the database for one account (``order_status`` and
``my_trades``, docs/protocol.md): rows as stored, integers, for the wire to format."""
from __future__ import annotations

from ringex.storage.repository import Repository


def stored_order(repo: Repository, account: int, order_id: int | None = None,
                 client_order_id: int | None = None) -> dict | None:
    """The account's order by id, or its newest one with the (packed) client order id."""
    if order_id is not None:
        rows = repo._fetch("SELECT * FROM orders WHERE order_id = ? AND account = ?",
                           (order_id, account))
    else:
        rows = repo._fetch("SELECT * FROM orders WHERE account = ? AND client_order_id = ? "
                           "ORDER BY order_id DESC LIMIT 1", (account, client_order_id))
    return rows[0] if rows else None


def client_texts(repo: Repository, account: int, keys: list[int]) -> dict[int, str]:
    """The stored texts of the account's long client ids ``keys`` (those found)."""
    if not keys:
        return {}
    rows = repo._fetch(f"SELECT client_order_id, client_text FROM client_ids WHERE "
                       f"account = ? AND client_order_id IN ({', '.join('?' * len(keys))})",
                       (account, *keys))
    return {r["client_order_id"]: r["client_text"] for r in rows}


def account_trades(repo: Repository, account: int, symbol: int, from_id: int = 0,
                   since_ns: int = 0, limit: int = 100) -> list[dict]:
    """The account's trades in one symbol (either side), oldest first: trade id (the
    taker FILL's seq) at least ``from_id`` and stored at ``since_ns`` or later."""
    return repo._fetch(
        "SELECT * FROM trades WHERE symbol = ? AND seq >= ? AND ts_ns >= ? "
        "AND (taker_account = ? OR maker_account = ?) ORDER BY seq LIMIT ?",
        (symbol, from_id, since_ns, account, account, limit))
