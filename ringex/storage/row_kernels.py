"""The projection's numba kernels: one pass over an EVENT batch -> 2-D int64 row arrays.

Column positions are fixed here and checked against ``schema.py`` at import. Kept apart from
``projection.py`` so the Python side (payloads, transfers, audit) stays readable.
"""
from __future__ import annotations

import numpy as np

from ringex.jit import njit
from ringex.core.fees import fee
from ringex.storage.schema import OrderStatus, row_dtype
from ringex.records import INFO_CODE_MASK, INFO_MAKER, INFO_SELL, EventKind

# Column positions the kernels write; checked against schema.py below.
_TRADE_COLS = ("symbol", "seq", "price", "qty", "notional", "taker_order_id", "maker_order_id",
               "taker_account", "maker_account", "taker_side", "taker_leaves", "maker_leaves",
               "taker_fee", "maker_fee", "ts_ns")
_OEVENT_COLS = ("symbol", "seq", "kind", "order_id", "account", "side", "price", "qty",
                "leaves", "code", "client_order_id", "session", "ref", "ts_ns")
_ORDER_COLS = ("order_id", "symbol", "account", "side", "price", "qty", "leaves", "filled",
               "status", "reason", "client_order_id", "session", "created_seq", "updated_seq",
               "created_price", "created_ref", "created_ts_ns")
assert row_dtype("trades").names == _TRADE_COLS
assert row_dtype("order_changes").names == _OEVENT_COLS
assert row_dtype("orders").names == _ORDER_COLS

_ACK, _REJECT, _FILL = int(EventKind.ACK), int(EventKind.REJECT), int(EventKind.FILL)
_CANCELLED, _MODIFIED = int(EventKind.CANCELLED), int(EventKind.MODIFIED)
_SELL, _MAKER, _CODE = INFO_SELL, INFO_MAKER, INFO_CODE_MASK
_OPEN, _PARTIAL = int(OrderStatus.OPEN), int(OrderStatus.PARTIALLY_FILLED)
_FILLED, _CANCELED = int(OrderStatus.FILLED), int(OrderStatus.CANCELLED)
PROBLEMS = {1: "event names an unknown symbol",            # event_rows error codes
            2: "FILL events are not in taker/maker pairs",
            3: "a taker FILL and its maker FILL disagree"}


@njit(cache=True)
def _is_order_kind(k):
    return k == _ACK or k == _FILL or k == _CANCELLED or k == _MODIFIED


