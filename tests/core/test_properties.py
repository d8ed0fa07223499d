"""Property tests: the numba core and the reference model give the same events and state.

Random op streams (tests/util/generators.py) over 2 symbols and 4 accounts with tight
price bands run on both engines in lockstep (tests/util/differential.py): after every
command the events (ids compared by ACK position), books, open orders and balances must
be identical, and the invariants of tests/util/invariants.py must hold on both.

The core is imported inside each test, so this module collects (and the reference-only
tests run) before ``ringex.core.order_service`` exists.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.util import generators as g
from tests.util.differential import Differential
from tests.util.reference import ReferenceExchange

MARKET = g.Market.small(max_orders=4096)
POOR = g.Market.small(poor=True)              # funds bind: rejects, NO_FUNDS, failed modifies
TINY_POOL = g.Market.small(max_orders=6)
WALLETS = pytest.mark.parametrize("wallets", [True, False], ids=["wallets", "no_wallets"])
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def core(market: g.Market, wallets: bool):
    from ringex.core.order_service import OrderService   # lands separately; see module doc
    return OrderService(market.config, wallets=wallets)


def pair(market: g.Market, wallets: bool) -> Differential:
    return Differential(market, wallets, {"ref": ReferenceExchange(market.config, wallets),
                                          "core": core(market, wallets)})


# ------------------------------------------------------------------ the oracle alone
@WALLETS
def test_reference_keeps_its_invariants_on_seeded_streams(wallets):
    for seed in range(3):
        d = Differential(MARKET, wallets, {"ref": ReferenceExchange(MARKET.config, wallets)})
        d.run(g.random_ops(seed, 600, MARKET, wallets))


@WALLETS
@SETTINGS
@given(ops=g.op_lists(MARKET, wallets=True, max_size=50))
def test_reference_keeps_its_invariants(wallets, ops):
    ops = [op for op in ops if wallets or not isinstance(op, (g.Deposit, g.Withdraw,
                                                                g.QueryBalances))]
    Differential(MARKET, wallets, {"ref": ReferenceExchange(MARKET.config, wallets)}).run(ops)


# ------------------------------------------------------------------ core vs reference
@WALLETS
@SETTINGS
@given(ops=g.op_lists(MARKET, wallets=True, max_size=60))
def test_core_matches_reference(wallets, ops):
    ops = [op for op in ops if wallets or not isinstance(op, (g.Deposit, g.Withdraw,
                                                                g.QueryBalances))]
    pair(MARKET, wallets).run(ops)


@settings(SETTINGS, max_examples=60)
@given(ops=g.op_lists(POOR, wallets=True, max_size=60))
def test_core_matches_reference_when_funds_are_short(ops):
    pair(POOR, True).run(ops)


@WALLETS
@settings(SETTINGS, max_examples=40)
@given(ops=g.op_lists(TINY_POOL, wallets=True, max_size=40))
def test_core_matches_reference_with_a_full_order_pool(wallets, ops):
    ops = [op for op in ops if wallets or not isinstance(op, (g.Deposit, g.Withdraw,
                                                                g.QueryBalances))]
    pair(TINY_POOL, wallets).run(ops)


@WALLETS
@pytest.mark.parametrize("market,seed", [(MARKET, 11), (MARKET, 12), (POOR, 13),
                                         (g.Market.small(max_orders=8), 14)],
                         ids=["seed11", "seed12", "poor13", "pool8-14"])
def test_core_matches_reference_on_long_seeded_streams(wallets, market, seed):
    pair(market, wallets).run(g.random_ops(seed, 1500, market, wallets))


# ------------------------------------------------------------------ pinned scenarios
# Minimal streams that once told the engines apart; kept as named regressions.
B = 10**8
SELL, BUY, LIMIT, MKT, GTC, IOC, FOK = 1, 0, 0, 1, 0, 1, 2


def _new(acct, side, offset, qty, otype=LIMIT, tif=GTC):
    return g.New(0, acct, side, otype, tif, offset, qty, False, 0, 0)


def test_ioc_is_accepted_when_the_order_pool_is_full():
    """rules.md step 11: TOO_MANY_ORDERS is checked only for orders that could rest."""
    market = g.Market.small(max_orders=2)
    pair(market, False).run([_new(1, BUY, -5, 1), _new(1, BUY, -4, 1),
                             _new(2, SELL, -4, 1, tif=IOC)], fund=False)


def test_funds_limited_market_buy_keeps_fifo_within_a_level():
    """151605 cents buy 14 lots at 101 (141498); the 10107 left buy one more lot (floor
    fees make 14 + 1 cheaper than 15). That lot must come from the head order, which
    still has 6 lots, not from the order behind it."""
    pair(MARKET, True).run([
        g.Deposit(1, 0, 151605), g.Deposit(2, 1, 20 * B), g.Deposit(3, 1, 5 * B),
        _new(2, SELL, 1, 20), _new(3, SELL, 1, 5), _new(1, BUY, 1, 20, MKT, IOC)], fund=False)


def test_fok_market_buy_dry_run_matches_the_walk():
    """The same budget fills 15 lots (14 + 1) when walked, so a FOK for 15 must fill."""
    pair(MARKET, True).run([
        g.Deposit(1, 0, 151605), g.Deposit(2, 1, 20 * B),
        _new(2, SELL, 1, 20), _new(1, BUY, 1, 15, MKT, FOK)], fund=False)


@WALLETS
def test_core_is_deterministic_across_batch_boundaries(wallets):
    """The commands one core got one at a time, replayed in random-sized batches into a
    fresh core, give byte-identical events (same ids: both cores start from nothing)."""
    d = pair(MARKET, wallets)
    d.run(g.random_ops(21, 1200, MARKET, wallets))
    track = next(t for t in d.tracks if t.name == "core")
    cmds = np.concatenate(track.sent)
    want = np.concatenate(track.events)
    fresh = core(MARKET, wallets)
    rng = np.random.default_rng(5)
    got, i = [], 0
    while i < len(cmds):
        n = int(rng.integers(1, 300))
        got.append(fresh.submit(cmds[i:i + n]))
        i += n
    got = np.concatenate(got)
    assert got.dtype == want.dtype and len(got) == len(want)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"first difference at event {bad[0]}: {got[bad[0]]} vs {want[bad[0]]}"
