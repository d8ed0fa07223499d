"""Changing resting orders: cancel, modify, cancel-all (docs/rules.md), as numba kernels."""
from __future__ import annotations

import numpy as np

from ringex.jit import njit
from ringex.core.client_ids import coid_find
from ringex.core.events import NO_SEQ, emit, sell_info
from ringex.core.matcher import _crosses, drop_order, finish_taker, match, reject
from ringex.core.order_book import COID_MASK, can_rest, find_order, reduce, unrest
from ringex.core.wallets import order_need, release, try_lock
from ringex.records import (
    ALL_SYMBOLS, CMD_DISCONNECT, CMD_POST_ONLY, E_BOOK_FULL, E_INSUFFICIENT_FUNDS,
    E_INVALID_PRICE, E_INVALID_QTY, E_OVERFLOW, E_POST_ONLY_WOULD_TAKE, E_UNKNOWN_ACCOUNT,
    E_UNKNOWN_ORDER, E_UNKNOWN_SYMBOL, EV_MODIFIED, R_CANCEL_ALL, R_DISCONNECT, R_USER,
)


@njit(cache=True, inline="always")
def _own_order(bk, mk, c, out, n):
    """(slot, n): the command's resting order, or -1 with a REJECT written."""
    sym, acct = np.int64(c.symbol), np.int64(c.account)
    if sym >= mk.lo.shape[0]:
        return -1, reject(out, n, mk, c, E_UNKNOWN_SYMBOL, NO_SEQ)
    if acct < 1 or acct >= bk.acct_head.shape[0]:
        return -1, reject(out, n, mk, c, E_UNKNOWN_ACCOUNT, sym)
    if c.order_id != 0:
        slot = find_order(bk, c.order_id)
    elif c.client_order_id != 0:
        slot = coid_find(bk.coid_tab, bk.meta[COID_MASK], bk.o_account, bk.o_coid,
                         acct, c.client_order_id)
    else:
        slot = -1
    if slot < 0 or bk.o_account[slot] != acct or bk.o_symbol[slot] != sym:
        return -1, reject(out, n, mk, c, E_UNKNOWN_ORDER, sym)
    return slot, n


@njit(cache=True, inline="always")
def on_cancel(bk, wl, mk, c, out, n, wallets):
    slot, n = _own_order(bk, mk, c, out, n)
    if slot < 0:
        return n
    return drop_order(bk, wl, mk, slot, True, R_USER, c.session, c.ref, out, n, wallets)


@njit(cache=True, inline="always")
def on_cancel_all(bk, wl, mk, c, out, n, wallets):
    sym, acct = np.int64(c.symbol), np.int64(c.account)
    if sym != ALL_SYMBOLS and sym >= mk.lo.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_SYMBOL, NO_SEQ)
    if acct < 1 or acct >= bk.acct_head.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_ACCOUNT, NO_SEQ)
    by_session = (c.flags & CMD_DISCONNECT) != 0
    reason = R_DISCONNECT if by_session else R_CANCEL_ALL
    m = bk.acct_head[acct]
    while m >= 0:
        nxt = bk.o_anext[m]
        if (sym == ALL_SYMBOLS or bk.o_symbol[m] == sym) \
                and (not by_session or bk.o_session[m] == c.session):
            n = drop_order(bk, wl, mk, m, True, reason, c.session, c.ref, out, n, wallets)
        m = nxt
    return n


@njit(cache=True)
def on_modify(bk, wl, mk, c, out, n, wallets):
    """Decrease in place (keeps priority), or take out, re-price and match as a taker."""
    slot, n = _own_order(bk, mk, c, out, n)
    if slot < 0:
        return n
    sym, side, acct = bk.o_symbol[slot], bk.o_side[slot], bk.o_account[slot]
    price, qty = c.price, c.qty
    if qty <= 0:
        return reject(out, n, mk, c, E_INVALID_QTY, sym)
    if price < mk.lo[sym] or price > mk.hi[sym]:
        return reject(out, n, mk, c, E_INVALID_PRICE, sym)
    if qty > mk.max_qty[sym]:
        return reject(out, n, mk, c, E_OVERFLOW, sym)
    asset, hold = order_need(mk, sym, side, price, qty)
    delta = hold - bk.o_locked[slot]
    in_place = price == bk.o_price[slot] and qty <= bk.o_leaves[slot]
    if not in_place:
        if wallets and delta > wl.avail[acct, asset]:
            return reject(out, n, mk, c, E_INSUFFICIENT_FUNDS, sym)
        opp = 2 * sym + 1 - side
        if (bk.o_flags[slot] & CMD_POST_ONLY) != 0 and bk.best[opp] >= 0 \
                and _crosses(side, bk.best[opp] + mk.lo[sym], price):
            return reject(out, n, mk, c, E_POST_ONLY_WOULD_TAKE, sym)
        if not can_rest(bk, 2 * sym + side, price - mk.lo[sym]):
            return reject(out, n, mk, c, E_BOOK_FULL, sym)
    if wallets:
        if delta > 0:
            try_lock(wl, acct, asset, delta)
        elif delta < 0:
            release(wl, acct, asset, -delta)
        bk.o_locked[slot] = hold
    info = sell_info(side)
    if in_place:
        reduce(bk, slot, bk.o_leaves[slot] - qty)
        return emit(out, n, mk, sym, EV_MODIFIED, sym, bk.o_id[slot], bk.o_coid[slot],
                    price, qty, qty, acct, c.session, c.ref, info)
    unrest(bk, slot)
    bk.o_price[slot], bk.o_leaves[slot] = price, qty
    n = emit(out, n, mk, sym, EV_MODIFIED, sym, bk.o_id[slot], bk.o_coid[slot],
             price, qty, qty, acct, c.session, c.ref, info)
    n, stop = match(bk, wl, mk, slot, c.session, c.ref, out, n, wallets)
    return finish_taker(bk, wl, mk, slot, stop, c.session, c.ref, out, n, wallets)
