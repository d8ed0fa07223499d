"""What a client's HTTP upgrade request asks for: ``/ws``, the query options, the key.

    upgrade = read_upgrade(request)
    upgrade.refusal          # (HTTPStatus, text) to answer instead, or None
    upgrade.cancel_on_disconnect, upgrade.api_key     # key: None without the header,
                                                      # "" when it is not "Bearer <key>"
"""
from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs

from websockets.http11 import Request

PATH = "/ws"


@dataclass(frozen=True, slots=True)
class Upgrade:
    refusal: tuple[HTTPStatus, str] | None = None
    cancel_on_disconnect: bool = False
    api_key: str | None = None


def read_upgrade(request: Request) -> Upgrade:
    path, _, query = request.path.partition("?")
    if path != PATH:
        return Upgrade((HTTPStatus.NOT_FOUND, f"not found: connect to {PATH}\n"))
    cod = False
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name != "cancel_on_disconnect" or values[-1] not in ("true", "false", "1", "0"):
            return Upgrade((HTTPStatus.BAD_REQUEST, f"bad query parameter {name!r}: "
                            "only cancel_on_disconnect=true|false\n"))
        cod = values[-1] in ("true", "1")
    header = request.headers.get("Authorization")
    key = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else ""
    return Upgrade(None, cod, key)
