"""One connection to a ringex gateway (docs/protocol.md): requests with typed replies,
pushed events in order.

Every request gets a ``req_id`` and awaits its direct reply, returned as a typed result
(``ringex.client.results``). A ``reject`` is a result, not an exception: the engine
refused the command. A gateway ``error`` raises :class:`ClientError` with its stable
``code``, as do a timeout and a closed connection. Everything else the gateway pushes
(fills, unsolicited cancels, trades, book messages) arrives on :meth:`Client.events`.
Prices, quantities and amounts may be given as ``str``, ``int`` or ``Decimal``; they go on
the wire as plain decimal strings (``ringex.units.plain``).
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ringex.client.results import (
    Ack, Balance, CancelAllDone, Cancelled, LoggedIn, Modified, MyTrade, OpenOrder,
    OrderState, Reject, Subscribed, Transfer, Unsubscribed, parse,
)
from ringex.units import plain

Number = str | int | Decimal


class ClientError(Exception):
    """A request failed: the gateway's ``error`` code, ``timeout``, ``closed``,
    ``auth_failed`` (handshake refused), or a reject's code in ``admin_transfer``."""

    def __init__(self, code: str, message: str = "", reply: dict | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.reply = reply


class Client:
    """One connection. Make it with :func:`connect`; close it with ``close()`` or
    ``async with``. ``timeout``: seconds to wait for each direct reply."""

    def __init__(self, ws: ClientConnection, timeout: float = 10.0, max_events: int = 1_000_000):
        self.ws = ws
        self.timeout = timeout
        self.account: int | None = None
        self.admin = False
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[asyncio.Future, bool]] = {}
        self._abandoned: set[int] = set()         # req_ids given up on (timeout, cancel)
        self._events: asyncio.Queue = asyncio.Queue(max_events)
        self.dropped_events = 0           # pushes dropped because nobody read events()
        self.close_code: int | None = None
        self.close_reason: str | None = ""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    # -------------------------------------------------------------- plumbing
    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = orjson.loads(raw)
                rid = msg.get("req_id")
                waiting = self._waiting.pop(rid, None) if type(rid) is int else None
                if waiting is None and rid in self._abandoned:
                    self._abandoned.discard(rid)         # the late reply of a timeout
                    continue
                if waiting is not None:
                    fut, raw_reply = waiting
                    if fut.done():
                        continue
                    if msg.get("type") == "error":
                        fut.set_exception(ClientError(msg["code"], msg.get("message", ""), msg))
                    else:
                        fut.set_result(msg if raw_reply else parse(msg))
                    continue
                try:
                    self._events.put_nowait(parse(msg))
                except asyncio.QueueFull:
                    self.dropped_events += 1
        except ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason
            for fut, _ in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ClientError("closed", "the connection closed"))
            self._waiting.clear()
            self._events.put_nowait(None)          # ends events()

    async def request(self, msg: dict, timeout: float | None = None, raw: bool = False):
        """Send ``msg`` with a fresh ``req_id``; return its direct reply, parsed (or the
        message dict with ``raw``)."""
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[rid] = (fut, raw)
        msg["req_id"] = rid
        try:
            await self.ws.send(orjson.dumps(msg), text=True)
            return await asyncio.wait_for(fut, self.timeout if timeout is None else timeout)
        except ConnectionClosed:
            raise ClientError("closed", "the connection closed") from None
        except asyncio.TimeoutError:
            raise ClientError("timeout", f"no reply to {msg.get('op')} in time") from None
        finally:
            if self._waiting.pop(rid, None) is not None and len(self._abandoned) < 100_000:
                self._abandoned.add(rid)
            if fut.done() and not fut.cancelled():
                fut.exception()     # set by the reader as the send failed: seen, not lost

    async def send_raw(self, data: str | bytes) -> None:
        """Send one frame as is (tests, benchmarks); replies arrive on ``events()``."""
        await self.ws.send(data, text=True)

    async def events(self) -> AsyncIterator:
        """Pushed messages, in order, until the connection closes."""
        while True:
            ev = await self._events.get()
            if ev is None:
                self._events.put_nowait(None)
                return
            yield ev

    async def next_event(self, kind: type | tuple | None = None, timeout: float | None = None):
        """The next pushed message (of ``kind``, skipping others); ClientError on timeout
        or when the connection closes first."""
        deadline = asyncio.get_running_loop().time() + (self.timeout if timeout is None
                                                        else timeout)
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                ev = await asyncio.wait_for(self._events.get(), max(left, 0))
            except asyncio.TimeoutError:
                raise ClientError("timeout", f"no {kind} event in time") from None
            if ev is None:
                self._events.put_nowait(None)
                raise ClientError("closed", "the connection closed")
            if kind is None or isinstance(ev, kind):
                return ev

    def pending_events(self) -> list:
        """Every pushed message received so far and not yet read (non-blocking)."""
        out = []
        while not self._events.empty():
            ev = self._events.get_nowait()
            if ev is None:
                self._events.put_nowait(None)
                break
            out.append(ev)
        return out

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -------------------------------------------------------------- requests
    async def login(self, api_key: str, cancel_on_disconnect: bool = False) -> LoggedIn:
        msg: dict[str, object] = {"op": "login", "api_key": api_key}
        if cancel_on_disconnect:
            msg["cancel_on_disconnect"] = True
        res = await self.request(msg)
        self.account, self.admin = res.account, res.admin
        return res

    async def ping(self) -> dict:
        return await self.request({"op": "ping"})

    async def place(self, symbol: str, side: str, qty: Number, price: Number | None = None, *,
                    type: str | None = None, tif: str | None = None, post_only: bool = False,
                    client_order_id: str | None = None, stp: str | None = None) -> Ack | Reject:
        """A limit order when ``price`` is given, else a market order."""
        msg: dict[str, object] = {"op": "place", "symbol": symbol, "side": side,
                                  "qty": plain(qty)}
        if price is not None:
            msg["price"] = plain(price)
        msg["type"] = type or ("limit" if price is not None else "market")
        for k, v in (("tif", tif), ("client_order_id", client_order_id), ("stp", stp)):
            if v is not None:
                msg[k] = v
        if post_only:
            msg["post_only"] = True
        return await self.request(msg)

    async def cancel(self, symbol: str, order_id: int | None = None, *,
                     client_order_id: str | None = None) -> Cancelled | Reject:
        msg: dict[str, object] = {"op": "cancel", "symbol": symbol}
        if order_id is not None:
            msg["order_id"] = order_id
        if client_order_id is not None:
            msg["client_order_id"] = client_order_id
        return await self.request(msg)

    async def modify(self, symbol: str, order_id: int, price: Number,
                     qty: Number) -> Modified | Reject:
        return await self.request({"op": "modify", "symbol": symbol, "order_id": order_id,
                                   "price": plain(price), "qty": plain(qty)})

    async def cancel_all(self, symbol: str | None = None) -> CancelAllDone | Reject:
        msg = {"op": "cancel_all"}
        if symbol is not None:
            msg["symbol"] = symbol
        return await self.request(msg)

    async def subscribe(self, channel: str, symbol: str | list[str] | None = None) -> Subscribed:
        """One symbol or a list of them (none for ``orders``, the account's order events
        whoever placed them); ``book`` subscriptions are followed by a BookSnapshot per
        symbol on ``events()``."""
        return await self.request({"op": "subscribe", "channel": channel,
                                   **_symbols(symbol)})

    async def unsubscribe(self, channel: str,
                          symbol: str | list[str] | None = None) -> Unsubscribed:
        return await self.request({"op": "unsubscribe", "channel": channel,
                                   **_symbols(symbol)})

    async def balances(self) -> dict[str, Balance]:
        return await self.request({"op": "balances"})

    async def open_orders(self) -> list[OpenOrder]:
        return await self.request({"op": "open_orders"})

    async def order_status(self, order_id: int | None = None, *,
                           client_order_id: str | None = None) -> OrderState:
        """One of your orders now, whatever its state (ClientError ``unknown_order``)."""
        msg: dict[str, object] = {"op": "order_status"}
        if order_id is not None:
            msg["order_id"] = order_id
        if client_order_id is not None:
            msg["client_order_id"] = client_order_id
        return await self.request(msg)

    async def my_trades(self, symbol: str, from_trade_id: int = 0, since_ts: int = 0,
                        limit: int = 100) -> list[MyTrade]:
        """Your trades in ``symbol``, oldest first; next page from the last trade_id + 1."""
        return await self.request({"op": "my_trades", "symbol": symbol,
                                   "from_trade_id": from_trade_id, "since_ts": since_ts,
                                   "limit": limit})

    async def deposit(self, account: int, asset: str, amount: Number) -> Transfer | Reject:
        """Admin only."""
        return await self.request({"op": "deposit", "account": account, "asset": asset,
                                   "amount": plain(amount)})

    async def withdraw(self, account: int, asset: str, amount: Number) -> Transfer | Reject:
        """Admin only."""
        return await self.request({"op": "withdraw", "account": account, "asset": asset,
                                   "amount": plain(amount)})


