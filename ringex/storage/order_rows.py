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

from ringex.records import INFO_CODE_MASK, INFO_SELL, EventKind
from ringex.storage.event_rows import IS_ORDER_KIND, take
from ringex.storage.schema import OrderStatus, row_dtype

ORDER_ROW = row_dtype("orders")


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
    fill = kind[at] == EventKind.FILL
    filled = np.add.reduceat(np.where(fill, ev["qty"][at], 0), first)
    # a maker's trade price is its limit price: the last ACK/CANCELLED/MODIFIED sets the
    # price and client id; only an order seen in FILLs alone takes its last fill's price
    last_other = np.maximum.reduceat(np.where(fill, -1, np.arange(len(at))), first)
    has_other = last_other >= 0
    f, z = take(ev, at[first]), take(ev, at[last])
    acked = f["kind"] == EventKind.ACK
    cancelled = z["kind"] == EventKind.CANCELLED
    out = np.empty(len(first), ORDER_ROW)
    for col in ("order_id", "symbol", "account", "session"):
        out[col] = f[col]
    out["side"] = (f["info"] & INFO_SELL) != 0
    limit = at[np.where(has_other, last_other, last)]
    out["price"] = ev["price"][limit]
    out["client_order_id"] = np.where(has_other, ev["other_id"][limit], 0)
    out["leaves"], out["updated_seq"] = z["leaves"], z["seq"]
    out["filled"] = filled
    out["qty"] = np.where(acked, f["qty"], filled + z["leaves"])  # no ACK: a best guess
    out["status"] = np.select(
        [cancelled, z["leaves"] == 0, filled > 0],
        [OrderStatus.CANCELLED, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED],
        OrderStatus.OPEN)
    out["reason"] = np.where(cancelled, z["info"] & INFO_CODE_MASK, 0)
    out["created_seq"] = np.where(acked, f["seq"].astype(np.int64), 0)
    out["created_price"] = np.where(acked, f["price"], 0)
    out["created_ref"] = np.where(acked, f["ref"], 0)
    out["created_ts_ns"] = np.where(acked, ts[at[first]], 0)
    return out, acked
