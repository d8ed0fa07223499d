"""What a :class:`~ringex.protocol.session.Session` asks its adapter to do.

Every ``Session`` method that takes input returns a list of these, in order. The
adapter performs them in that order and does nothing else on the session's behalf.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class SendCommand:
    """Write ``record`` (a length-1 ``records.COMMAND`` array, every field filled) to this
    gateway's command ring, in order after any earlier SendCommand."""

    record: np.ndarray


@dataclass(frozen=True, slots=True)
class Reply:
    """Send ``message`` to this client as one text frame (``encode(message)``)."""

    message: dict


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Add this connection to the ``channel`` (``"book"`` or ``"trades"``) fan-out of
    ``symbol`` (a symbol name). For ``book``, then send it
    ``MarketFeed.snapshot(symbol)`` before any later ``book_update`` of that symbol."""

    channel: str
    symbol: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Remove this connection from the ``channel`` fan-out of ``symbol``."""

    channel: str
    symbol: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Look up ``api_key`` (hashed, in the database), then call
    ``Session.authenticated(account)`` or ``Session.auth_failed()``."""

    api_key: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with ``code`` and ``reason`` after sending the replies before
    it. The session ignores all further input."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class StoreQuery:
    """Answer ``req_id`` from the database (``my_trades``): the adapter runs the query
    and sends ``reconcile.my_trades_message`` of its rows."""

    op: str
    req_id: object
    params: tuple


Action = SendCommand | Reply | Subscribe | Unsubscribe | Authenticate | Close | StoreQuery
