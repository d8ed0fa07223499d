"""The order-service pipeline: one command batch in, its events out, wired in one place.

Stages per command (docs/rules.md), all inside one numba kernel, ``process``:

  1. validate      reject bad input with a RejectCode (nothing changes)
  2. risk lock     hold the funds the order could need (wallets.try_lock)
  3. match         walk the opposite book, price-time priority (matcher.match)
  4. settle        move money for every fill, trim holds (wallets.settle_fill)
  5. emit          write EVENT records with per-symbol sequences (events.emit)

``OrderService`` is the thin Python front: it owns the state arrays, turns names into
ids, and answers read-only questions about books and balances.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ringex.jit import compiled, njit
from ringex import records
from ringex.config import Config
from ringex.core.borrowed import as_borrowed
from ringex.core.amend import on_cancel, on_cancel_all, on_modify
from ringex.core.events import NO_SEQ, emit
from ringex.core.markets import new_markets
from ringex.core.matcher import on_new, reject
from ringex.core.order_book import LIVE, PAGE, best_tick, level_of, new_book
from ringex.core.queries import on_query_book, on_query_orders
from ringex.core.structs import bundle
from ringex.core.transfers import on_query_balances, on_transfer
from ringex.core.wallets import new_wallets
from ringex.errors import CommandRejected
from ringex.records import (
    CMD_CANCEL, CMD_CANCEL_ALL, CMD_CLIENT_ID, CMD_DEPOSIT, CMD_MODIFY, CMD_NEW,
    CMD_QUERY_BALANCES, CMD_QUERY_BOOK, CMD_QUERY_ORDERS, CMD_WITHDRAW, E_UNKNOWN_COMMAND,
    EV_CLIENT_ID,
)


@njit(cache=True)
def on_client_id(c, out, n, mk):
    """CLIENT_ID: echo the long client id's text (the command's first 40 bytes) in one
    event for the gateways and the writer; the engine itself only ever uses the key."""
    return emit(out, n, mk, NO_SEQ, EV_CLIENT_ID, 0, c.order_id, c.client_order_id,
                c.price, c.qty, c.ts_ns, c.account, c.session, c.ref, 0)


@njit(cache=True)
def process(bk, wl, mk, cmds, start, out, wallets):
    """Run cmds[start:] until done or out is too full for the next worst case.

    Returns (next command index, events written). A command never stops half-way:
    it starts only when ``out`` has room for everything it could emit.
    """
    n, i, cap = 0, start, out.shape[0]
    reserve = wl.avail.shape[1] + 8
    ob = as_borrowed(out)       # handed to every on_* kernel: no counting in and out
    while i < cmds.shape[0]:
        if cap - n < 2 * bk.meta[LIVE] + reserve:
            break
        c = cmds[i]
        k = c.kind
        if k == CMD_NEW:
            n = on_new(bk, wl, mk, c, ob, n, wallets)
        elif k == CMD_CANCEL:
            n = on_cancel(bk, wl, mk, c, ob, n, wallets)
        elif k == CMD_MODIFY:
            n = on_modify(bk, wl, mk, c, ob, n, wallets)
        elif k == CMD_CANCEL_ALL:
            n = on_cancel_all(bk, wl, mk, c, ob, n, wallets)
        elif k == CMD_DEPOSIT or k == CMD_WITHDRAW:
            n = on_transfer(wl, mk, c, ob, n, wallets)
        elif k == CMD_QUERY_BALANCES:
            n = on_query_balances(wl, mk, c, ob, n, wallets)
        elif k == CMD_QUERY_ORDERS:
            n = on_query_orders(bk, mk, c, ob, n)
        elif k == CMD_QUERY_BOOK:
            n = on_query_book(bk, mk, c, ob, n)
        elif k == CMD_CLIENT_ID:
            n = on_client_id(c, ob, n, mk)
        else:
            n = reject(ob, n, mk, c, E_UNKNOWN_COMMAND, NO_SEQ)
        i += 1
    return i, n


@njit(cache=True)
def process_state(s, cmds, start, out, wallets):
    """``process`` with the three state bundles in one: one argument for the entry point to
    unbox instead of three (≈ 120 ns each)."""
    return process(s.bk, s.wl, s.mk, cmds, start, out, wallets)


EVENT_SIZE = records.EVENT.itemsize
ServiceState = namedtuple("ServiceState", ["bk", "wl", "mk"])


class OrderService:
    """Matching engine state for every symbol of a Config, driven by COMMAND batches."""

    def __init__(self, config: Config, wallets: bool = True):
        self.config = config
        self.wallets_on = bool(wallets)
        self.book = new_book(config)
        self.wallets = new_wallets(config)
        self.markets = new_markets(config)
        # the kernels' handles on the same arrays (see structs.py for why)
        self._state = (bundle(self.book), bundle(self.wallets), bundle(self.markets))
        # room for the worst command (every resting order filled twice over) plus a batch
        cap = 2 * config.limits.max_orders + len(config.assets) + 8 + 4096
        self._out = records.events(cap)
        self._out_bytes = self._out.view(np.uint8)
        self._out_checked = self._out      # the last ``out`` found fit for submit_into
        # process() without the dispatcher (see submit_into)
        self._all = bundle(ServiceState(*self._state))
        self._process = compiled(process_state, self._all, records.commands(1), 0,
                                 self._out, self.wallets_on)

    # -- names to ids
    def symbol_id(self, name: str) -> int:
        return self.config.symbol(name).id

    def asset_id(self, name: str) -> int:
        return self.config.asset(name).id

    # -- commands
    def submit(self, cmds: np.ndarray) -> np.ndarray:
        """Process a COMMAND array in order; return the EVENT array it produced (a copy)."""
        done, n = self.submit_into(cmds, self._out)
        events = self._copy_out(n)
        if done >= len(cmds):
            return events
        parts = [events]
        while done < len(cmds):
            done, n = self.submit_into(cmds, self._out, done)
            parts.append(self._copy_out(n))
        return np.concatenate(parts)

    def _copy_out(self, n: int) -> np.ndarray:
        """The first n events of the output buffer, copied as bytes (copying a structured
        array costs microseconds of numpy field setup)."""
        return np.frombuffer(self._out_bytes[:n * EVENT_SIZE].copy(), records.EVENT)

    def submit_into(self, cmds: np.ndarray, out: np.ndarray, start: int = 0) -> tuple[int, int]:
        """Process ``cmds[start:]`` in order, writing their events into ``out`` from index 0,
        as far as ``out`` has room: a command starts only when ``out`` can hold the most it
        could emit (two fills per resting order, plus a balance per asset). Returns
        (commands done, events written); the caller calls again from ``done`` when
        ``done < len(cmds)``. Nothing is copied and nothing allocated: this is the engine
        loop's own ``process`` kernel, minus the dispatcher's typing of the arguments.

        ``cmds``: a C-contiguous ``records.COMMAND`` array (others are copied to one);
        ``out``: a C-contiguous, writable ``records.EVENT`` array (checked on first use;
        it must stay writable)."""
        if cmds.dtype != records.COMMAND:
            raise TypeError(f"submit() needs a records.COMMAND array, got {cmds.dtype}")
        if out is not self._out_checked:
            if out.dtype != records.EVENT or not out.flags.c_contiguous \
                    or not out.flags.writeable:
                raise TypeError("submit_into() writes into a C-contiguous, writable "
                                "records.EVENT array")
            self._out_checked = out      # held, so its identity cannot be reused
        if not cmds.flags.c_contiguous:
            cmds = np.ascontiguousarray(cmds)
        done, n = self._process(self._all, cmds, start, out, self.wallets_on)
        if done == start and start < len(cmds):
            raise ValueError(f"out holds {len(out)} events; the next command may need "
                             f"{self.worst_case_events()}")
        return done, n

    def worst_case_events(self) -> int:
        """The most events the next command could emit (the room submit_into wants)."""
        return 2 * self.live_orders() + int(self.wallets.avail.shape[1]) + 8

    def deposit(self, account: int, asset: str, amount: int) -> np.ndarray:
        """Credit minor units to an account; raises CommandRejected if refused."""
        return self._transfer(records.deposit(account, self.asset_id(asset), amount))

    def withdraw(self, account: int, asset: str, amount: int) -> np.ndarray:
        return self._transfer(records.withdraw(account, self.asset_id(asset), amount))

    def _transfer(self, cmd: np.ndarray) -> np.ndarray:
        ev = self.submit(cmd)
        if ev[0]["kind"] == records.EventKind.REJECT:
            raise CommandRejected(records.RejectCode(records.info_code(int(ev[0]["info"]))))
        return ev

    # -- read-only views
    def best_bid(self, symbol: int) -> int | None:
        t = best_tick(self._state[0], 2 * symbol)
        return None if t < 0 else int(t)

    def best_ask(self, symbol: int) -> int | None:
        t = best_tick(self._state[0], 2 * symbol + 1)
        return None if t < 0 else int(t)

    def depth_at(self, symbol: int, side: int, price: int) -> int:
        """Resting lots at one price (0 when none or outside the band)."""
        lo, hi = int(self.markets.lo[symbol]), int(self.markets.hi[symbol])
        if not lo <= price <= hi:
            return 0
        li = level_of(self._state[0], 2 * symbol + int(side), price - lo)
        return 0 if li < 0 else int(self.book.lv_qty[li])

    def levels(self, symbol: int, side: int) -> list[tuple[int, int, int]]:
        """Every occupied level as (price, lots, orders), best first."""
        bk, b, lo = self.book, 2 * symbol + int(side), int(self.markets.lo[symbol])
        out = []
        start = bk.pt_off[b]
        pages = bk.page_table[start:start + self._n_pages(symbol)]
        for pi in np.flatnonzero(pages >= 0):
            base = int(pages[pi]) * PAGE
            counts = bk.lv_count[base:base + PAGE]
            for off in np.flatnonzero(counts):
                out.append((lo + int(pi) * PAGE + int(off), int(bk.lv_qty[base + off]),
                            int(counts[off])))
        out.sort(reverse=(int(side) == 0))
        return out

    def _n_pages(self, symbol: int) -> int:
        n_ticks = int(self.markets.hi[symbol] - self.markets.lo[symbol]) + 1
        return (n_ticks + PAGE - 1) // PAGE

    def balance(self, account: int, asset: str | int) -> tuple[int, int]:
        a = self.asset_id(asset) if isinstance(asset, str) else int(asset)
        return int(self.wallets.avail[account, a]), int(self.wallets.locked[account, a])

    def open_orders(self, account: int) -> list[dict]:
        """The account's resting orders, oldest first."""
        bk, out, m = self.book, [], int(self.book.acct_head[account])
        while m >= 0:
            out.append({"order_id": int(bk.o_id[m]), "symbol": int(bk.o_symbol[m]),
                        "side": int(bk.o_side[m]), "price": int(bk.o_price[m]),
                        "leaves": int(bk.o_leaves[m]), "client_order_id": int(bk.o_coid[m])})
            m = int(bk.o_anext[m])
        return out

    # -- state for snapshots (ringex/core/snapshot.py)
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every state array by a stable name ("book.o_id", "wallets.avail", ...)."""
        out = {}
        for prefix, group in (("book", self.book), ("wallets", self.wallets),
                              ("markets", self.markets)):
            for name, arr in zip(group._fields, group):
                out[f"{prefix}.{name}"] = arr
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy saved arrays into this service's own (shapes and dtypes must match)."""
        mine = self.state_arrays()
        if set(arrays) != set(mine):
            raise ValueError(f"state arrays differ: {sorted(set(arrays) ^ set(mine))}")
        for name, arr in mine.items():
            src = arrays[name]
            if src.shape != arr.shape or src.dtype != arr.dtype:
                raise ValueError(f"{name}: saved {src.dtype}{src.shape}, "
                                 f"have {arr.dtype}{arr.shape}")
        for name, arr in mine.items():
            np.copyto(arr, arrays[name])

    def live_orders(self) -> int:
        return int(self.book.meta[LIVE])
