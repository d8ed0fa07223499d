"""Tick-to-trade inside the box: a command written to a gateway's command ring -> its events
readable in that gateway's event ring, through a real engine process.

    .venv/bin/python perf/tick_to_trade.py                 # 10k/50k/100k cmd/s, 3 s each
    .venv/bin/python perf/tick_to_trade.py --quick         # 10k/50k, 0.5 s each
    .venv/bin/python perf/tick_to_trade.py --rates 50000 --seconds 5 --wait spin_then_sleep \
        --persist writer

Open loop, no coordinated omission: command i is due at ``t0 + i / rate``; a numba loop in
this process (playing gateway 0) writes every due command, reads the event ring
continuously, and a command's latency is (first time one of its events is readable) minus
(its *scheduled* time), so a stalled engine is charged for every command that queued up
behind the stall. All events of one command reach the ring with one cursor store, so the
first one's arrival is the command's. Clock: the CPU cycle counter, calibrated to ns.

Workload (seeded): 8 funded accounts around a mid price: ~50 % GTC limit orders within a
few ticks of the mid, ~30 % cancels of an earlier order by client_order_id (a filled one
is rejected: still a reply), ~20 % IOC orders through the touch (trades). The engine runs
with wallets on.

``--journal``: off, or on (the default, as ``ringex run``) with fsync none|batch.
``--persist``: none (no trade queue), queue (the engine hands batches to a trade queue that
a helper process drains and discards: the engine's hand-off cost without a database;
default), writer (a real writer into a temporary SQLite file).

Output: one JSON line per rate (perf/_report.py): p50/p99/p999/max/mean in microseconds,
with the rate, wait strategy and persistence mode. Target: p50 <= 5 us, p99 <= 20 us at
50k cmd/s (engine on a core of its own).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile

import numpy as np
from numba import njit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from perf._clock import cycles, ns_per_cycle, read_cycles  # noqa: E402
from perf._report import emit_latency, machine  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.core.engine.control import EngineProcess, EngineSpec  # noqa: E402
from ringex import records  # noqa: E402
from ringex.ring.atomics import cpu_relax  # noqa: E402
from ringex.ring.broadcast import BroadcastRing  # noqa: E402
from ringex.ring.kernels import ring_read_into, ring_write  # noqa: E402
from ringex.ring.spsc import SpscRing  # noqa: E402
from ringex.process import SharedFlag  # noqa: E402
from ringex.ops.supervisor import MD_CAPACITY, RING_CAPACITY, new_run_id, ring_names  # noqa: E402

ACCOUNTS = 8
MID = 3_000_000                     # BTC-USD ticks (30,000.00)
SESSION = 1                         # gateway 0, connection 1


@njit(cache=True)
def drive(cmd_hdr, cmd_slots, evt_hdr, evt_slots, cmds, due, arrived, buf, give_up):
    """Send cmds[i] at cycle due[i] (all that are due), read events, stamp arrivals.

    ``arrived[i]`` = cycle count when the first event with ref i + 1 was read (0: none).
    Returns the number of commands answered (stops early after ``give_up`` idle cycles)."""
    n = len(cmds)
    sent = 0
    answered = 0
    last_progress = read_cycles()
    while answered < n:
        now = read_cycles()
        while sent < n and due[sent] <= now:
            if ring_write(cmd_hdr, cmd_slots, cmds[sent:sent + 1], 1) == 0:
                break                                   # ring full: the engine is behind
            sent += 1
        k = ring_read_into(evt_hdr, evt_slots, buf, len(buf))
        if k > 0:
            t = read_cycles()
            for j in range(k):
                r = np.int64(buf[j].ref)
                if r > 0 and r <= n and arrived[r - 1] == 0:
                    arrived[r - 1] = t
                    answered += 1
            last_progress = t
        else:
            if now - last_progress > give_up:
                return answered
            cpu_relax()
    return answered


def workload(config: Config, n: int, seed: int, coid0: int = 0) -> np.ndarray:
    """n commands (module docstring) with refs 1 .. n; client order ids start after coid0
    (so a run never cancels an order of an earlier run)."""
    rng = np.random.default_rng(seed)
    cmds = records.commands(n)
    cmds["symbol"] = config.symbol("BTC-USD").id
    cmds["session"] = SESSION
    cmds["ref"] = np.arange(1, n + 1)
    cmds["account"] = rng.integers(1, ACCOUNTS + 1, n)
    cmds["side"] = rng.integers(0, 2, n)
    u = rng.random(n)
    gtc, cancel = u < 0.5, (u >= 0.5) & (u < 0.8)
    ioc = u >= 0.8
    off = rng.geometric(0.3, n)
    sell = cmds["side"] == 1
    cmds["kind"] = np.where(cancel, records.CommandKind.CANCEL, records.CommandKind.NEW)
    cmds["qty"] = rng.integers(1, 20, n)
    cmds["price"] = np.where(sell, MID + off, MID - off)
    cmds["price"][ioc] = np.where(sell[ioc], MID - 5, MID + 5)
    cmds["tif"][ioc] = records.TimeInForce.IOC
    coid = coid0 + np.arange(1, n + 1)
    cmds["client_order_id"][gtc] = coid[gtc]
    # a cancel targets one of the last 64 GTC orders before it (by client order id)
    gtc_idx = np.flatnonzero(gtc)
    ci = np.flatnonzero(cancel)
    before = np.searchsorted(gtc_idx, ci)              # GTC orders earlier than the cancel
    pick = before - 1 - rng.integers(0, 64, len(ci))
    has = before > 0
    j = gtc_idx[np.clip(pick, 0, None)[has]] if len(gtc_idx) else np.zeros(0, np.int64)
    cmds["account"][ci[has]] = cmds["account"][j]
    cmds["client_order_id"][ci[has]] = coid[j]
    cmds["client_order_id"][ci[~has]] = coid0 + n + 1  # no such order: rejected
    cmds["price"][ci] = 0
    cmds["qty"][ci] = 0
    return cmds


def _drain(queue, stop) -> None:
    while not stop.is_set():
        queue.get(timeout=0.05)


class Rig:
    """One engine process with its rings, and optionally a trade queue and its consumer."""

    def __init__(self, wait: str, persist: str, journal: str = "none"):
        ctx = multiprocessing.get_context("spawn")
        self.config = Config.default()
        names = ring_names(new_run_id(), 1)
        g = names["gateways"][0]
        self.cmd = SpscRing.create(g["cmd"], records.COMMAND, RING_CAPACITY, role="producer")
        self.evt = SpscRing.create(g["evt"], records.EVENT, RING_CAPACITY, role="consumer")
        self.md = BroadcastRing.create(names["md"], records.EVENT, MD_CAPACITY, role=None)
        self.queue = self.helper = self.writer = None
        self.stop = SharedFlag(ctx)
        self.tmp = tempfile.TemporaryDirectory(prefix="ringex-t2t-")
        if persist != "none":
            from ringex.storage.trade_queue import TradeQueue
            self.queue = TradeQueue()
            if persist == "queue":
                self.helper = ctx.Process(target=_drain, args=(self.queue, self.stop))
                self.helper.start()
            else:
                from ringex.storage.writer import WriterOptions, WriterProcess
                self.writer = WriterProcess(self.queue, os.path.join(self.tmp.name, "t2t.db"),
                                            self.config, WriterOptions(), ctx).start()
        spec = EngineSpec([g["cmd"]], [g["evt"]], names["md"], wait=wait,
                          state_dir=(None if journal == "off"
                                     else os.path.join(self.tmp.name, "state")),
                          journal_fsync="none" if journal == "off" else journal)
        self.engine = EngineProcess(spec, self.queue, ctx).start()
        funding = records.batch(*[records.deposit(a, asset.id, 10**17)
                                 for a in range(1, ACCOUNTS + 1) for asset in self.config.assets])
        self.cmd.write(funding)

    def close(self) -> None:
        self.cmd.close()
        self.evt.close()
        self.engine.stop(30)
        self.stop.set()
        if self.helper is not None:
            self.helper.join(10)
            if self.helper.is_alive():
                self.helper.kill()
        if self.writer is not None:
            self.writer.stop(60)
        if self.queue is not None:
            self.queue.close()
        self.md.close()
        self.tmp.cleanup()


def measure(rig: Rig, rate: int, seconds: float, seed: int, coid0: int, npc: float):
    """Latencies (ns) of one open-loop run at ``rate`` commands/s."""
    n = max(1, int(rate * seconds))
    cmds = workload(rig.config, n, seed, coid0)
    period = 1e9 / rate / npc                    # cycles between two sends
    start = cycles() + int(20e6 / npc)           # 20 ms from now
    due = (start + np.arange(n) * period).astype(np.int64)
    arrived = np.zeros(n, np.int64)
    buf = records.events(4096)
    got = drive(rig.cmd.hdr, rig.cmd.slots, rig.evt.hdr, rig.evt.slots, cmds, due, arrived,
                buf, int(2e9 / npc))
    if got < n:
        raise RuntimeError(f"only {got} of {n} commands answered")
    return (arrived - due) * npc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="10000,50000,100000",
                    help="comma-separated offered rates in commands/s")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured seconds per rate")
    ap.add_argument("--wait", default="busy_spin",
                    choices=("busy_spin", "spin_then_sleep", "eventfd"),
                    help="engine wait strategy (eventfd has no effect here: the driver "
                         "never signals)")
    ap.add_argument("--persist", default="queue", choices=("none", "queue", "writer"))
    ap.add_argument("--journal", default="none", choices=("off", "none", "batch"),
                    help="the engine's journal: off, or on with fsync none|batch (as ringex run)")
    ap.add_argument("--quick", action="store_true", help="10k and 50k cmd/s, 0.5 s each")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pin", action="store_true",
                    help="pin the engine to the last CPU and this driver to the first")
    args = ap.parse_args()
    rates = [10_000, 50_000] if args.quick else [int(r) for r in args.rates.split(",")]
    seconds = 0.5 if args.quick else args.seconds
    wait = "spin_then_sleep" if args.wait == "eventfd" else args.wait
    npc = ns_per_cycle()
    rig = Rig(wait, args.persist, args.journal)
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(rig.engine.process.pid, {cpus[-1]})
        os.sched_setaffinity(0, {cpus[0]})
    try:
        coid0 = 0
        measure(rig, 20_000, 0.5, args.seed, coid0, npc)            # warm-up, discarded
        coid0 += 20_000
        for k, rate in enumerate(rates):
            lat = measure(rig, rate, seconds, args.seed + k + 1, coid0, npc)
            coid0 += 2 * len(lat)
            emit_latency("tick_to_trade", lat, unit="us", rate=rate, wait=wait,
                         persist=args.persist, journal=args.journal, seconds=seconds,
                         pinned=args.pin,
                         load=round(os.getloadavg()[0], 2), **machine())
    finally:
        rig.close()


if __name__ == "__main__":
    main()
