"""``ringex trades | orders | balances``: read-only views of the database, for people and scripts.

They open the repository read-only (nothing is created or written; they are safe while
the exchange runs) and turn stored integers into exact decimal strings with the config's
steps (``ringex.units``): prices in ticks, quantities in lots, money in minor units of its
asset. Human output is an aligned text table; ``--json`` prints one JSON array of objects
with the same exact strings (and integer ids). Failures (no database, unknown symbol, a
config that contradicts the stored one) exit 1 with one clean message.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import click
import psycopg

from ringex.cli.options import json_option, load_config, store_options
from ringex.config import Asset, Config, Symbol
from ringex.errors import RingexError
from ringex.ops.datadir import db_url
from ringex.storage.repository import Repository
from ringex.storage.stores import is_postgres_url, open_repository, sqlite_path

STATUSES = ("open", "partially_filled", "filled", "cancelled", "live")


def db_options(f):
    """--db, --data-dir, --config and --json, shared by every inspection command."""
    return store_options(json_option(f))


class Units:
    """Stored integers -> exact decimal strings, per the config's symbols and assets."""

    def __init__(self, config: Config):
        self.config = config
        self._symbols = {s.id: s for s in config.symbols}
        self._assets = {a.id: a for a in config.assets}

    def symbol(self, symbol_id: int) -> Symbol:
        s = self._symbols.get(symbol_id)
        if s is None:
            raise click.ClickException(f"symbol id {symbol_id} is stored but not in the "
                                       "config; pass the exchange's config with --config")
        return s

    def price(self, symbol_id: int, ticks: int) -> str:
        return self.symbol(symbol_id).price_step.format(ticks)

    def qty(self, symbol_id: int, lots: int) -> str:
        return self.symbol(symbol_id).qty_step.format(lots)

    def amount(self, asset_id: int, units: int) -> str:
        return self.asset(asset_id).unit.format(units)

    def asset(self, asset_id: int) -> Asset:
        a = self._assets.get(asset_id)
        if a is None:
            raise click.ClickException(f"asset id {asset_id} is stored but not in the config; "
                                       "pass the exchange's config with --config")
        return a

    def check_symbol(self, name: str | None) -> None:
        if name is not None and name not in {s.name for s in self.config.symbols}:
            known = ", ".join(s.name for s in self.config.symbols)
            raise click.ClickException(f"unknown symbol {name!r} (known: {known})")


