"""Market data for one gateway: TRADE / BOOK_LEVEL events -> channel messages, plus a
mirror of every book so a new ``book`` subscriber gets a snapshot without asking the
matcher.

One ``MarketFeed`` per gateway process, fed every market-data event in ring order.
Messages are per channel and symbol, so the adapter encodes each once and sends the
same bytes to every subscriber.
"""
from __future__ import annotations

import numpy as np

from ringex.config import Config
from ringex.io.protocol.messages import (
    book_snapshot_message, book_update_message, trade_message,
)
from ringex.io.protocol.symbols import tables_for
from ringex.ring.layout import INFO_SELL, EventKind

TRADE, BOOK_LEVEL = int(EventKind.TRADE), int(EventKind.BOOK_LEVEL)


class MarketFeed:
    def __init__(self, config: Config):
        self._t = tables_for(config)
        n = len(config.symbols)
        self._books: list[tuple[dict[int, int], dict[int, int]]] = [({}, {}) for _ in range(n)]
        self._book_seq = [0] * n      # seq of the last book message (or change) per symbol
        self._trade_seq = [0] * n

    def apply(self, events: np.ndarray) -> list[tuple[str, str, dict]]:
        """Feed one batch of events (any kinds; only TRADE and BOOK_LEVEL are used).

        Returns ``(channel, symbol name, message)`` to send to that channel's
        subscribers: each trade in order, then one ``book_update`` per symbol whose
        book changed, coalescing the batch (the last value of a level wins).
        """
        out: list[tuple[str, str, dict]] = []
        changed: dict[int, tuple[dict[int, int], dict[int, int], int]] = {}
        for ev in events.tolist():
            seq, _, _, price, qty, _, _, _, _, symbol, kind, info = ev
            s = self._t.symbols.get(symbol)
            if s is None:
                continue
            sell = bool(info & INFO_SELL)
            if kind == TRADE:
                out.append(("trades", s.name,
                            trade_message(s, seq, self._trade_seq[symbol], price, qty, sell)))
                self._trade_seq[symbol] = seq
            elif kind == BOOK_LEVEL:
                book = self._books[symbol][sell]
                if qty:
                    book[price] = qty
                else:
                    book.pop(price, None)
                bids, asks, _ = changed.get(symbol) or ({}, {}, 0)
                (asks if sell else bids)[price] = qty
                changed[symbol] = (bids, asks, seq)
        for symbol, (bids, asks, seq) in changed.items():
            s = self._t.symbols[symbol]
            out.append(("book", s.name, book_update_message(
                s, seq, self._book_seq[symbol], sorted(bids.items(), reverse=True),
                sorted(asks.items()))))
            self._book_seq[symbol] = seq
        return out

    def snapshot(self, symbol: str, depth: int | None = None) -> dict:
        """``book_snapshot`` of ``symbol`` (a known name) as of the last applied batch,
        best first, at most ``depth`` levels a side. Send it right after a Subscribe
        to ``book`` and before any later update of that symbol."""
        s = self._t.by_name[symbol]
        bids, asks = self._books[s.id]
        return book_snapshot_message(
            s, self._book_seq[s.id], sorted(bids.items(), reverse=True)[:depth],
            sorted(asks.items())[:depth])
