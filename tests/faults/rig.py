"""Fault-test rig: ``ringex run`` on a data dir that survives restarts, ways to kill it,
a live order stream, and the convergence checks (database == engine == journal replay).

    run = Run(tmp_path / "data").start()      # own process group; pids from the log
    run.kill_engine() / run.kill_writer() / run.kill_group()
    run.wait_exit(); run.start()              # same data dir, same database
    run.cleanup()                             # always: kill the group, unlink its rings

Every ``ringex run`` gets its own session (process group), so ``kill_group`` is one
``killpg`` and ``cleanup`` can still reach children whose supervisor is gone.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from ringex.config import Config
from ringex.core.journal import read_journal
from ringex.core.order_service import OrderService
from ringex.client import (Ack, Cancelled, ClientError, Fill, Reject, connect)
from ringex.storage.stores import open_repository
from ringex import records
from ringex.ring.shm import unlink as shm_unlink
from tests.e2e.live_exchange import UNLIMITED

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
CONFIG = Config.default()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False




def _live_processes():
    """(pid, /proc/<pid>/stat fields after the name) of every process not a zombie."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            yield int(entry), fields


async def close_noting(c, seen: "Seen") -> None:
    """Close a client (the server may be gone) and note the events it still holds."""
    try:
        await asyncio.wait_for(c.close(), 5)
    except Exception:                            # noqa: BLE001 - the server may be gone
        pass
    for ev in c.pending_events():
        seen.note(ev)


