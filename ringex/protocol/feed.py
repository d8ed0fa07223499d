"""Market data for one gateway: TRADE / BOOK_LEVEL events -> channel messages, plus a
mirror of every book so a new ``book`` subscriber gets a snapshot without asking the
matcher.

One ``MarketFeed`` per gateway process, fed every market-data event in ring order.
Messages are per channel and symbol, so the adapter encodes each once and sends the
same bytes to every subscriber.

A gateway that starts after the market opened, or that was lapped on the market-data
ring, loads its mirror from the engine (:class:`~ringex.protocol.booksync.BookSync`
drives it): ``resync(symbol)`` starts holding that symbol's book levels back,
``load_snapshot(symbol, levels)`` installs the engine's QUERY_BOOK answer (stamped with
the symbol's sequence S) and replays the held-back levels newer than S. Book levels are
absolute totals, so replaying one the snapshot already reflects changes nothing.

Depth-limited subscriptions (``book/10``, ``book/50``) are served from a
:class:`~ringex.protocol.book_views.DepthView` per (symbol, depth) that someone watches.
"""
from __future__ import annotations

import heapq

import numpy as np

from ringex.config import Config
from ringex.protocol.book_views import DepthView, book_channel
from ringex.protocol.messages import (
    CHECKSUM_LEVELS, book_checksum, book_snapshot_message, book_update_message, encode,
    trade_message,
)
from ringex.protocol.symbols import tables_for
from ringex.records import INFO_SELL, EventKind

TRADE, BOOK_LEVEL, CLOCK = int(EventKind.TRADE), int(EventKind.BOOK_LEVEL), int(EventKind.CLOCK)


