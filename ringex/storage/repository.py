"""The repository: one API over SQLite (embedded default) and PostgreSQL.

    repo = open_repository("ringex.db")     # ringex.storage.stores: SQLite file, or
    repo = open_repository("postgresql://user@host:5432/db")    # PostgreSQL
    repo.sync_config(config)       # assets/symbols rows (the ledger view needs them)
    repo.write(rows)               # the writer: one group, one transaction, idempotent
    repo.add_account("alice") -> 1;  repo.add_api_key(1) -> "rx_..." (shown once)
    repo.account_for_key(key) -> 1 | None;  repo.has_account(1);  repo.list_accounts()
    repo.recent_trades(symbol=None, last=20)
    repo.orders(account=None, status=None, symbol=None, last=None); repo.balances(account=None)
    open_repository(url, readonly=True)                   # inspection: no writes at all
    repo.last_sequences() -> {symbol: seq}; repo.last_order_id()   # where an engine continues

The backends differ only in how they connect, create the schema and bulk-write; every
query here is written once with ``?`` placeholders. Errors of the database surface as the
driver's own exceptions on ``write`` (the writer retries them) and as ``StorageError``
for misuse (unknown account, config that contradicts stored symbols).
"""
from __future__ import annotations

import hashlib
import json
import heapq
import secrets
from abc import ABC, abstractmethod
from datetime import datetime, timezone

from ringex.config import Config, Symbol
from ringex.errors import StorageError
from ringex.protocol.client_ids import unpack_client_id
from ringex.storage.projection import Rows
from ringex.storage.schema import OrderStatus
from ringex.records import CancelReason, Side

API_KEY_PREFIX = "rx_"