class Run:
    """``ringex run`` as a subprocess, restartable on the same data dir and database."""

    def __init__(self, data_dir: Path, db: str | None = None, gateways: int = 1,
                 args: tuple[str, ...] = ()):
        self.data_dir = Path(data_dir)
        self.args = args                    # more ``ringex run`` options (--cluster ...)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = db or str(self.data_dir / "ringex.db")
        self.gateways = gateways
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.url = ""
        self.admin_key = ""
        self.log_path: Path | None = None
        self.pgids: set[int] = set()
        self.engine_pid = self.writer_pid = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "Run":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        (self.data_dir / "ringex.run").unlink(missing_ok=True)
        self.starts += 1
        self.log_path = self.data_dir / f"run-{self.starts}.log"
        cmd = [sys.executable, "-c", "from ringex.cli import main; main()", "run",
               "--data-dir", str(self.data_dir), "--db", self.db, "--port", "0",
               "--gateways", str(self.gateways), "--wait", "spin", *self.args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=REPO,
                                         start_new_session=True,
                                         env={**os.environ, "RINGEX_SESSION_LIMITS": UNLIMITED})
        self.pgids.add(self.proc.pid)
        run_file = self.data_dir / "ringex.run"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not run_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ringex run did not start (exit {self.proc.poll()}):\n"
                                     + self.log())
            time.sleep(0.05)
        info = json.loads(run_file.read_text())
        self.url = info["url"]
        self.admin_key = (self.data_dir / "admin.key").read_text().strip()
        text = self.log()
        self.writer_pid = int(re.search(r"writer started \(pid (\d+)\)", text).group(1))
        self.engine_pid = int(re.search(r"engine started \(pid (\d+)", text).group(1))
        return self

    def recovery(self) -> dict:
        """What this start's engine logged about recovery (batch, snapshot, replayed,
        resent), or {} on a first start."""
        m = re.search(r"recovered batch (\d+) \(snapshot (\d+) \+ (\d+) journal entries\); "
                      r"(\d+) entries resent", self.log())
        return dict(zip(("batch", "snapshot", "replayed", "resent"),
                        map(int, m.groups()))) if m else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> int:
        """SIGTERM and wait for the supervisor's exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.cleanup()
            raise AssertionError(f"ringex run did not exit within {timeout} s:\n"
                                 + self.log()) from None
        # every child of the run must be gone too (they watch their parent)
        deadline = time.monotonic() + 15
        while self._members() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self._members(), f"processes left: {self._members()}"
        return code

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def kill_engine(self) -> None:
        self.kill(self.engine_pid)

    def kill_writer(self) -> None:
        self.kill(self.writer_pid)

    def kill_group(self) -> list[str]:
        """``kill -9`` every process of the run at once; the shared-memory segments it
        leaves behind (the next start sweeps them)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while self._members() and time.monotonic() < deadline:
            time.sleep(0.02)
        mine = f"ringex-{self.proc.pid}-"
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith(mine))

    # ------------------------------------------------------------ more faults (chaos)
    @property
    def pid(self) -> int:
        """The pid of the current (or last) ``ringex run``: its supervisor."""
        assert self.proc is not None, "never started"
        return self.proc.pid

    def children(self) -> dict[str, int]:
        """The live supervisor's children by role (``writer``, ``engine``, ``gateway 0``,
        ...; from their process titles, ``ringex-gateway-0 (run <pid>)``)."""
        out = {}
        for pid, fields in _live_processes():
            if int(fields[1]) != self.pid:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            m = re.match(r"ringex-(writer|engine|gateway-\d+) \(run", title)
            if m:
                out[m.group(1).replace("-", " ")] = pid
        return out

    def kill_gateway(self, index: int = 0) -> int:
        """``kill -9`` gateway ``index``; its pid."""
        pid = self.children()[f"gateway {index}"]
        self.kill(pid)
        return pid

    def kill_supervisor(self) -> None:
        """``kill -9`` of ``ringex run`` itself; its children notice and exit."""
        self.kill(self.pid)

    def stall_writer(self, seconds: float) -> None:
        """SIGSTOP the writer for ``seconds``, then SIGCONT."""
        os.kill(self.writer_pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.writer_pid, signal.SIGCONT)

    def segments(self) -> list[str]:
        """/dev/shm segments named after any of our runs' supervisors."""
        return sorted(n for n in os.listdir("/dev/shm")
                      for pgid in self.pgids if n.startswith(f"ringex-{pgid}-"))

    def _members(self) -> list[int]:
        """Live processes of any of our runs' process groups."""
        return [pid for pid, fields in _live_processes() if int(fields[2]) in self.pgids]

    def unlink_rings(self) -> list[str]:
        names = []
        for pgid in self.pgids:
            for n in os.listdir("/dev/shm"):
                if n.startswith(f"ringex-{pgid}-"):
                    shm_unlink(n)
                    names.append(n)
        return names

    def cleanup(self) -> None:
        """Kill whatever is left of every start (whole groups), unlink their rings."""
        for pgid in self.pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while self._members() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.unlink_rings()

    # ------------------------------------------------------------ database
    def repo(self):
        return open_repository(self.db)

    def db_last_batch(self) -> int:
        with self.repo() as r:
            return r.last_batches().get(0, 0)

    def journal_last_batch(self) -> int:
        last = 0
        for seg in sorted((self.data_dir / "state" / "journal").glob("seg-*.rxj")):
            _, scan = read_journal(seg)
            last = max(last, scan.last_batch)
        return last


# ---------------------------------------------------------------- accounts and load
ASSETS = {"USD": "1000000", "BTC": "100", "ETH": "1000"}
SYMBOLS = ("BTC-USD", "ETH-USD")
MID = {"BTC-USD": Decimal("100.00"), "ETH-USD": Decimal("50.00")}
LOT = {"BTC-USD": Decimal("0.0001"), "ETH-USD": Decimal("0.001")}


