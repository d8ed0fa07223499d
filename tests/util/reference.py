"""Reference exchange: a small, obviously-correct pure-Python model of docs/rules.md.

Same in-process API as ``ringex.core.order_service.OrderService`` so tests can run one
command stream on both and compare events and state. Speed is irrelevant here; every
structure is a plain dict, list or deque, and every rule is spelled out where it applies
(section names refer to docs/rules.md).

Order ids are 1, 2, 3 ... in ACK order. The core's ids are strictly increasing but not
consecutive, so differential tests compare ids structurally (tests/util/differential.py).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ringex import records
from ringex.config import Config
from ringex.records import (
    ALL_SYMBOLS, CMD_DISCONNECT, CMD_POST_ONLY, INFO_MAKER, INFO_SELL, CancelReason,
    CommandKind as K, EventKind as E, OrderType, RejectCode as R, SelfTradePrevention as STP,
    Side, TimeInForce,
)

INT64_MAX = (1 << 63) - 1


def notional(price: int, qty: int, tlv: int) -> int:
    return price * qty * tlv


def fee(n: int, bps: int) -> int:
    return n * bps // 10000          # exact in Python ints; rules.md's split form is equal


@dataclass
class Order:
    id: int
    account: int
    symbol: int
    side: int
    price: int                        # 0 for market
    leaves: int
    client_order_id: int
    stp: int
    post_only: bool
    session: int
    lock: int = 0                     # funds this order holds (quote for buys, base for sells)
    stamp: int = 0                    # when it last entered the book ("oldest first")

    @property
    def info(self) -> int:
        return INFO_SELL if self.side == Side.SELL else 0


class ReferenceExchange:
    def __init__(self, config: Config, wallets: bool = True):
        self.config = config
        self.wallets = wallets
        self.syms = config.symbols
        self.books = [({}, {}) for _ in self.syms]       # per symbol: (bids, asks) price -> deque
        self.orders: dict[int, Order] = {}                # live (resting) orders by id
        self.by_client: dict[tuple[int, int], int] = {}   # (account, client id) -> order id
        self.avail: dict[tuple[int, int], int] = {}       # (account, asset id) -> minor units
        self.locked: dict[tuple[int, int], int] = {}
        self.seq = [0] * len(self.syms)
        self.next_id = 1
        self.acked: dict[int, Order] = {}                 # every order as it was ACKed
        self.clock = 0                                    # bumps each time an order rests
        self.out: list[tuple] = []

    # ------------------------------------------------------------------ queries
    def symbol_id(self, name: str) -> int:
        return self.config.symbol(name).id

    def best_bid(self, sym: int):
        return max(self.books[sym][0], default=None)

    def best_ask(self, sym: int):
        return min(self.books[sym][1], default=None)

    def depth_at(self, sym: int, side: int, price: int) -> int:
        return sum(o.leaves for o in self.books[sym][side].get(price, ()))

    def levels(self, sym: int, side: int) -> list[tuple[int, int, int]]:
        book = self.books[sym][side]
        prices = sorted(book, reverse=(side == Side.BUY))
        return [(p, sum(o.leaves for o in book[p]), len(book[p])) for p in prices]

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        a = self.config.asset(asset).id
        return self.avail.get((account, a), 0), self.locked.get((account, a), 0)

    def open_orders(self, account: int) -> list[dict]:
        return [dict(order_id=o.id, symbol=o.symbol, side=o.side, price=o.price,
                     leaves=o.leaves, client_order_id=o.client_order_id)
                for o in self._oldest_first(account)]

    def _oldest_first(self, account: int) -> list[Order]:
        """The account's resting orders by the time they (last) entered the book: a modify
        that loses priority is a cancel + reinsert (rules.md), so it counts as new."""
        return sorted((o for o in self.orders.values() if o.account == account),
                      key=lambda o: o.stamp)

    def last_ack(self, order_id: int) -> Order:
        """The order as it was when ACKed (also for orders long gone)."""
        return self.acked[order_id]

    def deposit(self, account: int, asset: str, amount: int) -> np.ndarray:
        return self.submit(records.deposit(account, self.config.asset(asset).id, amount))

    # ------------------------------------------------------------------ submit
    def submit(self, cmds: np.ndarray) -> np.ndarray:
        self.out = []
        for c in np.atleast_1d(cmds):
            c = {name: int(c[name]) for name in records.COMMAND.names}
            handler = {K.NEW: self._new, K.CANCEL: self._cancel, K.MODIFY: self._modify,
                       K.CANCEL_ALL: self._cancel_all, K.DEPOSIT: self._deposit,
                       K.WITHDRAW: self._withdraw, K.QUERY_BALANCES: self._query_balances,
                       K.QUERY_ORDERS: self._query_orders,
                       K.QUERY_BOOK: self._query_book,
                       K.CLIENT_ID: self._client_id}.get(c["kind"])
            if handler is None:
                self._reject(c, R.UNKNOWN_COMMAND)
            else:
                handler(c)
        return np.array(self.out, dtype=records.EVENT) if self.out else records.events(0)

    # ------------------------------------------------------------------ events
    def _emit(self, kind, symbol, account, session, ref, order_id=0, other_id=0, price=0,
              qty=0, leaves=0, info=0, sequenced=True, seq=0):
        if sequenced and symbol < len(self.syms):
            self.seq[symbol] += 1
            seq = self.seq[symbol]
        self.out.append((seq, order_id, other_id, price, qty, leaves, account, session, ref,
                         symbol, int(kind), info))

    def _reject(self, c, code, info_sell=False, sequenced=True):
        self._emit(E.REJECT, c["symbol"], c["account"], c["session"], c["ref"],
                   order_id=c["order_id"] if c["kind"] in (K.CANCEL, K.MODIFY) else 0,
                   other_id=c["client_order_id"], price=c["price"], qty=c["qty"],
                   info=int(code) | (INFO_SELL if info_sell else 0), sequenced=sequenced)

    def _cancelled(self, o: Order, qty: int, reason, session: int, ref: int):
        self._emit(E.CANCELLED, o.symbol, o.account, session, ref, order_id=o.id,
                   other_id=o.client_order_id, price=o.price, qty=qty,
                   info=int(reason) | o.info)

    # ------------------------------------------------------------------ wallets
    def _move(self, account, asset, avail_delta, locked_delta):
        k = (account, asset)
        self.avail[k] = self.avail.get(k, 0) + avail_delta
        self.locked[k] = self.locked.get(k, 0) + locked_delta
        assert self.avail[k] >= 0 and self.locked[k] >= 0, (k, self.avail[k], self.locked[k])

    def need(self, sym: int, side: int, price: int, qty: int) -> int:
        """The lock an order of ``qty`` open lots at ``price`` holds (rules.md, Funds)."""
        s = self.syms[sym]
        if side == Side.SELL:
            return qty * s.lot_units
        n = notional(price, qty, s.tick_lot_value)
        return n + fee(n, s.taker_fee_bps)

    def _lock_asset(self, sym: int, side: int) -> int:
        s = self.syms[sym]
        return s.base.id if side == Side.SELL else s.quote.id

    def _set_lock(self, o: Order, amount: int):
        """Move ``o.lock`` to ``amount``: the difference goes to/from available."""
        if self.wallets:
            self._move(o.account, self._lock_asset(o.symbol, o.side), o.lock - amount,
                       amount - o.lock)
        o.lock = amount

    def _avail(self, account, asset) -> int:
        return self.avail.get((account, asset), 0)

    # ------------------------------------------------------------------ NEW
    def _validate_new(self, c) -> int:
        """rules.md 'Validation of NEW', first failing check wins."""
        if c["symbol"] >= len(self.syms):
            return R.UNKNOWN_SYMBOL
        s = self.syms[c["symbol"]]
        if not 1 <= c["account"] < self.config.limits.max_accounts:
            return R.UNKNOWN_ACCOUNT
        if c["side"] not in (Side.BUY, Side.SELL):
            return R.INVALID_SIDE
        if c["order_type"] not in (OrderType.LIMIT, OrderType.MARKET):
            return R.INVALID_ORDER_TYPE
        market = c["order_type"] == OrderType.MARKET
        post_only = bool(c["flags"] & CMD_POST_ONLY)
        if (c["tif"] not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)
                or (market and c["tif"] == TimeInForce.GTC)
                or (post_only and (market or c["tif"] != TimeInForce.GTC))):
            return R.INVALID_TIF
        if c["stp"] > 3:
            return R.INVALID_STP
        if c["qty"] <= 0:
            return R.INVALID_QTY
        if not market and not s.min_tick <= c["price"] <= s.max_tick:
            return R.INVALID_PRICE
        n = notional(s.max_tick if market else c["price"], c["qty"], s.tick_lot_value)
        if n + fee(n, s.taker_fee_bps) > INT64_MAX or c["qty"] * s.lot_units > INT64_MAX:
            return R.OVERFLOW
        if c["client_order_id"] and (c["account"], c["client_order_id"]) in self.by_client:
            return R.DUPLICATE_CLIENT_ORDER_ID
        if (not market and c["tif"] == TimeInForce.GTC
                and len(self.orders) >= self.config.limits.max_orders):
            return R.TOO_MANY_ORDERS
        if self.wallets:
            asset = self._lock_asset(c["symbol"], c["side"])
            if market and c["side"] == Side.BUY:
                if self._avail(c["account"], asset) <= 0:
                    return R.INSUFFICIENT_FUNDS
            elif self._avail(c["account"], asset) < self.need(c["symbol"], c["side"],
                                                              c["price"], c["qty"]):
                return R.INSUFFICIENT_FUNDS
        return R.OK

    def _new(self, c):
        code = self._validate_new(c)
        if code != R.OK:
            self._reject(c, code, info_sell=c["side"] == Side.SELL)
            return
        market = c["order_type"] == OrderType.MARKET
        o = Order(self.next_id, c["account"], c["symbol"], c["side"],
                  0 if market else c["price"], c["qty"], c["client_order_id"], c["stp"],
                  bool(c["flags"] & CMD_POST_ONLY), c["session"])
        self.next_id += 1
        self.acked[o.id] = replace(o)
        self._emit(E.ACK, o.symbol, o.account, c["session"], c["ref"], order_id=o.id,
                   other_id=o.client_order_id, price=o.price, qty=o.leaves, leaves=o.leaves,
                   info=o.info)
        budget = None
        if self.wallets:
            if market and o.side == Side.BUY:
                budget = self._avail(o.account, self.syms[o.symbol].quote.id)
            else:
                self._set_lock(o, self.need(o.symbol, o.side, o.price, o.leaves))
        sess, ref = c["session"], c["ref"]
        if o.post_only and self._would_take(o):
            self._cancel_order(o, CancelReason.POST_ONLY, sess, ref, resting=False)
            return
        if c["tif"] == TimeInForce.FOK and self._fillable(o, budget) < o.leaves:
            self._cancel_order(o, CancelReason.FOK, sess, ref, resting=False)
            return
        stopped = self._match(o, sess, ref, budget)
        if stopped or o.leaves == 0:
            return
        if market or c["tif"] != TimeInForce.GTC:
            self._cancel_order(o, CancelReason.IOC_REMAINDER, sess, ref, resting=False)
        else:
            self._rest(o)

    def _would_take(self, o: Order) -> bool:
        if o.side == Side.BUY:
            ask = self.best_ask(o.symbol)
            return ask is not None and o.price >= ask
        bid = self.best_bid(o.symbol)
        return bid is not None and o.price <= bid

    def _crosses(self, o: Order, level_price: int) -> bool:
        if o.price == 0:                                  # market
            return True
        return level_price <= o.price if o.side == Side.BUY else level_price >= o.price

    def _opposite(self, o: Order):
        """Opposite-side (price, deque) pairs, best first."""
        book = self.books[o.symbol][1 - o.side]
        for p in sorted(book, reverse=(o.side == Side.SELL)):
            yield p, book[p]

    def _afford(self, sym: int, price: int, budget: int) -> int:
        """Largest q with notional(price, q) + taker fee <= budget (market buys)."""
        s = self.syms[sym]
        lo, hi = 0, budget // (price * s.tick_lot_value)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            n = notional(price, mid, s.tick_lot_value)
            if n + fee(n, s.taker_fee_bps) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _fillable(self, o: Order, budget) -> int:
        """FOK dry run (rules.md 'Matching a NEW order' 3): the lots ``_match`` would fill
        now, walking exactly as it does (a funds-limited maker stays at the head and is
        asked again), without changing anything."""
        s = self.syms[o.symbol]
        got = 0
        for p, queue in self._opposite(o):
            if not self._crosses(o, p):
                break
            for m in queue:
                if m.account == o.account and o.stp != STP.NONE:
                    if o.stp == STP.CANCEL_MAKER:
                        continue
                    return got
                left = m.leaves
                while left and got < o.leaves:
                    q = min(o.leaves - got, left)
                    if budget is not None:
                        q = min(q, self._afford(o.symbol, p, budget))
                        if q == 0:
                            return got
                        n = notional(p, q, s.tick_lot_value)
                        budget -= n + fee(n, s.taker_fee_bps)
                    got += q
                    left -= q
                if got == o.leaves:
                    return got
        return got

    def _match(self, o: Order, sess: int, ref: int, budget) -> bool:
        """Walk the opposite side (rules.md 'Matching' 4). True when the taker was stopped
        (cancelled by STP or out of funds), so nothing rests and no IOC remainder follows."""
        s = self.syms[o.symbol]
        while o.leaves:
            level = next(((p, q) for p, q in self._opposite(o)), None)
            if level is None or not self._crosses(o, level[0]):
                return False
            p, queue = level
            m = queue[0]
            if m.account == o.account and o.stp != STP.NONE:
                if o.stp == STP.CANCEL_TAKER:
                    self._cancel_order(o, CancelReason.STP, sess, ref, resting=False)
                    return True
                self._cancel_order(m, CancelReason.STP, m.session, 0, resting=True)
                if o.stp == STP.CANCEL_BOTH:
                    self._cancel_order(o, CancelReason.STP, sess, ref, resting=False)
                    return True
                continue
            q = min(o.leaves, m.leaves)
            if budget is not None:
                q = min(q, self._afford(o.symbol, p, budget))
                if q == 0:
                    self._cancel_order(o, CancelReason.NO_FUNDS, sess, ref, resting=False)
                    return True
                n = notional(p, q, s.tick_lot_value)
                budget -= n + fee(n, s.taker_fee_bps)
            self._trade(o, m, p, q, sess, ref)
        return False

    def _trade(self, t: Order, m: Order, p: int, q: int, sess: int, ref: int):
        t.leaves -= q
        m.leaves -= q
        self._emit(E.FILL, t.symbol, t.account, sess, ref, order_id=t.id, other_id=m.id,
                   price=p, qty=q, leaves=t.leaves, info=t.info)
        self._emit(E.FILL, m.symbol, m.account, m.session, 0, order_id=m.id, other_id=t.id,
                   price=p, qty=q, leaves=m.leaves, info=m.info | INFO_MAKER)
        if self.wallets:
            self._settle(t, p, q, maker=False)
            self._settle(m, p, q, maker=True)
        if m.leaves == 0:
            self._unrest(m)

    def _settle(self, o: Order, p: int, q: int, maker: bool):
        """rules.md 'Funds': one side of one fill."""
        s = self.syms[o.symbol]
        n = notional(p, q, s.tick_lot_value)
        f = fee(n, s.maker_fee_bps if maker else s.taker_fee_bps)
        base, quote = s.base.id, s.quote.id
        if o.side == Side.BUY:
            if o.price == 0:                              # market buy: pays from available
                self._move(o.account, quote, -(n + f), 0)
            else:
                assert o.lock >= n + f
                self._move(o.account, quote, 0, -(n + f))
                o.lock -= n + f
                target = self.need(o.symbol, o.side, o.price, o.leaves)
                assert o.lock >= target, "buy lock would go negative"
                self._set_lock(o, target)
            self._move(o.account, base, q * s.lot_units, 0)
        else:
            self._move(o.account, base, 0, -q * s.lot_units)
            o.lock -= q * s.lot_units
            self._move(o.account, quote, n - f, 0)
        self._move(0, quote, f, 0)

    # ------------------------------------------------------------------ book
    def _rest(self, o: Order):
        self.clock += 1
        o.stamp = self.clock
        self.books[o.symbol][o.side].setdefault(o.price, deque()).append(o)
        self.orders[o.id] = o
        if o.client_order_id:
            self.by_client[(o.account, o.client_order_id)] = o.id

    def _unrest(self, o: Order):
        book = self.books[o.symbol][o.side]
        book[o.price].remove(o)
        if not book[o.price]:
            del book[o.price]
        del self.orders[o.id]
        if o.client_order_id:
            del self.by_client[(o.account, o.client_order_id)]

    def _cancel_order(self, o: Order, reason, sess: int, ref: int, resting: bool):
        qty = o.leaves
        if resting:
            self._unrest(o)
        self._cancelled(o, qty, reason, sess, ref)
        o.leaves = 0
        self._set_lock(o, 0)

    # ------------------------------------------------------------------ CANCEL / MODIFY
    def _find(self, c) -> Order | None:
        """The resting order a CANCEL/MODIFY names, or None with the REJECT emitted.

        rules.md only says "UNKNOWN_ORDER"; for an unknown symbol or account the core
        answers UNKNOWN_SYMBOL (seq 0) / UNKNOWN_ACCOUNT first, and so does this model."""
        if c["symbol"] >= len(self.syms):
            self._reject(c, R.UNKNOWN_SYMBOL)
            return None
        if not 1 <= c["account"] < self.config.limits.max_accounts:
            self._reject(c, R.UNKNOWN_ACCOUNT)
            return None
        oid = c["order_id"]
        if oid == 0 and c["client_order_id"]:
            oid = self.by_client.get((c["account"], c["client_order_id"]), 0)
        o = self.orders.get(oid)
        if o is None or o.account != c["account"] or o.symbol != c["symbol"]:
            self._reject(c, R.UNKNOWN_ORDER)
            return None
        return o

    def _cancel(self, c):
        o = self._find(c)
        if o is not None:
            self._cancel_order(o, CancelReason.USER, c["session"], c["ref"], resting=True)

    def _modify(self, c):
        """The order is looked up first, then qty and price are checked (rules.md leaves
        the order open; this is the core's)."""
        o = self._find(c)
        if o is None:
            return
        if c["qty"] <= 0:
            self._reject(c, R.INVALID_QTY)
            return
        s = self.syms[c["symbol"]]
        if not s.min_tick <= c["price"] <= s.max_tick:
            self._reject(c, R.INVALID_PRICE)
            return
        sess, ref = c["session"], c["ref"]
        new_p, new_q = c["price"], c["qty"]
        if new_p == o.price and new_q <= o.leaves:          # keeps its queue place
            o.leaves = new_q
            self._set_lock(o, self.need(o.symbol, o.side, o.price, o.leaves))
            self._emit(E.MODIFIED, o.symbol, o.account, sess, ref, order_id=o.id,
                       other_id=o.client_order_id, price=new_p, qty=new_q, leaves=new_q,
                       info=o.info)
            return
        if self.wallets:
            asset = self._lock_asset(o.symbol, o.side)
            if self._avail(o.account, asset) + o.lock < self.need(o.symbol, o.side, new_p, new_q):
                self._reject(c, R.INSUFFICIENT_FUNDS)
                return
        moved = Order(o.id, o.account, o.symbol, o.side, new_p, new_q, o.client_order_id,
                      o.stp, o.post_only, o.session)
        if o.post_only and self._would_take(moved):
            self._reject(c, R.POST_ONLY_WOULD_TAKE)
            return
        self._unrest(o)
        o.price, o.leaves = new_p, new_q
        self._set_lock(o, self.need(o.symbol, o.side, new_p, new_q))
        self._emit(E.MODIFIED, o.symbol, o.account, sess, ref, order_id=o.id,
                   other_id=o.client_order_id, price=new_p, qty=new_q, leaves=new_q,
                   info=o.info)
        stopped = self._match(o, sess, ref, None)
        if not stopped and o.leaves:
            self._rest(o)

    def _cancel_all(self, c):
        if c["symbol"] != ALL_SYMBOLS and c["symbol"] >= len(self.syms):
            self._reject(c, R.UNKNOWN_SYMBOL)
            return
        if not 1 <= c["account"] < self.config.limits.max_accounts:
            self._reject(c, R.UNKNOWN_ACCOUNT, sequenced=False)
            return
        disconnect = bool(c["flags"] & CMD_DISCONNECT)   # only this session's orders
        reason = CancelReason.DISCONNECT if disconnect else CancelReason.CANCEL_ALL
        for o in self._oldest_first(c["account"]):
            if c["symbol"] in (ALL_SYMBOLS, o.symbol) and (
                    not disconnect or o.session == c["session"]):
                self._cancel_order(o, reason, c["session"], c["ref"], resting=True)

    # ------------------------------------------------------------------ wallets commands
    def _money(self, c) -> bool:
        """Common DEPOSIT/WITHDRAW checks; emits the REJECT and returns False on failure."""
        if not self.wallets:
            code = R.UNKNOWN_COMMAND
        elif not 1 <= c["account"] < self.config.limits.max_accounts:
            code = R.UNKNOWN_ACCOUNT
        elif c["symbol"] >= len(self.config.assets):
            code = R.UNKNOWN_ASSET
        elif c["qty"] <= 0:
            code = R.INVALID_AMOUNT
        elif c["kind"] == K.WITHDRAW and self._avail(c["account"], c["symbol"]) < c["qty"]:
            code = R.INSUFFICIENT_FUNDS
        else:
            return True
        self._reject(c, code, sequenced=False)
        return False

    def _balance_event(self, c, asset: int, moved: int = 0):
        """BALANCE: info = the command kind it answers, price = the amount moved."""
        k = (c["account"], asset)
        self._emit(E.BALANCE, asset, c["account"], c["session"], c["ref"], price=moved,
                   qty=self.avail.get(k, 0), leaves=self.locked.get(k, 0),
                   info=int(c["kind"]), sequenced=False)

    def _deposit(self, c):
        if self._money(c):
            self._move(c["account"], c["symbol"], c["qty"], 0)
            self._balance_event(c, c["symbol"], c["qty"])

    def _withdraw(self, c):
        if self._money(c):
            self._move(c["account"], c["symbol"], -c["qty"], 0)
            self._balance_event(c, c["symbol"], c["qty"])

    def _query_balances(self, c):
        if not self.wallets:
            self._reject(c, R.UNKNOWN_COMMAND, sequenced=False)
            return
        for a in self.config.assets:
            self._balance_event(c, a.id)

    def _query_orders(self, c):
        for o in self._oldest_first(c["account"]):
            self._emit(E.OPEN_ORDER, o.symbol, o.account, c["session"], c["ref"],
                       order_id=o.id, other_id=o.client_order_id, price=o.price,
                       qty=o.leaves, leaves=o.leaves, info=o.info, sequenced=False)

    def _client_id(self, c):
        """The text of a long client id, echoed from the command's first five fields."""
        self._emit(E.CLIENT_ID, 0, c["account"], c["session"], c["ref"],
                   order_id=c["order_id"], other_id=c["client_order_id"], price=c["price"],
                   qty=c["qty"], leaves=c["ts_ns"], sequenced=False)

    def _query_book(self, c):
        """One BOOK_LEVEL per level, bids then asks, best first; seq = the symbol's current
        sequence, not advanced. Market data: account 0 (rules.md leaves it open)."""
        sym = c["symbol"]
        if sym >= len(self.syms):
            self._reject(c, R.UNKNOWN_SYMBOL)
            return
        for side in (Side.BUY, Side.SELL):
            for p, lots, n in self.levels(sym, side):
                self._emit(E.BOOK_LEVEL, sym, 0, c["session"], c["ref"], price=p, qty=lots,
                           leaves=n, info=INFO_SELL if side == Side.SELL else 0,
                           sequenced=False, seq=self.seq[sym])
