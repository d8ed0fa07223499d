"""Shared pieces of the live WebSocket tests: funded accounts, raw sockets, and a bounded
``run`` for coroutines (no pytest-asyncio here). The ``exchange`` fixture (one ``ringex run``
per test module) is in tests/e2e/conftest.py.
"""
from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from ringex.client import BookSnapshot, BookUpdate, Client, Reject, connect
from tests.e2e.live_exchange import LiveExchange

_names = itertools.count(1)


def run(coro, timeout: float = 60.0):
    """Run one test coroutine on a fresh loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def funded(ex: LiveExchange, **amounts) -> tuple[str, int]:
    """A new account with deposits (``USD="1000"``): its (api key, account id)."""
    name = f"acct{next(_names)}"
    key = ex.add_account(name)
    account = ex.accounts[name]
    if amounts:
        admin = await connect(ex.url, ex.admin_key)
        try:
            for asset, amount in amounts.items():
                res = await admin.deposit(account, asset, amount)
                assert not isinstance(res, Reject), res
        finally:
            await admin.close()
    return key, account


async def trader(ex: LiveExchange, **amounts) -> Client:
    """A logged-in client of a new funded account (``client.account`` is set)."""
    key, _ = await funded(ex, **amounts)
    return await connect(ex.url, key, login="message")


class Raw:
    """A bare WebSocket for the protocol tests: send dicts or frames, read dicts."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, url: str, api_key: str | None = None, **kw) -> "Raw":
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return cls(await ws_connect(url, additional_headers=headers, compression=None,
                                    max_size=None, **kw))

    async def send(self, msg) -> None:
        if isinstance(msg, (dict, list)):
            await self.ws.send(orjson.dumps(msg), text=True)
        elif isinstance(msg, bytes):
            await self.ws.send(msg)
        else:
            await self.ws.send(msg)

    async def recv(self, timeout: float = 10.0) -> dict:
        return orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def ask(self, msg, timeout: float = 10.0) -> dict:
        """Send, then the first message answering it (same req_id, or an error)."""
        await self.send(msg)
        rid = msg.get("req_id") if isinstance(msg, dict) else None
        while True:
            reply = await self.recv(timeout)
            if reply.get("req_id") == rid or (rid is None and reply["type"] == "error"):
                return reply

    async def quiet(self, seconds: float = 0.2) -> list[dict]:
        """Everything that arrives within ``seconds``."""
        out = []
        try:
            while True:
                out.append(await self.recv(seconds))
        except (asyncio.TimeoutError, TimeoutError, ConnectionClosed):
            return out

    async def close(self) -> None:
        await self.ws.close()


async def bids_become(c, snap: BookSnapshot, want: list) -> None:
    """Wait until the book of ``snap`` and the updates after it has the bids ``want``
    (market data reaches the gateway on its own path: a fresh snapshot may trail a trade
    by milliseconds; the updates catch up)."""
    levels = dict(snap.bids)
    while sorted(((p, q) for p, q in levels.items() if q), reverse=True) != want:
        up = await c.next_event(BookUpdate)
        if up.symbol == snap.symbol:
            levels.update(up.bids)


def dec(s) -> Decimal:
    return Decimal(str(s))