@njit(cache=True, nogil=True)
def event_rows(ev, ts, n_symbols, tlv, maker_bps, taker_bps):
    """(error, trades 2-D, order_changes 2-D) for one EVENT batch, in one pass.

    ACKs are not order_changes rows: they live in the order's row (``order_rows``).
    """
    n = len(ev)
    trades = np.empty((n // 2, 15), np.int64)
    oev = np.empty((n, 14), np.int64)
    nt = 0
    no = 0
    i = 0
    while i < n:
        e = ev[i]
        k = e.kind
        if _is_order_kind(k) and e.symbol >= n_symbols:
            return 1, trades[:0], oev[:0]
        if k == _FILL:
            if (e.info & _MAKER) != 0 or i + 1 >= n:
                return 2, trades[:0], oev[:0]
            m = ev[i + 1]
            if m.kind != _FILL or (m.info & _MAKER) == 0:
                return 2, trades[:0], oev[:0]
            if (np.int64(m.seq) != np.int64(e.seq) + 1 or m.symbol != e.symbol
                    or m.order_id != e.other_id or m.other_id != e.order_id
                    or m.price != e.price or m.qty != e.qty):
                return 3, trades[:0], oev[:0]
            s = e.symbol
            notional = e.price * e.qty * tlv[s]
            r = trades[nt]
            r[0], r[1], r[2], r[3], r[4] = s, e.seq, e.price, e.qty, notional
            r[5], r[6], r[7], r[8] = e.order_id, m.order_id, e.account, m.account
            r[9] = 1 if (e.info & _SELL) != 0 else 0
            r[10], r[11] = e.leaves, m.leaves
            r[12] = fee(notional, taker_bps[s])
            r[13] = fee(notional, maker_bps[s])
            r[14] = ts
            nt += 1
            i += 2
            continue
        if (k == _CANCELLED or k == _MODIFIED or k == _REJECT) and e.seq != 0:
            r = oev[no]
            r[0], r[1], r[2], r[3], r[4] = e.symbol, e.seq, k, e.order_id, e.account
            r[5] = 1 if (e.info & _SELL) != 0 else 0
            r[6], r[7], r[8] = e.price, e.qty, e.leaves
            r[9], r[10], r[11], r[12], r[13] = e.info & _CODE, e.other_id, e.session, e.ref, ts
            no += 1
        i += 1
    return 0, trades[:nt], oev[:no]


@njit(cache=True, nogil=True)
def _row_of_events(keys):
    """Row number of each key once the distinct keys are sorted (rows in order_id order).

    Order ids of one group are nearly dense, so a direct table over [min, max] replaces the
    sort; a stray old id (a long-resting maker) falls back to a stable sort.
    """
    m = len(keys)
    row = np.empty(m, np.int64)
    if m == 0:
        return row, 0
    lo, hi = keys.min(), keys.max()
    if hi - lo < 4 * m + 4096:
        slot = np.zeros(hi - lo + 1, np.int64)
        for j in range(m):
            slot[keys[j] - lo] = 1
        r = 0
        for s in range(len(slot)):
            if slot[s]:
                slot[s] = r
                r += 1
        for j in range(m):
            row[j] = slot[keys[j] - lo]
        return row, r
    order = np.argsort(keys, kind="mergesort")
    r = -1
    prev = lo - 1
    for j in range(m):
        k = keys[order[j]]
        if k != prev:
            prev = k
            r += 1
        row[order[j]] = r
    return row, r + 1


@njit(cache=True, nogil=True)
def order_rows(ev, ts):
    """Aggregate ACK/FILL/CANCELLED/MODIFIED per order_id, in event order; rows sorted by
    order_id.

    ``ts[i]`` is event i's batch time. An ACK fills the created_* columns (its seq, price,
    ref, time); an order first seen without its ACK gets created_seq 0.
    """
    n = len(ev)
    idx = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        if _is_order_kind(ev[i].kind) and ev[i].order_id > 0:
            idx[m] = i
            m += 1
    idx = idx[:m]
    keys = np.empty(m, np.int64)
    for j in range(m):
        keys[j] = ev[idx[j]].order_id
    row, nrows = _row_of_events(keys)
    out = np.zeros((nrows, 17), np.int64)
    seen = np.zeros(nrows, np.bool_)
    has_ack = np.zeros(nrows, np.bool_)
    has_nf = np.zeros(nrows, np.bool_)
    last_kind = np.zeros(nrows, np.int64)
    last_info = np.zeros(nrows, np.int64)
    for j in range(m):
        i = idx[j]
        e = ev[i]
        r = row[j]
        o = out[r]
        if not seen[r]:
            seen[r] = True
            o[0], o[1], o[2] = e.order_id, e.symbol, e.account
            o[3] = 1 if (e.info & _SELL) != 0 else 0
            o[11] = e.session
            if e.kind == _ACK:
                has_ack[r] = True
                o[5], o[12] = e.qty, e.seq
                o[14], o[15], o[16] = e.price, e.ref, ts[i]
        if e.kind == _FILL:
            o[7] += e.qty
            if not has_nf[r]:
                o[4] = e.price          # a maker's trade price is its limit price
        else:
            o[4], o[10] = e.price, e.other_id
            has_nf[r] = True
        o[6], o[13] = e.leaves, e.seq
        last_kind[r], last_info[r] = e.kind, e.info
    for q in range(nrows):
        o = out[q]
        if not has_ack[q]:
            o[5] = o[7] + o[6]          # original qty unknown here: best guess
        if last_kind[q] == _CANCELLED:
            o[8], o[9] = _CANCELED, last_info[q] & _CODE
        elif o[6] == 0:
            o[8] = _FILLED
        elif o[7] > 0:
            o[8] = _PARTIAL
        else:
            o[8] = _OPEN
    return out, has_ack
