"""Typed results of the client: one frozen dataclass per wire message type, prices,
quantities and amounts as ``Decimal``; ``parse(msg)`` picks the class."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from ringex.client.types import (
    CancelReason, Channel, Liquidity, OrderStatus, Side, TransferOp,
)


def _d(v):
    return None if v is None else Decimal(v)


def _levels(levels) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


@dataclass(frozen=True, slots=True)
class OrderFields:
    """What every message about one order starts with (``price`` None: a market order)."""
    symbol: str
    order_id: int
    client_order_id: str | None
    side: Side
    price: Decimal | None
    qty: Decimal
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch
    recv_ts: int = field(default=0, kw_only=True)   # direct replies: gateway receive time


@dataclass(frozen=True, slots=True)
class Ack(OrderFields):
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    message: str
    op: str | None
    symbol: str | None
    order_id: int | None
    client_order_id: str | None
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch
    recv_ts: int = field(default=0, kw_only=True)   # direct replies: gateway receive time


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    order_id: int
    client_order_id: str | None
    side: Side
    price: Decimal
    qty: Decimal
    leaves: Decimal
    liquidity: Liquidity
    fee: Decimal
    fee_asset: str
    seq: int = field(default=0, kw_only=True)
    trade_id: int = field(default=0, kw_only=True)   # the public Trade's trade_id
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch


@dataclass(frozen=True, slots=True)
class Cancelled(OrderFields):
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class Modified(OrderFields):
    leaves: Decimal


@dataclass(frozen=True, slots=True)
class OpenOrder(OrderFields):
    pass


@dataclass(frozen=True, slots=True)
class OrderState(OrderFields):
    """``order_status``: the order now, live (from the engine) or ended (as stored)."""
    leaves: Decimal
    filled: Decimal
    status: OrderStatus
    reason: CancelReason | None      # why it was cancelled; None unless cancelled


@dataclass(frozen=True, slots=True)
class MyTrade:
    """One of ``my_trades``: your side of a trade (``symbol``: the one asked about).
    A ReconnectingClient also delivers the fills it missed while disconnected as these."""
    trade_id: int
    order_id: int
    side: Side
    price: Decimal
    qty: Decimal
    liquidity: Liquidity
    fee: Decimal
    fee_asset: str
    ts: int
    symbol: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class Balance:
    available: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    seq: int
    prev_seq: int
    price: Decimal
    qty: Decimal
    taker_side: Side
    trade_id: int = field(default=0, kw_only=True)   # what both sides' Fills carry
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: str
    seq: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    checksum: int = field(default=0, kw_only=True)   # docs/protocol.md, book channel
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch


@dataclass(frozen=True, slots=True)
class BookUpdate:
    symbol: str
    seq: int
    prev_seq: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    checksum: int = field(default=0, kw_only=True)   # docs/protocol.md, book channel
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch


@dataclass(frozen=True, slots=True)
class CancelAllDone:
    symbol: str | None
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch


@dataclass(frozen=True, slots=True)
class Subscribed:
    channel: Channel
    symbol: str | None               # None when the request gave a list, and for orders
    symbols: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    channel: Channel
    symbol: str | None
    symbols: list[str] | None = None


@dataclass(frozen=True, slots=True)
class LoggedIn:
    account: int
    admin: bool
    cancel_on_disconnect: bool


@dataclass(frozen=True, slots=True)
class Transfer:
    op: TransferOp
    account: int
    asset: str
    amount: Decimal
    available: Decimal
    locked: Decimal
    ts: int = field(default=0, kw_only=True)   # engine time, ns since the epoch


@dataclass(frozen=True, slots=True)
class Error:
    """An ``error`` with no ``req_id`` (e.g. ``bad_json``), delivered as an event."""
    code: str
    message: str


_DECIMALS = {"price", "qty", "leaves", "fee", "amount", "available", "locked", "filled"}


def _build(cls, msg: dict):
    kw = {}
    for f in fields(cls):
        v = msg.get(f.name)
        if f.name in _DECIMALS:
            v = _d(v)
        elif f.name in ("bids", "asks"):
            v = _levels(v or [])
        kw[f.name] = v
    for name in ("ts", "recv_ts"):
        if name in kw and kw[name] is None:
            kw[name] = 0              # open_orders items and pushes carry none
    return cls(**kw)


def parse(msg: dict) -> Any:
    """A wire message as its typed result; unknown types stay dicts (a newer server's)."""
    t = msg.get("type")
    if t in _TYPES:
        return _build(_TYPES[t], msg)
    if t == "balances":
        return {a: Balance(Decimal(b["available"]), Decimal(b["locked"]))
                for a, b in msg["balances"].items()}
    if t == "open_orders":
        return [_build(OpenOrder, o) for o in msg["orders"]]
    if t == "my_trades":
        return [_build(MyTrade, {**tr, "symbol": msg.get("symbol", "")}) for tr in msg["trades"]]
    if t == "cancel_all":
        return CancelAllDone(msg.get("symbol"), ts=msg.get("ts", 0))
    if t == "login":
        return LoggedIn(msg["account"], msg.get("admin", False),
                        msg.get("cancel_on_disconnect", False))
    if t in ("deposit", "withdraw"):
        return Transfer(t, msg["account"], msg["asset"], Decimal(msg["amount"]),
                        Decimal(msg["available"]), Decimal(msg["locked"]), ts=msg.get("ts", 0))
    if t == "error":
        return Error(msg.get("code", ""), msg.get("message", ""))
    return msg


_TYPES = {"ack": Ack, "reject": Reject, "fill": Fill, "cancelled": Cancelled,
          "order_status": OrderState,
          "modified": Modified, "trade": Trade, "book_snapshot": BookSnapshot,
          "book_update": BookUpdate, "subscribed": Subscribed, "unsubscribed": Unsubscribed}
