"""Chaos rounds: random faults under a steady order flow, an operator's restart, and the
full convergence check after every round (issue 13). Used by tests/faults/test_chaos.py
(a few rounds) and perf/chaos.py (minutes of them).

    chaos = Chaos(workdir, db=None, pg=None, say=print)     # pg: a tests.db Cluster
    chaos.start()                           # ringex run with 2 gateways, accounts, funds
    seed = 13
    for _ in range(n):
        result = chaos.round(seed)          # RoundFailed (seed, fault, replay hint) if bad
        seed = result.next_seed
    chaos.finish()                          # SIGTERM: exit 0, nothing left, final check
    chaos.cleanup()                         # always

A round: clients trade (``rig._trader``, half of them with cancel-on-disconnect) on both
gateways; after a random warm-up one fault hits:

- ``engine``, ``writer``, ``gateway``: ``kill -9`` of that child; the supervisor stops
  the others and exits 1 (checked, with its "exited unexpectedly" line; no process and
  no /dev/shm segment may be left);
- ``supervisor``: ``kill -9`` of ``ringex run``; the children notice and exit;
- ``group``: ``kill -9`` of every process at once;
- ``writer_stall``: SIGSTOP of the writer for a while, then SIGCONT (nothing restarts);
- ``pg_restart`` (PostgreSQL only): the server stops (fast or immediate) and starts again.

After a kill the operator waits until every process of the old run has exited, and
starts ``ringex run`` on the same data dir (the journal is archived first: a start may
prune old segments); segments a dead run left must be gone after that start. Recovery
time is fault -> a new connection's order acknowledged. Then the check: what the live
engine reports (``ask_engine``), the database once it holds the whole journal, and a clean
replay of the archived journal from batch 1 (incremental across rounds) must agree
(``check_converged``), and every order any client saw acknowledged must be in the
database with exactly the replay's state (status and filled lots).

Each round draws everything it does (fault, timings, gateway, client seeds) from
``random.Random(seed)``, and the next round's seed first, so ``seed`` and ``fault`` of a
logged round replay it (``perf/chaos.py --seed S --only-fault F --rounds 1``); the
moments at which the processes are hit are as random as the scheduler.
"""
from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from ringex import records
from ringex.client import Ack, Cancelled, ClientError, connect
from ringex.core.journal import read_journal
from ringex.core.order_service import OrderService
from tests.faults.rig import (CONFIG, LOT, MID, Replay, Run, Seen, _trader, archive_journal,
                              close_noting,
                              ask_engine, check_converged, fund, make_accounts, pg_outage)

FAULTS = ("engine", "writer", "gateway", "supervisor", "group", "writer_stall", "pg_restart")
KILLS = frozenset(("engine", "writer", "gateway", "supervisor", "group"))
SUPERVISED = frozenset(("engine", "writer", "gateway"))   # the supervisor sees it, exits 1
PG_ONLY = frozenset(("pg_restart",))
# log lines worth a look in a round's result (the fault's own lines excepted)
NOTABLE = re.compile(r"did not stop in time|killing it|Traceback|dead letter|still attached|"
                     r"blocked|skipped|heartbeat", re.I)


def faults_for(postgres: bool) -> tuple[str, ...]:
    return tuple(f for f in FAULTS if postgres or f not in PG_ONLY)


@dataclass
class Knobs:
    """Timings of a round (seconds); the test uses shorter ones than perf/chaos.py."""
    warmup: tuple[float, float] = (1.0, 3.0)      # trading before the fault
    tail_s: float = 0.5                           # trading after a fault without restart
    stall: tuple[float, float] = (0.5, 3.0)       # writer SIGSTOP
    pg_down: tuple[float, float] = (0.5, 3.0)     # PostgreSQL stopped
    exit_timeout_s: float = 150.0                 # old run gone (supervisor steps: 30 s)
    recovery_timeout_s: float = 180.0             # fault -> an order acknowledged
    catchup_timeout_s: float = 120.0              # database holds the whole journal


