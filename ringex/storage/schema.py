"""The storage schema, defined once for SQLite and PostgreSQL (documented in docs/storage.md).

Every amount is an integer: prices in ticks, quantities in lots, money in an asset's minor
units. ``INT`` is SQLite ``INTEGER`` / PostgreSQL ``BIGINT``. Row arrays that the projection
builds for the hot tables use ``row_dtype(table)``: one ``<i8`` field per column, in order.
``VIEWS`` are integer views over the tables; ``readable_views(dialect)`` the same rows
with names, exact decimal strings and enum words (``trades_view``, ``orders_view``, ...).
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
    # the text of each long client id (9-36 chars; its key in orders is negative), from
    # the engine's CLIENT_ID events; short ids are their own key and need no row
    _t("client_ids", ["account", "client_order_id", ("client_text", TEXT)],
       ["account", "client_order_id"]),
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


# ---------------------------------------------------------------- readable views
# Beside the integer tables, the same rows for people: symbol, asset and account names,
# exact decimal strings (price, qty, money) and enum words. Defined once for both
# databases; the few functions that differ (a timestamp as text, a character from its
# code) come from DIALECTS. Everything is integer arithmetic and text: no float anywhere.
# Steps come from the stored config (symbols.tick/lot, plain decimal text, and
# assets.scale): a price is ticks x the tick's digits, shown with the tick's decimals,
# exactly as on the wire (ringex.units.Step).

def _pow10(digits: str) -> str:
    """10^digits as an integer (digits: an SQL expression, 0..18)."""
    return f"CAST('1' || substr('000000000000000000', 1, CAST({digits} AS INTEGER)) AS BIGINT)"


def _step_decimals(step: str) -> str:
    """Decimals of a plain decimal text (``'0.01'`` -> 2, ``'5'`` -> 0): what follows the
    point, which rtrim of the digits leaves as the last character kept."""
    kept = f"rtrim({step}, '0123456789')"
    return f"(CASE WHEN {kept} = '' THEN 0 ELSE length({step}) - length({kept}) END)"


def _step_digits(step: str) -> str:
    """The digits of a plain decimal text as an integer (``'0.05'`` -> 5)."""
    return f"CAST(replace({step}, '.', '') AS BIGINT)"


def decimal_text(value: str, div: str) -> str:
    """SQL: the integer ``value`` / ``div`` (a power of ten) as a plain decimal string with
    exactly log10(div) decimals (``-1250``, ``100`` -> ``'-12.50'``), as ``Step.format``."""
    mag = f"abs({value})"
    return (f"(CASE WHEN {value} < 0 THEN '-' ELSE '' END || CAST({mag} / {div} AS TEXT) || "
            f"CASE WHEN {div} > 1 THEN '.' || substr(CAST({div} + {mag} % {div} AS TEXT), 2) "
            "ELSE '' END)")


def _words(value: str, words: dict[int, str]) -> str:
    """SQL: the word for an enum number; a number without one is shown as digits."""
    cases = " ".join(f"WHEN {int(k)} THEN '{w}'" for k, w in words.items())
    return f"(CASE {value} {cases} ELSE CAST({value} AS TEXT) END)"


DIALECTS = {
    # ts_ns -> ISO 8601 UTC with nanoseconds; whole seconds through the date functions
    # (exact), the fraction as integer text
    "sqlite": {"utc_seconds": "strftime('%Y-%m-%dT%H:%M:%S', {} / 1000000000, 'unixepoch')",
               "char": "char({})"},
    "postgresql": {"utc_seconds": "to_char(to_timestamp({} / 1000000000) AT TIME ZONE 'UTC', "
                                  "'YYYY-MM-DD\"T\"HH24:MI:SS')",
                   "char": "chr(CAST({} AS INTEGER))"},
}


def _utc(d: dict, ts: str) -> str:
    return (f"({d['utc_seconds'].format(ts)} || '.' || "
            f"substr(CAST(1000000000 + {ts} % 1000000000 AS TEXT), 2) || 'Z')")


def _client_id(d: dict, value: str) -> str:
    """SQL: a stored short client_order_id (big-endian ASCII bytes,
    ringex.protocol.client_ids) as its text; NULL for 0 (none) and for long ids (negative:
    their text is in ``client_ids``)."""
    chars = []
    for k in range(8):
        byte = f"(({value} >> {8 * (7 - k)}) & 255)"
        chars.append(f"CASE WHEN {byte} > 0 THEN {d['char'].format(byte)} ELSE '' END")
    return f"(CASE WHEN {value} > 0 THEN {' || '.join(chars)} END)"


def _long_id_join(account: str, key: str) -> str:
    """SQL: the ``client_ids`` row (alias ``c``) of a long client id's key, if any."""
    return (f"LEFT JOIN client_ids c ON {key} < 0 AND c.account = {account} "
            f"AND c.client_order_id = {key}")


