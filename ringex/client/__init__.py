"""An asyncio client for the ringex WebSocket protocol (docs/protocol.md); needs only
websockets and orjson (no numpy, no numba).

    from ringex.client import connect
    async with await connect("ws://127.0.0.1:8765/ws", api_key) as c:
        ack = await c.place("BTC-USD", "buy", "0.5", "30000.00")   # Ack | Reject
        async for ev in c.events():                                # Fill, Cancelled, Trade ...
            ...

``connection`` (Client, connect, ClientError), ``results`` (the typed replies and events),
``admin`` (``admin_transfer``, the CLI's synchronous deposit/withdraw).
"""
from ringex.client.admin import admin_transfer
from ringex.client.connection import Client, ClientError, Number, connect
from ringex.client.results import (
    Ack, Balance, BookSnapshot, BookUpdate, CancelAllDone, Cancelled, Error, Fill, LoggedIn,
    Modified, MyTrade, OpenOrder, OrderState, Reject, Subscribed, Trade, Transfer, Unsubscribed,
    parse,
)

__all__ = [
    "Ack", "Balance", "BookSnapshot", "BookUpdate", "CancelAllDone", "Cancelled", "Client",
    "ClientError", "Error", "Fill", "LoggedIn", "Modified", "MyTrade", "Number", "OpenOrder",
    "OrderState", "Reject",
    "Subscribed", "Trade", "Transfer", "Unsubscribed", "admin_transfer", "connect", "parse",
]