def utc(ts_ns: int, timespec: str = "microseconds") -> str:
    t = datetime.fromtimestamp(ts_ns // 10**9, timezone.utc)
    t = t.replace(microsecond=ts_ns // 1000 % 10**6)
    return t.isoformat(sep="T" if timespec == "microseconds" else " ",
                       timespec=timespec).replace("+00:00", "Z")


@contextmanager
def opened(db: str | None, data_dir: str,
           config_path: str | None) -> Iterator[tuple[Repository, Units]]:
    """(repository, Units) for the command; every expected failure becomes a ClickException."""
    target = db_url(data_dir, db)
    try:
        config = load_config(config_path)
        if not is_postgres_url(target) and not Path(sqlite_path(target)).is_file():
            raise click.ClickException(
                f"no database at {sqlite_path(target)} (is this the exchange's data dir? "
                "use --data-dir or --db)")
        with open_repository(target, config, readonly=True) as repo:
            yield repo, Units(config)
    except (RingexError, sqlite3.Error, psycopg.Error, OSError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def emit(rows: list[dict], columns: list[str], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(empty)
    else:
        click.echo(table(columns, [[r[c] for c in columns] for r in rows]))


def table(headers: list[str], rows: list[list]) -> str:
    """Aligned plain text: numbers right-aligned, text left-aligned, two spaces apart."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    width = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    right = [all(_numeric(r[i]) for r in cells) for i in range(len(headers))]

    def line(vals):
        out = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(vals, width, right)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


def _numeric(text: str) -> bool:
    return text.lstrip("-").replace(".", "", 1).isdigit() or text == ""


# ---------------------------------------------------------------------- commands
@click.command()
@click.option("--symbol", metavar="S", help="Only this symbol (e.g. BTC-USD).")
@click.option("--last", "last", type=click.IntRange(min=1), default=20, show_default=True,
              metavar="N", help="How many of the newest trades.")
@db_options
def trades(symbol, last, config_path, data_dir, db_url, as_json):
    """The newest trades, newest first.

    side is the taker's; price/qty in the symbol's units; notional and fees in its quote
    asset; time is UTC.
    """
    with opened(db_url, data_dir, config_path) as (repo, u):
        u.check_symbol(symbol)
        rows = []
        for t in repo.recent_trades(symbol, last):
            sid, quote = t["symbol"], u.symbol(t["symbol"]).quote.id
            rows.append({
                "time": utc(t["ts_ns"]), "ts_ns": t["ts_ns"], "symbol": t["symbol_name"],
                "seq": t["seq"], "side": t["taker_side"],
                "price": u.price(sid, t["price"]), "qty": u.qty(sid, t["qty"]),
                "notional": u.amount(quote, t["notional"]),
                "taker_order_id": t["taker_order_id"], "maker_order_id": t["maker_order_id"],
                "taker_account": t["taker_account"], "maker_account": t["maker_account"],
                "taker_fee": u.amount(quote, t["taker_fee"]),
                "maker_fee": u.amount(quote, t["maker_fee"]),
                "fee_asset": u.symbol(sid).quote.name,
            })
    if not as_json:
        for r in rows:
            r["time"] = utc(r["ts_ns"], "milliseconds")
    emit(rows, ["time", "symbol", "seq", "side", "price", "qty", "notional", "taker_order_id",
                "maker_order_id", "taker_account", "maker_account", "taker_fee", "maker_fee"],
         as_json, "no trades")


@click.command()
@click.option("--account", type=click.IntRange(min=0), metavar="A", help="Only this account.")
@click.option("--status", type=click.Choice(STATUSES), metavar="S",
              help="open, partially_filled, filled, cancelled, or live (open or partially "
                   "filled).")
@click.option("--symbol", metavar="S", help="Only this symbol (e.g. BTC-USD).")
@click.option("--last", "last", type=click.IntRange(min=1), default=20, show_default=True,
              metavar="N", help="How many of the newest matching orders.")
@db_options
def orders(account, status, symbol, last, config_path, data_dir, db_url, as_json):
    """Orders in their current state, by order id (the newest N).

    qty is the size at acceptance (after a modify the size is filled + leaves); reason is
    the cancel reason; client_order_id as the client sent it.
    """
    with opened(db_url, data_dir, config_path) as (repo, u):
        u.check_symbol(symbol)
        rows = []
        for o in repo.orders(account=account, status=status, symbol=symbol, last=last):
            sid = o["symbol"]
            rows.append({
                "order_id": o["order_id"], "symbol": o["symbol_name"],
                "account": o["account"], "side": o["side"],
                "price": u.price(sid, o["price"]), "qty": u.qty(sid, o["qty"]),
                "filled": u.qty(sid, o["filled"]), "leaves": u.qty(sid, o["leaves"]),
                "status": o["status"], "reason": o["reason"],
                "client_order_id": o["client_order_text"], "session": o["session"],
                "created_seq": o["created_seq"], "updated_seq": o["updated_seq"],
            })
    emit(rows, ["order_id", "symbol", "account", "side", "price", "qty", "filled", "leaves",
                "status", "reason", "client_order_id"], as_json, "no orders")


@click.command()
@click.option("--account", type=click.IntRange(min=0), metavar="A",
              help="Only this account (0 is the fee account).")
@db_options
def balances(account, config_path, data_dir, db_url, as_json):
    """Holdings per account and asset (available + locked).

    The sum of the ledger: deposits and withdrawals plus every trade's movements and fees,
    as stored (locks live in the running engine only).
    """
    with opened(db_url, data_dir, config_path) as (repo, u):
        rows = [{"account": b["account"], "asset": b["asset_name"],
                 "total": u.amount(b["asset"], b["total"])}
                for b in repo.balances(account)]
    emit(rows, ["account", "asset", "total"], as_json, "no balances")


INSPECT_COMMANDS = (trades, orders, balances)
