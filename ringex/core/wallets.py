"""Wallets: available and locked balances per (account, asset), in int64 minor units.

Lock on entry, settle both sides on every fill, release on cancel and price
improvement, fees to the fee account (0). The amounts follow docs/rules.md:

- a limit buy holds ``need_buy(price, leaves)`` quote (notional plus worst-case taker fee),
- a sell holds ``leaves * lot_units`` base,
- a market buy holds a budget (all available quote) until it finishes.

``o_locked[slot]`` is what an order holds, so a cancel returns exactly that.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ringex.jit import njit
from ringex.config import FEE_ACCOUNT, Config
from ringex.core.fees import fee
from ringex.records import SIDE_BUY

Wallets = namedtuple("Wallets", ["avail", "locked"])


def new_wallets(config: Config) -> Wallets:
    shape = (config.limits.max_accounts, len(config.assets))
    return Wallets(np.zeros(shape, np.int64), np.zeros(shape, np.int64))


@njit(cache=True, inline="always")
def need_buy(price, qty, tlv, taker_bps):
    n = price * qty * tlv
    return n + fee(n, taker_bps)


@njit(cache=True, inline="always")
def order_need(mk, sym, side, price, qty):
    """What a resting order of qty lots must hold: (asset, amount)."""
    if side == SIDE_BUY:
        return mk.quote[sym], need_buy(price, qty, mk.tlv[sym], mk.taker_bps[sym])
    return mk.base[sym], qty * mk.lot_units[sym]


@njit(cache=True, inline="always")
def try_lock(wl, account, asset, amount):
    """Move amount from available to locked; False (nothing moved) when short."""
    if wl.avail[account, asset] < amount:
        return False
    wl.avail[account, asset] -= amount
    wl.locked[account, asset] += amount
    return True


@njit(cache=True, inline="always")
def release(wl, account, asset, amount):
    wl.locked[account, asset] -= amount
    wl.avail[account, asset] += amount


@njit(cache=True)
def market_buy_qty(budget, price, tlv, taker_bps, q_max):
    """Largest q <= q_max whose cost at price (notional + taker fee) fits the budget."""
    unit = price * tlv
    hi = min(q_max, budget // unit)
    if hi <= 0:
        return 0
    if need_buy(price, hi, tlv, taker_bps) <= budget:
        return hi
    lo = 0                      # cost(lo) fits, cost(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if need_buy(price, mid, tlv, taker_bps) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def settle_fill(bk, wl, mk, sym, taker, maker, price, q, taker_is_market_buy):
    """Move money for one fill of q lots at price between two pool slots.

    Call after both orders' leaves were reduced by q. The buyer's hold shrinks to what
    its leaves still need (a market buy keeps its budget until it ends).
    """
    quote, base = mk.quote[sym], mk.base[sym]
    n = price * q * mk.tlv[sym]
    units = q * mk.lot_units[sym]
    if bk.o_side[taker] == 0:
        buyer, seller = taker, maker
        buyer_bps, seller_bps = mk.taker_bps[sym], mk.maker_bps[sym]
    else:
        buyer, seller = maker, taker
        buyer_bps, seller_bps = mk.maker_bps[sym], mk.taker_bps[sym]
    fb, fs = fee(n, buyer_bps), fee(n, seller_bps)
    ba, sa = bk.o_account[buyer], bk.o_account[seller]
    # buyer pays notional + fee out of its hold and receives base
    cost = n + fb
    wl.locked[ba, quote] -= cost
    bk.o_locked[buyer] -= cost
    wl.avail[ba, base] += units
    if not (buyer == taker and taker_is_market_buy):
        keep = need_buy(bk.o_price[buyer], bk.o_leaves[buyer], mk.tlv[sym], mk.taker_bps[sym])
        extra = bk.o_locked[buyer] - keep
        if extra != 0:
            bk.o_locked[buyer] = keep
            release(wl, ba, quote, extra)
    # seller gives base out of its hold and receives notional - fee
    wl.locked[sa, base] -= units
    bk.o_locked[seller] -= units
    wl.avail[sa, quote] += n - fs
    wl.avail[FEE_ACCOUNT, quote] += fb + fs
