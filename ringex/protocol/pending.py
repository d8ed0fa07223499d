"""Requests of one session awaiting the engine, keyed by COMMAND.ref.

A request's *direct reply* is the event that answers it (ACK/REJECT for place,
CANCELLED/REJECT for cancel, ...); it gets the request's ``req_id`` and frees the ref.
Some answers span several events: ``balances`` (one BALANCE per asset) and the
unknown-length ``open_orders`` and ``cancel_all``. For the last two the session sends a
*barrier* after the command -- a QUERY_BALANCES, which always yields at least one
event -- and the first event of the barrier closes the answer: the engine handles a
gateway's commands in order and its events reach the gateway in order.
"""
from __future__ import annotations

from ringex.records import U32_MAX

BARRIER = "_barrier"


class Refs:
    """Request numbers for COMMAND.ref: 1, 2, ... U32_MAX, then 1 again (0 means "no
    request")."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 1

    def take(self) -> int:
        ref = self._next
        self._next = 1 if ref == U32_MAX else ref + 1
        return ref


class Request:
    """``items``: the gathered answer (balances dict, open_orders list) or, for
    cancel_all, the symbol id; ``target``: for a barrier, the ref it closes;
    ``sent_ns``: when it was sent (place only, for the place -> ack histogram);
    ``recv_ts``: the gateway's wall clock (ns since the epoch) when the request arrived
    (place, cancel, modify: their direct replies carry it), else 0."""

    __slots__ = ("req_id", "op", "items", "target", "sent_ns", "recv_ts")

    def __init__(self, req_id: object, op: str, items: object = None, target: int = 0,
                 sent_ns: int = 0, recv_ts: int = 0):
        self.req_id, self.op, self.items, self.target = req_id, op, items, target
        self.sent_ns = sent_ns          # the session clock when the command was queued
        self.recv_ts = recv_ts


class PendingRequests:
    def __init__(self) -> None:
        self._refs = Refs()
        self._by_ref: dict[int, Request] = {}

    def __len__(self) -> int:
        return len(self._by_ref)

    def add(self, request: Request) -> int:
        """Register ``request`` under a fresh ref and return the ref."""
        ref = self._refs.take()
        self._by_ref[ref] = request
        return ref

    def get(self, ref: int) -> Request | None:
        return self._by_ref.get(ref) if ref else None

    def pop(self, ref: int) -> Request | None:
        return self._by_ref.pop(ref, None)

    def close_barrier(self, ref: int) -> Request | None:
        """The barrier ``ref`` produced its first event: forget it and return the
        request it closes (None when that one was already answered by a reject)."""
        barrier = self._by_ref.pop(ref)
        return self._by_ref.pop(barrier.target, None)
