"""Matching rules as numba kernels: new orders, cancel, modify, cancel-all (docs/rules.md).

Each ``on_*`` kernel takes one COMMAND record, changes the book (and wallets when
``wallets`` is on), writes its events to ``out`` from index n and returns the new n.
Rejections change nothing. Codes are ringex.records' plain ints.
"""
from __future__ import annotations

import numpy as np

from ringex.jit import njit
from ringex.core.client_ids import coid_find
from ringex.core.events import NO_SEQ, emit, sell_info
from ringex.core.order_book import (
    COID_MASK, LIVE, MAX_LIVE, alloc_slot, can_rest, free_slot, level_of, next_level,
    reduce, rest, unrest,
)
from ringex.core.wallets import (
    market_buy_qty, need_buy, order_need, release, settle_fill, try_lock,
)
from ringex.records import (
    CMD_POST_ONLY, E_BOOK_FULL, E_DUPLICATE_CLIENT_ORDER_ID, E_INSUFFICIENT_FUNDS,
    E_INVALID_ORDER_TYPE, E_INVALID_PRICE, E_INVALID_QTY, E_INVALID_SIDE, E_INVALID_STP,
    E_INVALID_TIF, E_OVERFLOW, E_TOO_MANY_ORDERS, E_UNKNOWN_ACCOUNT, E_UNKNOWN_SYMBOL,
    EV_ACK, EV_CANCELLED, EV_FILL, EV_REJECT, INFO_MAKER, OT_LIMIT, OT_MARKET, R_FOK,
    R_IOC_REMAINDER, R_NO_FUNDS, R_POST_ONLY, R_STP, SIDE_BUY, SIDE_SELL, STP_CANCEL_BOTH,
    STP_CANCEL_MAKER, STP_CANCEL_TAKER, STP_NONE, TIF_FOK, TIF_GTC,
)

FLAG_MARKET = 0x02          # o_flags bit next to CMD_POST_ONLY (0x01)
FLAG_IOC = 0x04             # o_flags bit: the order never rests (IOC, FOK, market)

@njit(cache=True, inline="always")
def reject(out, n, mk, c, code, seq_sym):
    info = code | sell_info(c.side)
    return emit(out, n, mk, seq_sym, EV_REJECT, c.symbol, c.order_id, c.client_order_id,
                c.price, c.qty, 0, c.account, c.session, c.ref, info)

@njit(cache=True, inline="always")
def drop_order(bk, wl, mk, slot, resting, reason, session, ref, out, n, wallets):
    """Cancel an order (resting or the current taker): event, release its hold, free it."""
    sym, side = bk.o_symbol[slot], bk.o_side[slot]
    n = emit(out, n, mk, sym, EV_CANCELLED, sym, bk.o_id[slot], bk.o_coid[slot],
             bk.o_price[slot], bk.o_leaves[slot], 0, bk.o_account[slot], session, ref,
             reason | sell_info(side))
    if resting:
        unrest(bk, slot)
    if wallets and bk.o_locked[slot] != 0:
        asset = mk.quote[sym] if side == SIDE_BUY else mk.base[sym]
        release(wl, bk.o_account[slot], asset, bk.o_locked[slot])
    bk.o_locked[slot] = 0
    free_slot(bk, slot)
    return n

@njit(cache=True, inline="always")
def _crosses(side, px, limit):
    return px <= limit if side == SIDE_BUY else px >= limit

