"""The storage schema, defined once for SQLite and PostgreSQL (documented in docs/storage.md).

Every amount is an integer: prices in ticks, quantities in lots, money in an asset's minor
units. ``INT`` is SQLite ``INTEGER`` / PostgreSQL ``BIGINT``. Row arrays that the projection
builds for the hot tables use ``row_dtype(table)``: one ``<i8`` field per column, in order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

INT, TEXT, BLOB = "int", "text", "blob"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    pk: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


def _t(name, cols, pk, indexes=()):
    cols = tuple((c, INT) if isinstance(c, str) else c for c in cols)
    return Table(name, cols, tuple(pk), tuple(tuple(i) for i in indexes))


TABLES = {t.name: t for t in (
    _t("assets", ["asset_id", ("name", TEXT), "scale"], ["asset_id"]),
    _t("symbols", ["symbol_id", ("name", TEXT), "base_asset", "quote_asset", ("tick", TEXT),
                   ("lot", TEXT), "tick_lot_value", "lot_units", "maker_fee_bps",
                   "taker_fee_bps"], ["symbol_id"]),
    _t("orders", ["order_id", "symbol", "account", "side", "price", "qty", "leaves", "filled",
                  "status", "reason", "client_order_id", "session", "created_seq",
                  "updated_seq", "created_price", "created_ref", "created_ts_ns"],
       ["order_id"]),
    _t("order_changes", ["symbol", "seq", "kind", "order_id", "account", "side", "price",
                         "qty", "leaves", "code", "client_order_id", "session", "ref", "ts_ns"],
       ["symbol", "seq"]),
    _t("trades", ["symbol", "seq", "price", "qty", "notional", "taker_order_id",
                  "maker_order_id", "taker_account", "maker_account", "taker_side",
                  "taker_leaves", "maker_leaves", "taker_fee", "maker_fee", "ts_ns"],
       ["symbol", "seq"]),
    _t("transfers", ["producer", "batch", "idx", "account", "asset", "amount", "kind",
                     "available", "locked", "session", "ref", "ts_ns"],
       ["producer", "batch", "idx"],
       [("account", "asset")]),
    _t("audit", ["producer", "batch", "idx", "ts_ns", "session", "account", "kind", "code",
                 ("addr", TEXT), "port"], ["producer", "batch", "idx"]),
    _t("meta", ["producer", "last_batch", "updated_ns"], ["producer"]),
    _t("accounts", ["account_id", ("name", TEXT), ("created_at", TEXT)], ["account_id"]),
    _t("api_keys", [("key_hash", TEXT), "account_id", ("created_at", TEXT)], ["key_hash"],
       [("account_id",)]),
    _t("dead_letters", ["producer", "batch", ("reason", TEXT), ("payload", BLOB)],
       ["producer", "batch"]),
)}

# Insert-only tables with natural keys (a replay conflicts and is ignored).
APPEND_ONLY = ("trades", "order_changes", "transfers")


def row_dtype(table: str) -> np.dtype:
    """Packed int64 record with one field per column (hot, all-integer tables only)."""
    t = TABLES[table]
    assert all(k == INT for _, k in t.columns), table
    return np.dtype([(c, "<i8") for c in t.column_names])


class OrderStatus(IntEnum):
    OPEN = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4


# How a group's row for an order meets the stored one (both stores append it to an INSERT
# of the new rows): static columns only on first sight; `filled` accumulates; the later
# event (higher updated_seq) wins; status FILLED/CANCELLED is final, else recomputed.
ORDERS_ON_CONFLICT = f"""ON CONFLICT (order_id) DO UPDATE SET
  price = excluded.price, leaves = excluded.leaves,
  filled = orders.filled + excluded.filled,
  status = CASE WHEN excluded.status IN ({OrderStatus.FILLED:d}, {OrderStatus.CANCELLED:d})
                THEN excluded.status
                WHEN orders.filled + excluded.filled > 0 THEN {OrderStatus.PARTIALLY_FILLED:d}
                ELSE {OrderStatus.OPEN:d} END,
  reason = excluded.reason, updated_seq = excluded.updated_seq
  WHERE excluded.updated_seq > orders.updated_seq"""


# Ledger: stored transfers plus the five balance changes every trade implies. Deriving the
# fill entries from `trades` (which stores notional and both fees) writes 1 row per match
# instead of 6 and loses nothing. side 0 = buy; the buyer pays its own fee in quote.
_BUYER = "CASE WHEN t.taker_side = 0 THEN t.taker_account ELSE t.maker_account END"
_SELLER = "CASE WHEN t.taker_side = 0 THEN t.maker_account ELSE t.taker_account END"
_BUYER_FEE = "CASE WHEN t.taker_side = 0 THEN t.taker_fee ELSE t.maker_fee END"
_SELLER_FEE = "CASE WHEN t.taker_side = 0 THEN t.maker_fee ELSE t.taker_fee END"
_FROM = "FROM trades t JOIN symbols s ON s.symbol_id = t.symbol"

VIEWS = {
    # every sequenced order event but fills: each order's ACK is stored once, in its `orders`
    # row (created_* columns; created_seq 0 when the writer never saw the ACK), the other
    # kinds in `order_changes`. Same columns and rows as the table it replaced.
    "order_events": """
