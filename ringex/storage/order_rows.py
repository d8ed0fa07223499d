"""A group's events -> one ``orders`` row per order touched (numpy, no database).

Each row is the order's state after the group's last event about it. ``filled`` is the
lots filled *in this group* (the store adds it), ``status`` is final when FILLED or
CANCELLED and otherwise recomputed by the store from the total filled. An ACK that is the
order's first event fills created_seq/created_price/created_ref/created_ts_ns (the store
writes them only when it inserts the row); an order first seen without its ACK gets
created_seq 0.
"""
from __future__ import annotations

import numpy as np

from ringex.records import EV_ACK, EV_CANCELLED, EV_FILL, INFO_CODE_MASK, INFO_SELL
from ringex.storage.event_rows import IS_ORDER_KIND, row_array
from ringex.storage.schema import OrderStatus, row_dtype

ORDER_ROW = row_dtype("orders")
# plain ints: an enum member costs a slow attribute lookup per use, many per group
_ENDED_FILLED_PARTIAL = [int(OrderStatus.CANCELLED), int(OrderStatus.FILLED),
                         int(OrderStatus.PARTIALLY_FILLED)]
_OPEN = int(OrderStatus.OPEN)


def order_rows(ev: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows in order_id order, whether each order was ACKed in this group: a new row).

    ``ts[i]`` is event i's batch time.
    """
    kind = ev["kind"]
    mine = np.flatnonzero(IS_ORDER_KIND[kind] & (ev["order_id"] > 0))
    oid = ev["order_id"][mine]
    by_order = np.argsort(oid, kind="stable")           # and in event order within one
    at, oid = mine[by_order], oid[by_order]
    if not len(at):
        return np.zeros(0, ORDER_ROW), np.zeros(0, bool)
    first = np.flatnonzero(np.concatenate(([True], oid[1:] != oid[:-1])))
    last = np.append(first[1:], len(at)) - 1
    fill = kind[at] == EV_FILL
    filled = np.add.reduceat(np.where(fill, ev["qty"][at], 0), first)
    # a maker's trade price is its limit price: the last ACK/CANCELLED/MODIFIED sets the
    # price and client id; only an order seen in FILLs alone takes its last fill's price
    last_other = np.maximum.reduceat(np.where(fill, -1, np.arange(len(at))), first)
    has_other = last_other >= 0
    f, z = at[first], at[last]                           # each order's first, last event
    acked = kind[f] == EV_ACK
    cancelled = kind[z] == EV_CANCELLED
    leaves = ev["leaves"][z]
    limit = at[np.where(has_other, last_other, last)]
    out = row_array(ORDER_ROW, len(first), {
        "order_id": oid[first], "symbol": ev["symbol"][f], "account": ev["account"][f],
        "side": (ev["info"][f] & INFO_SELL) != 0, "price": ev["price"][limit],
        "qty": np.where(acked, ev["qty"][f], filled + leaves),     # no ACK: a best guess
        "leaves": leaves, "filled": filled,
        "status": np.select([cancelled, leaves == 0, filled > 0], _ENDED_FILLED_PARTIAL,
                            _OPEN),
        "reason": np.where(cancelled, ev["info"][z] & INFO_CODE_MASK, 0),
        "client_order_id": np.where(has_other, ev["other_id"][limit], 0),
        "session": ev["session"][f],
        "created_seq": np.where(acked, ev["seq"][f].astype(np.int64), 0),
        "updated_seq": ev["seq"][z],
        "created_price": np.where(acked, ev["price"][f], 0),
        "created_ref": np.where(acked, ev["ref"][f], 0),
        "created_ts_ns": np.where(acked, ts[f], 0)})
    return out, acked
