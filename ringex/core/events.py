"""Writing EVENT records from kernels: one place that fills every field and the sequence."""
from __future__ import annotations


from ringex.jit import njit
from ringex.records import INFO_SELL, SIDE_SELL

NO_SEQ = -1      # pass as seq_sym for events that carry no symbol sequence


@njit(cache=True, inline="always")
def sell_info(side):
    """The EVENT.info bit for an order (or book side) of ``side``."""
    return INFO_SELL if side == SIDE_SELL else 0


@njit(cache=True, inline="always")
def emit(out, n, mk, seq_sym, kind, symbol, order_id, other, price, qty, leaves,
         account, session, ref, info):
    """Write event n and return n + 1. seq_sym >= 0 stamps that symbol's next sequence."""
    e = out[n]
    if seq_sym >= 0:
        s = mk.seq[seq_sym] + 1
        mk.seq[seq_sym] = s
        e.seq = s
    else:
        e.seq = 0
    e.order_id = order_id
    e.other_id = other
    e.price = price
    e.qty = qty
    e.leaves = leaves
    e.account = account
    e.session = session
    e.ref = ref
    e.symbol = symbol
    e.kind = kind
    e.info = info
    return n + 1
