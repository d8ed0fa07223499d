"""A group's EVENT records -> ``trades`` and ``order_changes`` rows, and what is wrong with
a malformed payload (numpy, vectorised over the whole group; no database).

A match is a pair of FILLs, the taker's then the maker's (docs/rules.md), so within a run
of consecutive FILLs of one payload the even offsets are takers and the odd ones their
makers. A payload with a problem (its first, in event order) gives no rows at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ringex.fees import fee
from ringex.records import EV_FILL, EVENT, INFO_CODE_MASK, INFO_MAKER, INFO_SELL, EventKind
from ringex.storage.schema import row_dtype

TRADE_ROW = row_dtype("trades")
ORDER_CHANGE_ROW = row_dtype("order_changes")

UNKNOWN_SYMBOL = "event names an unknown symbol"
UNPAIRED = "FILL events are not in taker/maker pairs"
DISAGREE = "a taker FILL and its maker FILL disagree"

_RAW = np.dtype((np.void, EVENT.itemsize))


def _kinds(*kinds: EventKind) -> np.ndarray:
    """A lookup table over EVENT.kind (one gather instead of a comparison per kind)."""
    table = np.zeros(256, bool)
    table[list(kinds)] = True
    return table


IS_ORDER_KIND = _kinds(EventKind.ACK, EventKind.FILL, EventKind.CANCELLED, EventKind.MODIFIED)
# ACKs are not order_changes rows: they live in the order's row (order_rows.py)
_IS_CHANGE = _kinds(EventKind.CANCELLED, EventKind.MODIFIED, EventKind.REJECT)


@dataclass(frozen=True)
class SymbolFees:
    """Per symbol id: quote minor units per tick per lot, and the fees in bps."""

    tick_lot_value: np.ndarray
    maker_bps: np.ndarray
    taker_bps: np.ndarray


def take(ev: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``ev[at]``, copied as raw 64-byte records: numpy copies structured records field by
    field, about ten times slower."""
    return ev.view(_RAW)[at].view(EVENT)


def row_array(dtype: np.dtype, n: int, columns: dict) -> np.ndarray:
    """``n`` rows of ``dtype`` (int64 fields) from an array or a scalar per field, filled
    column by column and transposed once: about twice as fast as writing each field
    across the rows."""
    names = dtype.names or ()
    block = np.empty((len(names), n), np.int64)
    for i, name in enumerate(names):
        block[i] = columns[name]
    return np.ascontiguousarray(block.T).view(dtype).reshape(-1)


def problems(ev: np.ndarray, starts: np.ndarray, n_symbols: int) -> list[str | None]:
    """Per payload (its events start at ``starts[k]``): its first problem, or None."""
    n = len(ev)
    kind, info = ev["kind"], ev["info"]
    head = np.zeros(n + 1, bool)                        # a payload's first event
    head[starts] = True
    fill = kind == EV_FILL
    maker = (info & INFO_MAKER) != 0
    at = np.arange(n)
    after_fill = np.zeros(n, bool)
    after_fill[1:] = fill[:-1]
    run_head = fill & (head[:n] | ~after_fill)        # a payload's first event starts one
    # a taker sits at an even offset from its run's head
    taker = fill & ((at - np.maximum.accumulate(np.where(run_head, at, 0))) % 2 == 0)
    maker_next = np.zeros(n, bool)
    maker_next[:-1] = fill[1:] & maker[1:] & ~head[1:n]
    unpaired = taker & (maker | ~maker_next)
    paired = np.flatnonzero(taker & ~unpaired)
    disagree = np.zeros(n, bool)
    disagree[paired] = _disagree(take(ev, paired), take(ev, paired + 1))
    # a maker FILL is read with its taker, so only takers and other events are checked
    unknown = (~fill | taker) & IS_ORDER_KIND[kind] & (ev["symbol"] >= n_symbols)
    out: list[str | None] = [None] * len(starts)
    bad = np.flatnonzero(unknown | unpaired | disagree)
    payload = np.searchsorted(starts, bad, side="right") - 1
    found, first = np.unique(payload, return_index=True)
    for k, i in zip(found.tolist(), bad[first].tolist()):
        out[k] = UNKNOWN_SYMBOL if unknown[i] else UNPAIRED if unpaired[i] else DISAGREE
    return out


def _disagree(t: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per pair: the maker FILL does not describe the taker's match."""
    return ((m["seq"].astype(np.int64) != t["seq"].astype(np.int64) + 1)
            | (m["symbol"] != t["symbol"]) | (m["order_id"] != t["other_id"])
            | (m["other_id"] != t["order_id"]) | (m["price"] != t["price"])
            | (m["qty"] != t["qty"]))


def trade_rows(ev: np.ndarray, ts: np.ndarray, symbols: SymbolFees) -> np.ndarray:
    """One row per FILL pair of well-formed events (``problems`` found none); ``ts[i]``
    is event i's batch time."""
    at = np.flatnonzero((ev["kind"] == EV_FILL) & ((ev["info"] & INFO_MAKER) == 0))
    mk = at + 1
    s = ev["symbol"][at].astype(np.int64)
    price, qty = ev["price"][at], ev["qty"][at]
    notional = price * qty * symbols.tick_lot_value[s]
    return row_array(TRADE_ROW, len(at), {
        "symbol": s, "seq": ev["seq"][at], "price": price, "qty": qty, "notional": notional,
        "taker_order_id": ev["order_id"][at], "maker_order_id": ev["order_id"][mk],
        "taker_account": ev["account"][at], "maker_account": ev["account"][mk],
        "taker_side": (ev["info"][at] & INFO_SELL) != 0,
        "taker_leaves": ev["leaves"][at], "maker_leaves": ev["leaves"][mk],
        "taker_fee": fee(notional, symbols.taker_bps[s]),
        "maker_fee": fee(notional, symbols.maker_bps[s]), "ts_ns": ts[at]})


def order_change_rows(ev: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """CANCELLED, MODIFIED and sequenced REJECT events (an unsequenced REJECT never
    reached the book)."""
    at = np.flatnonzero(_IS_CHANGE[ev["kind"]] & (ev["seq"] != 0))
    e = take(ev, at)
    return row_array(ORDER_CHANGE_ROW, len(at), {
        **{c: e[c] for c in ("symbol", "seq", "kind", "order_id", "account", "price", "qty",
                             "leaves", "session", "ref")},
        "side": (e["info"] & INFO_SELL) != 0, "code": e["info"] & INFO_CODE_MASK,
        "client_order_id": e["other_id"], "ts_ns": ts[at]})
