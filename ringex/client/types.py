"""The protocol's closed vocabularies as ``Literal`` types (docs/protocol.md sections 2-6),
so a type checker catches ``"bye"`` for a side or ``"GTC"`` for a time in force before the
gateway refuses it. Values the gateway sends may grow with newer servers: results keep
them as plain strings when they come from outside these sets.
"""
from __future__ import annotations

from typing import Literal

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["gtc", "ioc", "fok"]
Stp = Literal["none", "cancel_taker", "cancel_maker", "cancel_both"]
Channel = Literal["book", "trades", "orders"]
BookDepth = Literal[10, 50]            # a book subscription's levels a side (None: all)
Liquidity = Literal["maker", "taker"]
OrderStatus = Literal["open", "partially_filled", "filled", "cancelled"]
CancelReason = Literal["user", "ioc_remainder", "fok", "stp", "disconnect", "post_only",
                       "no_funds", "cancel_all", "other"]
TransferOp = Literal["deposit", "withdraw"]

ENDED: tuple[OrderStatus, ...] = ("filled", "cancelled")    # an order_status that is final