@dataclass
class Seen:
    """What the clients were told: acks, fills, cancels, deposits."""
    acks: dict[int, tuple[int, Ack]] = field(default_factory=dict)      # id -> (account, ack)
    filled: dict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    done: dict[int, str] = field(default_factory=dict)                  # id -> filled|cancelled
    deposits: dict[str, int] = field(default_factory=lambda: defaultdict(int))   # asset -> minor
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def answered(self, c, account: int, symbol: str, res, mine: list) -> None:
        """A trader's bookkeeping after each request: its answer (an acknowledged order
        joins ``mine``), then every push received so far."""
        if isinstance(res, Ack):
            self.acks[res.order_id] = (account, res)
            mine.append((symbol, res.order_id))
        for ev in c.pending_events():
            self.note(ev)
        if isinstance(res, Cancelled):
            self.note(res)

    def note(self, ev) -> None:
        if isinstance(ev, Fill):
            self.filled[ev.order_id] += ev.qty
            if ev.leaves == 0:
                self.done[ev.order_id] = "filled"
        elif isinstance(ev, Cancelled):
            self.done[ev.order_id] = "cancelled"


def make_accounts(run: Run, n: int = 3) -> dict[int, str]:
    """n accounts straight into the database: {account: api key}."""
    out = {}
    with run.repo() as repo:
        for i in range(n):
            account = repo.add_account(f"trader{i}")
            out[account] = repo.add_api_key(account)
    return out


async def fund(run: Run, accounts, seen: Seen) -> None:
    admin = await connect(run.url, run.admin_key)
    try:
        for account in accounts:
            for asset, amount in ASSETS.items():
                res = await admin.deposit(account, asset, amount)
                assert not isinstance(res, Reject), res
                seen.deposits[asset] += int(Decimal(amount) * 10 ** CONFIG.asset(asset).scale)
    finally:
        await admin.close()


async def _trader(url: str, key: str, account: int, seed: int, seen: Seen,
                  stop: asyncio.Event, cancel_on_disconnect: bool = False,
                  timeout: float = 5.0) -> None:
    """Crossing limit orders around MID on two symbols, some cancels, until stopped or the
    connection fails (the fault)."""
    rng = random.Random(seed)
    try:
        c = await connect(url, key, timeout=timeout,
                          cancel_on_disconnect=cancel_on_disconnect)
    except (ClientError, OSError) as exc:
        seen.errors.append(f"connect: {exc}")
        return
    mine: list[tuple[str, int]] = []
    try:
        while not stop.is_set():
            seen.requests += 1
            if mine and rng.random() < 0.25:
                symbol, oid = mine.pop(rng.randrange(len(mine)))
                res = await c.cancel(symbol, oid)
            else:
                symbol = rng.choice(SYMBOLS)
                side = rng.choice(("buy", "sell"))
                price = MID[symbol] + Decimal(rng.randint(-4, 4)) / 100
                qty = LOT[symbol] * rng.randint(1, 20)
                res = await c.place(symbol, side, qty, price)
            seen.answered(c, account, symbol, res, mine)
    except ClientError as exc:
        seen.errors.append(f"{account}: {exc.code}")
    finally:
        await close_noting(c, seen)


