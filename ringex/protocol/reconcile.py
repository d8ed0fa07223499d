"""Reconciliation requests (docs/protocol.md): ``order_status`` and ``my_trades``.

``order_status`` asks the engine first (the account's live orders, QUERY_ORDERS with a
barrier, as ``open_orders`` does): a live order is answered from the engine; one that is
not live from the database, once the database holds its end. The session gathers the
engine's part (``OrderLookup``); the gateway finishes it (``order_status_message``).
``my_trades`` reads the database only (``StoreQuery``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ringex.protocol.codes import CANCEL_REASONS, UNKNOWN_REASON, ErrorCode as E, Refused
from ringex.protocol.client_ids import unpack_client_id
from ringex.protocol.messages import SIDE_NAMES, order_fields
from ringex.protocol.requests import client_id_field, order_id_field, show, symbol_field
from ringex.protocol.symbols import SymbolInfo, Tables

MAX_TRADES = 1000               # my_trades page size, at most
DEFAULT_TRADES = 100
STATUS_NAMES = {1: "open", 2: "partially_filled", 3: "filled", 4: "cancelled"}
DONE = (3, 4)                   # stored statuses that never change again


@dataclass(slots=True)
class OrderLookup:
    """An order_status request while the engine answers: what it asks for and, once an
    OPEN_ORDER matches, the live order (symbol id, order id, client id, sell, price,
    open lots)."""
    order_id: int | None
    client_order_id: int | None
    live: tuple | None = None

    def offer(self, symbol: int, order_id: int, cid: int, sell: bool, price: int,
              leaves: int) -> None:
        if order_id == self.order_id or (self.order_id is None and cid == self.client_order_id):
            self.live = (symbol, order_id, cid, sell, price, leaves)


def order_status_request(msg: dict) -> OrderLookup:
    has_id, has_cid = msg.get("order_id") is not None, msg.get("client_order_id") is not None
    if has_id == has_cid:
        raise Refused(E.BAD_REQUEST if has_id else E.MISSING_FIELD,
                      'give "order_id" or "client_order_id" (one of them)')
    if has_id:
        return OrderLookup(order_id_field(msg), None)
    return OrderLookup(None, client_id_field(msg))


def my_trades_request(msg: dict, t: Tables) -> tuple[int, int, int, int]:
    """``(symbol id, from trade id, since ns, limit)``."""
    s = symbol_field(msg, t)
    out = [s.id]
    for name in ("from_trade_id", "since_ts"):
        v = msg.get(name, 0)
        if v is None:
            v = 0
        if type(v) is not int or not 0 <= v < 2**63:
            raise Refused(E.BAD_REQUEST, f"{name} must be an integer from 0 to 2^63-1, "
                          f"not {show(v)}")
        out.append(v)
    limit = msg.get("limit", DEFAULT_TRADES)
    if limit is None:
        limit = DEFAULT_TRADES
    if type(limit) is not int or not 1 <= limit <= MAX_TRADES:
        raise Refused(E.BAD_REQUEST, f"limit must be an integer from 1 to {MAX_TRADES}, "
                      f"not {show(limit)}")
    out.append(limit)
    return out[0], out[1], out[2], out[3]


def answer_key(lookup: OrderLookup, row: dict | None) -> int | None:
    """The client id key the ``order_status`` reply will show (None: no order found)."""
    if lookup.live is not None:
        return lookup.live[2]
    return row["client_order_id"] if row is not None else None


def order_status_message(t: Tables, lookup: OrderLookup, row: dict | None,
                         text_of: Callable[[int], str | None] = unpack_client_id,
                         ) -> dict | None:
    """The ``order_status`` reply from the engine's live order (its open lots) and the
    stored row (qty, filled, and the end of an order that is done); None when neither
    knows it. ``text_of``: a client id key's text (long ids: the gateway's or the
    database's)."""
    if lookup.live is not None:
        symbol, order_id, cid, sell, price, leaves = lookup.live
        s = t.symbols[symbol]
        qty = row["qty"] if row is not None else leaves
        filled = row["filled"] if row is not None else 0
        status = "partially_filled" if filled else "open"
        return _message(s, order_id, text_of(cid), sell, price, qty, leaves, filled, status,
                        None)
    if row is None:
        return None
    s = t.symbols[row["symbol"]]
    reason = CANCEL_REASONS.get(row["reason"], UNKNOWN_REASON) if row["reason"] else None
    return _message(s, row["order_id"], text_of(row["client_order_id"]), bool(row["side"]),
                    row["price"], row["qty"], row["leaves"], row["filled"],
                    STATUS_NAMES.get(row["status"], "unknown"), reason)


def _message(s: SymbolInfo, order_id, cid, sell, price, qty, leaves, filled, status,
             reason) -> dict:
    return {"type": "order_status",
            **order_fields(s, order_id, cid, sell, price, qty),
            "leaves": s.qty.format(leaves), "filled": s.qty.format(filled),
            "status": status, "reason": reason}


def my_trades_message(t: Tables, account: int, symbol: int, rows: list[dict]) -> dict:
    """``my_trades``: the account's side of each stored trade, oldest first."""
    s = t.symbols[symbol]
    quote = s.symbol.quote.name
    trades = []
    for r in rows:
        taker_sell = bool(r["taker_side"])
        for taker in (True, False):          # both, for a trade with itself (stp none)
            if r["taker_account" if taker else "maker_account"] != account:
                continue
            trades.append({
                "trade_id": r["seq"],
                "order_id": r["taker_order_id"] if taker else r["maker_order_id"],
                "side": SIDE_NAMES[taker_sell if taker else not taker_sell],
                "price": s.price.format(r["price"]), "qty": s.qty.format(r["qty"]),
                "liquidity": "taker" if taker else "maker",
                "fee": s.fee.format(r["taker_fee"] if taker else r["maker_fee"]),
                "fee_asset": quote, "ts": r["ts_ns"]})
    return {"type": "my_trades", "symbol": s.name, "trades": trades}
