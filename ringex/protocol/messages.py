"""Wire messages built from engine integers: every price, qty and amount an exact string.

Private order messages (ack, fill, ...) are built by the session, which knows the
``req_id`` and the client ids; market-data messages by the functions at the bottom,
which any gateway code may call (the :class:`~ringex.protocol.feed.MarketFeed` does).
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable
from itertools import islice

import orjson

from ringex.protocol.codes import ErrorCode
from ringex.protocol.symbols import SymbolInfo

SIDE_NAMES = ("buy", "sell")


def encode(message: dict) -> bytes:
    """UTF-8 JSON for one message. Send it as a *text* frame
    (websockets: ``await ws.send(data, text=True)``)."""
    return orjson.dumps(message)


def error(code: ErrorCode, message: str, req_id: object = None, **extra: object) -> dict:
    """An ``error`` message; ``extra`` fields follow ``message`` (``rate_limited`` says
    which ``limit`` and ``retry_after_ms``)."""
    msg: dict[str, object] = {"type": "error", "code": str(code), "message": message, **extra}
    if req_id is not None:
        msg["req_id"] = req_id
    return msg


def price_or_none(s: SymbolInfo, ticks: int) -> str | None:
    """A limit price, or None for a market order (engine price 0)."""
    return s.price.format(ticks) if ticks else None


def order_fields(s: SymbolInfo, order_id: int, client_order_id: str | None, sell: bool,
                 price: int, qty: int) -> dict:
    """The fields every order message starts with (after ``type``)."""
    return {"symbol": s.name, "order_id": order_id, "client_order_id": client_order_id,
            "side": SIDE_NAMES[sell], "price": price_or_none(s, price),
            "qty": s.qty.format(qty)}


# ---------------------------------------------------------------- market data
def _levels(s: SymbolInfo, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
    return [[s.price.format(p), s.qty.format(q)] for p, q in levels]


def trade_message(s: SymbolInfo, seq: int, prev_seq: int, price: int, qty: int,
                  taker_sell: bool, ts: int = 0) -> dict:
    """A public trade. ``prev_seq``: seq of this symbol's previous trade message (0: none
    seen); a client that saw a different last seq missed trades. ``trade_id`` is the
    taker FILL's seq: both sides' ``fill`` pushes carry the same id."""
    return {"type": "trade", "symbol": s.name, "seq": seq, "prev_seq": prev_seq,
            "trade_id": seq,
            "price": s.price.format(price), "qty": s.qty.format(qty),
            "taker_side": SIDE_NAMES[taker_sell], "ts": ts}


CHECKSUM_LEVELS = 10      # levels a side that a book message's checksum covers


def book_checksum(s: SymbolInfo, bids: Iterable[tuple[int, int]],
                  asks: Iterable[tuple[int, int]]) -> int:
    """CRC-32 (zlib's) of the top of a book, best first on each side (at most
    CHECKSUM_LEVELS levels each), as ASCII ``price:qty`` pairs in the wire's decimals,
    joined by ``,``, bids then ``|`` then asks: ``"30000.00:0.3000,29999.50:1.2000|
    30001.00:0.7500"``. A client computes it over its own book after each message."""
    text = "|".join(",".join(f"{s.price.format(p)}:{s.qty.format(q)}"
                             for p, q in islice(side, CHECKSUM_LEVELS))
                    for side in (bids, asks))
    return zlib.crc32(text.encode("ascii"))


def book_update_message(s: SymbolInfo, seq: int, prev_seq: int,
                        bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]],
                        ts: int = 0, checksum: int = 0) -> dict:
    """Changed levels ``(price ticks, total lots)``; 0 lots means the level is gone.
    ``seq`` is the engine sequence of the last change included, ``prev_seq`` that of the
    previous book message (update or snapshot) of the symbol."""
    return {"type": "book_update", "symbol": s.name, "seq": seq, "prev_seq": prev_seq,
            "bids": _levels(s, bids), "asks": _levels(s, asks), "checksum": checksum,
            "ts": ts}


def book_snapshot_message(s: SymbolInfo, seq: int, bids: Iterable[tuple[int, int]],
                          asks: Iterable[tuple[int, int]], ts: int = 0,
                          checksum: int = 0) -> dict:
    """The whole book, best level first on each side, as of engine sequence ``seq`` (of
    engine time ``ts``)."""
    return {"type": "book_snapshot", "symbol": s.name, "seq": seq,
            "bids": _levels(s, bids), "asks": _levels(s, asks), "checksum": checksum,
            "ts": ts}
