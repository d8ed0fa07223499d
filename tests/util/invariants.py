"""State invariants that must hold after every command, for the core and the reference.

Everything here uses only the public in-process API (``levels``, ``open_orders``,
``balance``) plus the events an engine emitted, so one checker serves both engines:

    ledger = OrderLedger()
    events = engine.submit(cmds); ledger.consume(events)
    check_all(engine, config, accounts, ledger, totals, wallets=True)

Each check raises ``InvariantError`` with a message naming the account, asset, symbol or
order that broke it.
"""
from __future__ import annotations

from collections import defaultdict

from ringex.config import FEE_ACCOUNT, Config
from ringex.records import INFO_SELL, EventKind as E, Side


class InvariantError(AssertionError):
    pass


def _fail(msg: str):
    raise InvariantError(msg)


def need(config: Config, symbol: int, side: int, price: int, leaves: int) -> tuple[int, int]:
    """(asset id, amount) an open order must hold locked (rules.md 'Funds')."""
    s = config.symbols[symbol]
    if side == Side.SELL:
        return s.base.id, leaves * s.lot_units
    n = price * leaves * s.tick_lot_value
    return s.quote.id, n + n * s.taker_fee_bps // 10000


def open_orders_all(engine, accounts) -> list[dict]:
    return [dict(o, account=a) for a in accounts for o in engine.open_orders(a)]


# ---------------------------------------------------------------------- book
def check_book(engine, config: Config, accounts) -> None:
    """Never crossed; levels strictly best-first; each level's total and order count equal
    the sum over the open orders resting there; no empty level is reported."""
    per_level: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for o in open_orders_all(engine, accounts):
        if o["leaves"] <= 0:
            _fail(f"open order with leaves {o['leaves']}: {o}")
        key = (o["symbol"], o["side"], o["price"])
        per_level[key][0] += o["leaves"]
        per_level[key][1] += 1
    seen = set()
    for s in config.symbols:
        for side in (Side.BUY, Side.SELL):
            lv = engine.levels(s.id, side)
            prices = [p for p, _, _ in lv]
            ordered = sorted(prices, reverse=(side == Side.BUY))
            if prices != ordered or len(set(prices)) != len(prices):
                _fail(f"{s.name} side {side}: levels not strictly best-first: {prices}")
            for p, total, n in lv:
                want = per_level.get((s.id, side, p), [0, 0])
                if total <= 0 or [total, n] != want:
                    _fail(f"{s.name} side {side} price {p}: level says {total} lots in {n} "
                          f"orders, open orders say {want[0]} lots in {want[1]}")
                if engine.depth_at(s.id, side, p) != total:
                    _fail(f"{s.name} side {side} price {p}: depth_at disagrees with levels")
                seen.add((s.id, side, p))
            best = engine.best_bid(s.id) if side == Side.BUY else engine.best_ask(s.id)
            if best != (prices[0] if prices else None):
                _fail(f"{s.name} side {side}: best {best} but levels start {prices[:1]}")
        bid, ask = engine.best_bid(s.id), engine.best_ask(s.id)
        if bid is not None and ask is not None and bid >= ask:
            _fail(f"{s.name}: book crossed, bid {bid} >= ask {ask}")
    missing = set(per_level) - seen
    if missing:
        _fail(f"open orders at levels the book does not report: {sorted(missing)}")


# ---------------------------------------------------------------------- funds
def check_funds(engine, config: Config, accounts, totals: dict[int, int]) -> None:
    """Assets conserved (fee account included) and every account's locked funds equal
    what its open orders need, per asset."""
    everyone = sorted(set(accounts) | {FEE_ACCOUNT})
    needs: dict[tuple[int, int], int] = defaultdict(int)
    for o in open_orders_all(engine, accounts):
        asset, amount = need(config, o["symbol"], o["side"], o["price"], o["leaves"])
        needs[(o["account"], asset)] += amount
    for asset in config.assets:
        held = 0
        for a in everyone:
            avail, locked = engine.balance(a, asset.name)
            if avail < 0 or locked < 0:
                _fail(f"account {a} {asset.name}: negative balance ({avail}, {locked})")
            if locked != needs.get((a, asset.id), 0):
                _fail(f"account {a} {asset.name}: locked {locked} but open orders need "
                      f"{needs.get((a, asset.id), 0)}")
            held += avail + locked
        if held != totals.get(asset.id, 0):
            _fail(f"{asset.name}: holdings {held} != deposits - withdrawals "
                  f"{totals.get(asset.id, 0)}")


# ---------------------------------------------------------------------- orders
class OrderLedger:
    """Follows one engine's events: every ACKed order is resting, or was filled or
    cancelled exactly once; fills and modifies keep ``leaves`` consistent."""

    def __init__(self):
        self.live: dict[int, dict] = {}     # id -> {symbol, side, price, leaves}
        self.done: set[int] = set()

    def consume(self, events) -> None:
        for ev in events:
            kind, oid = int(ev["kind"]), int(ev["order_id"])
            if kind == E.ACK:
                if oid in self.live or oid in self.done:
                    _fail(f"order id {oid} ACKed twice")
                self.live[oid] = dict(symbol=int(ev["symbol"]),
                                      side=int(bool(ev["info"] & INFO_SELL)),
                                      price=int(ev["price"]), leaves=int(ev["leaves"]))
            elif kind in (E.FILL, E.CANCELLED, E.MODIFIED):
                if oid not in self.live:
                    why = "finished" if oid in self.done else "never ACKed"
                    _fail(f"{E(kind).name} for order {oid}, which is {why}")
                o = self.live[oid]
                if kind == E.FILL:
                    if ev["qty"] <= 0 or o["leaves"] - ev["qty"] != ev["leaves"]:
                        _fail(f"FILL of order {oid}: leaves {o['leaves']} - {ev['qty']} "
                              f"!= {ev['leaves']}")
                    o["leaves"] = int(ev["leaves"])
                elif kind == E.MODIFIED:
                    o["price"], o["leaves"] = int(ev["price"]), int(ev["leaves"])
                else:
                    if ev["qty"] != o["leaves"] or ev["leaves"] != 0:
                        _fail(f"CANCELLED order {oid}: cancelled {ev['qty']} of "
                              f"{o['leaves']} open lots, leaves {ev['leaves']}")
                    o["leaves"] = 0
                if o["leaves"] == 0:
                    del self.live[oid]
                    self.done.add(oid)

    def check(self, engine, accounts) -> None:
        """Between commands the ledger's live orders are exactly the resting ones."""
        resting = {o["order_id"]: o for o in open_orders_all(engine, accounts)}
        if set(resting) != set(self.live):
            lost = sorted(set(self.live) - set(resting))
            extra = sorted(set(resting) - set(self.live))
            _fail(f"orders lost (live by events, not resting): {lost}; "
                  f"resting without a live history: {extra}")
        for oid, o in self.live.items():
            r = resting[oid]
            got = (r["symbol"], r["side"], r["price"], r["leaves"])
            want = (o["symbol"], o["side"], o["price"], o["leaves"])
            if got != want:
                _fail(f"order {oid}: resting as (symbol, side, price, leaves) {got}, "
                      f"events say {want}")


def check_all(engine, config: Config, accounts, ledger: OrderLedger,
              totals: dict[int, int] | None, wallets: bool) -> None:
    check_book(engine, config, accounts)
    ledger.check(engine, accounts)
    if wallets:
        check_funds(engine, config, accounts, totals or {})
