"""(account, client_order_id) -> pool slot, as an open-addressing hash with linear probing.

The table stores ``slot + 1`` (0 = empty) and is at least twice the pool size, so probes
stay short. Keys are read back from the order pool, so the table holds no copies.
Deletion shifts later entries back (Knuth, TAOCP 6.4 Algorithm R): no tombstones, so
lookups never slow down over a long run.
"""
from __future__ import annotations

import numpy as np

from ringex.jit import njit


@njit(cache=True, inline="always")
def _home(account, coid, mask):
    h = (coid * np.int64(-7046029254386353131)) ^ (account * np.int64(-4417276706812531889))
    h ^= h >> 29
    return h & mask


@njit(cache=True)
def coid_find(tab, mask, o_account, o_coid, account, coid):
    """Slot of the live order (account, coid), or -1."""
    i = _home(account, coid, mask)
    while True:
        e = tab[i]
        if e == 0:
            return -1
        s = e - 1
        if o_coid[s] == coid and o_account[s] == account:
            return s
        i = (i + 1) & mask


@njit(cache=True)
def coid_insert(tab, mask, o_account, o_coid, slot):
    i = _home(o_account[slot], o_coid[slot], mask)
    while tab[i] != 0:
        i = (i + 1) & mask
    tab[i] = slot + 1


@njit(cache=True)
def coid_delete(tab, mask, o_account, o_coid, slot):
    i = _home(o_account[slot], o_coid[slot], mask)
    while tab[i] != slot + 1:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        e = tab[j]
        if e == 0:
            break
        k = _home(o_account[e - 1], o_coid[e - 1], mask)
        # move entry j back to the hole at i unless its home lies cyclically in (i, j]
        if (j > i and (k <= i or k > j)) or (j < i and (k <= i and k > j)):
            tab[i] = e
            i = j
    tab[i] = 0
