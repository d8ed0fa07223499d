"""The one exception of the client."""
from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """A request failed: the gateway's ``error`` code (``reply`` holds the message, with
    e.g. ``retry_after_ms``), ``timeout``, ``closed``, ``auth_failed`` (handshake refused),
    ``handshake_failed``, ``http_<status>``, or a reject's code in ``admin_transfer``."""

    def __init__(self, code: str, message: str = "", reply: dict[str, Any] | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.reply = reply