def readable_views(dialect: str) -> dict[str, str]:
    """name -> SELECT of the readable views, in creation order (later ones use earlier
    ones); ``dialect``: "sqlite" or "postgresql". docs/storage.md lists their columns."""
    from ringex.protocol.codes import CANCEL_REASONS, REJECT_CODES     # the wire's words
    from ringex.records import CommandKind, EventKind, Side

    d = DIALECTS[dialect]
    side = {int(s): s.name.lower() for s in Side}
    status = {int(s): s.name.lower() for s in OrderStatus}
    kinds = {int(k): k.name.lower() for k in (EventKind.ACK, EventKind.REJECT, EventKind.FILL,
                                              EventKind.CANCELLED, EventKind.MODIFIED)}
    transfers = {int(k): k.name.lower() for k in (CommandKind.DEPOSIT, CommandKind.WITHDRAW)}
    fill = int(EventKind.FILL)
    # an event's client id: a fill's from its order (the FILL carries the counter order)
    cid = f"(CASE WHEN e.kind = {fill} THEN COALESCE(o.client_order_id, 0) ELSE e.other_id END)"

    def price(v: str, s: str = "s") -> str:
        return decimal_text(f"{v} * {s}.price_digits", f"{s}.price_div")

    def qty(v: str, s: str = "s") -> str:
        return decimal_text(f"{v} * {s}.qty_digits", f"{s}.qty_div")

    def quote(v: str, s: str = "s") -> str:
        return decimal_text(v, f"{s}.quote_div")

    def reason(kind: str, code: str) -> str:
        return (f"(CASE WHEN {kind} = {int(EventKind.CANCELLED)} THEN "
                f"{_words(code, CANCEL_REASONS)} WHEN {kind} = {int(EventKind.REJECT)} "
                f"THEN {_words(code, REJECT_CODES)} END)")

    return {
        # one row per asset: its name and 10^scale (money = minor units / div)
        "asset_steps": f"""
SELECT asset_id, name AS asset, scale, {_pow10('scale')} AS div FROM assets""",
        # one row per symbol: price = ticks x price_digits / price_div (the tick's digits
        # and decimals), qty = lots x qty_digits / qty_div; quote and base money divisors
        "symbol_steps": f"""
SELECT y.symbol_id, y.name AS symbol, b.asset AS base, q.asset AS quote, y.tick, y.lot,
       {_step_digits('y.tick')} AS price_digits, {_pow10(_step_decimals('y.tick'))} AS price_div,
       {_step_digits('y.lot')} AS qty_digits, {_pow10(_step_decimals('y.lot'))} AS qty_div,
       b.div AS base_div, q.div AS quote_div
  FROM symbols y JOIN asset_steps b ON b.asset_id = y.base_asset
  JOIN asset_steps q ON q.asset_id = y.quote_asset""",
        "trades_view": f"""
SELECT s.symbol, t.seq, {_utc(d, 't.ts_ns')} AS time, {price('t.price')} AS price,
       {qty('t.qty')} AS qty, {quote('t.notional')} AS notional, s.quote AS quote_asset,
       {_words('t.taker_side', side)} AS taker_side,
       t.taker_order_id, t.taker_account, ta.name AS taker_name,
       {quote('t.taker_fee')} AS taker_fee, {qty('t.taker_leaves')} AS taker_leaves,
       t.maker_order_id, t.maker_account, ma.name AS maker_name,
       {quote('t.maker_fee')} AS maker_fee, {qty('t.maker_leaves')} AS maker_leaves, t.ts_ns
  FROM trades t JOIN symbol_steps s ON s.symbol_id = t.symbol
  LEFT JOIN accounts ta ON ta.account_id = t.taker_account
  LEFT JOIN accounts ma ON ma.account_id = t.maker_account""",
        "orders_view": f"""
SELECT o.order_id, s.symbol, o.account, a.name AS account_name,
       {_words('o.side', side)} AS side,
       CASE WHEN o.price = 0 THEN 'market' ELSE 'limit' END AS type,
       CASE WHEN o.price = 0 THEN NULL ELSE {price('o.price')} END AS price,
       {qty('o.qty')} AS qty, {qty('o.leaves')} AS leaves, {qty('o.filled')} AS filled,
       {_words('o.status', status)} AS status,
       CASE WHEN o.reason = 0 THEN NULL ELSE {_words('o.reason', CANCEL_REASONS)} END AS reason,
       COALESCE(c.client_text, {_client_id(d, 'o.client_order_id')}) AS client_order_id,
       CASE WHEN o.created_seq > 0 THEN {_utc(d, 'o.created_ts_ns')} END AS created_time,
       o.created_seq, o.updated_seq, o.session
  FROM orders o JOIN symbol_steps s ON s.symbol_id = o.symbol
  LEFT JOIN accounts a ON a.account_id = o.account
  {_long_id_join('o.account', 'o.client_order_id')}""",
        # every order event, fills included (order_history with words and times)
        "order_history_view": f"""
SELECT s.symbol, e.seq, {_utc(d, 'e.ts_ns')} AS time, {_words('e.kind', kinds)} AS kind,
       e.order_id, e.account, a.name AS account_name, {_words('e.side', side)} AS side,
       CASE WHEN e.price = 0 THEN NULL ELSE {price('e.price')} END AS price,
       {qty('e.qty')} AS qty, {qty('e.leaves')} AS leaves, {reason('e.kind', 'e.code')} AS reason,
       CASE WHEN e.kind <> {fill} THEN NULL WHEN e.maker = 1 THEN 'maker'
            ELSE 'taker' END AS liquidity,
       COALESCE(c.client_text, {_client_id(d, cid)}) AS client_order_id,
       CASE WHEN e.kind = {fill} THEN e.other_id END AS counter_order_id,
       e.ts_ns
  FROM (SELECT symbol, seq, kind, order_id, account, side, price, qty, leaves, code,
               client_order_id AS other_id, CAST(0 AS BIGINT) AS maker, ts_ns
          FROM order_events
        UNION ALL SELECT symbol, seq, CAST({fill} AS BIGINT), taker_order_id, taker_account,
                         taker_side, price, qty, taker_leaves, CAST(0 AS BIGINT),
                         maker_order_id, CAST(0 AS BIGINT), ts_ns
          FROM trades
        UNION ALL SELECT symbol, seq + 1, CAST({fill} AS BIGINT), maker_order_id, maker_account,
                         1 - taker_side, price, qty, maker_leaves, CAST(0 AS BIGINT),
                         taker_order_id, CAST(1 AS BIGINT), ts_ns
          FROM trades) e
  JOIN symbol_steps s ON s.symbol_id = e.symbol
  LEFT JOIN accounts a ON a.account_id = e.account
  LEFT JOIN orders o ON o.order_id = e.order_id AND e.kind = {fill}
  {_long_id_join('e.account', cid)}""",
        "transfers_view": f"""
SELECT {_utc(d, 't.ts_ns')} AS time, t.account, a.name AS account_name,
       {_words('t.kind', transfers)} AS kind, x.asset,
       {decimal_text('t.amount', 'x.div')} AS amount,
       {decimal_text('t.available', 'x.div')} AS available,
       {decimal_text('t.locked', 'x.div')} AS locked,
       t.session, t.ref, t.producer, t.batch, t.idx, t.ts_ns
  FROM transfers t JOIN asset_steps x ON x.asset_id = t.asset
  LEFT JOIN accounts a ON a.account_id = t.account""",
        # totals (available + locked) per account and asset: the sum of the ledger
        "balances_view": f"""
SELECT b.account, a.name AS account_name, x.asset, {decimal_text('b.total', 'x.div')} AS total
  FROM (SELECT account, asset, CAST(SUM(amount) AS BIGINT) AS total FROM ledger
         GROUP BY account, asset) b
  JOIN asset_steps x ON x.asset_id = b.asset
  LEFT JOIN accounts a ON a.account_id = b.account""",
    }
