"""Wire ``client_order_id`` strings <-> the int64 key the engine stores (COMMAND and EVENT).

A client id is 1 to 36 printable ASCII characters without space (0x21-0x7E). Its key:

- 1 to 8 characters: the ASCII bytes read big-endian, a positive int64 that unpacks back
  to the text (the only form before long ids; old databases and journals hold these);
- 9 to 36 characters: a negative int64 from a hash of the text (blake2b, 8 bytes, folded
  into [-2**63, -1]). The text itself travels once, in a CLIENT_ID command and event
  (:func:`text_words`), and is kept by the gateways and in the database's ``client_ids``.

Two different long ids of one account with the same key would be refused as duplicates
while both are live (docs/rules.md: chance about n**2 / 2**64 for n live ids).
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

from ringex.records import INT64_MAX

CLIENT_ID_MAX_CHARS = 36
PACKED_MAX_CHARS = 8            # ids up to this long are their own key
TEXT_WORDS = 5                  # int64 fields a CLIENT_ID record carries the text in
TEXT_BYTES = 8 * TEXT_WORDS
_CLIENT_ID = re.compile(r"[!-~]+")
_LENGTH = f"client_order_id must be a string of 1 to {CLIENT_ID_MAX_CHARS} characters"


def check_client_id(text: object) -> str:
    """``text`` if it is a valid wire client id, else ValueError saying why."""
    if type(text) is not str or not 1 <= len(text) <= CLIENT_ID_MAX_CHARS:
        raise ValueError(_LENGTH)
    if _CLIENT_ID.fullmatch(text) is None:
        raise ValueError("client_order_id characters must be printable ASCII, no space")
    return text


def pack_client_id(text: str) -> int:
    """The key of a wire ``client_order_id`` (module docstring); ValueError when invalid."""
    check_client_id(text)
    raw = text.encode("ascii")
    if len(raw) <= PACKED_MAX_CHARS:
        return int.from_bytes(raw, "big")
    return long_key(raw)


def long_key(raw: bytes) -> int:
    """The negative key of a 9-36 byte id: never 0, never a packed (positive) one."""
    h = int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")
    return -(h & INT64_MAX) - 1


def unpack_client_id(value: int) -> str | None:
    """The short id :func:`pack_client_id` made ``value`` from; None for 0 (no id), a long
    id's key (look its text up) or an integer no wire string packs to."""
    if not 0 < value <= INT64_MAX:
        return None
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if not all(0x21 <= b <= 0x7E for b in raw):
        return None
    return raw.decode("ascii")


def text_words(text: str) -> tuple[int, ...]:
    """The text NUL-padded to TEXT_BYTES, as the TEXT_WORDS little-endian int64 fields of
    a CLIENT_ID record (so the record's bytes are the text itself)."""
    raw = text.encode("ascii").ljust(TEXT_BYTES, b"\0")
    return tuple(int(w) for w in np.frombuffer(raw, "<i8"))


def words_text(words) -> str | None:
    """The text :func:`text_words` packed (``words``: TEXT_WORDS ints); None when the
    bytes are no valid long client id (a record made by another tool)."""
    return bytes_text(np.array(words, "<i8").tobytes())


def bytes_text(raw: bytes) -> str | None:
    """:func:`words_text` of the TEXT_BYTES raw bytes of a record's text fields."""
    raw = raw.rstrip(b"\0")
    if not PACKED_MAX_CHARS < len(raw) <= CLIENT_ID_MAX_CHARS \
            or not all(0x21 <= b <= 0x7E for b in raw):
        return None
    return raw.decode("ascii")