@dataclass
class RoundResult:
    round: int
    seed: int
    fault: str
    plan: dict
    next_seed: int
    acks: int = 0                 # orders acknowledged to clients this round
    acks_total: int = 0           # all so far: each checked again every round
    orders_checked: int = 0
    lost: int = 0
    duplicated: int = 0
    recovery_s: float = 0.0       # fault -> a fresh connection's order acknowledged
    exit_code: int | None = None  # the old run's, after a kill
    exit_s: float = 0.0           # fault -> every process of the old run gone
    start_s: float = 0.0          # the restart: ringex run -> its run file written
    swept: int = 0                # segments the dead run left and the restart removed
    gateway_orders: dict = field(default_factory=dict)   # gateway -> orders this round
    notable: list[str] = field(default_factory=list)     # log lines worth a look
    client_errors: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class RoundFailed(AssertionError):
    def __init__(self, result: RoundResult, why: str, log_tail: str):
        self.result, self.why, self.log_tail = result, why, log_tail
        super().__init__(f"chaos round {result.round} (seed {result.seed}, fault "
                         f"{result.fault}, plan {result.plan}) failed: {why}\n"
                         f"replay: perf/chaos.py --seed {result.seed} --only-fault "
                         f"{result.fault} --rounds 1 (or RINGEX_CHAOS_SEED/"
                         f"RINGEX_CHAOS_FAULT for tests/faults/test_chaos.py)\n"
                         f"log of the run:\n{log_tail}")


