"""A seeded, realistic COMMAND workload for matcher benchmarks (numpy, vectorised per batch).

    wl = Workload(config, seed=1, wallets=True)
    svc.submit(wl.funding())                 # deposits up front (wallets-on runs)
    events = None
    for _ in range(n):
        cmds = wl.next_batch(1024)           # uses the ids it learnt from earlier events
        events = svc.submit(cmds)
        wl.observe(events)                   # ACKs give order ids; fills/cancels retire them

What it looks like (per command, defaults in ``Mix``):
- a random-walk mid price per symbol; resting GTC orders sit 1 + geometric ticks from
  the mid, so depth thins away from the touch;
- most resting orders are cancelled (by order_id or by client_order_id) or modified
  (a size decrease in place, or a one-tick reprice) before they trade;
- a share of IOC limit orders priced through the touch, and a few market orders;
- many accounts; client_order_ids are unique per order, so no duplicates are rejected.

Order ids come from the engine, so a batch can only cancel/modify orders whose ACK was
in an earlier batch's events; the generator keeps the live ones in sorted arrays (engine
ids increase with ACK order) and retires them on FILL leaves 0 / CANCELLED. Same seed and
same events in, same commands out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ringex.config import Config
from ringex import records
from ringex.records import CommandKind as K, EventKind as E, OrderType, TimeInForce

GTC, IOC, MARKET, CANCEL_ID, CANCEL_CID, MODIFY = range(6)


@dataclass(frozen=True)
class Mix:
    """Share of each command kind (normalised), and the shape of prices and sizes."""
    gtc: float = 0.46
    ioc: float = 0.08
    market: float = 0.015
    cancel_id: float = 0.19
    cancel_cid: float = 0.145
    modify: float = 0.11
    depth_p: float = 0.25         # resting distance from mid: 1 + geometric(depth_p) ticks
    walk_p: float = 0.002         # chance per command that the mid moves one tick
    qty_p: float = 0.3            # sizes: geometric(qty_p) lots

    def probs(self) -> np.ndarray:
        p = np.array([self.gtc, self.ioc, self.market, self.cancel_id, self.cancel_cid,
                      self.modify], dtype=np.float64)
        return p / p.sum()


class Workload:
    def __init__(self, config: Config, seed: int = 1, wallets: bool = False,
                 symbols: tuple[str, ...] = ("BTC-USD", "ETH-USD"), accounts: int = 64,
                 mids: tuple[float, ...] | None = None, mix: Mix = Mix()):
        self.config, self.wallets, self.mix = config, wallets, mix
        self.rng = np.random.default_rng(seed)
        self.syms = np.array([config.symbol(s).id for s in symbols], dtype=np.int64)
        self.n_accounts = accounts
        if mids is None:                              # the middle of a tenth of each band
            mids = [(s.min_tick + (s.max_tick - s.min_tick) // 10)
                    for s in (config.symbols[i] for i in self.syms)]
        self.mid = np.array(mids, dtype=np.int64)
        self.lo = np.array([config.symbols[i].min_tick for i in self.syms], dtype=np.int64)
        self.hi = np.array([config.symbols[i].max_tick for i in self.syms], dtype=np.int64)
        self.next_cid = 1
        self.ref = 0
        # live orders, sorted by engine id (= ACK order)
        self.ids = np.zeros(0, np.int64)
        self.cols = {k: np.zeros(0, np.int64) for k in
                     ("cid", "sym", "acct", "side", "price", "leaves")}
        self.alive = np.zeros(0, bool)
        # what each client id was sent as (to read ACKs back): cid -> (sym, acct)
        self._sent: dict[str, list[np.ndarray]] = {"cid": [], "sym": [], "acct": []}

    # ------------------------------------------------------------------ deposits
    def funding(self, amount_quote: int = 10**15, amount_base: int = 10**15) -> np.ndarray:
        """DEPOSIT commands giving every account plenty of every asset it trades."""
        if not self.wallets:
            return records.commands(0)
        quotes = {self.config.symbols[s].quote.id for s in self.syms}
        bases = {self.config.symbols[s].base.id for s in self.syms}
        recs = [records.deposit(a, asset, amount_quote if asset in quotes else amount_base)
                for a in range(1, self.n_accounts + 1) for asset in sorted(quotes | bases)]
        return records.batch(*recs)

    # ------------------------------------------------------------------ batches
    def next_batch(self, n: int = 1024) -> np.ndarray:
        rng, m = self.rng, self.mix
        kind = rng.choice(6, size=n, p=m.probs())
        live = np.flatnonzero(self.alive)
        # cancels/modifies need a known live order; fall back to a new GTC without one
        targets = (kind == CANCEL_ID) | (kind == CANCEL_CID) | (kind == MODIFY)
        if live.size == 0:
            kind[targets] = GTC
            targets[:] = False
        elif targets.sum() > live.size:
            extra = np.flatnonzero(targets)[live.size:]
            kind[extra], targets[extra] = GTC, False
        cmds = records.commands(n)
        cmds["ref"] = np.arange(self.ref + 1, self.ref + n + 1)
        self.ref += n
        # per-command symbol and mid (random walk inside the batch)
        si = rng.integers(0, self.syms.size, size=n)
        steps = rng.choice(np.array([-1, 0, 1]), size=(n, self.syms.size),
                           p=[m.walk_p / 2, 1 - m.walk_p, m.walk_p / 2])
        mids = self.mid + np.cumsum(steps, axis=0)
        self.mid = np.clip(mids[-1], self.lo + 64, self.hi - 64)
        mid = mids[np.arange(n), si]
        self._orders(cmds, kind, si, mid)
        if targets.any():
            self._amends(cmds, kind, targets, live)
        return cmds

    def _orders(self, cmds, kind, si, mid):
        rng, m = self.rng, self.mix
        new = (kind == GTC) | (kind == IOC) | (kind == MARKET)
        k = int(new.sum())
        side = rng.integers(0, 2, size=k)
        sign = np.where(side == 0, -1, 1)               # buys below the mid, sells above
        dist = rng.geometric(m.depth_p, size=k)         # 1, 2, 3 ... thinning out
        kk = kind[new]
        dist = np.where(kk == GTC, dist, -2)            # IOC: two ticks through the mid
        qty = rng.geometric(m.qty_p, size=k)
        cid = np.arange(self.next_cid, self.next_cid + k)
        self.next_cid += k
        acct = rng.integers(1, self.n_accounts + 1, size=k)
        sym = self.syms[si[new]]
        c = cmds[new]
        c["kind"] = K.NEW
        c["symbol"] = sym
        c["account"] = acct
        c["session"] = acct
        c["side"] = side
        c["price"] = np.where(kk == MARKET, 0, mid[new] + sign * dist)
        c["qty"] = qty
        c["order_type"] = np.where(kk == MARKET, OrderType.MARKET, OrderType.LIMIT)
        c["tif"] = np.where(kk == GTC, TimeInForce.GTC, TimeInForce.IOC)
        c["client_order_id"] = cid
        cmds[new] = c
        self._sent["cid"].append(cid)
        self._sent["sym"].append(sym)
        self._sent["acct"].append(acct)

    def _amends(self, cmds, kind, targets, live):
        rng = self.rng
        pos = np.flatnonzero(targets)
        pick = live[rng.choice(live.size, size=pos.size, replace=False)]
        col = {k: v[pick] for k, v in self.cols.items()}
        c = cmds[pos]
        kk = kind[pos]
        c["symbol"], c["account"], c["session"] = col["sym"], col["acct"], col["acct"]
        c["kind"] = np.where(kk == MODIFY, K.MODIFY, K.CANCEL)
        c["order_id"] = np.where(kk == CANCEL_CID, 0, self.ids[pick])
        c["client_order_id"] = np.where(kk == CANCEL_CID, col["cid"], 0)
        # modify: half shrink in place (keeps priority), half move one tick away from mid
        shrink = (rng.random(pos.size) < 0.5) & (col["leaves"] > 1)
        away = np.where(col["side"] == 0, -1, 1)
        c["price"] = np.where(kk == MODIFY, np.where(shrink, col["price"], col["price"] + away), 0)
        c["qty"] = np.where(kk == MODIFY, np.where(shrink, col["leaves"] - 1, col["leaves"]), 0)
        cmds[pos] = c
        self.alive[pick[kk != MODIFY]] = False          # a cancel retires it either way

    # ------------------------------------------------------------------ feedback
    def observe(self, events: np.ndarray) -> None:
        """Learn ids from ACKs, follow leaves, retire filled and cancelled orders."""
        kind = events["kind"]
        acks = events[kind == E.ACK]
        if acks.size:
            sent = {k: np.concatenate(v) for k, v in self._sent.items()}
            self._sent = {k: [v] for k, v in sent.items()}
            idx = np.searchsorted(sent["cid"], acks["other_id"])   # cids increase
            n0 = self.ids.size
            self.ids = np.concatenate([self.ids, acks["order_id"].astype(np.int64)])
            add = {"cid": acks["other_id"], "sym": sent["sym"][idx], "acct": sent["acct"][idx],
                   "side": (acks["info"] & records.INFO_SELL) != 0, "price": acks["price"],
                   "leaves": acks["leaves"]}
            for k, v in add.items():
                self.cols[k] = np.concatenate([self.cols[k], np.asarray(v, np.int64)])
            self.alive = np.concatenate([self.alive, np.ones(acks.size, bool)])
            assert n0 == 0 or self.ids[n0] > self.ids[n0 - 1], "engine ids must increase"
            self._forget_sent(acks["other_id"].max())
        upd = events[(kind == E.FILL) | (kind == E.MODIFIED) | (kind == E.CANCELLED)]
        if upd.size:
            where = np.searchsorted(self.ids, upd["order_id"])
            ok = (where < self.ids.size)
            ok[ok] &= self.ids[where[ok]] == upd["order_id"][ok]
            where, upd = where[ok], upd[ok]
            # last event per order wins: walk them in reverse and keep the first seen
            rev = where[::-1]
            _, first = np.unique(rev, return_index=True)
            last = upd[::-1][first]
            at = rev[first]
            dead = (last["kind"] == E.CANCELLED) | (last["leaves"] == 0)
            self.alive[at[dead]] = False
            keep = ~dead
            self.cols["leaves"][at[keep]] = last["leaves"][keep]
            mod = keep & (last["kind"] == E.MODIFIED)
            self.cols["price"][at[mod]] = last["price"][mod]
        if self.alive.size > 4096 and self.alive.sum() * 2 < self.alive.size:
            self._compact()

    def _forget_sent(self, upto: int) -> None:
        cid = self._sent["cid"][0]
        keep = cid > upto
        self._sent = {k: [v[0][keep]] for k, v in self._sent.items()}

    def _compact(self) -> None:
        a = self.alive
        self.ids = self.ids[a]
        self.cols = {k: v[a] for k, v in self.cols.items()}
        self.alive = np.ones(self.ids.size, bool)

    def live_orders(self) -> int:
        return int(self.alive.sum())
