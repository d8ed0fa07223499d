"""Engine time per command, by kind: what one reject, cancel, resting order or one-fill
taker costs inside the kernel.

    .venv/bin/python perf/matcher_kinds.py            # wallets off and on
    .venv/bin/python perf/matcher_kinds.py --quick

Each kind runs as batches of 1,024 identical-kind commands through
``OrderService.submit_into`` (no event copy; the ≈ 1 µs call cost is spread over the
batch, ≈ 1 ns a command), against a book of 10,000 resting orders on BTC-USD:

- ``reject``: cancels of order ids that do not exist;
- ``cancel``: cancels (by order id) of resting orders;
- ``rest``: GTC limit orders that rest without crossing;
- ``taker1``: IOC limit orders that fill exactly one resting order, leaving it partly
  filled (so the level stays and the book keeps its shape).

Prints ``matcher_kind`` JSON lines (perf/_report.py): ns per command p50/p99/p999 over
the batches, for each kind, wallets off and on; and ``matcher_call`` lines: the fixed
cost of one ``submit`` / ``submit_into`` call of a single command (target <= 2 us; one
command per call >= 0.4 M/s). Targets (issue "Matcher at 5 million
commands/s"): reject and cancel <= 40 ns, rest <= 80, taker1 <= 120.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from perf._report import emit_latency, machine  # noqa: E402
from ringex import records  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.records import CommandKind, EventKind, Side, TimeInForce  # noqa: E402

BATCH = 1024
BOOK = 10_000
MID = 5_000_000


def _service(wallets: bool):
    from ringex.core.order_service import OrderService
    cfg = Config.default()
    svc = OrderService(cfg, wallets=wallets)
    btc = cfg.symbol("BTC-USD").id
    if wallets:
        for acct in (1, 2):
            svc.deposit(acct, "BTC", 10**15)
            svc.deposit(acct, "USD", 10**15)
    return svc, btc


def _new(btc: int, n: int, side: int, price, qty, account: int, tif=TimeInForce.GTC):
    c = records.commands(n)
    c["kind"], c["symbol"], c["account"], c["session"] = CommandKind.NEW, btc, account, account
    c["side"], c["price"], c["qty"], c["tif"] = side, price, qty, tif
    c["ref"] = np.arange(1, n + 1)
    return c


def _ids(events: np.ndarray) -> np.ndarray:
    return events["order_id"][events["kind"] == EventKind.ACK]


def run(kind: str, wallets: bool, batches: int) -> None:
    svc, btc = _service(wallets)
    out = records.events(2 * BOOK + 4 * BATCH + 64)
    # a book: BOOK asks of 1,000 lots above the mid, one per tick (account 1)
    asks = _ids(svc.submit(_new(btc, BOOK, Side.SELL, MID + 1 + np.arange(BOOK), 1000, 1)))
    rng = np.random.default_rng(1)
    samples = np.empty(batches, np.int64)
    for b in range(batches + 10):                          # 10 untimed warm-up batches
        if kind == "reject":
            cmds = records.commands(BATCH)
            cmds["kind"], cmds["symbol"], cmds["account"] = CommandKind.CANCEL, btc, 2
            cmds["order_id"] = rng.integers(1, 1 << 40, BATCH) << 20   # never an order
        elif kind == "cancel":
            # rest BATCH bids (untimed), then time cancelling them
            bids = _ids(svc.submit(_new(btc, BATCH, Side.BUY,
                                        MID - 1 - rng.integers(0, 2000, BATCH), 1, 2)))
            cmds = records.commands(BATCH)
            cmds["kind"], cmds["symbol"], cmds["account"] = CommandKind.CANCEL, btc, 2
            cmds["order_id"] = rng.permutation(bids)
        elif kind == "rest":
            cmds = _new(btc, BATCH, Side.BUY, MID - 1 - rng.integers(0, 2000, BATCH), 1, 2)
        else:                                              # taker1: one lot off the best ask
            cmds = _new(btc, BATCH, Side.BUY, MID + BOOK, 1, 2, tif=TimeInForce.IOC)
        t0 = time.perf_counter_ns()
        done, n = svc.submit_into(cmds, out)
        dt = time.perf_counter_ns() - t0
        assert done == BATCH
        ev = out[:n]
        if kind == "rest":        # take them off again (untimed) so the book stays the same
            svc.submit(_cancels(btc, _ids(ev)))
        elif kind == "taker1":
            assert np.count_nonzero(ev["kind"] == EventKind.FILL) == 2 * BATCH
        elif kind == "reject":
            assert np.count_nonzero(ev["kind"] == EventKind.REJECT) == BATCH
        if b >= 10:
            samples[b - 10] = dt
    emit_latency("matcher_kind", samples / BATCH, unit="ns", kind=kind, wallets=wallets,
                 batch=BATCH, book=BOOK, resting_asks=len(asks), **machine())


def calls(wallets: bool, n: int) -> None:
    """The fixed cost of one call: ``submit`` and ``submit_into`` of a single command (a
    cancel of an unknown order: ≈ 10 ns of engine work), ``n`` calls each, timed in
    blocks of 1,000."""
    svc, btc = _service(wallets)
    cmd = records.commands(1)
    cmd["kind"], cmd["symbol"], cmd["account"], cmd["order_id"] = CommandKind.CANCEL, btc, 2, 1
    out = records.events(2 * BOOK)
    for api, call in (("submit", lambda: svc.submit(cmd)),
                      ("submit_into", lambda: svc.submit_into(cmd, out))):
        samples = np.empty(n // 1000, np.int64)
        for b in range(len(samples) + 5):
            t0 = time.perf_counter_ns()
            for _ in range(1000):
                call()
            if b >= 5:
                samples[b - 5] = time.perf_counter_ns() - t0
        emit_latency("matcher_call", samples / 1000, unit="ns", api=api, wallets=wallets,
                     per_s_one_command=round(1e9 / float(np.median(samples / 1000))),
                     **machine())


def _cancels(btc: int, ids: np.ndarray) -> np.ndarray:
    cmds = records.commands(len(ids))
    cmds["kind"], cmds["symbol"], cmds["account"], cmds["order_id"] = (
        CommandKind.CANCEL, btc, 2, ids)
    return cmds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 batches per kind")
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--kinds", default="reject,cancel,rest,taker1,call",
                    help="call: the fixed cost of one submit / submit_into call")
    a = ap.parse_args()
    gc.disable()
    for wallets in (False, True):
        for kind in a.kinds.split(","):
            if kind == "call":
                calls(wallets, 20_000 if a.quick else 100_000)
            else:
                run(kind, wallets, 200 if a.quick else a.batches)


if __name__ == "__main__":
    main()
