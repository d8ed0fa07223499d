"""Replay real NASDAQ data (LOBSTER sample, AAPL 2012-06-21, first 999 events; see
tests/data/lobster/SOURCE.md) through the engine, wallets off, and check the visible book
against LOBSTER's 10-level orderbook file after every message.

Units: LOBSTER prices are dollars x 10000, so with tick 0.0001 USD a price in ticks *is*
the raw integer; lot = 1 share, so quantities are shares.

Accounts: 1 holds synthetic orders (volume LOBSTER shows but never submitted in the file),
2 holds the file's own orders (type 1), 3 sends the IOC orders that reproduce executions.

Messages:
- type 1 (submit): GTC limit from account 2; it must ACK and not trade (no LOBSTER
  submission is marketable).
- type 2 (partial cancel): MODIFY down to leaves - size, same price (keeps priority).
- type 3 (delete): CANCEL; the engine must cancel exactly the message's size.
- type 4 (visible execution of a resting order): an opposite-side IOC limit at that price
  for that size from account 3. It must fill exactly that order, in full size, which
  proves that order is at the head of its price-time queue in the engine too.
- type 5 (hidden execution) and 7 (halt): skipped; they change nothing visible.

Orders that rested before the file starts, and unseen deep levels:
- Seeding: the first orderbook row shows the book *after* message 1. Undo message 1's
  contribution, then rest one synthetic order (account 1) per visible level with that
  level's size. These sit ahead of every file order at their price, as the real
  pre-09:30 orders did.
- A type 2/3/4 message for an order id the file never submitted (9 of them; SOURCE.md)
  acts on the synthetic orders at its price, oldest first: an execution is still sent as
  an IOC when a synthetic order heads that level (and must fill it), otherwise the
  synthetic orders are reduced with MODIFY down / CANCEL. Counted in ``stats``.
- LOBSTER omits messages deeper than level 10, so a level can enter the window (318
  transitions) with volume the engine never saw, or with less than the engine holds.
  Only at such prices -- outside the *previous* row's 10-level window -- does the replay
  adjust the engine to the snapshot before comparing: it tops up with a synthetic order
  at the tail of the level, or trims -- synthetic orders first (newest first), then file
  orders whose delete/execution happened while they sat deep (LOBSTER drops those
  messages; here 2 orders, 1265 shares trimmed in all). Every adjustment is counted and
  the counts are pinned, so a change in how many adjustments are needed fails too.
- Every other price -- anything within the previous row's window -- is never adjusted:
  after each message every engine level inside the current row's price range (bid10..bid1,
  ask1..ask10) must equal the row exactly (same prices, same sizes, no extra level).
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from ringex.config import Config
from ringex import records
from ringex.records import EventKind as E, Side, TimeInForce
from tests.util.reference import ReferenceExchange

DATA = Path(__file__).resolve().parents[1] / "data" / "lobster"
STEM = "AAPL_2012-06-21_34200000_57600000"
SYN, FILE, TAKER = 1, 2, 3
SYM = 0

CONFIG = Config.build(
    {"USD": 4, "AAPL": 0},
    {"AAPL-USD": {"base": "AAPL", "quote": "USD", "tick": "0.0001", "lot": "1",
                  "min_price": "570", "max_price": "600"}},
    max_orders=1 << 14, max_accounts=8, max_level_pages=1024)


def load():
    with open(DATA / f"{STEM}_message_10.csv", newline="") as f:
        msgs = [(int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in csv.reader(f)]
    with open(DATA / f"{STEM}_orderbook_10.csv", newline="") as f:
        rows = [list(map(int, r)) for r in csv.reader(f)]
    assert len(msgs) == len(rows) == 999
    return msgs, rows


def window(row):
    """({price: size} per side, (lowest bid, highest ask)) of one orderbook row."""
    asks = {row[4 * k]: row[4 * k + 1] for k in range(10) if row[4 * k + 1] > 0}
    bids = {row[4 * k + 2]: row[4 * k + 3] for k in range(10) if row[4 * k + 3] > 0}
    return {Side.BUY: bids, Side.SELL: asks}, (min(bids), max(asks))


def in_range(side, price, bounds) -> bool:
    return price >= bounds[0] if side == Side.BUY else price <= bounds[1]


class LobsterReplay:
    def __init__(self, svc):
        self.svc = svc
        self.ids: dict[int, int] = {}             # LOBSTER order id -> engine order id
        self.synthetic: dict[tuple, list] = {}    # (side, price) -> [engine ids], oldest first
        self.leaves: dict[int, int] = {}          # engine id -> open lots (ours)
        self.stats = Counter()

    # ---------------------------------------------------------------- engine calls
    def _submit(self, cmd):
        return self.svc.submit(cmd)

    def _rest(self, account, side, price, qty) -> int:
        ev = self._submit(records.new_order(SYM, account, side, price, qty))
        assert [int(e["kind"]) for e in ev] == [E.ACK], f"resting {qty}@{price} traded: {ev}"
        oid = int(ev[0]["order_id"])
        self.leaves[oid] = qty
        return oid

    def _reduce(self, account, oid, price, by) -> None:
        left = self.leaves[oid] - by
        if left == 0:
            ev = self._submit(records.cancel(SYM, account, order_id=oid))
            assert int(ev[0]["kind"]) == E.CANCELLED and int(ev[0]["qty"]) == by, ev
            del self.leaves[oid]
        else:
            ev = self._submit(records.modify(SYM, account, oid, price, left))
            assert [int(e["kind"]) for e in ev] == [E.MODIFIED], ev
            self.leaves[oid] = left

    def _execute(self, side, price, size, maker_id) -> None:
        """Opposite IOC at price for size: it must fill maker_id, all of size."""
        ev = self._submit(records.new_order(SYM, TAKER, 1 - side, price, size,
                                           tif=TimeInForce.IOC))
        fills = [(int(e["order_id"]), int(e["qty"])) for e in ev
                 if e["kind"] == E.FILL and e["info"] & records.INFO_MAKER]
        assert fills == [(maker_id, size)], \
            f"execution of {size}@{price} should fill order {maker_id}; maker fills {fills}"
        self.leaves[maker_id] -= size
        if self.leaves[maker_id] == 0:
            del self.leaves[maker_id]

    # ---------------------------------------------------------------- synthetic volume
    def _add_synthetic(self, side, price, qty) -> None:
        self.synthetic.setdefault((side, price), []).append(self._rest(SYN, side, price, qty))

    def _take_synthetic(self, side, price, qty, newest_first=False, execute=False) -> None:
        ids = self.synthetic.get((side, price), [])
        assert sum(self.leaves[i] for i in ids) >= qty, \
            f"{qty} lots at {price} side {side} to remove but only synthetic " \
            f"{[self.leaves[i] for i in ids]} there"
        while qty:
            oid = ids[-1] if newest_first else ids[0]
            by = min(qty, self.leaves[oid])
            if execute and self._head(side, price) == oid:
                self._execute(side, price, by, oid)
                self.stats["synthetic executed by IOC"] += 1
            else:
                self._reduce(SYN, oid, price, by)
            if oid not in self.leaves:
                ids.remove(oid)
            qty -= by

    def _trim(self, side, price, qty) -> None:
        """Remove qty lots the snapshot no longer shows at a level that was deep: synthetic
        orders first (newest first), then file orders whose delete or execution LOBSTER
        left out while they sat below level 10 -- one with exactly the missing size if
        there is one, else the newest."""
        syn = sum(self.leaves[i] for i in self.synthetic.get((side, price), []))
        if syn:
            self._take_synthetic(side, price, min(syn, qty), newest_first=True)
            qty -= min(syn, qty)
        while qty:
            mine = [(lid, oid) for lid, oid in self.ids.items() if oid in self.leaves
                    and (o := self._order(oid)) and o["price"] == price and o["side"] == side]
            assert mine, f"{qty} lots at {price} side {side} to remove, no order left there"
            exact = [(lid, oid) for lid, oid in mine if self.leaves[oid] == qty]
            lid, oid = exact[0] if exact else max(mine, key=lambda t: t[1])
            by = min(qty, self.leaves[oid])
            self._reduce(FILE, oid, price, by)
            self.stats["file orders changed unseen while deep"] += 1
            qty -= by

    def _order(self, oid):
        return next((o for o in self.svc.open_orders(FILE) if o["order_id"] == oid), None)

    def _head(self, side, price) -> int:
        """Engine id of the order heading a level. The replay never reprices or increases
        an order, so queue order is ACK order, and engine ids increase with ACK order."""
        ids = [o["order_id"] for a in (SYN, FILE) for o in self.svc.open_orders(a)
               if o["price"] == price and o["side"] == side]
        return min(ids, default=-1)

    # ---------------------------------------------------------------- replay
    def seed(self, first_row, first_msg) -> None:
        book, _ = window(first_row)
        kind, _, size, price, direction = first_msg
        side = Side.BUY if direction == 1 else Side.SELL
        undo = {1: -size, 2: size, 3: size, 4: size}.get(kind, 0)
        book[side][price] = book[side].get(price, 0) + undo
        for side in (Side.BUY, Side.SELL):
            for price, qty in sorted(book[side].items()):
                if qty > 0:
                    self._add_synthetic(side, price, qty)
                    self.stats["seeded orders"] += 1

    def apply(self, msg) -> None:
        kind, lid, size, price, direction = msg
        side = Side.BUY if direction == 1 else Side.SELL
        known = lid in self.ids
        if kind == 1:
            assert not known, f"order {lid} submitted twice"
            self.ids[lid] = self._rest(FILE, side, price, size)
        elif kind in (2, 3, 4) and known:
            oid = self.ids[lid]
            if kind == 4:
                self._execute(side, price, size, oid)
            else:
                if kind == 3:
                    assert self.leaves[oid] == size, \
                        f"delete of {lid}: {size} lots, engine holds {self.leaves[oid]}"
                self._reduce(FILE, oid, price, size)
        elif kind in (2, 3, 4):
            self.stats[f"type {kind} on pre-existing order"] += 1
            self._take_synthetic(side, price, size, execute=(kind == 4))
        else:
            self.stats[f"type {kind} skipped"] += 1

    def reconcile(self, row, prev_bounds) -> None:
        """Adjust only prices outside the previous row's window (see module doc)."""
        book, bounds = window(row)
        for side in (Side.BUY, Side.SELL):
            engine = {p: q for p, q, _ in self.svc.levels(SYM, side)}
            for price in set(engine) | set(book[side]):
                if not in_range(side, price, bounds) or in_range(side, price, prev_bounds):
                    continue
                have, want = engine.get(price, 0), book[side].get(price, 0)
                if want > have:
                    self._add_synthetic(side, price, want - have)
                    self.stats["deep level topped up"] += 1
                    self.stats["shares topped up"] += want - have
                elif have > want:
                    self._trim(side, price, have - want)
                    self.stats["deep level trimmed"] += 1
                    self.stats["shares trimmed"] += have - want

    def compare(self, row, i) -> None:
        book, bounds = window(row)
        for side in (Side.BUY, Side.SELL):
            engine = {p: q for p, q, _ in self.svc.levels(SYM, side) if in_range(side, p, bounds)}
            assert engine == book[side], (
                f"after message {i + 1}: side {side.name} engine {sorted(engine.items())} "
                f"!= LOBSTER {sorted(book[side].items())}")
            self.stats["levels compared"] += len(engine)
        bid, ask = self.svc.best_bid(SYM), self.svc.best_ask(SYM)
        assert (bid, ask) == (max(book[Side.BUY]), min(book[Side.SELL])), (i, bid, ask)

    def run(self, msgs, rows) -> Counter:
        self.seed(rows[0], msgs[0])
        prev_bounds = window(rows[0])[1]     # the seed matches row 1 everywhere
        for i, (msg, row) in enumerate(zip(msgs, rows)):
            self.apply(msg)
            self.reconcile(row, prev_bounds)
            self.compare(row, i)
            prev_bounds = window(row)[1]
        return self.stats


