"""The pushed-event stream of a client: what ``events()``, ``next_event()`` and
``pending_events()`` read, and the types that can come out of it.

Pushes are queued as they arrive (up to ``max_events``; beyond that they are dropped and
counted, so a client that never reads cannot grow without bound) and end with the
connection: ``events()`` stops, ``next_event()`` raises ClientError("closed").
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from ringex.client.errors import ClientError
from ringex.client.results import (
    Ack, BookSnapshot, BookUpdate, Cancelled, Error, Fill, Modified, MyTrade, OrderState,
    Trade,
)


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A ReconnectingClient's link dropped and is back (logged in, re-subscribed): what
    was pushed meanwhile is lost. Book subscribers get a fresh BookSnapshot after this;
    the fills your open orders missed follow as MyTrade, their new state as OrderState."""
    attempts: int                   # connection attempts it took
    down_s: float                   # seconds from the drop to the new login
    close_code: int | None          # how the old one ended (1006: no close frame came)


# Everything events() can yield; a message type this SDK does not know stays a dict.
Event = (Ack | Fill | Cancelled | Modified | Trade | BookSnapshot | BookUpdate | Error
         | OrderState | MyTrade | Reconnected | dict[str, Any])

E = TypeVar("E")
_END = object()


class EventStream:
    def __init__(self, max_events: int = 1_000_000):
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_events)
        self.dropped = 0                # pushes dropped because nobody read them

    def put(self, ev: object) -> None:
        try:
            self._queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.dropped += 1

    def end(self) -> None:
        """No more events: readers finish (the end marker is never dropped)."""
        while True:
            try:
                self._queue.put_nowait(_END)
                return
            except asyncio.QueueFull:        # make room: the oldest unread event goes
                self._queue.get_nowait()
                self.dropped += 1

    async def events(self) -> AsyncIterator[Event]:
        while True:
            ev = await self._queue.get()
            if ev is _END:
                self._queue.put_nowait(_END)
                return
            yield ev

    @overload
    async def next_event(self, kind: type[E], timeout: float) -> E: ...
    @overload
    async def next_event(self, kind: tuple[type, ...] | None, timeout: float) -> Event: ...

    async def next_event(self, kind: Any, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                ev = await asyncio.wait_for(self._queue.get(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                raise ClientError("timeout", f"no {kind} event in time") from None
            if ev is _END:
                self._queue.put_nowait(_END)
                raise ClientError("closed", "the connection closed")
            if kind is None or isinstance(ev, kind):
                return ev

    def pending(self) -> list[Event]:
        out = []
        while not self._queue.empty():
            ev = self._queue.get_nowait()
            if ev is _END:
                self._queue.put_nowait(_END)
                break
            out.append(ev)
        return out


class ReadsEvents:
    """``events()``, ``next_event()`` and ``pending_events()`` over ``self._stream``, for
    both clients (their ``timeout`` is ``next_event``'s default)."""

    _stream: EventStream
    timeout: float

    def events(self) -> AsyncIterator[Event]:
        """Pushed messages, in order, until the connection closes (a ReconnectingClient:
        across reconnections, until ``close()`` or giving up)."""
        return self._stream.events()

    @overload
    async def next_event(self, kind: type[E], timeout: float | None = None) -> E: ...
    @overload
    async def next_event(self, kind: tuple[type, ...] | None = None,
                         timeout: float | None = None) -> Event: ...

    async def next_event(self, kind: Any = None, timeout: float | None = None) -> Any:
        """The next pushed message (of ``kind``, skipping others); ClientError on timeout
        or when the connection closes first."""
        return await self._stream.next_event(kind, self.timeout if timeout is None
                                             else timeout)

    def pending_events(self) -> list[Event]:
        """Every pushed message received so far and not yet read (non-blocking)."""
        return self._stream.pending()
