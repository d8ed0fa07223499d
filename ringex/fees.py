"""Fees and notionals: the one definition the kernel, the writer and the tests share.

Units (docs/rules.md): price in ticks, qty in lots, ``tick_lot_value`` in quote minor
units per tick per lot. A notional and a fee are quote minor units. Fees are floored
and always in the quote asset.

Plain Python (importable without numba, so gateways and the writer stay small); the
matcher's kernels compile these same functions (``ringex.core.fees``).
"""
from __future__ import annotations

from ringex.config import Symbol


def fee(notional, bps):
    """``notional * bps // 10000`` without overflowing int64 (notional >= 0, bps 0..1000)."""
    return (notional // 10000) * bps + (notional % 10000) * bps // 10000


def notional(price, qty, tick_lot_value):
    """Quote minor units for ``qty`` lots at ``price`` ticks."""
    return price * qty * tick_lot_value


def fill_fee(symbol: Symbol, price: int, qty: int, maker: bool) -> int:
    """The fee one side of a fill pays (quote minor units), as the kernel charges it."""
    bps = symbol.maker_fee_bps if maker else symbol.taker_fee_bps
    return int(fee(int(notional(int(price), int(qty), symbol.tick_lot_value)), bps))