# ---------------------------------------------------------------- the journal, replayed
class JournalReplay:
    """A clean replay from batch 1 that feeds only the entries it has not seen yet."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.svc = OrderService(CONFIG)
        self.events = records.events(0)
        self.last = 0

    def advance(self) -> Replay:
        segs = sorted((int(p.stem.split("-")[1]), p) for p in self.folder.glob("seg-*.rxj"))
        new = []
        for i, (_, seg) in enumerate(segs):
            if i + 1 < len(segs) and segs[i + 1][0] - 1 <= self.last:
                continue                               # wholly replayed already
            entries, _ = read_journal(seg)
            for batch, cmds in entries:
                if batch <= self.last:
                    continue
                assert batch == self.last + 1, f"journal gap: {self.last} then {batch}"
                new.append(self.svc.submit(cmds).copy())
                self.last = batch
        if new:
            self.events = np.concatenate([self.events, *new])
        return Replay(self.svc, self.events, self.last)


def replay_order_states(events: np.ndarray) -> dict[int, tuple[str, int]]:
    """order id -> (status, filled lots) after the replayed events."""
    k = events["kind"]
    E = records.EventKind
    e = events[np.isin(k, (E.ACK, E.FILL, E.CANCELLED, E.MODIFIED)) & (events["order_id"] > 0)]
    if not len(e):
        return {}
    ids = e["order_id"].astype(np.int64)
    fills = e[e["kind"] == E.FILL]
    fid, finv = np.unique(fills["order_id"].astype(np.int64), return_inverse=True)
    fsum = np.zeros(len(fid), np.int64)
    np.add.at(fsum, finv, fills["qty"].astype(np.int64))
    filled = dict(zip(fid.tolist(), fsum.tolist()))
    uniq, ridx = np.unique(ids[::-1], return_index=True)
    last = e[len(ids) - 1 - ridx]
    out = {}
    for oid, kind, leaves in zip(uniq.tolist(), last["kind"].tolist(), last["leaves"].tolist()):
        f = filled.get(oid, 0)
        if kind == E.CANCELLED:
            status = "cancelled"
        elif kind == E.FILL and leaves == 0:
            status = "filled"
        else:
            status = "partially_filled" if f else "open"
        out[oid] = (status, f)
    return out


def count_losses(run: Run, rep: Replay, seen: Seen) -> tuple[int, int, list[str]]:
    """(lost, duplicated, what): acknowledged orders missing from the journal or the
    database or stored in another state than the replay's; trades stored twice, stored
    without a match in the journal, or fills told to a client beyond what was stored."""
    states = replay_order_states(rep.events)
    E = records.EventKind
    ev = rep.events
    takers = ev[(ev["kind"] == E.FILL) & ((ev["info"] & records.INFO_MAKER) == 0)]
    want = {(int(s), int(q)) for s, q in zip(takers["symbol"], takers["seq"])}
    lost, dup, what = 0, 0, []
    with run.repo() as repo:
        rows = {r["order_id"]: r for r in repo.orders()}
        stored = [(r["symbol"], r["seq"]) for r in repo._fetch("SELECT symbol, seq FROM trades")]
    for oid, (account, ack) in seen.acks.items():
        r = rows.get(oid)
        if oid not in states or r is None:
            lost += 1
            where = "in the journal" if oid not in states else "stored"
            what.append(f"order {oid} acknowledged, not {where}")
            continue
        status, filled = states[oid]
        if (r["status"], r["filled"], r["account"]) != (status, filled, account):
            lost += 1
            what.append(f"order {oid}: stored {r['status']} filled {r['filled']}, "
                        f"journal says {status} filled {filled}")
        told = seen.filled.get(oid, Decimal(0)) / LOT[ack.symbol]
        if told > r["filled"]:
            dup += 1
            what.append(f"order {oid}: client told {told:f} lots filled, {r['filled']} stored")
    extra = len(stored) - len(set(stored)) + len(set(stored) - want)
    missing = len(want - set(stored))
    if extra:
        dup += extra
        what.append(f"{extra} stored trades twice or without a match in the journal")
    if missing:
        lost += missing
        what.append(f"{missing} journal trades not stored")
    return lost, dup, what


# ---------------------------------------------------------------- the harness
class Chaos:
    def __init__(self, workdir: Path, db: str | None = None, pg=None, *, gateways: int = 2,
                 clients: int = 6, knobs: Knobs | None = None,
                 say: Callable[[str], None] = print):
        self.workdir = Path(workdir)
        self.pg = pg
        self.run = Run(self.workdir / "data", db=db or (pg.url if pg is not None else None),
                       gateways=gateways)
        self.clients = clients
        self.knobs = knobs or Knobs()
        self.say = say
        self.archive = self.workdir / "journal-archive"
        self.replay = JournalReplay(self.archive)
        self.seen = Seen()
        self.keys: dict[int, str] = {}
        self.probe_account = 0
        self.rounds = 0
        self.faults = faults_for(pg is not None)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "Chaos":
        self.run.start()
        self.keys = make_accounts(self.run, self.clients + 1)   # the last one probes
        self.probe_account = max(self.keys)
        _run(fund(self.run, self.keys, self.seen))
        return self

    def finish(self) -> dict:
        """Stop as an operator does (SIGTERM): exit 0, no process, no segment left, and
        the stopped database equal to the whole journal's replay."""
        live = _run(ask_engine(self.run, self.keys))
        code = self.run.stop()
        assert code == 0, f"SIGTERM: exit {code}\n{self.run.log()[-3000:]}"
        assert not self.run.segments(), f"segments left: {self.run.segments()}"
        archive_journal(self.run.data_dir, self.archive)
        rep = self.replay.advance()
        counts = check_converged(self.run, rep, self.keys, self.seen, live)
        lost, dup, what = count_losses(self.run, rep, self.seen)
        assert lost == dup == 0, what[:10]
        return counts

    def cleanup(self) -> None:
        self.run.cleanup()

    # ------------------------------------------------------------ one round
    def plan(self, rng: random.Random, fault: str | None) -> tuple[str, dict]:
        k = self.knobs
        fault = fault or rng.choice(self.faults)
        plan = {"warmup_s": round(rng.uniform(*k.warmup), 2),
                "client_seeds": [rng.getrandbits(32) for _ in range(self.clients)]}
        if fault == "gateway":
            plan["gateway"] = rng.randrange(self.run.gateways)
        elif fault == "writer_stall":
            plan["stall_s"] = round(rng.uniform(*k.stall), 2)
        elif fault == "pg_restart":
            plan["pg_mode"] = rng.choice(("fast", "immediate"))
            plan["pg_down_s"] = round(rng.uniform(*k.pg_down), 2)
        return fault, plan

    def round(self, seed: int, fault: str | None = None) -> RoundResult:
        rng = random.Random(seed)
        next_seed = rng.getrandbits(32)            # first: the chain does not depend on faults
        fault, plan = self.plan(rng, fault)
        if fault not in self.faults:
            raise ValueError(f"fault {fault!r} is not one of {self.faults}")
        self.rounds += 1
        res = RoundResult(self.rounds, seed, fault, plan, next_seed)
        self.say(f"chaos round {res.round}: seed {seed} fault {fault} plan "
                 f"{ {k: v for k, v in plan.items() if k != 'client_seeds'} }")
        t0 = time.monotonic()
        acks0 = len(self.seen.acks)
        errors0 = len(self.seen.errors)
        log_start = len(self.run.log())
        try:
            _run(self._traffic_and_fault(res), timeout=self.knobs.exit_timeout_s
                 + 2 * self.knobs.recovery_timeout_s)
            res.acks = len(self.seen.acks) - acks0
            res.client_errors = self.seen.errors[errors0:][:5]
            self._check(res)
        except Exception as exc:                   # noqa: BLE001 - reported with the round
            raise RoundFailed(res, f"{type(exc).__name__}: {exc}",
                              self.run.log()[-6000:]) from exc
        finally:
            res.seconds = round(time.monotonic() - t0, 2)
        res.notable += [ln for ln in self.run.log()[log_start:].splitlines()
                        if NOTABLE.search(ln)][:10]
        return res

    async def _traffic_and_fault(self, res: RoundResult) -> None:
        plan = res.plan
        stop = asyncio.Event()
        traders = [asyncio.create_task(self._trader(a, s, stop, cod=bool(i % 2)))
                   for i, (a, s) in enumerate(zip(self._trader_accounts(),
                                                  plan["client_seeds"]))]
        await asyncio.sleep(plan["warmup_s"])
        hit = threading.Event()
        marks: dict[str, float] = {}
        fault = asyncio.create_task(asyncio.to_thread(self._inject, res, hit, marks))
        while not hit.is_set() and not fault.done():
            await asyncio.sleep(0.005)
        if res.fault not in KILLS:                 # the exchange stays up: probe at once
            acked = await self._probe(self.knobs.recovery_timeout_s)
            await fault
            await asyncio.sleep(self.knobs.tail_s)
        else:                                      # probe the restarted exchange
            await fault
            acked = await self._probe(self.knobs.recovery_timeout_s)
        res.recovery_s = round(acked - marks["fault"], 3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*traders), 30)

    async def _trader(self, account: int, seed: int, stop: asyncio.Event, cod: bool) -> None:
        await _trader(self.run.url, self.keys[account], account, seed, self.seen, stop,
                      cancel_on_disconnect=cod)

    def _trader_accounts(self) -> list[int]:
        return sorted(a for a in self.keys if a != self.probe_account)

    def _inject(self, res: RoundResult, hit: threading.Event, marks: dict) -> None:
        """The fault, and for a kill the operator's restart (in a thread)."""
        run, plan, fault = self.run, res.plan, res.fault
        marks["fault"] = time.monotonic()
        if fault == "engine":
            run.kill_engine()
        elif fault == "writer":
            run.kill_writer()
        elif fault == "gateway":
            run.kill_gateway(plan["gateway"])
        elif fault == "supervisor":
            run.kill_supervisor()
        elif fault == "group":
            run.kill_group()
        elif fault == "writer_stall":
            hit.set()
            run.stall_writer(plan["stall_s"])
        elif fault == "pg_restart":
            hit.set()
            pg_outage(self.pg, plan["pg_down_s"], plan["pg_mode"])
        hit.set()
        if fault not in KILLS:
            return
        # the operator: wait until the old run is gone (every process), then start again
        old = run.pid
        res.exit_code = run.wait_exit(self.knobs.exit_timeout_s)
        res.exit_s = round(time.monotonic() - marks["fault"], 3)
        log = run.log()
        if fault in SUPERVISED:
            assert res.exit_code == 1 and "exited unexpectedly" in log, \
                f"{fault} killed: supervisor exit {res.exit_code}"
            left = run.segments()
            assert not left, f"the supervisor exited and left segments: {left}"
        else:
            assert res.exit_code == -9, res.exit_code
        left = run.segments()
        archive_journal(run.data_dir, self.archive)     # a start may prune old segments
        t = time.monotonic()
        run.start()
        res.start_s = round(time.monotonic() - t, 3)
        still = [n for n in run.segments() if not n.startswith(f"ringex-{run.pid}-")]
        assert not still, f"segments of run {old} left after the restart: {still}"
        # (another exchange starting on this machine may sweep them first)
        res.swept = len(left)

    async def _probe(self, timeout: float) -> float:
        """A fresh connection places an order (then cancels it) until one is acknowledged;
        the monotonic time of that ack."""
        deadline = time.monotonic() + timeout
        account = self.probe_account
        last = ""
        while time.monotonic() < deadline:
            try:
                c = await connect(self.run.url, self.keys[account], timeout=5)
            except (ClientError, OSError) as exc:
                last = f"connect: {type(exc).__name__} {exc}"
                await asyncio.sleep(0.1)
                continue
            try:
                res = await c.place("BTC-USD", "buy", LOT["BTC-USD"],
                                    MID["BTC-USD"] - Decimal("0.04"))
                if isinstance(res, Ack):
                    t = time.monotonic()
                    self.seen.acks[res.order_id] = (account, res)
                    done = await c.cancel("BTC-USD", res.order_id)
                    if isinstance(done, Cancelled):
                        self.seen.note(done)
                    return t
                last = f"place: {res}"
            except ClientError as exc:
                last = f"place: {exc}"
            finally:
                await close_noting(c, self.seen)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no order acknowledged within {timeout:.0f} s of the fault "
                             f"(last: {last})")

    def _check(self, res: RoundResult) -> None:
        run = self.run
        live = _run(ask_engine(run, self.keys))
        deadline = time.monotonic() + self.knobs.catchup_timeout_s
        while run.db_last_batch() != run.journal_last_batch():
            assert time.monotonic() < deadline, \
                (f"database at batch {run.db_last_batch()}, journal at "
                 f"{run.journal_last_batch()} after {self.knobs.catchup_timeout_s:.0f} s")
            time.sleep(0.1)
        archive_journal(run.data_dir, self.archive)
        rep = self.replay.advance()
        res.lost, res.duplicated, what = count_losses(run, rep, self.seen)
        res.orders_checked = res.acks_total = len(self.seen.acks)
        assert res.lost == res.duplicated == 0, what[:10]
        res.counts = check_converged(run, rep, self.keys, self.seen, live)
        with run.repo() as repo:
            for r in repo._fetch("SELECT session FROM orders WHERE created_seq > 0 "
                                 "ORDER BY order_id DESC LIMIT ?", (max(res.acks, 1),)):
                g = f"g{int(r['session']) >> 24}"
                res.gateway_orders[g] = res.gateway_orders.get(g, 0) + 1


def _run(coro, timeout: float = 120.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))
