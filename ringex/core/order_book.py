"""Array-backed order books: an order pool, price ladders in lazy pages, best-price bitmaps.

Every symbol has two books (b = symbol * 2 + side). A book is a ladder of price levels
indexed by tick offset ``t = price - lo``; each level is an intrusive FIFO list through
the order pool (``o_prev``/``o_next``). Level storage is allocated lazily in pages of
``PAGE`` ticks (a page returns to the free list when its last level empties), so a
10^7-tick band costs only what is in use. A hierarchical bitmap per book (bitset.py)
finds the next best level in O(1)-ish after a level empties; ``best[b]`` caches it.

Order ids encode their pool slot: ``id = (sequence << slot_bits) | slot``. Ids are
strictly increasing and never reused, and lookup by id is one array read plus a check.
Client order ids are found through an open-addressing hash (client_ids.py).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ringex.jit import njit
from ringex.config import Config
from ringex.core import bitset
from ringex.core.client_ids import coid_delete, coid_insert
from ringex.records import SIDE_BUY, SIDE_SELL

PAGE_BITS = 8
PAGE = 1 << PAGE_BITS

# meta[] indices: scalar state kept in one int64 array so kernels can update it
FREE_TOP, PAGE_TOP, ORDER_SEQ, LIVE, SLOT_BITS, COID_MASK, MAX_LIVE = range(7)

Book = namedtuple("Book", [
    # order pool, one entry per slot
    "o_id", "o_account", "o_session", "o_coid", "o_symbol", "o_side", "o_price",
    "o_leaves", "o_locked", "o_stp", "o_flags",
    "o_prev", "o_next",        # FIFO inside a price level
    "o_aprev", "o_anext",      # the account's resting orders, oldest first
    "free_slots",              # stack of free slots; meta[FREE_TOP] entries valid
    # ladders (flat index = page * PAGE + (t & (PAGE - 1)))
    "lv_head", "lv_tail", "lv_qty", "lv_count",
    "page_table", "pt_off",    # page of (book, t >> PAGE_BITS), -1 none; pt_off per book
    "page_live", "free_pages",
    "best",                    # best tick offset per book, -1 when empty
    "bm", "bm_off", "bm_words", "bm_nlev",
    "coid_tab",                # client-order-id hash: slot + 1, 0 empty
    "acct_head", "acct_tail",
    "lo",                      # lowest tick per symbol (copy of Markets.lo)
    "meta",
])


def new_book(config: Config) -> Book:
    lim = config.limits
    n_slots = lim.max_orders + 1       # one more than may rest: a taker always has a slot
    nb = 2 * len(config.symbols)
    i64 = lambda n: np.zeros(n, dtype=np.int64)  # noqa: E731
    i32 = lambda n: np.full(n, -1, dtype=np.int32)  # noqa: E731
    # np.zeros maps pages lazily: a zero-filled table costs memory only where it is used
    z32 = lambda n: np.zeros(n, dtype=np.int32)  # noqa: E731
    # page tables and bitmaps, one region per book
    pt_off, pt_len = i64(nb), 0
    bm_off = np.zeros((nb, bitset.MAX_LEVELS), np.int64)
    bm_words = np.zeros((nb, bitset.MAX_LEVELS), np.int64)
    bm_nlev, bm_len = i64(nb), 0
    for s in config.symbols:
        n_ticks = s.max_tick - s.min_tick + 1
        words = bitset.layout(n_ticks)
        for side in (0, 1):
            b = 2 * s.id + side
            pt_off[b] = pt_len
            pt_len += (n_ticks + PAGE - 1) // PAGE
            bm_nlev[b] = len(words)
            for lv, w in enumerate(words):
                bm_off[b, lv], bm_words[b, lv] = bm_len, w
                bm_len += w
    n_pages = lim.max_level_pages
    slot_bits = max(1, (n_slots - 1).bit_length())
    coid_size = 1 << (2 * n_slots - 1).bit_length()
    meta = i64(8)
    meta[FREE_TOP], meta[PAGE_TOP] = n_slots, n_pages
    meta[ORDER_SEQ], meta[SLOT_BITS], meta[COID_MASK] = 1, slot_bits, coid_size - 1
    meta[MAX_LIVE] = lim.max_orders
    return Book(
        o_id=i64(n_slots), o_account=i64(n_slots), o_session=i64(n_slots),
        o_coid=i64(n_slots), o_symbol=i64(n_slots), o_side=np.zeros(n_slots, np.int8),
        o_price=i64(n_slots), o_leaves=i64(n_slots), o_locked=i64(n_slots),
        o_stp=np.zeros(n_slots, np.int8), o_flags=np.zeros(n_slots, np.int8),
        o_prev=i32(n_slots), o_next=i32(n_slots), o_aprev=i32(n_slots), o_anext=i32(n_slots),
        free_slots=np.arange(n_slots - 1, -1, -1, dtype=np.int32),
        lv_head=i32(n_pages * PAGE), lv_tail=i32(n_pages * PAGE),
        lv_qty=i64(n_pages * PAGE), lv_count=z32(n_pages * PAGE),
        page_table=i32(pt_len), pt_off=pt_off, page_live=z32(n_pages),
        free_pages=np.arange(n_pages - 1, -1, -1, dtype=np.int32),
        best=np.full(nb, -1, np.int64),
        bm=i64(bm_len), bm_off=bm_off, bm_words=bm_words, bm_nlev=bm_nlev,
        coid_tab=z32(coid_size),
        acct_head=i32(lim.max_accounts), acct_tail=i32(lim.max_accounts),
        lo=np.array([s.min_tick for s in config.symbols], dtype=np.int64),
        meta=meta,
    )


# ---------------------------------------------------------------- order pool
@njit(cache=True, inline="always")
def alloc_slot(bk):
    """A free slot with a fresh order id, or -1 when the pool is full."""
    top = bk.meta[FREE_TOP]
    if top == 0:
        return -1
    bk.meta[FREE_TOP] = top - 1
    slot = bk.free_slots[top - 1]
    bk.o_id[slot] = (bk.meta[ORDER_SEQ] << bk.meta[SLOT_BITS]) | slot
    bk.meta[ORDER_SEQ] += 1
    return slot


@njit(cache=True, inline="always")
def free_slot(bk, slot):
    bk.o_id[slot] = 0
    bk.free_slots[bk.meta[FREE_TOP]] = slot
    bk.meta[FREE_TOP] += 1


@njit(cache=True, inline="always")
def find_order(bk, order_id):
    """Slot of a resting order by id, or -1 (filled, cancelled, never existed)."""
    if order_id <= 0:
        return -1
    slot = order_id & ((np.int64(1) << bk.meta[SLOT_BITS]) - 1)
    if slot >= bk.o_id.shape[0] or bk.o_id[slot] != order_id:
        return -1
    return slot


# ---------------------------------------------------------------- intrusive lists
# A price level's FIFO (o_prev/o_next, ends lv_head/lv_tail[level]) and an account's
# resting orders (o_aprev/o_anext, ends acct_head/acct_tail[account]) are the same kind
# of doubly linked list through the pool; an empty list has head = tail = -1.
@njit(cache=True, inline="always")
def _push_back(prev, nxt, head, tail, lst, slot):
    last = tail[lst]
    prev[slot], nxt[slot] = last, -1
    if last >= 0:
        nxt[last] = slot
    else:
        head[lst] = slot
    tail[lst] = slot


@njit(cache=True, inline="always")
def _unlink(prev, nxt, head, tail, lst, slot):
    p, n = prev[slot], nxt[slot]
    if p >= 0:
        nxt[p] = n
    else:
        head[lst] = n
    if n >= 0:
        prev[n] = p
    else:
        tail[lst] = p


# ---------------------------------------------------------------- ladders
@njit(cache=True, inline="always")
def level_of(bk, b, t):
    """Flat level index of tick offset t in book b, or -1 when its page is absent."""
    page = bk.page_table[bk.pt_off[b] + (t >> PAGE_BITS)]
    if page < 0:
        return -1
    return page * PAGE + (t & (PAGE - 1))


@njit(cache=True, inline="always")
def can_rest(bk, b, t):
    """True when a level for t exists or a page can be allocated for it."""
    return bk.page_table[bk.pt_off[b] + (t >> PAGE_BITS)] >= 0 or bk.meta[PAGE_TOP] > 0


@njit(cache=True, inline="always")
def _where(bk, slot):
    """(side, book, tick offset, page-table index) of the order in slot."""
    side = bk.o_side[slot]
    sym = bk.o_symbol[slot]
    t = bk.o_price[slot] - bk.lo[sym]
    b = 2 * sym + side
    return side, b, t, bk.pt_off[b] + (t >> PAGE_BITS)


@njit(cache=True, inline="always")
def rest(bk, slot):
    """Append a (filled-in) order at the tail of its level and index it. Needs can_rest."""
    side, b, t, pti = _where(bk, slot)
    page = bk.page_table[pti]
    if page < 0:
        top = bk.meta[PAGE_TOP] - 1
        bk.meta[PAGE_TOP] = top
        page = bk.free_pages[top]
        bk.page_table[pti] = page
    li = page * PAGE + (t & (PAGE - 1))
    if bk.lv_count[li] == 0:
        bk.lv_qty[li] = 0
        bk.page_live[page] += 1
        bitset.bit_set(bk.bm, bk.bm_off[b], bk.bm_nlev[b], t)
        cur = bk.best[b]
        if cur < 0 or (side == SIDE_BUY and t > cur) or (side == SIDE_SELL and t < cur):
            bk.best[b] = t
    _push_back(bk.o_prev, bk.o_next, bk.lv_head, bk.lv_tail, li, slot)
    bk.lv_count[li] += 1
    bk.lv_qty[li] += bk.o_leaves[slot]
    # account list (oldest first) and client id index
    _push_back(bk.o_aprev, bk.o_anext, bk.acct_head, bk.acct_tail, bk.o_account[slot], slot)
    if bk.o_coid[slot] != 0:
        coid_insert(bk.coid_tab, bk.meta[COID_MASK], bk.o_account, bk.o_coid, slot)
    bk.meta[LIVE] += 1


@njit(cache=True, inline="always")
def unrest(bk, slot):
    """Take a resting order out of its level and indexes (the slot stays allocated)."""
    side, b, t, pti = _where(bk, slot)
    page = bk.page_table[pti]
    li = page * PAGE + (t & (PAGE - 1))
    _unlink(bk.o_prev, bk.o_next, bk.lv_head, bk.lv_tail, li, slot)
    bk.lv_qty[li] -= bk.o_leaves[slot]
    bk.lv_count[li] -= 1
    if bk.lv_count[li] == 0:
        offs, nlev = bk.bm_off[b], bk.bm_nlev[b]
        bitset.bit_clear(bk.bm, offs, nlev, t)
        if bk.best[b] == t:
            if side == SIDE_BUY:
                bk.best[b] = bitset.prev_set(bk.bm, offs, bk.bm_words[b], nlev, t - 1)
            else:
                bk.best[b] = bitset.next_set(bk.bm, offs, bk.bm_words[b], nlev, t + 1)
        bk.page_live[page] -= 1
        if bk.page_live[page] == 0:
            bk.page_table[pti] = -1
            bk.free_pages[bk.meta[PAGE_TOP]] = page
            bk.meta[PAGE_TOP] += 1
    _unlink(bk.o_aprev, bk.o_anext, bk.acct_head, bk.acct_tail, bk.o_account[slot], slot)
    if bk.o_coid[slot] != 0:
        coid_delete(bk.coid_tab, bk.meta[COID_MASK], bk.o_account, bk.o_coid, slot)
    bk.meta[LIVE] -= 1


@njit(cache=True, inline="always")
def reduce(bk, slot, q):
    """Take q lots off a resting order in place (fill or size decrease): keeps priority."""
    sym = bk.o_symbol[slot]
    b = 2 * sym + bk.o_side[slot]
    li = level_of(bk, b, bk.o_price[slot] - bk.lo[sym])
    bk.lv_qty[li] -= q
    bk.o_leaves[slot] -= q


@njit(cache=True)
def best_tick(bk, b):
    """Best price of book b in ticks, or -1 when the side is empty."""
    t = bk.best[b]
    return -1 if t < 0 else t + bk.lo[b >> 1]


@njit(cache=True)
def next_level(bk, b, t):
    """The next worse occupied tick offset after t in book b, or -1 (for dry runs)."""
    if b & 1:
        return bitset.next_set(bk.bm, bk.bm_off[b], bk.bm_words[b], bk.bm_nlev[b], t + 1)
    return bitset.prev_set(bk.bm, bk.bm_off[b], bk.bm_words[b], bk.bm_nlev[b], t - 1)
