"""Run one abstract op stream (tests/util/generators.py) on several engines in lockstep.

Order ids differ between engines (the core's encode a pool slot; the reference counts
1, 2, 3 ...), so each engine keeps the list of ids it ACKed, and every id in an event is
compared as its *position* in that list ("#k"). Ops name orders by position too, and each
engine gets a command carrying its own id for that position.

    diff = Differential(market, wallets=True, engines={"ref": ref, "core": core})
    diff.run(ops)            # raises AssertionError with both event lists on a mismatch

After every command: same events, same books, same open orders, same balances, and the
invariants of tests/util/invariants.py on every engine.
"""
from __future__ import annotations

import numpy as np

from ringex import records
from ringex.records import EventKind as E, RejectCode, CancelReason, Side

from . import generators as g
from .invariants import OrderLedger, check_all
from .reference import ReferenceExchange

NEVER = 10**15                       # ids at NEVER + n were never assigned by anyone


class Track:
    """One engine plus what the harness knows about it."""

    def __init__(self, name: str, svc):
        self.name, self.svc = name, svc
        self.ids: list[int] = []             # engine order ids in ACK order
        self.pos: dict[int, int] = {}
        self.ledger = OrderLedger()
        self.sent: list[np.ndarray] = []     # the concrete commands this engine received
        self.events: list[np.ndarray] = []

    def canon_id(self, oid: int):
        return f"#{self.pos[oid]}" if oid in self.pos else oid

    def absorb(self, events: np.ndarray) -> list[tuple]:
        out = []
        for ev in events:
            if ev["kind"] == E.ACK:
                oid = int(ev["order_id"])
                assert oid not in self.pos, f"{self.name}: order id {oid} reused"
                assert not self.ids or oid > self.ids[-1], \
                    f"{self.name}: order id {oid} not above the previous {self.ids[-1]}"
                self.pos[oid] = len(self.ids)
                self.ids.append(oid)
            row = [int(ev[f]) for f in records.EVENT.names]
            row[1] = self.canon_id(row[1])
            if ev["kind"] == E.FILL:
                row[2] = self.canon_id(row[2])
            out.append(tuple(row))
        self.ledger.consume(events)
        self.events.append(events)
        return out


def describe(row: tuple) -> str:
    d = dict(zip(records.EVENT.names, row))
    kind = E(d["kind"]).name
    code = d["info"] & records.INFO_CODE_MASK
    if d["kind"] == E.REJECT:
        code = RejectCode(code).name
    elif d["kind"] == E.CANCELLED:
        code = CancelReason(code).name if code in CancelReason._value2member_map_ else code
    flags = ("S" if d["info"] & records.INFO_SELL else "B") + \
        ("m" if d["info"] & records.INFO_MAKER else "")
    return (f"{kind:10s} seq={d['seq']} id={d['order_id']} other={d['other_id']} "
            f"px={d['price']} qty={d['qty']} lv={d['leaves']} acct={d['account']} "
            f"sess={d['session']} ref={d['ref']} sym={d['symbol']} {flags} {code}")


