"""Loading a gateway's book mirror from the engine (sans-I/O).

A :class:`~ringex.protocol.feed.MarketFeed` mirrors every book from the market-data
ring, which only carries changes. To learn a book's current state -- when the gateway
starts, or after the market-data ring lapped it -- the gateway asks the engine:

    records = sync.request(symbol_ids)   # write them to the command ring, in order
    ...
    for ev in event tuples addressed to sync.session_id:
        if sync.on_event(ev):            # the answer is complete
            <apply every market-data event published so far: drain that ring>
            names = sync.finish()        # -> symbols loaded: send each book subscriber
                                         #    a fresh feed.snapshot(name)

``request`` writes one QUERY_BOOK per symbol (answered with one BOOK_LEVEL per
occupied level, all stamped with the symbol's sequence, possibly none) and then a
*marker*: a QUERY_BOOK of ``ALL_SYMBOLS``, which the engine always answers with exactly
one REJECT (unknown symbol; the writer ignores it). The engine answers one gateway's
commands in order, so the marker's reply closes every answer before it.

Why drain the market-data ring before ``finish``: the engine publishes a batch's market
data no later than the private events of its next batch, so once the marker is seen,
every level change older than the snapshot is already in the market-data ring. The
session id is the gateway's own: one no connection uses (the gateway uses connection
number 0xFFFFFF; 0 would make session 0 on gateway 0, the engine's internal session).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

import ringex.protocol.requests as rq
from ringex.protocol.feed import MarketFeed
from ringex.protocol.pending import Refs
from ringex.records import ALL_SYMBOLS, CommandKind, EventKind

_QUERY_BOOK = int(CommandKind.QUERY_BOOK)
_BOOK_LEVEL, _REJECT = int(EventKind.BOOK_LEVEL), int(EventKind.REJECT)


class BookSync:
    def __init__(self, feed: MarketFeed, session_id: int,
                 clock: Callable[[], int] = time.perf_counter_ns):
        self.feed = feed
        self.session_id = session_id
        self._clock = clock
        self._refs = Refs()
        self._queries: dict[int, tuple[int, list[tuple]]] = {}  # ref -> (symbol id, levels)
        self._markers: dict[int, list[int]] = {}                 # ref -> query refs it closes
        self._done: list[int] = []                               # query refs answered

    @property
    def pending(self) -> bool:
        """True while an answer is outstanding."""
        return bool(self._markers)

    def request(self, symbol_ids: Iterable[int]) -> list[np.ndarray]:
        """Start loading these symbols; returns the COMMAND records to write, in order."""
        now = self._clock()
        records, refs = [], []
        for sid in symbol_ids:
            self.feed.resync(sid)
            ref = self._refs.take()
            self._queries[ref] = (sid, [])
            refs.append(ref)
            records.append(rq.command(_QUERY_BOOK, 0, self.session_id, ref, now, symbol=sid))
        if refs:
            marker = self._refs.take()
            self._markers[marker] = refs
            records.append(rq.command(_QUERY_BOOK, 0, self.session_id, marker, now,
                                      symbol=ALL_SYMBOLS))
        return records

    def on_event(self, ev: tuple) -> bool:
        """One event tuple of this session. True when an answer is complete: drain the
        market-data ring into the feed, then call :meth:`finish`."""
        ref, kind = ev[8], ev[10]
        if kind == _BOOK_LEVEL:
            query = self._queries.get(ref)
            if query is not None:
                query[1].append(ev)
            return False
        if kind == _REJECT:
            refs = self._markers.pop(ref, None)
            if refs is not None:
                self._done.extend(refs)
                return True
        return False

    def finish(self) -> list[str]:
        """Install every completed answer in the feed; returns the symbol names loaded."""
        names = []
        for ref in self._done:
            sid, levels = self._queries.pop(ref)
            self.feed.load_snapshot(sid, levels)
            names.append(self.feed.symbol_name(sid))
        self._done = []
        return names
