"""The texts of long client ids one gateway knows: (account, key) -> text, bounded.

A long ``client_order_id`` (9 to 36 characters) reaches the engine as its key only
(``client_ids.pack_client_id``); messages must show the text again. The gateway learns
texts from its own clients' requests (place, cancel, order_status) and from the CLIENT_ID
events the engine routes to it (orders of its sessions, and of accounts it streams on
the ``orders`` channel); after a restart it knows none, and ``open_orders`` and
``order_status`` answers that need one read it from the database (``client_ids``
table, ``ringex.gateway.reconciler``).

Bounded: at most ``capacity`` entries (65,536 by default: about 14 MB with 36-character
ids, measured with tracemalloc); past that the entry learnt longest ago goes. A text is
needed shortly after it is learnt (the order's ack, on this gateway or a streaming one);
a session keeps the text of each of its live orders itself (``EventTranslator.orders``),
so an evicted text costs at most a database read for a later ``open_orders`` or
``order_status``.
"""
from __future__ import annotations

from ringex.protocol.client_ids import pack_client_id, unpack_client_id, words_text

DEFAULT_CAPACITY = 65_536


class ClientIdTexts:
    __slots__ = ("capacity", "_texts")

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._texts: dict[tuple[int, int], str] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def learn(self, account: int, key: int, text: str) -> None:
        """Remember a long id's text (a key >= 0 needs none: it is ignored)."""
        if key >= 0:
            return
        texts = self._texts
        ak = (account, key)
        if texts.pop(ak, None) is None and len(texts) >= self.capacity:
            del texts[next(iter(texts))]            # insertion order: the oldest first
        texts[ak] = text

    def learn_event(self, ev: tuple) -> None:
        """A CLIENT_ID event (``EVENT.item()``): its text and account."""
        text = words_text(ev[1:6])
        if text is not None:
            self.learn(ev[6], pack_client_id(text), text)

    def text(self, account: int, key: int) -> str | None:
        """The wire text of ``key``: a short id unpacked, a long one if learnt, else None
        (also for 0, no id)."""
        if key >= 0:
            return unpack_client_id(key)
        return self._texts.get((account, key))

    def missing(self, account: int, key: int) -> bool:
        """Whether ``key`` is a long id whose text this gateway does not know."""
        return key < 0 and (account, key) not in self._texts