class Differential:
    def __init__(self, market: g.Market, wallets: bool, engines: dict, check_invariants=True):
        self.m, self.wallets, self.check = market, wallets, check_invariants
        self.tracks = [Track(name, svc) for name, svc in engines.items()]
        self.ref = next(t for t in self.tracks if isinstance(t.svc, ReferenceExchange))
        self.totals: dict[int, int] = {}
        self.step_no = 0
        self._acks: dict[int, object] = {}
        self.accounts = tuple(market.accounts)          # every account that can trade

    # ------------------------------------------------------------------ resolving ops
    def _order(self, back: int, live: bool):
        """(position, the reference's view of that order) or (None, None)."""
        resting = sorted(self.ref.svc.orders, reverse=True)
        if live and resting:
            rid = resting[back % len(resting)]
            return self.ref.pos[rid], self.ref.svc.orders[rid]
        k = len(self.ref.ids) - 1 - back
        if k < 0:
            return None, None
        rid = self.ref.ids[k]
        live = self.ref.svc.orders.get(rid)
        return k, live if live is not None else self._acks[rid]

    def _command(self, op, t: Track) -> np.ndarray:
        m, ref = self.m, self.step_no + 1
        if isinstance(op, g.New):
            mid = m.mids[op.symbol] if op.symbol < len(m.mids) else m.mids[0]
            price = mid + op.offset
            if op.order_type == 1 and op.offset % 2 == 0:
                price = 0                           # market orders with and without a price
            return records.new_order(op.symbol, op.account, op.side, price, op.qty,
                                    tif=op.tif, order_type=op.order_type,
                                    post_only=op.post_only, stp=op.stp,
                                    client_order_id=op.client_order_id,
                                    session=self._session(op.account, op.session), ref=ref)
        if isinstance(op, g.Cancel):
            k, o = self._order(op.back, op.live)
            if k is None:
                acct = m.accounts[op.back % len(m.accounts)]
                return records.cancel(0, acct, order_id=NEVER + op.back,
                                     session=self._session(acct, op.session), ref=ref)
            acct = o.account if op.as_owner else self._other(o.account)
            return records.cancel(o.symbol, acct, order_id=t.ids[k],
                                 session=self._session(acct, op.session), ref=ref)
        if isinstance(op, g.CancelCid):
            return records.cancel(op.symbol, op.account, client_order_id=op.client_order_id,
                                 session=self._session(op.account, op.session), ref=ref)
        if isinstance(op, g.Modify):
            k, o = self._order(op.back, op.live)
            if k is None:
                acct = m.accounts[op.back % len(m.accounts)]
                return records.modify(0, acct, NEVER + op.back, m.mids[0], 1,
                                     session=self._session(acct, op.session), ref=ref)
            s = m.config.symbols[o.symbol]
            p, q = o.price, o.leaves
            step = max(1, abs(op.delta))
            p, q = {"down": (p, max(1, q - step)), "same": (p, q), "up": (p, q + step),
                    "reprice": (p + (op.delta or 1), q), "bad_qty": (p, -(step % 2)),
                    "bad_price": (s.max_tick + step, q)}[op.how]
            return records.modify(o.symbol, o.account, t.ids[k], p, q,
                                 session=self._session(o.account, op.session), ref=ref)
        if isinstance(op, g.CancelAll):
            return records.cancel_all(op.account, op.symbol,
                                     session=self._session(op.account, op.session), ref=ref,
                                     disconnect=op.disconnect)
        if isinstance(op, g.Deposit):
            return records.deposit(op.account, op.asset, op.amount, ref=ref)
        if isinstance(op, g.Withdraw):
            return records.withdraw(op.account, op.asset, op.amount, ref=ref)
        if isinstance(op, g.QueryOrders):
            return records.query_orders(op.account, session=self._session(op.account, 0), ref=ref)
        if isinstance(op, g.QueryBook):
            return records.query_book(op.symbol, session=7, ref=ref)
        if isinstance(op, g.QueryBalances):
            return records.query_balances(op.account, session=self._session(op.account, 0),
                                         ref=ref)
        raise TypeError(f"unknown op {op!r}")

    @staticmethod
    def _session(account: int, which: int) -> int:
        return (which << 24) | (account + 1)

    def _other(self, account: int) -> int:
        accts = self.m.accounts
        return accts[(accts.index(account) + 1) % len(accts)]

    # ------------------------------------------------------------------ running
    def run(self, ops, fund: bool = True) -> None:
        if self.wallets and fund:
            ops = self.m.funding() + list(ops)
        for op in ops:
            self.step(op)

    def step(self, op) -> None:
        self.step_no += 1
        rows = {}
        cmds = [self._command(op, t) for t in self.tracks]    # resolve before any runs
        for t, cmd in zip(self.tracks, cmds):
            t.sent.append(cmd)
            rows[t.name] = t.absorb(t.svc.submit(cmd))
        self._remember_acks()
        self._totals(op, rows[self.ref.name])
        base = rows[self.ref.name]
        for t in self.tracks:
            if rows[t.name] != base:
                self._mismatch(op, "events", rows)
        self._compare_state(op)
        if self.check:
            for t in self.tracks:
                try:
                    check_all(t.svc, self.m.config, self.accounts, t.ledger, self.totals,
                              self.wallets)
                except AssertionError as exc:
                    raise AssertionError(f"step {self.step_no} {op!r}: invariant broken on "
                                         f"{t.name}: {exc}") from None

    def _remember_acks(self):
        for rid in self.ref.ids[len(self._acks):]:
            self._acks[rid] = self.ref.svc.last_ack(rid)

    def _totals(self, op, rows):
        if isinstance(op, (g.Deposit, g.Withdraw)) and rows and rows[0][10] == E.BALANCE:
            sign = 1 if isinstance(op, g.Deposit) else -1
            self.totals[op.asset] = self.totals.get(op.asset, 0) + sign * op.amount

    def snapshot(self, t: Track) -> dict:
        svc, cfg = t.svc, self.m.config
        snap = {}
        for s in cfg.symbols:
            for side in (Side.BUY, Side.SELL):
                snap[(s.name, side)] = [tuple(map(int, lv)) for lv in svc.levels(s.id, side)]
            snap[(s.name, "bbo")] = (svc.best_bid(s.id), svc.best_ask(s.id))
        for a in self.accounts:
            snap[("orders", a)] = sorted(   # list order is QUERY_ORDERS' job, compared there
                (self.ref_pos(t, int(o["order_id"])), int(o["symbol"]), int(o["side"]),
                 int(o["price"]), int(o["leaves"]), int(o["client_order_id"]))
                for o in svc.open_orders(a))
        if self.wallets:
            for a in (0, *self.accounts):
                for asset in cfg.assets:
                    snap[("balance", a, asset.name)] = tuple(map(int, svc.balance(a, asset.name)))
        return snap

    @staticmethod
    def ref_pos(t: Track, oid: int) -> int:
        return t.pos.get(oid, -1)

    def _compare_state(self, op):
        base = self.snapshot(self.ref)
        for t in self.tracks:
            if t is self.ref:
                continue
            snap = self.snapshot(t)
            diffs = [f"  {k}: {self.ref.name}={base[k]} {t.name}={snap.get(k)}"
                     for k in base if base[k] != snap.get(k)]
            if diffs:
                raise AssertionError(f"step {self.step_no} {op!r}: state differs\n"
                                     + "\n".join(diffs[:20]))

    def _mismatch(self, op, what, rows):
        lines = [f"step {self.step_no} {op!r}: {what} differ"]
        for t in self.tracks:
            lines.append(f" {t.name} got command {t.sent[-1][0]}")
            lines += [f"   {describe(r)}" for r in rows[t.name]]
        raise AssertionError("\n".join(lines))

    def history(self) -> str:
        """Every op so far as concrete commands for the reference (for repro reports)."""
        return "\n".join(str(c[0]) for c in self.ref.sent)