@njit(cache=True)
def fok_fillable(bk, mk, slot, wallets):
    """Lots the taker in slot could fill now, walking as match() would (no changes)."""
    sym, side = bk.o_symbol[slot], bk.o_side[slot]
    opp, lo = 2 * sym + 1 - side, mk.lo[sym]
    market = (bk.o_flags[slot] & FLAG_MARKET) != 0
    market_buy = market and side == SIDE_BUY and wallets
    want, acct, stp = bk.o_leaves[slot], bk.o_account[slot], bk.o_stp[slot]
    budget, total, t = bk.o_locked[slot], 0, bk.best[opp]
    used = 0                        # lots of maker m already counted
    while t >= 0 and total < want:
        px = t + lo
        if not market and not _crosses(side, px, bk.o_price[slot]):
            break
        m = bk.lv_head[level_of(bk, opp, t)]
        while m >= 0 and total < want:
            if bk.o_account[m] == acct and stp != STP_NONE:
                if stp != STP_CANCEL_MAKER:
                    return total
                m = bk.o_next[m]
                continue
            q = min(want - total, bk.o_leaves[m] - used)
            if market_buy:
                # funds may allow less than q; floor fees can leave room for more lots
                # of the same maker on the next pass, exactly as match() retries it
                q = market_buy_qty(budget, px, mk.tlv[sym], mk.taker_bps[sym], q)
                if q == 0:
                    return total
                budget -= need_buy(px, q, mk.tlv[sym], mk.taker_bps[sym])
            total += q
            used += q
            if used == bk.o_leaves[m]:
                m, used = bk.o_next[m], 0
        t = next_level(bk, opp, t)
    return total

@njit(cache=True)
def match(bk, wl, mk, slot, session, ref, out, n, wallets):
    """Walk the opposite book for the taker in slot. Returns (n, stop reason or 0)."""
    sym, side = bk.o_symbol[slot], bk.o_side[slot]
    opp, lo = 2 * sym + 1 - side, mk.lo[sym]
    market = (bk.o_flags[slot] & FLAG_MARKET) != 0
    market_buy = market and side == SIDE_BUY and wallets
    acct, stp, limit = bk.o_account[slot], bk.o_stp[slot], bk.o_price[slot]
    taker_id = bk.o_id[slot]
    t_info = sell_info(side)
    m_info = INFO_MAKER | sell_info(SIDE_SELL - side)
    while bk.o_leaves[slot] > 0:
        t = bk.best[opp]
        if t < 0:
            return n, 0
        px = t + lo
        if not market and not _crosses(side, px, limit):
            return n, 0
        m = bk.lv_head[level_of(bk, opp, t)]
        while m >= 0 and bk.o_leaves[slot] > 0:
            nxt = bk.o_next[m]
            if bk.o_account[m] == acct and stp != STP_NONE:
                if stp == STP_CANCEL_TAKER:
                    return n, R_STP
                n = drop_order(bk, wl, mk, m, True, R_STP, bk.o_session[m], 0, out, n, wallets)
                if stp == STP_CANCEL_BOTH:
                    return n, R_STP
                m = nxt
                continue
            q = min(bk.o_leaves[slot], bk.o_leaves[m])
            if market_buy:
                q = market_buy_qty(bk.o_locked[slot], px, mk.tlv[sym], mk.taker_bps[sym], q)
                if q == 0:
                    return n, R_NO_FUNDS
            bk.o_leaves[slot] -= q
            reduce(bk, m, q)
            if wallets:
                settle_fill(bk, wl, mk, sym, slot, m, px, q, market_buy)
            n = emit(out, n, mk, sym, EV_FILL, sym, taker_id, bk.o_id[m], px, q,
                     bk.o_leaves[slot], acct, session, ref, t_info)
            n = emit(out, n, mk, sym, EV_FILL, sym, bk.o_id[m], taker_id, px, q,
                     bk.o_leaves[m], bk.o_account[m], bk.o_session[m], 0, m_info)
            if bk.o_leaves[m] == 0:
                unrest(bk, m)
                free_slot(bk, m)
                m = nxt
            # else the taker is done, or a market buy ran short: retry the same maker
    return n, 0

@njit(cache=True, inline="always")
def finish_taker(bk, wl, mk, slot, stop, session, ref, out, n, wallets):
    """After matching: rest a GTC limit remainder, cancel any other, free a filled taker."""
    if bk.o_leaves[slot] == 0:
        if wallets and bk.o_locked[slot] != 0:   # a market buy's unspent budget
            release(wl, bk.o_account[slot], mk.quote[bk.o_symbol[slot]], bk.o_locked[slot])
        bk.o_locked[slot] = 0
        free_slot(bk, slot)
        return n
    if stop == 0 and (bk.o_flags[slot] & (FLAG_MARKET | FLAG_IOC)) == 0:
        rest(bk, slot)
        return n
    reason = stop if stop != 0 else R_IOC_REMAINDER
    return drop_order(bk, wl, mk, slot, False, reason, session, ref, out, n, wallets)