class MarketFeed:
    def __init__(self, config: Config):
        self._t = tables_for(config)
        n = len(config.symbols)
        self._books: list[tuple[dict[int, int], dict[int, int]]] = [({}, {}) for _ in range(n)]
        self._book_seq = [0] * n      # seq of the last book message (or change) per symbol
        self._book_ts = [0] * n       # engine time of that change
        self._ts = 0                  # engine time of the group being read (CLOCK records)
        self._trade_seq = [0] * n
        self._base_seq = [0] * n      # book levels at or below this seq are in the mirror
        self._held: dict[int, list[tuple]] = {}   # syncing symbol id -> held-back levels
        self._version = [0] * n       # bumped whenever a mirrored book changes
        # (symbol id, depth or None) -> (version, snapshot frame)
        self._frames: dict[tuple[int, int | None], tuple[int, bytes]] = {}
        self._views: dict[int, dict[int, DepthView]] = {}  # symbol id -> depth -> view

    def apply(self, events: np.ndarray) -> list[tuple[str, str, dict]]:
        """Feed one batch of events (any kinds; only CLOCK, TRADE and BOOK_LEVEL are used).

        Returns ``(channel, symbol name, message)`` to send to that channel's
        subscribers: each trade in order, then one ``book_update`` per symbol whose
        book changed, coalescing the batch (the last value of a level wins). Each message's
        ``ts`` is the engine time of its group (of the last change, for a book_update).
        """
        out: list[tuple[str, str, dict]] = []
        changed: dict[int, tuple[dict[int, int], dict[int, int], int]] = {}
        for ev in events.tolist():
            seq, ts, _, price, qty, _, _, _, _, symbol, kind, info = ev
            if kind == CLOCK:
                self._ts = ts
                continue
            s = self._t.symbols.get(symbol)
            if s is None:
                continue
            sell = bool(info & INFO_SELL)
            if kind == TRADE:
                out.append(("trades", s.name,
                            trade_message(s, seq, self._trade_seq[symbol], price, qty, sell,
                                          self._ts)))
                self._trade_seq[symbol] = seq
            elif kind == BOOK_LEVEL:
                held = self._held.get(symbol)
                if held is not None:
                    held.append(ev)
                    continue
                if seq <= self._base_seq[symbol]:
                    continue
                book = self._books[symbol][sell]
                if qty:
                    book[price] = qty
                else:
                    book.pop(price, None)
                self._version[symbol] += 1
                bids, asks, _ = changed.get(symbol) or ({}, {}, 0)
                (asks if sell else bids)[price] = qty
                changed[symbol] = (bids, asks, seq)
                self._book_ts[symbol] = self._ts
        for symbol, (bids, asks, seq) in changed.items():
            s = self._t.symbols[symbol]
            checksum = self.checksum(symbol)
            out.append(("book", s.name, book_update_message(
                s, seq, self._book_seq[symbol], sorted(bids.items(), reverse=True),
                sorted(asks.items()), self._book_ts[symbol], checksum)))
            self._book_seq[symbol] = seq
            views = self._views.get(symbol)
            if views:
                self._advance_views(s, views, bids, asks, seq, checksum, out)
        return out

    def _advance_views(self, s, views: dict[int, DepthView], bids: dict[int, int],
                       asks: dict[int, int], seq: int, checksum: int,
                       out: list[tuple[str, str, dict]]) -> None:
        """A ``book_update`` for each watched depth whose top levels changed."""
        book_bids, book_asks = self._books[s.id]
        for depth, view in views.items():
            change = view.advance(book_bids, book_asks, seq, bids, asks)
            if change is not None:
                d_bids, d_asks, prev = change
                out.append((book_channel(depth), s.name, book_update_message(
                    s, seq, prev, sorted(d_bids.items(), reverse=True),
                    sorted(d_asks.items()), self._book_ts[s.id], checksum)))

    # ------------------------------------------------------------ depth-limited views
    def watch(self, symbol: str, depth: int) -> None:
        """Keep a ``depth`` view of ``symbol`` (a name) from now on (its first
        subscriber is coming); a view already kept stays as it is."""
        sid = self._t.by_name[symbol].id
        views = self._views.setdefault(sid, {})
        if depth not in views:
            bids, asks = self._books[sid]
            views[depth] = DepthView(depth, bids, asks, self._book_seq[sid])

    def unwatch(self, symbol: str, depth: int) -> None:
        """Its last subscriber left: stop keeping the view."""
        sid = self._t.by_name[symbol].id
        views = self._views.get(sid)
        if views is not None:
            views.pop(depth, None)
            self._frames.pop((sid, depth), None)

    # ------------------------------------------------------------ loading from the engine
    def resync(self, symbol_id: int) -> None:
        """Start (re)loading a symbol: hold its book levels back until ``load_snapshot``.
        Call it before the QUERY_BOOK command is written."""
        self._t.symbols[symbol_id]          # KeyError for an unknown id
        self._held.setdefault(symbol_id, [])

    @property
    def symbol_ids(self) -> list[int]:
        return list(self._t.symbols)

    def symbol_name(self, symbol_id: int) -> str:
        return self._t.symbols[symbol_id].name

    def syncing(self, symbol: str) -> bool:
        """True while ``symbol`` (a name) waits for its snapshot: do not serve one."""
        return self._t.by_name[symbol].id in self._held

    def load_snapshot(self, symbol_id: int, levels: list[tuple]) -> None:
        """Install the engine's book: ``levels`` are the BOOK_LEVEL event tuples answering
        one QUERY_BOOK, all stamped with the symbol's sequence S (none: the book was empty).

        Call it once every market-data event published before the answer has been
        applied (drain the market-data ring first): held-back levels newer than S are
        replayed, and later levels at or below S are ignored. For an empty book S is
        unknown; every held-back level is replayed (each level's last value before S
        was zero, so the pre-S ones cancel out)."""
        held = self._held.pop(symbol_id, [])
        base = levels[0][0] if levels else None
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for ev in levels:
            if ev[4]:
                (asks if ev[11] & INFO_SELL else bids)[ev[3]] = ev[4]
        seq = self._book_seq[symbol_id] if base is None else base
        for ev in held:
            if base is None or ev[0] > base:
                book = asks if ev[11] & INFO_SELL else bids
                if ev[4]:
                    book[ev[3]] = ev[4]
                else:
                    book.pop(ev[3], None)
                seq = max(seq, ev[0])
        self._books[symbol_id] = (bids, asks)
        self._version[symbol_id] += 1
        self._base_seq[symbol_id] = base or 0
        self._book_seq[symbol_id] = seq
        for view in self._views.get(symbol_id, {}).values():
            view.reset(bids, asks, seq)
        self._book_ts[symbol_id] = self._ts       # market data is read up to the answer

    def snapshot_frame(self, symbol: str, depth: int | None = None) -> bytes:
        """``encode(snapshot(symbol, depth))``, made once per version of the book (of
        the view): every subscriber of an unchanged book gets the same bytes."""
        sid = self._t.by_name[symbol].id
        version = self._version[sid] if depth is None else self._views[sid][depth].version
        cached = self._frames.get((sid, depth))
        if cached is not None and cached[0] == version:
            return cached[1]
        data = encode(self.snapshot(symbol, depth))
        self._frames[(sid, depth)] = (version, data)
        return data

    def snapshot(self, symbol: str, depth: int | None = None) -> dict:
        """``book_snapshot`` of ``symbol`` (a known name) as of the last applied batch,
        best first; with ``depth``, the watched view of that depth (stamped with the seq
        of its last update). Send it right after a Subscribe to that channel and before
        any later update of it."""
        s = self._t.by_name[symbol]
        seq = self._book_seq[s.id]
        if depth is None:
            bids, asks = self._books[s.id]
        else:
            view = self._views[s.id][depth]
            bids, asks, seq = view.bids, view.asks, view.seq
        return book_snapshot_message(
            s, seq, sorted(bids.items(), reverse=True), sorted(asks.items()),
            self._book_ts[s.id], self.checksum(s.id))

    def checksum(self, symbol_id: int) -> int:
        """``book_checksum`` of the mirrored book's top levels (two partial selections,
        not a sort of the whole book: it runs for every book update)."""
        bids, asks = self._books[symbol_id]
        return book_checksum(self._t.symbols[symbol_id],
                             heapq.nlargest(CHECKSUM_LEVELS, bids.items()),
                             heapq.nsmallest(CHECKSUM_LEVELS, asks.items()))