SELECT symbol, created_seq AS seq, CAST(1 AS BIGINT) AS kind, order_id, account, side,
       created_price AS price, qty, qty AS leaves, CAST(0 AS BIGINT) AS code,
       client_order_id, session, created_ref AS ref, created_ts_ns AS ts_ns
  FROM orders WHERE created_seq > 0
UNION ALL SELECT symbol, seq, kind, order_id, account, side, price, qty, leaves, code,
                 client_order_id, session, ref, ts_ns
  FROM order_changes""",
    "ledger": f"""
SELECT CASE WHEN kind = 5 THEN 'deposit' ELSE 'withdraw' END AS entry,
       CAST(NULL AS BIGINT) AS symbol, CAST(0 AS BIGINT) AS seq, account, asset, amount
  FROM transfers
UNION ALL SELECT 'trade', t.symbol, t.seq, {_BUYER}, s.base_asset, t.qty * s.lot_units {_FROM}
UNION ALL SELECT 'trade', t.symbol, t.seq, {_BUYER}, s.quote_asset,
                 -(t.notional + {_BUYER_FEE}) {_FROM}
UNION ALL SELECT 'trade', t.symbol, t.seq, {_SELLER}, s.base_asset, -(t.qty * s.lot_units) {_FROM}
UNION ALL SELECT 'trade', t.symbol, t.seq, {_SELLER}, s.quote_asset,
                 t.notional - {_SELLER_FEE} {_FROM}
UNION ALL SELECT 'fee', t.symbol, t.seq, CAST(0 AS BIGINT), s.quote_asset,
                 t.taker_fee + t.maker_fee {_FROM}""",
    # every order event keyed by (symbol, seq): order_events plus both FILLs of each trade
    # (taker at seq, maker at seq + 1; other_id = counter order id as in the EVENT record)
    "order_history": """
SELECT symbol, seq, kind, order_id, account, side, price, qty, leaves, code,
       client_order_id AS other_id, CAST(0 AS BIGINT) AS maker
  FROM order_events
UNION ALL SELECT symbol, seq, CAST(3 AS BIGINT), taker_order_id, taker_account, taker_side,
                 price, qty, taker_leaves, CAST(0 AS BIGINT), maker_order_id, CAST(0 AS BIGINT)
  FROM trades
UNION ALL SELECT symbol, seq + 1, CAST(3 AS BIGINT), maker_order_id, maker_account,
                 1 - taker_side, price, qty, maker_leaves, CAST(0 AS BIGINT), taker_order_id,
                 CAST(1 AS BIGINT)
  FROM trades""",
}
