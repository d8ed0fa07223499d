"""Market data from one engine batch: public trades and the book levels it touched.

Two kernels around ``order_service.process`` (docs/architecture.md, section 3):

    nk = touched_before(bk, cmds, c0, c1, keys, 0)    before the batch: the level each
                                                      MODIFY's target order rests on now
    n = publish(bk, mk, ev, e0, e1, keys, nk, md, hdr, stamps, slots, ts)
                                                      after: a CLOCK of time ts, the
                                                      TRADEs in order, then one
                                                      BOOK_LEVEL per touched level, written
                                                      to the broadcast ring (hdr, stamps,
                                                      slots) through the buffer ``md``

A level is keyed ``symbol << 33 | side << 32 | price`` (price < 2**31 ticks, config.py).
A level is touched when an order may have joined or left it in the batch:

- ACK of an order still resting after the batch (an IOC that never rested is skipped;
  one that rested and left again shows up through its FILL/CANCELLED/MODIFIED);
- maker FILL (the resting side);
- CANCELLED of a resting order (user, STP, disconnect, cancel-all; not the reasons that
  only end a taker: IOC remainder, FOK, post-only, no funds);
- MODIFIED (its new price), plus the old price, which no event carries: taken from the
  book before the batch (``touched_before``) or from an earlier event in the batch.

A level may be reported unchanged; one whose total changed is never missed. Values are
read from the book after the batch, so they are absolute and stamped with the symbol's
sequence after the batch.
"""
from __future__ import annotations

import numpy as np

from ringex.jit import njit
from ringex.core.events import sell_info
from ringex.core.order_book import find_order, level_of
from ringex.records import (
    CMD_MODIFY, EV_ACK, EV_BOOK_LEVEL, EV_CANCELLED, EV_CLOCK, EV_FILL, EV_MODIFIED, EV_TRADE,
    INFO_CODE_MASK, INFO_MAKER, INFO_SELL, R_FOK, R_IOC_REMAINDER, R_NO_FUNDS, R_POST_ONLY,
)
from ringex.ring.kernels import bcast_write


@njit(cache=True, inline="always")
def level_key(symbol, side, price):
    return (np.int64(symbol) << 33) | (np.int64(side) << 32) | np.int64(price)


@njit(cache=True, inline="always")
def _side(info):
    return 1 if (info & INFO_SELL) != 0 else 0


@njit(cache=True)
def touched_before(bk, cmds, c0, c1, keys, nk):
    """Before processing cmds[c0:c1]: add the current level of each MODIFY's target order."""
    for i in range(c0, c1):
        c = cmds[i]
        if c.kind != CMD_MODIFY:
            continue
        slot = find_order(bk, c.order_id)
        if slot < 0:
            continue              # not resting (yet): placed in this batch, ACK covers it
        keys[nk] = level_key(bk.o_symbol[slot], bk.o_side[slot], bk.o_price[slot])
        nk += 1
    return nk


@njit(cache=True)
def touched_by_events(bk, ev, e0, e1, keys, nk):
    """Add the levels events ev[e0:e1] may have changed (module docstring)."""
    for i in range(e0, e1):
        e = ev[i]
        k = e.kind
        if k == EV_ACK:
            if find_order(bk, e.order_id) < 0:
                continue
        elif k == EV_FILL:
            if (e.info & INFO_MAKER) == 0:
                continue
        elif k == EV_CANCELLED:
            r = e.info & INFO_CODE_MASK
            if r == R_IOC_REMAINDER or r == R_FOK or r == R_POST_ONLY or r == R_NO_FUNDS:
                continue
        elif k != EV_MODIFIED:
            continue
        keys[nk] = level_key(e.symbol, _side(e.info), e.price)
        nk += 1
    return nk


@njit(cache=True)
def publish(bk, mk, ev, e0, e1, keys, nk, md, hdr, stamps, slots, ts):
    """After the batch: a CLOCK (``ts``, the group's time), the TRADEs of ev[e0:e1], then
    the touched levels, onto the broadcast ring (through ``md``, written out whenever it
    fills); nothing at all for a group that changed no book. keys[:nk] holds the levels
    from ``touched_before``; keys needs room for nk + (e1 - e0) more. Returns records
    published."""
    nk = touched_by_events(bk, ev, e0, e1, keys, nk)
    cap = md.shape[0]
    n, total = 0, 0
    for i in range(e0, e1):
        e = ev[i]
        if e.kind != EV_FILL or (e.info & INFO_MAKER) != 0:
            continue
        if n == 0 and total == 0:
            clock_record(ts, 0, md[0])
            n = 1
        if n == cap:
            total += bcast_write(hdr, stamps, slots, md, n)
            n = 0
        trade_record(e, md[n])
        n += 1
    nk = sort_unique(keys, nk)
    for i in range(nk):
        if n == 0 and total == 0:
            clock_record(ts, 0, md[0])
            n = 1
        if n == cap:
            total += bcast_write(hdr, stamps, slots, md, n)
            n = 0
        if level_record(bk, mk, keys[i], md[n]):
            n += 1
    if n > 0:
        total += bcast_write(hdr, stamps, slots, md, n)
    return total


@njit(cache=True)
def clock_record(ts, session, m):
    """A CLOCK: the events after it (on this ring) belong to a group of time ``ts``."""
    m.seq = 0
    m.order_id = ts
    m.other_id = 0
    m.price = 0
    m.qty = 0
    m.leaves = 0
    m.account = 0
    m.session = session
    m.ref = 0
    m.symbol = 0
    m.kind = EV_CLOCK
    m.info = 0


@njit(cache=True)
def trade_record(e, m):
    """The public TRADE for taker FILL ``e``."""
    m.seq = e.seq
    m.order_id = e.order_id
    m.other_id = e.other_id
    m.price = e.price
    m.qty = e.qty
    m.leaves = 0
    m.account = 0
    m.session = 0
    m.ref = 0
    m.symbol = e.symbol
    m.kind = EV_TRADE
    m.info = e.info & INFO_SELL


@njit(cache=True)
def sort_unique(keys, nk):
    """Sort keys[:nk] in place and drop repeats; returns the count left."""
    if nk == 0:
        return 0
    keys[:nk].sort()
    u = 1
    for i in range(1, nk):
        if keys[i] != keys[u - 1]:
            keys[u] = keys[i]
            u += 1
    return u


@njit(cache=True)
def level_record(bk, mk, key, rec):
    """Fill rec as the BOOK_LEVEL of ``key`` as the book is now; False if out of band."""
    sym = key >> 33
    side = (key >> 32) & 1
    price = key & 0xFFFFFFFF
    if sym >= mk.lo.shape[0] or price < mk.lo[sym] or price > mk.hi[sym]:
        return False
    li = level_of(bk, 2 * sym + side, price - mk.lo[sym])
    qty, count = 0, 0
    if li >= 0 and bk.lv_count[li] > 0:
        qty, count = bk.lv_qty[li], bk.lv_count[li]
    rec.seq = mk.seq[sym]
    rec.order_id = 0
    rec.other_id = 0
    rec.price = price
    rec.qty = qty
    rec.leaves = count
    rec.account = 0
    rec.session = 0
    rec.ref = 0
    rec.symbol = sym
    rec.kind = EV_BOOK_LEVEL
    rec.info = sell_info(side)
    return True
