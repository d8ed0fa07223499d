"""The Python SDK for the ringex WebSocket protocol (docs/protocol.md, docs/sdk.md); needs
only websockets and orjson (no numpy, no numba). Typed: ``ringex`` ships ``py.typed``.

    from ringex.client import connect
    async with await connect("ws://127.0.0.1:8765/ws", api_key) as c:
        ack = await c.place("BTC-USD", "buy", "0.5", "30000.00")   # Ack | Reject
        async for ev in c.events():                                # Fill, Cancelled, Trade ...
            ...

``connection`` (Client, connect), ``reconnect`` (ReconnectingClient: ``connect(...,
reconnect=True)``), ``sync`` (blocking, for scripts: ``ringex.client.sync.connect``),
``results`` (the typed replies and events), ``types`` (the Literal vocabularies),
``admin`` (``admin_transfer``, the CLI's synchronous deposit/withdraw).
"""
from ringex.client.admin import admin_transfer
from ringex.client.backoff import Backoff
from ringex.client.connection import Client, ClientError, Number, connect
from ringex.client.events import Event, Reconnected
from ringex.client.reconnect import ReconnectingClient
from ringex.client.results import (
    Ack, Balance, BookSnapshot, BookUpdate, CancelAllDone, Cancelled, Error, Fill, LoggedIn,
    Modified, MyTrade, OpenOrder, OrderState, Reject, Subscribed, Trade, Transfer, Unsubscribed,
    parse,
)
from ringex.client.types import (
    BookDepth, CancelReason, Channel, Liquidity, OrderStatus, OrderType, Side, Stp, TimeInForce,
)

__all__ = [
    "Ack", "Backoff", "Balance", "BookDepth", "BookSnapshot", "BookUpdate", "CancelAllDone",
    "CancelReason", "Cancelled", "Channel", "Client", "ClientError", "Error", "Event",
    "Fill", "Liquidity", "LoggedIn", "Modified", "MyTrade", "Number", "OpenOrder",
    "OrderState", "OrderStatus", "OrderType", "Reconnected", "ReconnectingClient", "Reject",
    "Side", "Stp", "Subscribed", "TimeInForce", "Trade", "Transfer", "Unsubscribed",
    "admin_transfer", "connect", "parse",
]
