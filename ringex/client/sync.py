"""The SDK for scripts that do not use asyncio: ``ringex.client.sync.connect``.

    from ringex.client.sync import connect
    with connect("ws://127.0.0.1:8765/ws", api_key) as c:
        ack = c.place("BTC-USD", "buy", "0.5", "30000.00")       # blocks until the reply
        fill = c.next_event(Fill, timeout=5)

Each client runs its own asyncio event loop in a daemon thread; every method hands the
async method of the same name to that loop and waits for its result (same arguments,
results and ClientErrors). A thread rather than ``asyncio.run`` per call because the
connection must be read between calls too: the gateway pings every 20 s and closes a
connection that does not answer, and pushes are queued as they arrive. Do not call a
SyncClient from its own loop's thread (a callback of it): that would wait on itself.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from ringex.client.backoff import Backoff
from ringex.client.connection import Client, connect as async_connect
from ringex.client.errors import ClientError
from ringex.client.events import Event
from ringex.client.reconnect import ReconnectingClient
from ringex.client.requests import Requests

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E")
IDLE_WAIT_S = 3600.0          # events() waits this long per round, then again


class _LoopThread:
    """An event loop running in a daemon thread until ``stop()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ringex-client",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a SyncClient called from its own event loop would wait "
                               "on itself: use the async client there")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _blocking(method: Callable[Concatenate[Requests, P], Coroutine[Any, Any, R]]
              ) -> Callable[Concatenate["SyncClient", P], R]:
    """The blocking twin of an async request method (called by name, so that a
    ReconnectingClient's own subscribe is the one that runs)."""
    name = method.__name__

    def call(self: SyncClient, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(getattr(self._client, name)(*args, **kwargs))

    call.__name__, call.__qualname__, call.__doc__ = name, f"SyncClient.{name}", method.__doc__
    return call


class SyncClient:
    """A :class:`Client` (or ReconnectingClient) driven from ordinary blocking code."""

    def __init__(self, runner: _LoopThread, client: Client | ReconnectingClient):
        self._runner = runner
        self._client = client

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        return self._runner.run(coro)

    @property
    def account(self) -> int | None:
        return self._client.account

    @property
    def admin(self) -> bool:
        return self._client.admin

    @property
    def client(self) -> Client | ReconnectingClient:
        """The async client underneath (use it only from its loop: ``run``)."""
        return self._client

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run a coroutine of your own on this client's loop and wait for it."""
        return self._run(coro)

    request = _blocking(Requests.request)
    login = _blocking(Requests.login)
    ping = _blocking(Requests.ping)
    place = _blocking(Requests.place)
    cancel = _blocking(Requests.cancel)
    modify = _blocking(Requests.modify)
    cancel_all = _blocking(Requests.cancel_all)
    subscribe = _blocking(Requests.subscribe)
    unsubscribe = _blocking(Requests.unsubscribe)
    balances = _blocking(Requests.balances)
    open_orders = _blocking(Requests.open_orders)
    order_status = _blocking(Requests.order_status)
    my_trades = _blocking(Requests.my_trades)
    deposit = _blocking(Requests.deposit)
    withdraw = _blocking(Requests.withdraw)

    @overload
    def next_event(self, kind: type[E], timeout: float | None = None) -> E: ...
    @overload
    def next_event(self, kind: tuple[type, ...] | None = None,
                   timeout: float | None = None) -> Event: ...

    def next_event(self, kind: Any = None, timeout: float | None = None) -> Any:
        """The next pushed message (of ``kind``); ClientError on timeout or once closed."""
        return self._run(self._client.next_event(kind, timeout))

    def pending_events(self) -> list[Event]:
        """Every pushed message received and not yet read, without waiting."""
        async def pending() -> list[Event]:
            return self._client.pending_events()
        return self._run(pending())

    def events(self) -> Iterator[Event]:
        """Pushed messages, blocking for each, until the connection (for a reconnecting
        client: the client) closes."""
        while True:
            try:
                yield self._run(self._client.next_event(None, IDLE_WAIT_S))
            except ClientError as exc:
                if exc.code == "closed":
                    return
                if exc.code != "timeout":
                    raise

    def close(self) -> None:
        """Close the connection and stop the loop thread (again: nothing)."""
        if not self._runner.thread.is_alive():
            return
        try:
            self._run(self._client.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str, api_key: str | None = None, *, login: str = "header",
            cancel_on_disconnect: bool = False, timeout: float = 10.0,
            max_events: int = 1_000_000, reconnect: bool | Backoff = False) -> SyncClient:
    """``ringex.client.connect``, blocking: the same arguments and errors."""
    runner = _LoopThread()
    try:
        client = runner.run(async_connect(url, api_key, login=login,
                                          cancel_on_disconnect=cancel_on_disconnect,
                                          timeout=timeout, max_events=max_events,
                                          reconnect=reconnect))
    except BaseException:
        runner.stop()
        raise
    return SyncClient(runner, client)