@njit(cache=True)
def on_new(bk, wl, mk, c, out, n, wallets):
    sym, acct = np.int64(c.symbol), np.int64(c.account)
    side, otype, tif, stp = (np.int64(c.side), np.int64(c.order_type), np.int64(c.tif),
                             np.int64(c.stp))
    price, qty = c.price, c.qty
    post = (c.flags & CMD_POST_ONLY) != 0
    if sym >= mk.lo.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_SYMBOL, NO_SEQ)
    code = 0
    if acct < 1 or acct >= bk.acct_head.shape[0]:
        code = E_UNKNOWN_ACCOUNT
    elif side > SIDE_SELL:
        code = E_INVALID_SIDE
    elif otype > OT_MARKET:
        code = E_INVALID_ORDER_TYPE
    elif tif > TIF_FOK or (otype == OT_MARKET and tif == TIF_GTC) \
            or (post and (otype != OT_LIMIT or tif != TIF_GTC)):
        code = E_INVALID_TIF
    elif stp > STP_CANCEL_BOTH:
        code = E_INVALID_STP
    elif qty <= 0:
        code = E_INVALID_QTY
    elif otype == OT_LIMIT and (price < mk.lo[sym] or price > mk.hi[sym]):
        code = E_INVALID_PRICE
    elif qty > mk.max_qty[sym]:
        code = E_OVERFLOW
    elif c.client_order_id != 0 and coid_find(bk.coid_tab, bk.meta[COID_MASK], bk.o_account,
                                               bk.o_coid, acct, c.client_order_id) >= 0:
        code = E_DUPLICATE_CLIENT_ORDER_ID
    elif otype == OT_LIMIT and tif == TIF_GTC and bk.meta[LIVE] >= bk.meta[MAX_LIVE]:
        code = E_TOO_MANY_ORDERS
    elif otype == OT_LIMIT and tif == TIF_GTC \
            and not can_rest(bk, 2 * sym + side, price - mk.lo[sym]):
        code = E_BOOK_FULL
    if code != 0:
        return reject(out, n, mk, c, code, sym)
    hold = 0
    if wallets:
        if side == SIDE_BUY and otype == OT_MARKET:
            asset, hold = mk.quote[sym], wl.avail[acct, mk.quote[sym]]
            if hold <= 0:
                return reject(out, n, mk, c, E_INSUFFICIENT_FUNDS, sym)
        else:
            asset, hold = order_need(mk, sym, side, price, qty)
        if not try_lock(wl, acct, asset, hold):
            return reject(out, n, mk, c, E_INSUFFICIENT_FUNDS, sym)
    slot = alloc_slot(bk)
    bk.o_account[slot], bk.o_session[slot], bk.o_coid[slot] = acct, c.session, c.client_order_id
    bk.o_symbol[slot], bk.o_side[slot], bk.o_stp[slot] = sym, side, stp
    bk.o_price[slot] = price if otype == OT_LIMIT else 0
    bk.o_leaves[slot], bk.o_locked[slot] = qty, hold
    bk.o_flags[slot] = (CMD_POST_ONLY if post else 0) \
        | (FLAG_MARKET if otype == OT_MARKET else 0) \
        | (FLAG_IOC if tif != TIF_GTC or otype == OT_MARKET else 0)
    n = emit(out, n, mk, sym, EV_ACK, sym, bk.o_id[slot], c.client_order_id, bk.o_price[slot],
             qty, qty, acct, c.session, c.ref, sell_info(side))
    opp = 2 * sym + 1 - side
    if post and bk.best[opp] >= 0 and _crosses(side, bk.best[opp] + mk.lo[sym], price):
        return drop_order(bk, wl, mk, slot, False, R_POST_ONLY, c.session, c.ref, out, n, wallets)
    if tif == TIF_FOK and fok_fillable(bk, mk, slot, wallets) < qty:
        return drop_order(bk, wl, mk, slot, False, R_FOK, c.session, c.ref, out, n, wallets)
    n, stop = match(bk, wl, mk, slot, c.session, c.ref, out, n, wallets)
    return finish_taker(bk, wl, mk, slot, stop, c.session, c.ref, out, n, wallets)
