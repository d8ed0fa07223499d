"""The protocol's requests (docs/protocol.md section 3) as typed methods. One base class for
the single connection (``Client``) and the reconnecting one (``ReconnectingClient``): both
supply ``request``, which sends a message with a fresh ``req_id`` and returns its parsed
direct reply, raising ClientError for a gateway ``error``.

A ``reject`` is a result, not an exception: the engine refused the command. Prices,
quantities and amounts may be ``str``, ``int`` or ``Decimal``; they go on the wire as
plain decimal strings (``ringex.units.plain``: ``Decimal("1E-4")`` is sent as "0.0001").
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ringex.client.results import (
    Ack, Balance, CancelAllDone, Cancelled, LoggedIn, Modified, MyTrade, OpenOrder,
    OrderState, Reject, Subscribed, Transfer, Unsubscribed,
)
from ringex.client.types import BookDepth, Channel, OrderType, Side, Stp, TimeInForce
from ringex.units import plain

Number = str | int | Decimal


class Requests:
    account: int | None = None
    admin: bool = False

    async def request(self, msg: dict[str, Any], timeout: float | None = None,
                      raw: bool = False) -> Any:
        """Send ``msg`` with a fresh ``req_id``; its direct reply, parsed (the message dict
        with ``raw``)."""
        raise NotImplementedError

    async def login(self, api_key: str, cancel_on_disconnect: bool = False) -> LoggedIn:
        msg: dict[str, Any] = {"op": "login", "api_key": api_key}
        if cancel_on_disconnect:
            msg["cancel_on_disconnect"] = True
        res = await self.request(msg)
        self.account, self.admin = res.account, res.admin
        return res

    async def ping(self) -> dict[str, Any]:
        """``{"type": "pong", "req_id": ...}``: the gateway is there and reading."""
        return await self.request({"op": "ping"})

    async def place(self, symbol: str, side: Side, qty: Number, price: Number | None = None,
                    *, type: OrderType | None = None, tif: TimeInForce | None = None,
                    post_only: bool = False, client_order_id: str | None = None,
                    stp: Stp | None = None) -> Ack | Reject:
        """A limit order when ``price`` is given, else a market order. The gateway checks
        ``client_order_id`` (its length included): the SDK passes it through."""
        msg: dict[str, Any] = {"op": "place", "symbol": symbol, "side": side,
                               "qty": plain(qty)}
        if price is not None:
            msg["price"] = plain(price)
        if type is not None or price is None:        # limit is the protocol's default
            msg["type"] = type or "market"
        for k, v in (("tif", tif), ("client_order_id", client_order_id), ("stp", stp)):
            if v is not None:
                msg[k] = v
        if post_only:
            msg["post_only"] = True
        return await self.request(msg)

    async def cancel(self, symbol: str, order_id: int | None = None, *,
                     client_order_id: str | None = None) -> Cancelled | Reject:
        msg: dict[str, Any] = {"op": "cancel", "symbol": symbol}
        if order_id is not None:
            msg["order_id"] = order_id
        if client_order_id is not None:
            msg["client_order_id"] = client_order_id
        return await self.request(msg)

    async def modify(self, symbol: str, order_id: int, price: Number,
                     qty: Number) -> Modified | Reject:
        """``qty`` is the new open quantity."""
        return await self.request({"op": "modify", "symbol": symbol, "order_id": order_id,
                                   "price": plain(price), "qty": plain(qty)})

    async def cancel_all(self, symbol: str | None = None) -> CancelAllDone | Reject:
        msg: dict[str, Any] = {"op": "cancel_all"}
        if symbol is not None:
            msg["symbol"] = symbol
        return await self.request(msg)

    async def subscribe(self, channel: Channel, symbol: str | Sequence[str] | None = None, *,
                        resync: bool = False, depth: BookDepth | None = None) -> Subscribed:
        """One symbol or a list of them (none for ``orders``, the account's order events
        whoever placed them); ``book`` subscriptions are followed by a BookSnapshot per
        symbol on ``events()``, and ``resync`` asks for a fresh one; ``depth`` (10 or 50)
        keeps only that many levels a side (None: every level)."""
        msg: dict[str, Any] = {"op": "subscribe", "channel": channel, **_symbols(symbol)}
        if resync:
            msg["resync"] = True
        if depth is not None:
            msg["depth"] = depth
        return await self.request(msg)

    async def unsubscribe(self, channel: Channel,
                          symbol: str | Sequence[str] | None = None) -> Unsubscribed:
        return await self.request({"op": "unsubscribe", "channel": channel,
                                   **_symbols(symbol)})

    async def balances(self) -> dict[str, Balance]:
        return await self.request({"op": "balances"})

    async def open_orders(self) -> list[OpenOrder]:
        return await self.request({"op": "open_orders"})

    async def order_status(self, order_id: int | None = None, *,
                           client_order_id: str | None = None) -> OrderState:
        """One of your orders now, whatever its state (ClientError ``unknown_order``)."""
        msg: dict[str, Any] = {"op": "order_status"}
        if order_id is not None:
            msg["order_id"] = order_id
        if client_order_id is not None:
            msg["client_order_id"] = client_order_id
        return await self.request(msg)

    async def my_trades(self, symbol: str, from_trade_id: int = 0, since_ts: int = 0,
                        limit: int = 100) -> list[MyTrade]:
        """Your trades in ``symbol``, oldest first; next page from the last trade_id + 1.
        (Arguments at the protocol's defaults are left out of the message.)"""
        msg: dict[str, Any] = {"op": "my_trades", "symbol": symbol}
        for k, v, default in (("from_trade_id", from_trade_id, 0), ("since_ts", since_ts, 0),
                              ("limit", limit, 100)):
            if v != default:
                msg[k] = v
        return await self.request(msg)

    async def deposit(self, account: int, asset: str, amount: Number) -> Transfer | Reject:
        """Admin only."""
        return await self.request({"op": "deposit", "account": account, "asset": asset,
                                   "amount": plain(amount)})

    async def withdraw(self, account: int, asset: str, amount: Number) -> Transfer | Reject:
        """Admin only."""
        return await self.request({"op": "withdraw", "account": account, "asset": asset,
                                   "amount": plain(amount)})


def _symbols(symbol: str | Sequence[str] | None) -> dict[str, Any]:
    if symbol is None:
        return {}
    return {"symbol": symbol} if isinstance(symbol, str) else {"symbols": list(symbol)}
