"""Read-only commands answered from the book: open orders of an account, a book snapshot."""
from __future__ import annotations

import numpy as np

from ringex.jit import njit
from ringex.core.events import NO_SEQ, emit, sell_info
from ringex.core.matcher import reject
from ringex.core.order_book import level_of, next_level
from ringex.records import E_UNKNOWN_ACCOUNT, E_UNKNOWN_SYMBOL, EV_BOOK_LEVEL, EV_OPEN_ORDER


@njit(cache=True)
def on_query_orders(bk, mk, c, out, n):
    """One OPEN_ORDER per resting order of the account, oldest first (seq 0)."""
    acct = np.int64(c.account)
    if acct < 0 or acct >= bk.acct_head.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_ACCOUNT, NO_SEQ)
    m = bk.acct_head[acct]
    while m >= 0:
        n = emit(out, n, mk, NO_SEQ, EV_OPEN_ORDER, bk.o_symbol[m], bk.o_id[m], bk.o_coid[m],
                 bk.o_price[m], bk.o_leaves[m], bk.o_leaves[m], acct, c.session, c.ref,
                 sell_info(bk.o_side[m]))
        m = bk.o_anext[m]
    return n


@njit(cache=True)
def on_query_book(bk, mk, c, out, n):
    """One BOOK_LEVEL per occupied level (bids best first, then asks best first).

    Each carries the symbol's current sequence without advancing it: the snapshot is
    the book as of that seq, and later level updates have a larger one.
    """
    sym = np.int64(c.symbol)
    if sym >= mk.lo.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_SYMBOL, NO_SEQ)
    for side in range(2):
        b = 2 * sym + side
        t = bk.best[b]
        while t >= 0:
            li = level_of(bk, b, t)
            n = emit(out, n, mk, NO_SEQ, EV_BOOK_LEVEL, sym, 0, 0, t + mk.lo[sym],
                     bk.lv_qty[li], bk.lv_count[li], 0, c.session, c.ref,
                     sell_info(side))
            out[n - 1].seq = mk.seq[sym]
            t = next_level(bk, b, t)
    return n