async def stream(run: Run, keys: dict[int, str], seen: Seen, fault, *,
                 warmup_s: float = 1.5, tail_s: float = 0.0, timeout: float = 5.0) -> None:
    """Clients trade; after ``warmup_s`` call ``fault()`` (in a thread); they stop when
    their connection fails (or a reply takes over ``timeout``), or ``tail_s`` after the
    fault."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_trader(run.url, k, a, 1000 * run.starts + a, seen, stop,
                                         timeout=timeout))
             for a, k in keys.items()]
    await asyncio.sleep(warmup_s)
    await asyncio.to_thread(fault)
    if tail_s:
        await asyncio.sleep(tail_s)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30 + timeout)


def pg_outage(cluster, seconds: float, mode: str = "fast") -> None:
    """Stop a throwaway PostgreSQL (tests.db.Cluster; ``mode`` fast or immediate), keep
    it down for ``seconds``, start it again."""
    cluster.stop(mode)
    try:
        time.sleep(seconds)
    finally:
        cluster.start()


def run_async(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------- what the engine says
@dataclass
class Live:
    open_orders: dict[int, dict[int, Decimal]]                # account -> {order id: open qty}
    balances: dict[int, dict[str, Decimal]]                   # account -> asset -> total
    books: dict[str, tuple[list, list]]                       # symbol -> (bids, asks)


async def ask_engine(run: Run, keys: dict[int, str]) -> Live:
    live = Live({}, {}, {})
    for account, key in keys.items():
        c = await connect(run.url, key)
        try:
            live.open_orders[account] = {o.order_id: o.qty for o in await c.open_orders()}
            live.balances[account] = {a: b.available + b.locked
                                      for a, b in (await c.balances()).items()}
        finally:
            await c.close()
    c = await connect(run.url)
    try:
        from ringex.client import BookSnapshot
        for symbol in SYMBOLS:
            await c.subscribe("book", symbol)
            snap = await c.next_event(BookSnapshot)
            live.books[symbol] = (snap.bids, snap.asks)
    finally:
        await c.close()
    return live


# ---------------------------------------------------------------- journal replay
@dataclass
class Replay:
    svc: OrderService
    events: np.ndarray
    last_batch: int


def archive_journal(data_dir: Path, archive: Path) -> None:
    """Copy the run's journal segments into ``archive`` (segments only grow, so copies
    made after each run add up to the whole journal even after the engine prunes)."""
    archive.mkdir(parents=True, exist_ok=True)
    for seg in (Path(data_dir) / "state" / "journal").glob("seg-*.rxj"):
        shutil.copyfile(seg, archive / seg.name)


def replay_journal(data_dir: Path, journal_dir: Path | None = None) -> Replay:
    """A fresh OrderService fed every journal entry from batch 1 (no snapshot)."""
    svc = OrderService(CONFIG)
    evs, last = [], 0
    folder = journal_dir or Path(data_dir) / "state" / "journal"
    segs = sorted(folder.glob("seg-*.rxj"))
    for seg in segs:
        entries, _ = read_journal(seg)
        for batch, cmds in entries:
            assert batch == last + 1, f"journal gap: {last} then {batch} in {seg.name}"
            evs.append(svc.submit(cmds).copy())
            last = batch
    events = np.concatenate(evs) if evs else records.events(0)
    return Replay(svc, events, last)


def replay_books(rep: Replay) -> dict[str, tuple[list, list]]:
    out = {}
    for name in SYMBOLS:
        s = CONFIG.symbol(name)
        sides = []
        for side in (0, 1):
            sides.append([(s.ticks_to_price(p), s.lots_to_qty(q))
                          for p, q, _ in rep.svc.levels(s.id, side)])
        out[name] = tuple(sides)
    return out


# ---------------------------------------------------------------- the checks
def check_converged(run: Run, rep: Replay, accounts, seen: Seen | None = None,
                    live: Live | None = None) -> dict:
    """The stopped run's database against the journal replay (and what clients saw and
    what the live engine reported). Returns a few counts for the test to print."""
    assert run.db_last_batch() == rep.last_batch, "database does not hold the whole journal"
    ev = rep.events
    kind = ev["kind"]
    takers = ev[(kind == records.EventKind.FILL) & ((ev["info"] & records.INFO_MAKER) == 0)]
    acks = ev[kind == records.EventKind.ACK]
    with run.repo() as repo:
        f = repo._fetch
        # trades: exactly the replay's matches, once each
        db_trades = f("SELECT symbol, seq, qty, taker_order_id, maker_order_id FROM trades")
        keys = [(r["symbol"], r["seq"]) for r in db_trades]
        assert len(keys) == len(set(keys)), "duplicate (symbol, seq) in trades"
        assert set(keys) == {(int(e["symbol"]), int(e["seq"])) for e in takers}, \
            "stored trades differ from the journal's"
        # orders: one row per ACK; filled == the sum of its trades
        orders = {r["order_id"]: r for r in repo.orders()}
        assert set(orders) == {int(i) for i in acks["order_id"]}, "orders differ from acks"
        fills = defaultdict(int)
        for r in db_trades:
            fills[r["taker_order_id"]] += r["qty"]
            fills[r["maker_order_id"]] += r["qty"]
        bad = [o for o, r in orders.items() if r["filled"] != fills.get(o, 0)]
        assert not bad, f"orders whose filled != sum of their trades: {bad[:10]}"
        # live orders in the database == the replayed engine's open orders
        for account in accounts:
            db_live = {o: r["leaves"] for o, r in orders.items() if r["account"] == account
                       and r["status"] in ("open", "partially_filled")}
            eng = {o["order_id"]: o["leaves"] for o in rep.svc.open_orders(account)}
            assert db_live == eng, f"account {account}: live orders differ"
        # per-symbol sequences: stored events cover 1..max with no gap and no repeat
        for s in CONFIG.symbols:
            seqs = [r["created_seq"] for r in orders.values() if r["symbol"] == s.id]
            seqs += [r["seq"] for r in f("SELECT seq FROM order_changes WHERE symbol = ?",
                                         (s.id,))]
            for r in db_trades:
                if r["symbol"] == s.id:
                    seqs += [r["seq"], r["seq"] + 1]
            if seqs:
                assert sorted(seqs) == list(range(1, max(seqs) + 1)), \
                    f"{s.name}: stored sequence has gaps or repeats"
        # balances: conserved per asset, and per account equal to the engine's
        totals = defaultdict(int)
        per_account = defaultdict(dict)
        for r in repo.balances():
            totals[r["asset_name"]] += int(r["total"])
            per_account[int(r["account"])][r["asset_name"]] = int(r["total"])
        deposits = defaultdict(int)
        for r in f("SELECT a.name AS asset, CAST(SUM(t.amount) AS BIGINT) AS amount "
                   "FROM transfers t JOIN assets a ON a.asset_id = t.asset GROUP BY a.name"):
            deposits[r["asset"]] = int(r["amount"])
        if seen is not None:
            assert dict(deposits) == dict(seen.deposits), (deposits, seen.deposits)
        assert {k: v for k, v in totals.items() if v} == \
            {k: v for k, v in deposits.items() if v}, "balances not conserved"
        for account in [0, *accounts]:
            for a in CONFIG.assets:
                avail, locked = rep.svc.balance(account, a.id)
                assert per_account[account].get(a.name, 0) == avail + locked, \
                    f"account {account} {a.name}: database != engine"
    # what clients were told
    if seen is not None:
        missing = [o for o in seen.acks if o not in orders]
        assert not missing, f"acknowledged orders missing from the database: {missing[:10]}"
        for o, (account, ack) in seen.acks.items():
            r = orders[o]
            assert r["account"] == account
            lot = LOT[ack.symbol]
            assert r["filled"] >= seen.filled.get(o, 0) / lot, f"order {o} lost fills"
            if seen.done.get(o) == "filled":
                assert r["status"] == "filled", (o, r)
            elif seen.done.get(o) == "cancelled":
                assert r["status"] == "cancelled", (o, r)
    # what the restarted engine reported
    if live is not None:
        assert live.books == replay_books(rep), "restarted book != journal replay"
        for account, oo in live.open_orders.items():
            want = {}
            for o in rep.svc.open_orders(account):
                s = CONFIG.symbols[o["symbol"]]
                want[o["order_id"]] = s.lots_to_qty(o["leaves"])
            assert oo == want, f"account {account}: open orders != journal replay"
        for account, bal in live.balances.items():
            for a in CONFIG.assets:
                avail, locked = rep.svc.balance(account, a.id)
                got = bal.get(a.name, Decimal(0))
                assert got == Decimal(avail + locked).scaleb(-a.scale), \
                    f"account {account} {a.name}: engine reports {got}"
    return {"batches": rep.last_batch, "trades": len(takers), "orders": len(acks)}
