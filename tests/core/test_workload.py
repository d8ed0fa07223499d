"""perf/workload.py at small scale: deterministic, valid against the reference model, and
the core gives the same events as the reference on it."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from perf.workload import Workload
from ringex.config import Config
from ringex.records import INFO_MAKER, CancelReason, EventKind as E, RejectCode, Side
from tests.util.differential import Track
from tests.util.invariants import OrderLedger, check_all
from tests.util.reference import ReferenceExchange

CONFIG = Config.build(
    {"USD": 6, "BTC": 8, "ETH": 8},
    {"BTC-USD": {"base": "BTC", "quote": "USD", "tick": "0.01", "lot": "0.0001",
                 "min_price": "0.01", "max_price": "100000", "maker_fee_bps": 1,
                 "taker_fee_bps": 5},
     "ETH-USD": {"base": "ETH", "quote": "USD", "tick": "0.01", "lot": "0.001",
                 "min_price": "0.01", "max_price": "20000", "maker_fee_bps": 1,
                 "taker_fee_bps": 5}},
    max_orders=1 << 14, max_accounts=16)
ACCOUNTS = tuple(range(1, 9))


def drive(svc, wallets, batches=12, n=256, seed=3):
    wl = Workload(CONFIG, seed=seed, wallets=wallets, accounts=len(ACCOUNTS))
    svc.submit(wl.funding())
    sent, got = [], []
    for _ in range(batches):
        cmds = wl.next_batch(n)
        ev = svc.submit(cmds)
        wl.observe(ev)
        sent.append(cmds)
        got.append(ev)
    return wl, sent, got


def test_workload_is_deterministic():
    a = drive(ReferenceExchange(CONFIG, wallets=False), False)[1]
    b = drive(ReferenceExchange(CONFIG, wallets=False), False)[1]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = drive(ReferenceExchange(CONFIG, wallets=False), False, seed=4)[1]
    assert not np.array_equal(a[-1], c[-1])


@pytest.mark.parametrize("wallets", [False, True])
def test_workload_looks_like_a_market_on_the_reference(wallets):
    ref = ReferenceExchange(CONFIG, wallets=wallets)
    wl, sent, got = drive(ref, wallets)
    ev = np.concatenate(got)
    cmds = sum(len(s) for s in sent)
    rejects = Counter(RejectCode(int(e["info"]) & 63).name for e in ev if e["kind"] == E.REJECT)
    assert set(rejects) <= {"UNKNOWN_ORDER"}, rejects          # only stale cancels/modifies
    assert sum(rejects.values()) < 0.1 * cmds
    assert wl.live_orders() == len(ref.orders)                 # it tracks the book exactly
    ends = Counter()
    for e in ev:
        if e["kind"] == E.FILL and e["info"] & INFO_MAKER and e["leaves"] == 0:
            ends["filled"] += 1
        elif e["kind"] == E.CANCELLED and (e["info"] & 63) == CancelReason.USER:
            ends["cancelled"] += 1
    assert ends["cancelled"] > ends["filled"] > 0              # most quotes never trade
    assert (ev["kind"] == E.MODIFIED).sum() > 0.03 * cmds
    for s in (0, 1):
        bids = ref.levels(s, Side.BUY)
        assert bids and ref.best_ask(s) is not None
        near = sum(q for p, q, _ in bids if bids[0][0] - p < 3)
        far = sum(q for p, q, _ in bids if 8 <= bids[0][0] - p < 11)
        assert near > far                                      # depth thins out
    totals = {a.id: 0 for a in CONFIG.assets}
    for rec in wl.funding():                                   # drive() deposited these
        totals[int(rec["symbol"])] += int(rec["qty"])
    ledger = OrderLedger()
    ledger.consume(ev)
    check_all(ref, CONFIG, ACCOUNTS, ledger, totals, wallets)


@pytest.mark.parametrize("wallets", [False, True])
def test_core_matches_reference_on_the_workload(wallets):
    from ringex.core.order_service import OrderService
    tracks = []
    for svc in (ReferenceExchange(CONFIG, wallets=wallets), OrderService(CONFIG, wallets=wallets)):
        t = Track(type(svc).__name__, svc)
        _, _, got = drive(svc, wallets)
        tracks.append([t.absorb(ev) for ev in got])
    for i, (a, b) in enumerate(zip(*tracks)):
        assert a == b, f"batch {i}: first difference at event " \
                       f"{next(j for j, (x, y) in enumerate(zip(a, b)) if x != y)}"
