"""Wire ``client_order_id`` strings <-> the int64 the engine stores (COMMAND and EVENT)."""
from __future__ import annotations

import re

from ringex.records import INT64_MAX

CLIENT_ID_MAX_CHARS = 8
_CLIENT_ID = re.compile(r"[!-~]+")


def pack_client_id(text: str) -> int:
    """A wire ``client_order_id`` (1-8 chars, each 0x21-0x7E) as the positive int64 the
    engine stores: the ASCII bytes read big-endian. ValueError for anything else."""
    if type(text) is not str or not 1 <= len(text) <= CLIENT_ID_MAX_CHARS:
        raise ValueError("client_order_id must be a string of 1 to 8 characters")
    if _CLIENT_ID.fullmatch(text) is None:
        raise ValueError("client_order_id characters must be printable ASCII, no space")
    return int.from_bytes(text.encode("ascii"), "big")


def unpack_client_id(value: int) -> str | None:
    """The string :func:`pack_client_id` made ``value`` from; None for 0 (no id) or an
    integer no wire string packs to (set by another tool)."""
    if not 0 < value <= INT64_MAX:
        return None
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if not all(0x21 <= b <= 0x7E for b in raw):
        return None
    return raw.decode("ascii")
