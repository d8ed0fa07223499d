"""Hand-made EVENT batches shaped exactly as docs/rules.md describes (for storage tests).

    m = Script()
    a = m.new(0, account=1, side=SELL, price=100, qty=5)     # ACK
    b = m.new(0, account=2, side=BUY, price=101, qty=3)      # ACK
    m.trade(b, a, 3)                                         # taker FILL, maker FILL
    m.cancel(a)                                              # CANCELLED (USER)
    m.deposit(1, asset=0, amount=1000)                       # DEPOSIT command + BALANCE
    events, commands = m.take()                              # everything since last take

It tracks per-symbol seq, order ids, leaves and a simple available balance (no locks),
enough for the writer's input to look like the matcher's.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ringex import records
from ringex.protocol.client_ids import pack_client_id, text_words
from ringex.records import INFO_MAKER, INFO_SELL, CancelReason, EventKind, Side


@dataclass
class Order:
    id: int
    symbol: int
    account: int
    side: int
    price: int
    qty: int
    leaves: int
    coid: int
    session: int


class Script:
    def __init__(self, first_order_id: int = 1):
        self.seq = defaultdict(int)
        self.next_id = first_order_id
        self.orders: dict[int, Order] = {}
        self.available = defaultdict(int)        # (account, asset) -> minor units
        self._events: list[tuple] = []
        self._commands: list[np.ndarray] = []

    # ------------------------------------------------------------------ emitters
    def _emit(self, kind, *, symbol=0, order_id=0, other_id=0, price=0, qty=0, leaves=0,
              account=0, session=0, ref=0, info=0, seq=None):
        if seq is None:
            self.seq[symbol] += 1
            seq = self.seq[symbol]
        self._events.append((seq, order_id, other_id, price, qty, leaves, account, session,
                             ref, symbol, kind, info))

    def _ev(self, kind, o: Order, *, qty, leaves, other_id=None, price=None, info=0, ref=0):
        self._emit(kind, symbol=o.symbol, order_id=o.id,
                   other_id=o.coid if other_id is None else other_id,
                   price=o.price if price is None else price, qty=qty, leaves=leaves,
                   account=o.account, session=o.session, ref=ref,
                   info=info | (INFO_SELL if o.side == Side.SELL else 0))

    def new(self, symbol, account, side, price, qty, coid=0, session=0, ref=0) -> int:
        o = Order(self.next_id, symbol, account, side, price, qty, qty, coid, session)
        self.next_id += 1
        self.orders[o.id] = o
        self._ev(EventKind.ACK, o, qty=qty, leaves=qty, ref=ref)
        return o.id

    def trade(self, taker_id, maker_id, qty):
        t, m = self.orders[taker_id], self.orders[maker_id]
        assert t.symbol == m.symbol and t.side != m.side and qty <= min(t.leaves, m.leaves)
        t.leaves -= qty
        m.leaves -= qty
        self._ev(EventKind.FILL, t, qty=qty, leaves=t.leaves, other_id=m.id, price=m.price)
        self._ev(EventKind.FILL, m, qty=qty, leaves=m.leaves, other_id=t.id, price=m.price,
                 info=INFO_MAKER)

    def cancel(self, order_id, reason=CancelReason.USER):
        o = self.orders[order_id]
        qty, o.leaves = o.leaves, 0
        self._ev(EventKind.CANCELLED, o, qty=qty, leaves=0, info=reason)

    def modify(self, order_id, price, qty):
        o = self.orders[order_id]
        o.price, o.leaves = price, qty
        self._ev(EventKind.MODIFIED, o, qty=qty, leaves=qty)

    def client_id(self, account, text, *, session=0, ref=0) -> int:
        """The CLIENT_ID event of a long client id (its text); returns its key."""
        w = text_words(text)
        self._emit(EventKind.CLIENT_ID, order_id=w[0], other_id=w[1], price=w[2], qty=w[3],
                   leaves=w[4], account=account, session=session, ref=ref, seq=0)
        return pack_client_id(text)

    def reject(self, symbol, account, code, *, price=0, qty=0):
        self._emit(EventKind.REJECT, symbol=symbol, account=account, price=price, qty=qty,
                   info=code)

    def deposit(self, account, asset, amount, *, session=0, ref=0, withdraw=False):
        """The DEPOSIT (or WITHDRAW) command and its BALANCE reply (REJECT if unfunded)."""
        make = records.withdraw if withdraw else records.deposit
        cmd = make(account, asset, amount, ref=ref)
        cmd["session"] = session
        self._commands.append(cmd)
        key = (account, asset)
        if withdraw and self.available[key] < amount:
            self._emit(records.EventKind.REJECT, account=account, qty=amount, session=session,
                       ref=ref, symbol=asset, info=records.RejectCode.INSUFFICIENT_FUNDS, seq=0)
            return
        self.available[key] += -amount if withdraw else amount
        self._emit(EventKind.BALANCE, symbol=asset, price=amount, qty=self.available[key],
                   leaves=0, account=account, session=session, ref=ref, seq=0,
                   info=int(cmd["kind"][0]))

    def withdraw(self, account, asset, amount, **kw):
        self.deposit(account, asset, amount, withdraw=True, **kw)

    def query_balances(self, account, assets, *, session=0, ref=0):
        cmd = records.query_balances(account, session=session, ref=ref)
        self._commands.append(cmd)
        for asset in assets:
            self._emit(EventKind.BALANCE, symbol=asset, qty=self.available[(account, asset)],
                       account=account, session=session, ref=ref, seq=0,
                       info=records.CommandKind.QUERY_BALANCES)

    # ------------------------------------------------------------------ output
    def take(self) -> tuple[np.ndarray, np.ndarray]:
        ev = np.array(self._events, dtype=records.EVENT) if self._events else records.events(0)
        cmds = np.concatenate(self._commands) if self._commands else records.commands(0)
        self._events, self._commands = [], []
        return ev, cmds


def fill_stream(n_trades: int, *, makers_per_taker: int = 4, symbol: int = 0,
                first_order_id: int = 1, accounts: int = 100, seed: int = 0,
                script: Script | None = None) -> Script:
    """A realistic flow: makers rest, one taker sweeps ``makers_per_taker`` of them."""
    rng = np.random.default_rng(seed)
    m = script or Script(first_order_id)
    done = 0
    while done < n_trades:
        k = min(makers_per_taker, n_trades - done)
        side = int(rng.integers(2))
        makers = [m.new(symbol, int(rng.integers(1, accounts)), 1 - side, 1000 + i, 2)
                  for i in range(k)]
        taker = m.new(symbol, int(rng.integers(1, accounts)), side,
                      2000 if side == Side.BUY else 1, 2 * k)
        for mk in makers:
            m.trade(taker, mk, 2)
        done += k
    return m
