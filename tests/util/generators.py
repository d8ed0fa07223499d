"""Seeded command generators and hypothesis strategies for the differential tests.

A stream is a list of abstract *ops* (small NamedTuples, readable when hypothesis prints a
falsifying example). Ops that target an order name it structurally — ``back`` = 0 is the
most recently ACKed order, 1 the one before, and so on; a ``back`` beyond the number of
ACKed orders names an id that never existed. With ``live=True`` (the usual case) ``back``
counts among the orders resting right now, modulo their number, so most cancels and
modifies hit something; ``live=False`` also reaches filled and cancelled (stale) ones.
tests/util/differential.py turns each op into one concrete COMMAND per engine, so every
engine gets the order id *it* assigned.

    market = Market.small()                       # 2 symbols, 4 accounts, tight bands
    ops = random_ops(seed=7, n=500, market=market, wallets=True)
    strategy = op_lists(market, wallets=True, max_size=60)   # hypothesis
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import NamedTuple

from hypothesis import strategies as st

from ringex.config import Config
from ringex.records import ALL_SYMBOLS


# ---------------------------------------------------------------------- ops
class New(NamedTuple):
    symbol: int
    account: int
    side: int
    order_type: int        # 0 limit, 1 market (a value > 1 tests INVALID_ORDER_TYPE)
    tif: int
    offset: int            # price = market.mid[symbol] + offset
    qty: int
    post_only: bool
    stp: int
    client_order_id: int
    session: int = 0


class Cancel(NamedTuple):
    back: int              # 0 = the last ACKed order (live: the newest resting one)
    as_owner: bool = True  # False: another account tries (must be UNKNOWN_ORDER)
    session: int = 0
    live: bool = True      # pick among resting orders; False: among all ACKed ones


class CancelCid(NamedTuple):
    symbol: int
    account: int
    client_order_id: int
    session: int = 0


class Modify(NamedTuple):
    back: int
    how: str               # down | same | up | reprice | bad_qty | bad_price
    delta: int             # qty change (down/up) or price offset (reprice)
    session: int = 0
    live: bool = True


class CancelAll(NamedTuple):
    account: int
    symbol: int            # or ALL_SYMBOLS
    session: int = 0
    disconnect: bool = False   # CMD_DISCONNECT: only orders placed by this session


class Deposit(NamedTuple):
    account: int
    asset: int
    amount: int


class Withdraw(NamedTuple):
    account: int
    asset: int
    amount: int


class QueryOrders(NamedTuple):
    account: int


class QueryBalances(NamedTuple):
    account: int


class QueryBook(NamedTuple):
    symbol: int            # len(symbols) tests UNKNOWN_SYMBOL


MODIFY_KINDS = ("down", "same", "up", "reprice", "bad_qty", "bad_price")


# ---------------------------------------------------------------------- market
@dataclass(frozen=True)
class Market:
    """The config a stream runs on plus where its prices and amounts live."""
    config: Config
    accounts: tuple[int, ...] = (1, 2, 3, 4)
    mids: tuple[int, ...] = (100, 50)          # per symbol, ticks
    spread: int = 4                            # NEW prices within mid +- spread
    deposit_max: tuple[int, ...] = ()          # per asset, upper bound of one deposit
    invalid_accounts: tuple[int, ...] = (0, 8)

    @classmethod
    def small(cls, max_orders: int = 4096, poor: bool = False) -> "Market":
        """BTC-USD (tick 1 USD, lot 1 BTC) and ETH-BTC around 100 and 50 ticks, bands of
        +-6 ticks so orders cross often and a few prices fall outside the band."""
        config = Config.build(
            {"USD": 2, "BTC": 8, "ETH": 8},
            {"BTC-USD": {"base": "BTC", "quote": "USD", "tick": "1", "lot": "1",
                         "min_price": "94", "max_price": "106",
                         "maker_fee_bps": 3, "taker_fee_bps": 7},
             "ETH-BTC": {"base": "ETH", "quote": "BTC", "tick": "0.001", "lot": "0.01",
                         "min_price": "0.044", "max_price": "0.056",
                         "maker_fee_bps": 2, "taker_fee_bps": 6}},
            max_orders=max_orders, max_accounts=8, max_level_pages=64)
        # USD: ~0..8 lots of BTC at 100; BTC: 0..8 BTC; ETH: 0..400 lots of 0.01.
        # poor: a few lots' worth, so funds checks, NO_FUNDS and failed modifies are common
        if poor:
            return cls(config, deposit_max=(3 * 100 * 100, 3 * 10**8, 2 * 10**6))
        return cls(config, deposit_max=(8 * 100 * 100, 8 * 10**8, 4 * 10**8))

    def funding(self) -> list[Deposit]:
        """Deposits that start every wallets-on stream: everyone can trade a little."""
        return [Deposit(a, asset.id, self.deposit_max[asset.id] // 2)
                for a in self.accounts for asset in self.config.assets]


# ---------------------------------------------------------------------- hypothesis
def _new(m: Market):
    return st.builds(
        New,
        symbol=st.integers(0, len(m.config.symbols) - 1),
        account=st.sampled_from(m.accounts),
        side=st.integers(0, 1),
        order_type=st.sampled_from((0, 0, 0, 0, 1)),
        tif=st.sampled_from((0, 0, 0, 1, 1, 2)),
        offset=st.integers(-m.spread, m.spread),
        qty=st.integers(1, 6),
        post_only=st.sampled_from((False,) * 7 + (True,)),
        stp=st.integers(0, 3),
        client_order_id=st.sampled_from((0, 0, 0, 1, 2, 3)),
        session=st.integers(0, 1),
    )


def _bad_new(m: Market):
    """NEW commands with one field out of range (validation order, rules.md)."""
    base = _new(m)
    return st.one_of(
        base.map(lambda o: o._replace(symbol=len(m.config.symbols))),
        st.builds(lambda o, a: o._replace(account=a), base, st.sampled_from(m.invalid_accounts)),
        base.map(lambda o: o._replace(side=2)),
        base.map(lambda o: o._replace(order_type=2)),
        base.map(lambda o: o._replace(tif=3)),
        base.map(lambda o: o._replace(order_type=1, tif=0)),
        base.map(lambda o: o._replace(order_type=0, tif=1, post_only=True)),
        base.map(lambda o: o._replace(stp=4)),
        base.map(lambda o: o._replace(qty=0)),
        st.builds(lambda o, off: o._replace(order_type=0, offset=off), base,
                  st.sampled_from((-m.spread - 3, m.spread + 3, -m.mids[0] - 5))),
    )


def op_strategy(m: Market, wallets: bool):
    accounts = st.sampled_from(m.accounts)
    sessions = st.integers(0, 1)
    ops = [
        (10, _new(m)),
        (1, _bad_new(m)),
        (3, st.builds(Cancel, back=st.integers(0, 12),
                      as_owner=st.sampled_from((True, True, True, False)), session=sessions,
                      live=st.sampled_from((True, True, False)))),
        (1, st.builds(CancelCid, symbol=st.integers(0, len(m.config.symbols) - 1),
                      account=accounts, client_order_id=st.integers(1, 3), session=sessions)),
        (3, st.builds(Modify, back=st.integers(0, 12), how=st.sampled_from(MODIFY_KINDS),
                      delta=st.integers(-3, 3), session=sessions,
                      live=st.sampled_from((True, True, False)))),
        (1, st.builds(CancelAll, account=accounts,
                      symbol=st.sampled_from((ALL_SYMBOLS, 0, 1)), session=sessions,
                      disconnect=st.booleans())),
        (1, st.builds(QueryOrders, account=accounts)),
        (1, st.builds(QueryBook, st.integers(0, len(m.config.symbols)))),
    ]
    if wallets:
        amounts = st.integers(-1, max(m.deposit_max))
        assets = st.integers(0, len(m.config.assets) - 1)
        ops += [(1, st.builds(Deposit, accounts, assets, amounts)),
                (1, st.builds(Withdraw, accounts, assets, amounts)),
                (1, st.builds(QueryBalances, accounts))]
    return st.one_of(*[s for w, s in ops for _ in range(w)])


def op_lists(m: Market, wallets: bool, min_size: int = 1, max_size: int = 60):
    return st.lists(op_strategy(m, wallets), min_size=min_size, max_size=max_size)


# ---------------------------------------------------------------------- seeded
@dataclass
class _Weights:
    table: list = field(default_factory=lambda: [
        ("new", 55), ("bad_new", 3), ("cancel", 14), ("cancel_cid", 4), ("modify", 14),
        ("cancel_all", 2), ("query_orders", 2), ("money", 4), ("query_balances", 2),
        ("query_book", 2)])


def random_ops(seed: int, n: int, market: Market, wallets: bool = True) -> list:
    """``n`` ops from a seeded ``random.Random`` (same vocabulary as ``op_strategy``)."""
    rng = random.Random(seed)
    m = market
    table = [(k, w) for k, w in _Weights().table
             if wallets or k not in ("money", "query_balances")]
    kinds, weights = zip(*table)
    nsym = len(m.config.symbols)

    def new() -> New:
        market_order = rng.random() < 0.12
        return New(rng.randrange(nsym), rng.choice(m.accounts), rng.randrange(2),
                   int(market_order), rng.choice((1, 2)) if market_order
                   else rng.choices((0, 1, 2), (6, 3, 1))[0],
                   rng.randint(-m.spread, m.spread), rng.choice((1, 1, 2, 3, 5, 8)),
                   rng.random() < 0.08, rng.randrange(4), rng.choice((0,) * 6 + (1, 2, 3, 4)),
                   rng.randrange(2))

    out: list = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        if kind == "new":
            out.append(new())
        elif kind == "bad_new":
            o = new()
            out.append(rng.choice((
                o._replace(symbol=nsym), o._replace(account=rng.choice(m.invalid_accounts)),
                o._replace(side=2), o._replace(order_type=2), o._replace(tif=3),
                o._replace(stp=4), o._replace(qty=0),
                o._replace(order_type=0, offset=m.spread + 3))))
        elif kind == "cancel":
            out.append(Cancel(int(rng.expovariate(0.3)), rng.random() < 0.9, rng.randrange(2),
                              rng.random() < 0.75))
        elif kind == "cancel_cid":
            out.append(CancelCid(rng.randrange(nsym), rng.choice(m.accounts),
                                 rng.randint(1, 4), rng.randrange(2)))
        elif kind == "modify":
            out.append(Modify(int(rng.expovariate(0.3)),
                              rng.choices(MODIFY_KINDS, (5, 1, 3, 5, 1, 1))[0],
                              rng.randint(-3, 3), rng.randrange(2), rng.random() < 0.75))
        elif kind == "cancel_all":
            out.append(CancelAll(rng.choice(m.accounts),
                                 rng.choice((ALL_SYMBOLS, *range(nsym))), rng.randrange(2),
                                 rng.random() < 0.4))
        elif kind == "query_orders":
            out.append(QueryOrders(rng.choice(m.accounts)))
        elif kind == "query_balances":
            out.append(QueryBalances(rng.choice(m.accounts)))
        elif kind == "query_book":
            out.append(QueryBook(rng.randrange(nsym + 1)))
        else:
            asset = rng.randrange(len(m.config.assets))
            cls = Deposit if rng.random() < 0.6 else Withdraw
            out.append(cls(rng.choice(m.accounts), asset,
                           rng.randint(1, m.deposit_max[asset] // 4)))
    return out
