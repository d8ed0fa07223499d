"""Depth-limited ``book`` subscriptions: the top ``depth`` levels a side of a mirrored book.

A subscriber with ``"depth": 10`` holds only the ten best levels of each side. Its
updates must keep that view right, so a view update lists each level that changed inside
the view, each level that entered it (its total: it was deeper, so the client never had
it) and each level that left it (qty 0: the client drops it, though it may still exist
deeper). A change deeper than the view sends nothing.

One :class:`DepthView` per (symbol, depth) that has subscribers, shared by all of them:
its messages are made once. ``seq`` is the seq of the view's last message, so a view's
``prev_seq`` chain has no holes from changes that never reached it, and its snapshot
(the view as it stands, stamped with that seq) is exact: the view has not changed since.
"""
from __future__ import annotations

import heapq

DEPTHS = (10, 50)               # the depth limits a subscribe may ask for (none: all levels)


def book_channel(depth: int | None) -> str:
    """The fan-out key of a book subscription: ``book`` (every level) or ``book/10``."""
    return "book" if depth is None else f"book/{depth}"


BOOK_KEYS = ("book", *(f"book/{d}" for d in DEPTHS))   # every book_channel key


def channel_depth(channel: str) -> int | None:
    """The depth of a ``book_channel`` key (None: every level)."""
    return None if channel == "book" else int(channel.partition("/")[2])


def is_book_channel(channel: str) -> bool:
    return channel == "book" or channel.startswith("book/")


def top(book: dict[int, int], depth: int, sell: bool) -> dict[int, int]:
    """The ``depth`` best levels of one side (asks lowest first, bids highest first)."""
    pick = heapq.nsmallest if sell else heapq.nlargest
    return dict(pick(depth, book.items()))


def diff(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    """Levels to send so a holder of ``old`` has ``new``: changed or entered ones with
    their total, left ones with 0."""
    out = {p: q for p, q in new.items() if old.get(p) != q}
    out.update((p, 0) for p in old if p not in new)
    return out


class DepthView:
    """The top ``depth`` levels of one symbol's book as its subscribers hold them."""

    __slots__ = ("depth", "bids", "asks", "seq", "version")

    def __init__(self, depth: int, bids: dict[int, int], asks: dict[int, int], seq: int):
        self.depth = depth
        self.seq = seq                      # seq of the view's last message (or the book's)
        self.version = 0                    # bumped at each change: snapshot frame cache
        self.bids = top(bids, depth, False)
        self.asks = top(asks, depth, True)

    def reset(self, bids: dict[int, int], asks: dict[int, int], seq: int) -> None:
        """The book was replaced (loaded from the engine): subscribers get a new snapshot."""
        self.bids, self.asks = top(bids, self.depth, False), top(asks, self.depth, True)
        self.seq = seq
        self.version += 1

    def advance(self, bids: dict[int, int], asks: dict[int, int], seq: int,
                changed_bids: dict[int, int], changed_asks: dict[int, int]
                ) -> tuple[dict[int, int], dict[int, int], int] | None:
        """The book changed up to ``seq`` at the ``changed_*`` prices:
        ``(bid changes, ask changes, prev_seq)`` for the view's subscribers, or None
        when its top levels did not change."""
        d_bids = self._side(self.bids, bids, changed_bids, False)
        d_asks = self._side(self.asks, asks, changed_asks, True)
        if d_bids is None and d_asks is None:
            return None
        prev = self.seq
        self.seq = seq
        self.version += 1
        return d_bids or {}, d_asks or {}, prev

    def _side(self, view: dict[int, int], book: dict[int, int], changed: dict[int, int],
              sell: bool) -> dict[int, int] | None:
        """Update one side of the view in place; its changes, or None if none."""
        if not changed:
            return None
        if len(view) == self.depth:
            # a full view cannot see changes behind its worst level: skip the selection
            worst = max(view) if sell else min(view)
            if all((p > worst) if sell else (p < worst) for p in changed):
                return None
        new = top(book, self.depth, sell)
        d = diff(view, new)
        if not d:
            return None
        view.clear()
        view.update(new)
        return d