def hash_key(key: str) -> str:
    """What api_keys stores: sha256 hex of the key (keys are 256-bit random, so no KDF)."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_account_name(name: object) -> None:
    """StorageError unless ``name`` can name a new account (not empty, not only spaces);
    ``add_account`` also refuses a name another account has."""
    if type(name) is not str or not name.strip():
        raise StorageError("an account name must not be empty")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Repository(ABC):
    url: str

    # ------------------------------------------------------------ backend primitives
    @abstractmethod
    def _fetch(self, sql: str, params: tuple = ()) -> list[dict]:
        """Run one statement with ``?`` placeholders in its own transaction; rows as dicts."""

    @abstractmethod
    def write(self, rows: Rows, prepared=None) -> None:
        """Write one group in one transaction; rows already stored are left alone.

        ``prepared``: what ``prepare(rows)`` returned, if it was called (the writer calls
        it for the next group while this one is written)."""

    def prepare(self, rows: Rows):
        """The connection-free, CPU-bound part of ``write(rows)`` (encoding the rows)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ config and meta
    def sync_config(self, config: Config) -> None:
        """Insert assets and symbols; refuse a config that changes a stored one's meaning."""
        for a in config.assets:
            self._fetch("INSERT INTO assets (asset_id, name, scale) VALUES (?, ?, ?) "
                        "ON CONFLICT (asset_id) DO NOTHING", (a.id, a.name, a.scale))
        for s in config.symbols:
            self._fetch(
                "INSERT INTO symbols (symbol_id, name, base_asset, quote_asset, tick, lot, "
                "tick_lot_value, lot_units, maker_fee_bps, taker_fee_bps) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (symbol_id) DO NOTHING",
                (s.id, s.name, s.base.id, s.quote.id, *_steps_text(s),
                 s.tick_lot_value, s.lot_units, s.maker_fee_bps, s.taker_fee_bps))
        self.check_config(config)
        # tick and lot as plain text, spelled as the config does (its decimals are the
        # wire's and the readable views'): a stored "1E+1" or "0.010" of the same value
        # (check_config: same tick_lot_value and lot_units) is respelled
        for s in config.symbols:
            tick, lot = _steps_text(s)
            self._fetch("UPDATE symbols SET tick = ?, lot = ? WHERE symbol_id = ? AND "
                        "(tick <> ? OR lot <> ?)", (tick, lot, s.id, tick, lot))

    def check_config(self, config: Config) -> None:
        """Refuse a config that reads stored rows differently (reads only).

        A symbol both stored and configured must agree on name, base, quote,
        tick_lot_value and lot_units; an asset on name and scale. Stored symbols the config
        no longer lists, and configured ones not stored yet, are fine.
        """
        stored = {r["symbol_id"]: r for r in self._fetch("SELECT * FROM symbols")}
        for s in config.symbols:
            r = stored.get(s.id)
            if r is None:
                continue
            want = (s.name, s.base.id, s.quote.id, s.tick_lot_value, s.lot_units)
            have = (r["name"], r["base_asset"], r["quote_asset"], r["tick_lot_value"],
                    r["lot_units"])
            if want != have:
                raise StorageError(f"{self.url}: symbol {s.id} is stored as {have} "
                                   f"(name, base, quote, tick_lot_value, lot_units) but the "
                                   f"config says {want}; stored trades would be misread")
        stored_assets = {r["asset_id"]: (r["name"], r["scale"])
                         for r in self._fetch("SELECT asset_id, name, scale FROM assets")}
        for a in config.assets:
            have_asset = stored_assets.get(a.id)
            if have_asset is not None and have_asset != (a.name, a.scale):
                raise StorageError(f"{self.url}: asset {a.id} is stored as {have_asset} "
                                   f"(name, scale) but the config says {(a.name, a.scale)}; "
                                   "stored amounts would be misread")

    def last_sequences(self) -> dict[int, int]:
        """Highest stored seq per symbol (a trade's maker FILL is its seq + 1): an engine
        that restarts from the database continues after these."""
        out: dict[int, int] = {}
        for sql in ("SELECT symbol, MAX(seq) + 1 AS seq FROM trades GROUP BY symbol",
                    "SELECT symbol, MAX(seq) AS seq FROM order_changes GROUP BY symbol",
                    "SELECT symbol, MAX(updated_seq) AS seq FROM orders GROUP BY symbol"):
            for r in self._fetch(sql):
                out[r["symbol"]] = max(out.get(r["symbol"], 0), int(r["seq"]))
        return out

    def last_order_id(self) -> int:
        """Highest stored order id (0 if none)."""
        return int(self._fetch("SELECT MAX(order_id) AS m FROM orders")[0]["m"] or 0)

    def last_batches(self) -> dict[int, int]:
        """Last committed batch number per producer (the writer skips anything at or below)."""
        return {r["producer"]: r["last_batch"]
                for r in self._fetch("SELECT producer, last_batch FROM meta")}

    # ------------------------------------------------------------ accounts and keys
    def add_account(self, name: str) -> int:
        """A new account named ``name``: StorageError for a blank name or one an account
        has already (the check and the insert are one statement)."""
        check_account_name(name)
        rows = self._fetch("INSERT INTO accounts (name, created_at) SELECT ?, ? WHERE NOT "
                           "EXISTS (SELECT 1 FROM accounts WHERE name = ?) "
                           "RETURNING account_id", (name, _now(), name))
        if not rows:
            (have,) = self._fetch("SELECT MIN(account_id) AS a FROM accounts WHERE name = ?",
                                  (name,))
            raise StorageError(f"an account named {json.dumps(name)} exists already "
                               f"(account {have['a']})")
        return int(rows[0]["account_id"])

    def has_account(self, account_id: int) -> bool:
        """Whether the account exists (accounts are never removed)."""
        return bool(self._fetch("SELECT 1 AS x FROM accounts WHERE account_id = ?",
                                (account_id,)))

    def add_api_key(self, account_id: int) -> str:
        """A new API key for the account; only its hash is stored, so this is the only copy."""
        if not self.has_account(account_id):
            raise StorageError(f"no account {account_id}")
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        self._fetch("INSERT INTO api_keys (key_hash, account_id, created_at) VALUES (?, ?, ?)",
                    (hash_key(key), account_id, _now()))
        return key

    def account_for_key(self, key: str) -> int | None:
        rows = self._fetch("SELECT account_id FROM api_keys WHERE key_hash = ?",
                           (hash_key(key),))
        return int(rows[0]["account_id"]) if rows else None

    def list_accounts(self) -> list[dict]:
        return self._fetch(
            "SELECT a.account_id, a.name, a.created_at, "
            "(SELECT COUNT(*) FROM api_keys k WHERE k.account_id = a.account_id) AS api_keys "
            "FROM accounts a ORDER BY a.account_id")

    # ------------------------------------------------------------ inspection (CLI)
    def _symbol_names(self) -> dict[int, str]:
        rows = self._fetch("SELECT symbol_id, name FROM symbols")
        return {r["symbol_id"]: r["name"] for r in rows}

    def _symbol_id(self, symbol: int | str) -> int:
        if isinstance(symbol, int):
            return symbol
        rows = self._fetch("SELECT symbol_id FROM symbols WHERE name = ?", (symbol,))
        if not rows:
            raise StorageError(f"unknown symbol {symbol!r}")
        return int(rows[0]["symbol_id"])

    def recent_trades(self, symbol: int | str | None = None, last: int = 20) -> list[dict]:
        """The newest ``last`` trades (of one symbol, or of all, newest first by time).

        Integers as stored (price in ticks, qty in lots, notional/fees in quote minor units),
        plus ``symbol_name`` and ``taker_side`` as "buy"/"sell".
        """
        names = self._symbol_names()
        ids = [self._symbol_id(symbol)] if symbol is not None else sorted(names)
        per_symbol = [self._fetch("SELECT * FROM trades WHERE symbol = ? "
                                  "ORDER BY seq DESC LIMIT ?", (sid, last)) for sid in ids]
        rows = heapq.merge(*per_symbol, key=lambda r: (-r["ts_ns"], -r["seq"]))
        out: list[dict] = []
        for r in rows:
            if len(out) == last:
                break
            r["symbol_name"] = names.get(r["symbol"], str(r["symbol"]))
            r["taker_side"] = Side(r["taker_side"]).name.lower()
            out.append(r)
        return out

    def orders(self, account: int | None = None, status: str | OrderStatus | None = None,
               symbol: int | str | None = None, last: int | None = None) -> list[dict]:
        """Orders (current state), oldest first (the newest ``last`` when given); ``status``
        is a name ("open", "partially_filled", "filled", "cancelled"), "live" (open or
        partially filled) or an OrderStatus. ``client_order_text`` is the client id as
        the client sent it (None: none)."""
        where, params = [], []
        if account is not None:
            where.append("account = ?")
            params.append(account)
        if status is not None:
            codes = _status_codes(status)
            where.append(f"status IN ({', '.join('?' * len(codes))})")
            params.extend(codes)
        if symbol is not None:
            where.append("symbol = ?")
            params.append(self._symbol_id(symbol))
        sql = "SELECT * FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        names = self._symbol_names()
        if last is None:
            rows = self._fetch(sql + " ORDER BY order_id", tuple(params))
        else:
            rows = self._fetch(sql + " ORDER BY order_id DESC LIMIT ?", (*params, last))[::-1]
        texts = self._long_client_texts({r["client_order_id"] for r in rows
                                         if r["client_order_id"] < 0})
        for r in rows:
            r["symbol_name"] = names.get(r["symbol"], str(r["symbol"]))
            r["side"] = Side(r["side"]).name.lower()
            r["status"] = OrderStatus(r["status"]).name.lower()
            r["reason"] = CancelReason(r["reason"]).name.lower() if r["reason"] else None
            key = r["client_order_id"]
            r["client_order_text"] = (texts.get((r["account"], key)) if key < 0
                                      else unpack_client_id(key))
        return rows

    def _long_client_texts(self, keys: set[int]) -> dict[tuple[int, int], str]:
        """(account, key) -> text of the long client ids among ``keys`` (a database made
        before long ids has none, and may lack the table: never asked then)."""
        out: dict[tuple[int, int], str] = {}
        ordered = sorted(keys)
        for i in range(0, len(ordered), 500):
            part = ordered[i:i + 500]
            for r in self._fetch("SELECT account, client_order_id, client_text FROM client_ids "
                                 f"WHERE client_order_id IN ({', '.join('?' * len(part))})",
                                 tuple(part)):
                out[(r["account"], r["client_order_id"])] = r["client_text"]
        return out

    def balances(self, account: int | None = None) -> list[dict]:
        """Total holdings (available + locked) per account and asset: the sum of the ledger."""
        sql = ("SELECT l.account, l.asset, a.name AS asset_name, "
               "CAST(SUM(l.amount) AS BIGINT) AS total FROM ledger l "
               "JOIN assets a ON a.asset_id = l.asset")
        params: tuple = ()
        if account is not None:
            sql += " WHERE l.account = ?"
            params = (account,)
        return self._fetch(sql + " GROUP BY l.account, l.asset, a.name "
                                 "ORDER BY l.account, l.asset", params)


def _steps_text(s: Symbol) -> tuple[str, str]:
    """A symbol's tick and lot as stored: plain decimal text, never an exponent."""
    return format(s.tick, "f"), format(s.lot, "f")


def _status_codes(status) -> list[int]:
    if isinstance(status, OrderStatus):
        return [int(status)]
    if status == "live":
        return [OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED]
    try:
        return [int(OrderStatus[str(status).upper()])]
    except KeyError:
        raise StorageError(f"unknown order status {status!r}; one of open, partially_filled, "
                           "filled, cancelled, live") from None
