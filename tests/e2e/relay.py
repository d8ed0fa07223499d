"""A TCP relay between test clients and a gateway, run in the test's event loop: the
network a reconnecting client lives on, under the test's control.

    relay = await Relay(gateway_port).start()      # clients connect to relay.url
    relay.stall()        # the gateway's bytes stop reaching clients (replies in flight)
    relay.refuse()       # new connections are accepted and closed at once (as they are
                         # while nothing listens upstream)
    relay.cut()          # every connection through it drops, as a network failure would
    await relay.refusals(1)                        # a client tried (and failed) again
    relay.admit()        # new connections go through again
    relay.upstream = other_port                    # e.g. a restarted gateway

``cut`` aborts both sockets of every pair (no WebSocket close frame): the client sees its
connection end, the gateway sees its client go.
"""
from __future__ import annotations

import asyncio


class Relay:
    def __init__(self, upstream: int, host: str = "127.0.0.1"):
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.accepted = 0
        self._refused = 0
        self._refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    async def start(self) -> "Relay":
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stall(self) -> None:
        self._flowing.clear()

    def refuse(self) -> None:
        self._refusing = True

    def admit(self) -> None:
        self._refusing = False
        self._flowing.set()

    def cut(self) -> None:
        for down, up in list(self._pairs):
            down.transport.abort()
            up.transport.abort()
        self._pairs.clear()

    async def refusals(self, n: int) -> None:
        """Wait until ``n`` connections in all have been refused."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._refused >= n)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._refusing:
                writer.transport.abort()
                await self._note("_refused")
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream)
            except OSError:                      # the gateway is down: as good as refused
                writer.transport.abort()
                await self._note("_refused")
                return
            self._pairs.add((writer, up_writer))
            await self._note("accepted")
            await asyncio.gather(self._pipe(reader, up_writer, False),
                                 self._pipe(up_reader, writer, True), return_exceptions=True)
        finally:
            self._tasks.discard(task)

    async def _note(self, counter: str) -> None:
        async with self._changed:
            setattr(self, counter, getattr(self, counter) + 1)
            self._changed.notify_all()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    to_client: bool) -> None:
        try:
            while data := await src.read(65536):
                if to_client:
                    await self._flowing.wait()
                dst.write(data)
                await dst.drain()
        finally:
            dst.transport.abort()