def _symbols(symbol: str | list[str] | None) -> dict:
    if symbol is None:
        return {}
    return {"symbol": symbol} if isinstance(symbol, str) else {"symbols": list(symbol)}


async def connect(url: str, api_key: str | None = None, *, login: str = "header",
                  cancel_on_disconnect: bool = False, timeout: float = 10.0,
                  max_events: int = 1_000_000) -> Client:
    """Open a connection. With ``api_key``, authenticate with the handshake header
    (``login="header"``) or a ``login`` message (``login="message"``); an unknown key
    raises ClientError("auth_failed"), a failed handshake ClientError("handshake_failed")
    or ("timeout"); OSError when nothing listens at ``url``. ``cancel_on_disconnect``: the
    gateway cancels this connection's orders when it closes."""
    headers = {}
    if api_key is not None and login == "header":
        headers["Authorization"] = f"Bearer {api_key}"
        if cancel_on_disconnect:
            url += ("&" if "?" in url else "?") + "cancel_on_disconnect=true"
    try:
        ws = await ws_connect(url, additional_headers=headers, compression=None,
                              open_timeout=timeout, max_size=2**24, max_queue=None)
    except InvalidStatus as exc:
        code = exc.response.status_code
        raise ClientError("auth_failed" if code == 401 else f"http_{code}",
                          exc.response.body.decode(errors="replace").strip()) from None
    except InvalidHandshake as exc:     # e.g. the server closed during the handshake
        raise ClientError("handshake_failed", str(exc)) from None
    except asyncio.TimeoutError:
        raise ClientError("timeout", f"no handshake within {timeout} s") from None
    client = Client(ws, timeout, max_events)
    if api_key is not None and login != "header":
        try:
            await client.login(api_key, cancel_on_disconnect)
        except ClientError:
            await client.close()
            raise
    return client
