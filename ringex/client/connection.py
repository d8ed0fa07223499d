"""One connection to a ringex gateway (docs/protocol.md): requests with typed replies,
pushed events in order.

Every request gets a ``req_id`` and awaits its direct reply, returned as a typed result
(``ringex.client.results``). A gateway ``error`` raises :class:`ClientError` with its
stable ``code``, as do a timeout and a closed connection. Everything else the gateway
pushes (fills, unsolicited cancels, trades, book messages) arrives on :meth:`Client.events`.
``connect(..., reconnect=True)`` gives a ReconnectingClient instead (``reconnect.py``).
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import orjson
from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ringex.client.backoff import Backoff
from ringex.client.errors import ClientError
from ringex.client.events import EventStream, ReadsEvents
from ringex.client.requests import Number, Requests
from ringex.client.results import parse

if TYPE_CHECKING:            # reconnect.py builds on this module
    from ringex.client.reconnect import ReconnectingClient

__all__ = ["Client", "ClientError", "Number", "connect", "open_client"]

E = TypeVar("E")
Listener = Callable[[Any], None]


class Client(ReadsEvents, Requests):
    """One connection. Make it with :func:`connect`; close it with ``close()`` or
    ``async with``. ``timeout``: seconds to wait for each direct reply.

    ``on_push``: pushes go to it instead of ``events()``; ``on_reply``: sees every parsed
    direct reply before its request returns; ``on_close``: called once the connection is
    gone, as the requests in flight fail. All are called from the reader, in wire order
    (the ReconnectingClient's bookkeeping needs that order)."""

    def __init__(self, ws: ClientConnection, timeout: float = 10.0, max_events: int = 1_000_000,
                 *, on_push: Listener | None = None, on_reply: Listener | None = None,
                 on_close: Callable[[], None] | None = None):
        self.ws = ws
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[asyncio.Future, bool]] = {}
        self._abandoned: set[int] = set()         # req_ids given up on (timeout, cancel)
        self._stream = EventStream(max_events)
        self._on_push = on_push or self._stream.put
        self._on_reply = on_reply
        self._on_close = on_close
        self.close_code: int | None = None
        self.close_reason: str | None = ""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def dropped_events(self) -> int:
        """Pushes dropped because nobody read ``events()``."""
        return self._stream.dropped

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
                if waiting is None:
                    self._on_push(parse(msg))
                    continue
                fut, raw_reply = waiting
                if msg.get("type") == "error":
                    if not fut.done():
                        fut.set_exception(ClientError(msg["code"], msg.get("message", ""),
                                                      msg))
                    continue
                parsed = parse(msg)
                if self._on_reply is not None:
                    self._on_reply(parsed)
                if not fut.done():
                    fut.set_result(msg if raw_reply else parsed)
        except ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason
            for fut, _ in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ClientError("closed", "the connection closed"))
            self._waiting.clear()
            if self._on_close is not None:
                self._on_close()
            self._stream.end()

    async def request(self, msg: dict[str, Any], timeout: float | None = None,
                      raw: bool = False) -> Any:
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

    @property
    def closed(self) -> bool:
        return self._reader.done()

    async def wait_closed(self) -> None:
        """Return once the connection is closed (by either side) and the reader is done."""
        await asyncio.shield(self._reader)

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_client(url: str, api_key: str | None = None, *, login: str = "header",
                      cancel_on_disconnect: bool = False, timeout: float = 10.0,
                      max_events: int = 1_000_000, on_push: Listener | None = None,
                      on_reply: Listener | None = None,
                      on_close: Callable[[], None] | None = None) -> Client:
    """:func:`connect` without ``reconnect``, with the Client's listeners."""
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
    client = Client(ws, timeout, max_events, on_push=on_push, on_reply=on_reply,
                    on_close=on_close)
    if api_key is not None and login != "header":
        try:
            await client.login(api_key, cancel_on_disconnect)
        except ClientError:
            await client.close()
            raise
    return client


@overload
async def connect(url: str, api_key: str | None = None, *, login: str = "header",
                  cancel_on_disconnect: bool = False, timeout: float = 10.0,
                  max_events: int = 1_000_000, reconnect: Literal[False] = False) -> Client: ...
@overload
async def connect(url: str, api_key: str | None = None, *, login: str = "header",
                  cancel_on_disconnect: bool = False, timeout: float = 10.0,
                  max_events: int = 1_000_000,
                  reconnect: Literal[True] | Backoff) -> ReconnectingClient: ...
@overload
async def connect(url: str, api_key: str | None = None, *, login: str = "header",
                  cancel_on_disconnect: bool = False, timeout: float = 10.0,
                  max_events: int = 1_000_000,
                  reconnect: bool | Backoff = False) -> Client | ReconnectingClient: ...


async def connect(url: str, api_key: str | None = None, *, login: str = "header",
                  cancel_on_disconnect: bool = False, timeout: float = 10.0,
                  max_events: int = 1_000_000,
                  reconnect: bool | Backoff = False) -> Client | ReconnectingClient:
    """Open a connection. With ``api_key``, authenticate with the handshake header
    (``login="header"``) or a ``login`` message (``login="message"``); an unknown key
    raises ClientError("auth_failed"), a failed handshake ClientError("handshake_failed")
    or ("timeout"); OSError when nothing listens at ``url``. ``cancel_on_disconnect``: the
    gateway cancels this connection's orders when it closes.

    ``reconnect=True`` (or a :class:`Backoff`): a ReconnectingClient, which survives
    dropped connections (docs/sdk.md); the first connection must still succeed."""
    from ringex.client.reconnect import ReconnectingClient
    if reconnect is False:
        return await open_client(url, api_key, login=login,
                                 cancel_on_disconnect=cancel_on_disconnect, timeout=timeout,
                                 max_events=max_events)
    return await ReconnectingClient.open(
        url, api_key, login=login, cancel_on_disconnect=cancel_on_disconnect,
        timeout=timeout, max_events=max_events,
        backoff=reconnect if isinstance(reconnect, Backoff) else Backoff())
