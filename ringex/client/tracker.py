"""What a ReconnectingClient must remember to pick up after a dropped connection: the
orders it knows to be open (with what it has seen of their fills) and, per symbol, the
last trade id of a fill it saw. It learns from every reply and push, in wire order.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ringex.client.results import Ack, Cancelled, Fill, Modified, MyTrade, OrderState
from ringex.client.types import ENDED

ZERO = Decimal(0)


@dataclass(slots=True)
class Tracked:
    symbol: str
    client_order_id: str | None
    leaves: Decimal                 # open quantity as last heard
    filled: Decimal                 # the sum of the fills seen (since the ack)
    since_ts: int                   # its ack's engine time: its trades are not older


class OrderTracker:
    def __init__(self) -> None:
        self.open: dict[int, Tracked] = {}
        self.last_trade: dict[str, int] = {}

    def observe(self, ev: object) -> None:
        if isinstance(ev, Fill):
            self._trade(ev.symbol, ev.trade_id)
            t = self.open.get(ev.order_id)
            if t is not None:
                t.filled += ev.qty
                t.leaves = ev.leaves
                if not ev.leaves:
                    del self.open[ev.order_id]
        elif isinstance(ev, MyTrade):
            self._trade(ev.symbol, ev.trade_id)
            t = self.open.get(ev.order_id)
            if t is not None:
                t.filled += ev.qty
        elif isinstance(ev, Ack):
            # a market order is open too until its fills or its ioc_remainder end it
            self.open.setdefault(ev.order_id, Tracked(ev.symbol, ev.client_order_id, ev.qty,
                                                    ZERO, ev.ts))
        elif isinstance(ev, Modified):
            t = self.open.get(ev.order_id)
            if t is not None:
                t.leaves = ev.leaves
        elif isinstance(ev, Cancelled):
            self.open.pop(ev.order_id, None)
        elif isinstance(ev, OrderState):
            if ev.status in ENDED:
                self.open.pop(ev.order_id, None)
            elif ev.order_id in self.open:
                self.open[ev.order_id].leaves = ev.leaves

    def knows(self, order_id: int) -> bool:
        return order_id in self.open

    def _trade(self, symbol: str, trade_id: int) -> None:
        if trade_id > self.last_trade.get(symbol, 0):
            self.last_trade[symbol] = trade_id
