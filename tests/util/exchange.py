"""A small, readable driver over OrderService for the rule-by-rule tests.

    ex = Exchange(wallets=True)            # one symbol "X-USD": tick 1 USD, lot 0.01 X
    ev = ex.buy(1, price=100, qty=5)       # account 1; returns the EVENT array
    ex.kinds(ev) == ["ACK", "FILL", "FILL"]
"""
from __future__ import annotations

import numpy as np

from ringex.config import Config
from ringex.core.order_service import OrderService
from ringex import records
from ringex.records import CancelReason, EventKind, RejectCode, Side

RICH = 10**15


def rule_config(**limits) -> Config:
    """X-USD: 1 tick = 1 USD, 1 lot = 0.01 X, so 1 tick x 1 lot = 10,000 USD minor units."""
    return Config.build(
        {"USD": 6, "X": 8},
        {"X-USD": {"base": "X", "quote": "USD", "tick": "1", "lot": "0.01",
                   "min_price": "1", "max_price": "1000",
                   "maker_fee_bps": 10, "taker_fee_bps": 20},
         "Y-USD": {"base": "X", "quote": "USD", "tick": "1", "lot": "0.01",
                   "min_price": "1", "max_price": "1000"}},
        **{"max_orders": 10_000, "max_accounts": 16, "max_level_pages": 64, **limits},
    )


class Exchange:
    def __init__(self, wallets: bool = True, fund: bool = True, **limits):
        self.config = rule_config(**limits)
        self.svc = OrderService(self.config, wallets=wallets)
        self.sym = 0
        if wallets and fund:
            for acct in range(1, 6):
                self.svc.deposit(acct, "USD", RICH)
                self.svc.deposit(acct, "X", RICH)

    # -- commands
    def submit(self, *cmds) -> np.ndarray:
        return self.svc.submit(records.batch(*cmds))

    def order(self, account, side, price, qty, **kw) -> np.ndarray:
        return self.submit(records.new_order(kw.pop("symbol", self.sym), account, side, price,
                                            qty, **kw))

    def buy(self, account, price, qty, **kw):
        return self.order(account, Side.BUY, price, qty, **kw)

    def sell(self, account, price, qty, **kw):
        return self.order(account, Side.SELL, price, qty, **kw)

    def cancel(self, account, order_id=0, client_order_id=0, symbol=None):
        return self.submit(records.cancel(self.sym if symbol is None else symbol, account,
                                         order_id=order_id, client_order_id=client_order_id))

    def modify(self, account, order_id, price, qty):
        return self.submit(records.modify(self.sym, account, order_id, price, qty))

    def rest(self, account, side, price, qty, **kw) -> int:
        """Place an order that must rest; return its id."""
        ev = self.order(account, side, price, qty, **kw)
        assert self.kinds(ev) == ["ACK"], self.describe(ev)
        return int(ev[0]["order_id"])

    # -- views
    def bid(self):
        return self.svc.best_bid(self.sym)

    def ask(self):
        return self.svc.best_ask(self.sym)

    def depth(self, side, price):
        return self.svc.depth_at(self.sym, side, price)

    def balance(self, account, asset="USD"):
        return self.svc.balance(account, asset)

    def total(self, asset):
        a = self.svc.asset_id(asset)
        return int(self.svc.wallets.avail[:, a].sum() + self.svc.wallets.locked[:, a].sum())

    # -- event helpers
    @staticmethod
    def kinds(ev) -> list[str]:
        return [EventKind(int(k)).name for k in ev["kind"]]

    @staticmethod
    def of(ev, kind: EventKind) -> np.ndarray:
        return ev[ev["kind"] == kind]

    @staticmethod
    def reject_code(ev) -> RejectCode:
        assert len(ev) == 1 and ev[0]["kind"] == EventKind.REJECT, Exchange.describe(ev)
        return RejectCode(records.info_code(int(ev[0]["info"])))

    @staticmethod
    def reason(e) -> CancelReason:
        return CancelReason(records.info_code(int(e["info"])))

    @staticmethod
    def describe(ev) -> str:
        return "\n".join(f"{EventKind(int(e['kind'])).name} {e}" for e in ev)
