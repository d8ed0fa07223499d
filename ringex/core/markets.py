"""Per-symbol parameters as arrays the kernels index by symbol id, plus event sequences."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ringex.config import Config

Markets = namedtuple("Markets", [
    "lo",          # lowest valid price (ticks)
    "hi",          # highest valid price (ticks)
    "tlv",         # quote minor units per tick per lot
    "lot_units",   # base minor units per lot
    "base",        # asset id of the base
    "quote",       # asset id of the quote
    "maker_bps",
    "taker_bps",
    "max_qty",     # largest qty whose notional at hi (plus fee) fits int64
    "seq",         # last event sequence per symbol
])

NOTIONAL_LIMIT = 1 << 62   # leaves room for a fee of up to 10% without overflow


def new_markets(config: Config) -> Markets:
    s = config.symbols
    col = lambda f: np.array([f(x) for x in s], dtype=np.int64)  # noqa: E731
    return Markets(
        lo=col(lambda x: x.min_tick), hi=col(lambda x: x.max_tick),
        tlv=col(lambda x: x.tick_lot_value), lot_units=col(lambda x: x.lot_units),
        base=col(lambda x: x.base.id), quote=col(lambda x: x.quote.id),
        maker_bps=col(lambda x: x.maker_fee_bps), taker_bps=col(lambda x: x.taker_fee_bps),
        max_qty=col(lambda x: min(NOTIONAL_LIMIT // (x.max_tick * x.tick_lot_value),
                                  NOTIONAL_LIMIT // max(x.lot_units, 1))),
        seq=np.zeros(len(s), dtype=np.int64),
    )
