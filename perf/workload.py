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

Scenarios (``SCENARIOS``, perf/scenarios.py) switch on the other fields of ``Mix``: a mid
that swings with the command counter (``swing``), flash crashes with IOC sweeps through
hundreds of levels (``flash_every``), cancels/modifies aimed at orders already gone
(``stale``). Their defaults switch each off, so ``Mix()`` is the workload above.

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
from ringex.core.markets import new_markets
from ringex.records import (
    CommandKind as K, EventKind as E, OrderType, SelfTradePrevention, TimeInForce,
)

GTC, IOC, MARKET, CANCEL_ID, CANCEL_CID, MODIFY = range(6)
SWEEP = 6                         # a flash-crash IOC sweep (placed, never drawn)
COLS = ("cid", "sym", "acct", "side", "price", "leaves")


@dataclass(frozen=True)
class Mix:
    """Share of each command kind (normalised), the shape of prices and sizes, and the
    scenario knobs (each off by default)."""
    gtc: float = 0.46
    ioc: float = 0.08
    market: float = 0.015
    cancel_id: float = 0.19
    cancel_cid: float = 0.145
    modify: float = 0.11
    depth_p: float = 0.25         # resting distance from mid: 1 + geometric(depth_p) ticks
    walk_p: float = 0.002         # chance per command that the mid moves one tick
    qty_p: float = 0.3            # sizes: geometric(qty_p) lots
    # mid += swing x starting mid x sin(2 pi t / swing_period), t = commands generated so far
    swing: float = 0.0
    swing_period: int = 250_000
    # every flash_every commands the mid drops by flash_drop x starting mid (t >= flash_every
    # and t % flash_every < flash_every / 2), and comes back half-way through; at each drop
    # (rise) flash_sweeps IOC sells (buys) per symbol at the new mid take the bids (asks)
    # beyond it: all but the last split the depth known there, the last is flash_qty lots
    flash_every: int = 0
    flash_drop: float = 0.15
    flash_sweeps: int = 3
    flash_qty: int = 10**7
    # share of cancels/modifies aimed at orders already gone (filled or cancelled), drawn
    # from the retired rows and the last stale_pool rows compaction dropped
    stale: float = 0.0
    stale_pool: int = 1 << 16

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
            mids = tuple(s.min_tick + (s.max_tick - s.min_tick) // 10
                         for s in (config.symbols[i] for i in self.syms))
        self.mid = np.array(mids, dtype=np.int64)     # the random walk
        self.mid0 = self.mid.copy()                   # where it started
        self.last_mid = self.mid.copy()               # walk + swing + crash, last command
        self.lo = np.array([config.symbols[i].min_tick for i in self.syms], dtype=np.int64)
        self.hi = np.array([config.symbols[i].max_tick for i in self.syms], dtype=np.int64)
        self.max_qty = new_markets(config).max_qty[self.syms]
        self.sym_index = np.full(int(self.syms.max()) + 1, -1, np.int64)
        self.sym_index[self.syms] = np.arange(self.syms.size)
        if mix.flash_every and mix.flash_every // 2 < 2 * mix.flash_sweeps * self.syms.size:
            raise ValueError("flash_every too short for its sweeps")
        self.t = 0                                    # commands generated so far
        self.next_cid = 1
        self.ref = 0
        # live orders, sorted by engine id (= ACK order)
        self.ids = np.zeros(0, np.int64)
        self.cols = {k: np.zeros(0, np.int64) for k in COLS}
        self.alive = np.zeros(0, bool)
        # orders compaction dropped, kept as targets for stale commands ("id" + COLS)
        self.gone = {k: np.zeros(0, np.int64) for k in ("id", *COLS)}
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
        cmds = records.commands(n)
        cmds["ref"] = np.arange(self.ref + 1, self.ref + n + 1)
        self.ref += n
        # per-command symbol and mid (random walk inside the batch, then swing and crash)
        si = rng.integers(0, self.syms.size, size=n)
        steps = rng.choice(np.array([-1, 0, 1]), size=(n, self.syms.size),
                           p=[m.walk_p / 2, 1 - m.walk_p, m.walk_p / 2])
        mids = self.mid + np.cumsum(steps, axis=0)
        self.mid = np.clip(mids[-1], self.lo + 64, self.hi - 64)
        t = self.t + np.arange(n)
        self.t += n
        live = self.alive
        plan = None
        if m.swing or m.flash_every:
            mids = np.clip(mids + self._offset(t), self.lo + 64, self.hi - 64)
            if m.flash_every:
                plan = self._sweeps(t, mids)
                kind[plan[0]], si[plan[0]] = SWEEP, plan[1]
            live = self.alive & ~self._through(mids)  # likely to trade in this batch
        self.last_mid = mids[-1].copy()
        live = np.flatnonzero(live)
        # cancels/modifies need a known live order; fall back to a new GTC without one
        targets = (kind == CANCEL_ID) | (kind == CANCEL_CID) | (kind == MODIFY)
        stale = np.zeros(n, bool)
        if m.stale and (self.gone["id"].size or not self.alive.all()):
            stale = targets & (rng.random(n) < m.stale)
        fresh = targets & ~stale
        if live.size == 0:
            kind[fresh] = GTC
            fresh[:] = False
        elif fresh.sum() > live.size:
            extra = np.flatnonzero(fresh)[live.size:]
            kind[extra], fresh[extra] = GTC, False
        targets = fresh | stale
        self._orders(cmds, kind, si, mids[np.arange(n), si], plan)
        if targets.any():
            self._amends(cmds, kind, targets, stale[targets], live)
        return cmds

    def _offset(self, t: np.ndarray) -> np.ndarray:
        """Ticks added to each symbol's walk at commands t: the swing and the crash."""
        m = self.mix
        off = np.zeros((t.size, self.syms.size), np.int64)
        if m.swing:
            wave = np.sin(2 * np.pi * t / m.swing_period)
            off += np.rint(m.swing * wave[:, None] * self.mid0).astype(np.int64)
        if m.flash_every:
            down = (t >= m.flash_every) & (t % m.flash_every < m.flash_every // 2)
            off -= down[:, None] * np.rint(m.flash_drop * self.mid0).astype(np.int64)
        return off

    def _through(self, mids: np.ndarray) -> np.ndarray:
        """Known orders the batch's mid passes (2 ticks' margin: IOCs cross that far)."""
        s = self.sym_index[self.cols["sym"]]
        px = self.cols["price"]
        return np.where(self.cols["side"] == 0, px >= mids.min(axis=0)[s] - 2,
                        px <= mids.max(axis=0)[s] + 2)

    def _sweeps(self, t: np.ndarray, mids: np.ndarray):
        """(positions, symbol index, side, price, qty) of this batch's crash/recovery sweeps;
        the known orders they will take are retired now (no cancel or modify aims at
        them)."""
        m, n, ns = self.mix, t.size, self.syms.size
        half, k = m.flash_every // 2, m.flash_sweeps
        if n < k * ns:
            raise ValueError(f"a batch of {n} cannot hold the {k * ns} sweeps of a crash")
        first = -(-max(int(t[0]), m.flash_every) // half) * half
        pos: list[int] = []
        sym: list[int] = []
        side: list[int] = []
        price: list[int] = []
        qty: list[int] = []
        for te in range(first, int(t[-1]) + 1, half):     # crash, recovery, crash ...
            sell = te % m.flash_every == 0
            j = te - int(t[0])
            at = max(0, min(j, n - k * ns))               # keep the whole block in the batch
            for s in range(ns):
                px = int(np.clip(mids[j, s], self.lo[s], self.hi[s]))
                c = self.cols
                hit = self.alive & (c["sym"] == self.syms[s]) & (c["side"] == int(not sell))
                hit &= (c["price"] >= px) if sell else (c["price"] <= px)
                depth = int(c["leaves"][hit].sum())
                self.alive[hit] = False
                cap = int(self.max_qty[s])
                q = [min(max(1, -(-depth // k)), cap)] * (k - 1) + [min(m.flash_qty, cap)]
                pos += range(at + s * k, at + (s + 1) * k)
                sym += [s] * k
                side += [int(sell)] * k
                price += [px] * k
                qty += q
        return tuple(np.array(v, np.int64) for v in (pos, sym, side, price, qty))

    def _orders(self, cmds, kind, si, mid, plan):
        rng, m = self.rng, self.mix
        new = (kind == GTC) | (kind == IOC) | (kind == MARKET) | (kind == SWEEP)
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
        price = np.clip(mid[new] + sign * dist, self.lo[si[new]], self.hi[si[new]])
        c = cmds[new]
        c["kind"] = K.NEW
        c["symbol"] = sym
        c["account"] = acct
        c["session"] = acct
        c["side"] = side
        c["price"] = np.where(kk == MARKET, 0, price)
        c["qty"] = qty
        c["order_type"] = np.where(kk == MARKET, OrderType.MARKET, OrderType.LIMIT)
        c["tif"] = np.where(kk == GTC, TimeInForce.GTC, TimeInForce.IOC)
        c["client_order_id"] = cid
        if plan is not None:                            # sweeps: side, price and size
            at = np.searchsorted(np.flatnonzero(new), plan[0])
            c["side"][at], c["price"][at], c["qty"][at] = plan[2], plan[3], plan[4]
            c["stp"][at] = SelfTradePrevention.CANCEL_MAKER  # own bids do not stop it
        cmds[new] = c
        self._sent["cid"].append(cid)
        self._sent["sym"].append(sym)
        self._sent["acct"].append(acct)

    def _amends(self, cmds, kind, targets, stale, live):
        rng = self.rng
        pos = np.flatnonzero(targets)
        pick = live[rng.choice(live.size, size=int((~stale).sum()), replace=False)] \
            if live.size else np.zeros(0, np.int64)
        ids, col = self.ids[pick], {k: v[pick] for k, v in self.cols.items()}
        if stale.any():                                 # gone orders (with replacement)
            gone_ids, gone = self._retired()
            r = rng.integers(0, gone_ids.size, size=int(stale.sum()))
            ids = _merge(stale, ids, gone_ids[r])
            col = {k: _merge(stale, v, gone[k][r]) for k, v in col.items()}
        c = cmds[pos]
        kk = kind[pos]
        c["symbol"], c["account"], c["session"] = col["sym"], col["acct"], col["acct"]
        c["kind"] = np.where(kk == MODIFY, K.MODIFY, K.CANCEL)
        c["order_id"] = np.where(kk == CANCEL_CID, 0, ids)
        c["client_order_id"] = np.where(kk == CANCEL_CID, col["cid"], 0)
        # modify: half shrink in place (keeps priority), half move one tick away from mid
        shrink = (rng.random(pos.size) < 0.5) & (col["leaves"] > 1)
        away = np.where(col["side"] == 0, -1, 1)
        s = self.sym_index[col["sym"]]
        px = np.clip(np.where(shrink, col["price"], col["price"] + away), self.lo[s], self.hi[s])
        c["price"] = np.where(kk == MODIFY, px, 0)      # (a gone market order's price was 0)
        c["qty"] = np.where(kk == MODIFY, np.where(shrink, col["leaves"] - 1, col["leaves"]), 0)
        cmds[pos] = c
        self.alive[pick[kk[~stale] != MODIFY]] = False  # a cancel retires it either way

    def _retired(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Ids and columns of orders known to be gone: dropped rows, then dead rows."""
        dead = ~self.alive
        return (np.concatenate([self.gone["id"], self.ids[dead]]),
                {k: np.concatenate([self.gone[k], v[dead]]) for k, v in self.cols.items()})

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
        if self.mix.stale:                              # remember them for stale commands
            keep = self.mix.stale_pool
            ids, cols = self._retired()
            self.gone = {"id": ids[-keep:], **{k: v[-keep:] for k, v in cols.items()}}
        self.ids = self.ids[a]
        self.cols = {k: v[a] for k, v in self.cols.items()}
        self.alive = np.ones(self.ids.size, bool)

    def live_orders(self) -> int:
        return int(self.alive.sum())


def _merge(mask: np.ndarray, off: np.ndarray, on: np.ndarray) -> np.ndarray:
    """An array with ``on`` where mask is set and ``off`` elsewhere, in order."""
    out = np.empty(mask.size, np.int64)
    out[~mask], out[mask] = off, on
    return out