def core():
    from ringex.core.order_service import OrderService
    return OrderService(CONFIG, wallets=False)


@pytest.mark.parametrize("engine", [lambda: ReferenceExchange(CONFIG, wallets=False), core],
                         ids=["reference", "core"])
def test_lobster_book_matches_every_snapshot(engine):
    msgs, rows = load()
    stats = LobsterReplay(engine()).run(msgs, rows)
    # 938 type 1-4 messages all applied; the 61 hidden executions skipped
    assert stats["type 5 skipped"] == 61
    assert sum(v for k, v in stats.items() if k.startswith("type") and "pre-existing" in k) == 9
    assert stats["levels compared"] == 999 * 20
    assert stats["synthetic executed by IOC"] == 4          # all 4 pre-file executions
    adjustments = {k: stats[k] for k in ("deep level topped up", "shares topped up",
                                         "deep level trimmed", "shares trimmed",
                                         "file orders changed unseen while deep")}
    assert adjustments == {"deep level topped up": 11, "shares topped up": 5321,
                           "deep level trimmed": 3, "shares trimmed": 1265,
                           "file orders changed unseen while deep": 2}, adjustments


def test_lobster_replay_catches_a_wrong_queue_order():
    """The replay is not vacuous: an engine that fills a level newest-first fails it."""
    class Lifo(ReferenceExchange):
        def _rest(self, o):
            super()._rest(o)
            q = self.books[o.symbol][o.side][o.price]
            q.rotate(1)                                  # the newest order jumps the queue

    msgs, rows = load()
    with pytest.raises(AssertionError, match="should fill order"):
        LobsterReplay(Lifo(CONFIG, wallets=False)).run(msgs, rows)
