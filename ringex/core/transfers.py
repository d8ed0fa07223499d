"""Account-level commands as kernels: deposit, withdraw and the balance query."""
from __future__ import annotations

import numpy as np

from ringex.jit import njit
from ringex.core.events import NO_SEQ, emit
from ringex.core.markets import NOTIONAL_LIMIT
from ringex.core.matcher import reject
from ringex.records import (
    CMD_DEPOSIT, E_INSUFFICIENT_FUNDS, E_INVALID_AMOUNT, E_OVERFLOW, E_UNKNOWN_ACCOUNT,
    E_UNKNOWN_ASSET, E_UNKNOWN_COMMAND, EV_BALANCE,
)


@njit(cache=True)
def _balance(wl, out, n, mk, c, acct, asset, amount):
    """A BALANCE: info = the command kind it answers (its cause), price = the amount a
    transfer moved (0 for a query), qty/leaves = available/locked after it."""
    return emit(out, n, mk, NO_SEQ, EV_BALANCE, asset, 0, 0, amount, wl.avail[acct, asset],
                wl.locked[acct, asset], acct, c.session, c.ref, c.kind)


@njit(cache=True, inline="always")
def on_transfer(wl, mk, c, out, n, wallets):
    """DEPOSIT or WITHDRAW of c.qty minor units of asset c.symbol; answers with BALANCE."""
    acct, asset, amount = np.int64(c.account), np.int64(c.symbol), c.qty
    if not wallets:
        return reject(out, n, mk, c, E_UNKNOWN_COMMAND, NO_SEQ)
    if acct < 0 or acct >= wl.avail.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_ACCOUNT, NO_SEQ)
    if asset >= wl.avail.shape[1]:
        return reject(out, n, mk, c, E_UNKNOWN_ASSET, NO_SEQ)
    if amount <= 0:
        return reject(out, n, mk, c, E_INVALID_AMOUNT, NO_SEQ)
    if c.kind == CMD_DEPOSIT:
        if amount > NOTIONAL_LIMIT - wl.avail[acct, asset] - wl.locked[acct, asset]:
            return reject(out, n, mk, c, E_OVERFLOW, NO_SEQ)
        wl.avail[acct, asset] += amount
    else:
        if amount > wl.avail[acct, asset]:
            return reject(out, n, mk, c, E_INSUFFICIENT_FUNDS, NO_SEQ)
        wl.avail[acct, asset] -= amount
    return _balance(wl, out, n, mk, c, acct, asset, amount)


@njit(cache=True)
def on_query_balances(wl, mk, c, out, n, wallets):
    acct = np.int64(c.account)
    if not wallets:
        return reject(out, n, mk, c, E_UNKNOWN_COMMAND, NO_SEQ)
    if acct < 0 or acct >= wl.avail.shape[0]:
        return reject(out, n, mk, c, E_UNKNOWN_ACCOUNT, NO_SEQ)
    for asset in range(wl.avail.shape[1]):
        n = _balance(wl, out, n, mk, c, acct, asset, 0)
    return n
