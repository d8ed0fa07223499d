"""The supervisor: ``ringex run`` as one object that starts, watches and stops every process.

    code = Supervisor(RunOptions(data_dir="ringex-data")).run()    # blocks until stopped

Start order: lock the data dir, prepare the repository (schema, config, admin key, start
state, pending transfers), create the rings and the trade queue, start the writer, the
engine, then the gateways; write ``<data-dir>/ringex.run`` when all are ready.

Stop (SIGINT/SIGTERM, or a child that died): gateways first (``stop_event``), then the
engine (drains the command rings, hands off its last batch, snapshots its state: resting
orders stay resting across the restart), then
the writer (flushes), then every ring is unlinked. Each step is bounded in time; a child
that overstays is killed and the exit code is 1. Nothing is ever restarted silently.
The full contract is docs/architecture.md.
"""
from __future__ import annotations

import errno
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from ringex import records
from ringex.config import Config
from ringex.cluster.settings import ClusterOptions
from ringex.core.engine.control import Ctl, EngineProcess, EngineSpec, State
from ringex.core.engine.replication import replication_words
from ringex.core.engine.start import load_start_state
from ringex.core.state_layout import has_engine_state
from ringex.errors import RingexError
from ringex.logs import setup_logging
from ringex import kernel_cache
from ringex.ops import accounts, stale_shm
from ringex.gateway.stats import GatewayStats
from ringex.ops.http_server import NotReady, OpsServer, Routes
from ringex.ops.metrics import Probe
from ringex.ops.datadir import (
    DEFAULT_DATA_DIR, PENDING_FILE, STATE_DIR, db_url, lock_exclusive, remove_run_file,
    write_run_file,
)
from ringex.process import SharedFlag, title_process
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import CLI_WAITS, EventfdWait
from ringex.storage.queue_lock import dead_owner
from ringex.storage.stores import open_repository
from ringex.storage.trade_queue import TradeQueue
from ringex.storage.writer import WriterOptions, WriterProcess

if TYPE_CHECKING:
    from ringex.cluster.replicator import ReplicatorProcess

log = logging.getLogger("ringex.ops.supervisor")

GATEWAY_ENTRY = "ringex.gateway.process:run_gateway"
DEMO_ENTRY = "ringex.ops.demo:run_demo"
RING_CAPACITY = 1 << 16          # command and event rings, records
MD_CAPACITY = 1 << 18            # market-data broadcast ring, records
MD_CAPACITY_ENV = "RINGEX_MD_RING_RECORDS"   # another size (a power of two, >= 1024)


def md_capacity() -> int:
    raw = os.environ.get(MD_CAPACITY_ENV)
    if not raw:
        return MD_CAPACITY
    n = int(raw)
    if n < 1024 or n & (n - 1):
        raise ValueError(f"{MD_CAPACITY_ENV} must be a power of two >= 1024, not {raw}")
    return n


@dataclass
class RunOptions:
    data_dir: str | Path = DEFAULT_DATA_DIR
    config_path: str | None = None          # None: the shipped config
    db_url: str | None = None               # None: <data_dir>/ringex.db (SQLite)
    host: str = "127.0.0.1"
    port: int = 8765                        # 0: pick a free port
    http_port: int | None = None            # web view and metrics; None: port + 1 (0 when
                                            # port is 0), 0: a free port, -1: none
    gateways: int = 1
    wait: str = "spin"                      # busy | spin | eventfd (CLI_WAITS)
    journal_fsync: str = "none"             # none | batch (ringex/core/journal.py)
    cluster_url: str | None = None          # NATS servers (--cluster); None: [cluster] url
    durability: str | None = None           # local | replicated; None: [cluster] durability
    gateway_entry: str = GATEWAY_ENTRY      # "module:function" with run_gateway's signature
    demo: bool = False                      # also run the demo (section 8) ...
    demo_entry: str = DEMO_ENTRY            # ... this "module:function"
    start_timeout_s: float = 300.0          # numba may compile the kernels on a first run
    stop_timeout_s: float = 30.0            # per step of the shutdown

    @property
    def db(self) -> str:
        return db_url(self.data_dir, self.db_url)


class Supervisor:
    def __init__(self, options: RunOptions):
        if options.wait not in CLI_WAITS:
            raise RingexError(f"--wait must be one of {sorted(CLI_WAITS)}")
        if not 1 <= options.gateways <= 63:
            raise RingexError("--gateways must be between 1 and 63")
        self.opt = options
        self.data_dir = Path(options.data_dir).resolve()
        self.run_id = new_run_id()
        self.ctx = multiprocessing.get_context("spawn")
        self.config: Config | None = None
        self.port = options.port
        self.rings: list = []
        self.queue: TradeQueue | None = None
        self.writer: WriterProcess | None = None
        self.engine: EngineProcess | None = None
        self.cluster = ClusterOptions()
        self.replicator: ReplicatorProcess | None = None
        self.replication_words = None            # shared by the engine and the replicator
        self._replicator_restart_at = 0.0
        self.gateways: list[SpawnProcess] = []
        self._gateway_ready: list[SharedFlag] = []   # each gateway's: it listens
        self.gateway_stats: list[GatewayStats] = []
        self.ring_names: dict = {}
        self.demo: SpawnProcess | None = None
        self.http: OpsServer | None = None
        self.admin_key: str | None = None
        self.stop_event = SharedFlag(self.ctx)
        self.wakeups: list[EventfdWait] = []
        self._lock_fd: int | None = None
        self._stop_reason: str | None = None
        self._pending: accounts.PendingBatch | None = None

    # ------------------------------------------------------------------ public
    def run(self) -> int:
        """Start everything, wait for a signal or a failure, stop everything; exit code."""
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 1
        try:
            self.preflight()
        except RingexError as exc:
            log.error("ringex: %s", exc)
            for s, h in old.items():
                signal.signal(s, h)
            return 1
        try:
            self._start()
            code = self._watch()
        except _Interrupted:
            log.info("stopping during start-up (%s)", self._stop_reason)
            code = 0
        except Exception as exc:                         # noqa: BLE001 - report, then stop
            log.error("ringex: %s", exc, exc_info=not isinstance(exc, RingexError))
            code = 1
        finally:
            if not self._shutdown():
                code = 1
            for s, h in old.items():
                signal.signal(s, h)
        return code

    def preflight(self) -> None:
        """Refuse to start, with a RingexError, when another exchange runs on the data dir
        or another process serves the port (several ringex runs on one port would split
        the clients between different exchanges). Takes the data dir's lock; ``run`` calls
        it if the caller did not."""
        if self._lock_fd is None:
            self._lock()
        try:
            if self.port:
                ensure_port_free(self.opt.host, self.port)
            self._listen_http()
        except RingexError:
            self._unlock()
            raise

    def request_stop(self, reason: str = "requested") -> None:
        self._stop_reason = self._stop_reason or reason

    def _check_interrupted(self) -> None:
        if self._stop_reason:
            raise _Interrupted()

    # ------------------------------------------------------------------ start
    def _lock(self) -> None:
        self._lock_fd = lock_exclusive(self.data_dir)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _start(self) -> None:
        o = self.opt
        removed, nbytes = stale_shm.sweep()
        if removed:
            log.warning("removed %d shared-memory segments of runs that are gone (%.1f MB): "
                        "%s", len(removed), nbytes / 2**20, ", ".join(removed))
        self.config = Config.load(o.config_path)
        with open_repository(o.db, self.config) as repo:
            self.admin_key = accounts.ensure_admin_key(self.data_dir, repo)
            for stale in accounts.stale_pending(self.data_dir):
                log.warning("%s is left from a run that died while applying it; it may or "
                            "may not have been applied (check the transfers table), so it is "
                            "NOT applied again; rename it to %s to apply it", stale.name,
                            PENDING_FILE)
            self._pending = accounts.take_pending(self.data_dir, self.run_id)
            try:
                start = load_start_state(
                    repo, self.config, self._known(repo),
                    from_database=not has_engine_state(self.data_dir / STATE_DIR))
            except BaseException:
                self._pending.restore()
                raise
        if self.port == 0:
            self.port = free_port(o.host)
        names = self.ring_names = ring_names(self.run_id, o.gateways)
        for g in names["gateways"]:
            self.rings.append(SpscRing.create(g["cmd"], records.COMMAND, RING_CAPACITY))
            self.rings.append(SpscRing.create(g["evt"], records.EVENT, RING_CAPACITY))
        self.rings.append(BroadcastRing.create(names["md"], records.EVENT, md_capacity(),
                                               role=None))
        wait = CLI_WAITS[o.wait]
        cmd_w = evt_w = None
        if wait == "eventfd":
            cmd_w = [EventfdWait() for _ in range(o.gateways)]
            evt_w = [EventfdWait() for _ in range(o.gateways)]
            self.wakeups = cmd_w + evt_w
        self.queue = TradeQueue()
        if not kernel_cache.is_warm():
            log.warning("first start of this ringex build: compiling its kernels, 1 to 4 "
                        "minutes on 2 cores (then cached in %s)", kernel_cache.cache_folder())
        # Every child is started before any is waited for: each spends its start-up
        # importing and loading its kernels, so on two cores they overlap. Nothing needs
        # another ready to start: the rings and the queue exist, commands wait in the rings.
        self.writer = WriterProcess(self.queue, o.db, self.config, WriterOptions(), self.ctx)
        with _sigint_blocked():                 # children inherit the mask: Ctrl-C is ours
            self.writer.process.start()
        self.cluster = self.config.cluster.with_overrides(o.cluster_url, o.durability)
        if self.cluster.enabled:
            self.replication_words = replication_words(self.ctx)
            self._launch_replicator()
        spec = EngineSpec(cmd_rings=[g["cmd"] for g in names["gateways"]],
                          evt_rings=[g["evt"] for g in names["gateways"]], md_ring=names["md"],
                          config_path=o.config_path, wait=wait, start=start,
                          cmd_wakeups=cmd_w, evt_wakeups=evt_w,
                          state_dir=str(self.data_dir / STATE_DIR),
                          journal_fsync=o.journal_fsync,
                          replication=self.replication_words,
                          durability=self.cluster.durability if self.cluster.enabled
                          else "local")
        self.engine = EngineProcess(spec, self.queue, self.ctx)
        with _sigint_blocked():
            self.engine.process.start()
        if self.cluster.enabled:
            # no client before the replicator found the stream ours (fencing); the engine
            # loads meanwhile (a fenced start journals only its own first entry locally)
            try:
                self._await_replicator()
            except BaseException:
                self._pending.restore()
                raise
            self._check_interrupted()
        self._launch_gateways(names, wait, cmd_w, evt_w)
        self.writer.wait_running(timeout=o.start_timeout_s)
        self._check_interrupted()
        log.info("writer started (pid %d) on %s", self.writer.process.pid, o.db)
        try:
            self.engine.wait_running(timeout=o.start_timeout_s)
        except BaseException:
            self._pending.restore()
            raise
        self._pending.done()
        self._check_interrupted()
        log.info("engine started (pid %d, %d gateway rings, wait %s)",
                 self.engine.process.pid, o.gateways, wait)
        self._wait_gateways()
        if o.demo:
            self._start_demo()
        self._write_run_file()
        log.info("ringex %s running: ws://%s:%d/ws (data %s)", self.run_id, o.host, self.port,
                 self.data_dir)
        if self.http is not None:
            log.info("web view and metrics: %s (/metrics, /healthz)", self.http.url)

    def _start_replicator(self) -> None:
        """Start the replicator and wait until it appends (a restart after it died)."""
        self._launch_replicator()
        self._await_replicator()

    def _launch_replicator(self) -> None:
        """Spawn the replicator (before the engine: with durability replicated the engine's
        first group waits for it)."""
        from ringex.cluster.lease import markets_id
        from ringex.cluster.replicator import ReplicatorProcess   # loads numba: cluster only
        assert self.config is not None
        self.replicator = ReplicatorProcess(self.cluster, self.data_dir / STATE_DIR,
                                            self.replication_words, self.ctx,
                                            markets=markets_id(self.config))
        with _sigint_blocked():
            self.replicator.launch()

    def _await_replicator(self) -> None:
        """Until the replicator appends; a fenced stream ends the start-up here."""
        c = self.cluster
        assert self.replicator is not None
        try:
            self.replicator.wait_started(timeout=c.connect_timeout_ms / 1000 + 30)
        except RuntimeError:
            if self.replicator.fenced:
                raise RingexError(f"fenced: the stream {c.stream_name} belongs to another "
                                  "primary (see the replicator's error above)") from None
            raise RingexError(f"the replicator did not start: is NATS at {c.url} up with "
                              "JetStream?") from None
        log.info("replicator started (pid %d): %s, durability %s",
                 self.replicator.process.pid, c.stream_name, c.durability)

    def _replicator_died(self) -> bool:
        """The replicator exited while running: a fenced one stops ringex (True); any other
        is started again (the engine waits meanwhile: nothing unreplicated leaves)."""
        rep = self.replicator
        assert rep is not None
        if rep.fenced:
            log.error("fenced: another writer appended to the stream %s; stopping ringex",
                      self.cluster.stream_name)
            return True
        now = time.monotonic()
        if now < self._replicator_restart_at:
            return False
        self._replicator_restart_at = now + 1.0
        log.warning("replicator (pid %s) exited with code %s; starting a new one",
                    rep.process.pid, rep.process.exitcode)
        rep.kill()
        try:
            self._start_replicator()
        except RingexError as exc:
            if self.replicator is not None and self.replicator.fenced:
                return True
            log.error("%s; trying again", exc)
        return False

    def _launch_gateways(self, names, wait, cmd_w, evt_w) -> None:
        o = self.opt
        self.gateway_stats = [GatewayStats.alloc(self.ctx) for _ in names["gateways"]]
        for i, g in enumerate(names["gateways"]):
            ready = SharedFlag(self.ctx)
            kwargs = dict(index=i, ring_names={"cmd": g["cmd"], "evt": g["evt"],
                                                "md": names["md"]},
                          config_path=o.config_path, db_url=o.db, host=o.host, port=self.port,
                          data_dir=str(self.data_dir), queue=self.queue,
                          stop_event=self.stop_event, wait_strategy=wait, ready_event=ready,
                          wakeups={"cmd": cmd_w[i], "evt": evt_w[i]} if cmd_w else None,
                          stats=self.gateway_stats[i])
            p = self.ctx.Process(target=_child_main, name=f"ringex-gateway-{i}",
                                 args=(o.gateway_entry, kwargs, f"gateway {i}"))
            with _sigint_blocked():
                p.start()
            self.gateways.append(p)
            self._gateway_ready.append(ready)

    def _wait_gateways(self) -> None:
        o = self.opt
        deadline = time.monotonic() + o.start_timeout_s
        for i, (p, ready) in enumerate(zip(self.gateways, self._gateway_ready)):
            while not ready.wait(0.05):
                if not p.is_alive():
                    raise RingexError(f"gateway {i} exited during start-up "
                                      f"(exit code {p.exitcode})")
                self._check_interrupted()
                if time.monotonic() > deadline:
                    raise RingexError(f"gateway {i} did not become ready")
        log.info("%d gateway(s) listening on %s:%d", len(self.gateways), o.host, self.port)

    def _start_demo(self) -> None:
        kwargs = dict(url=f"ws://{self.opt.host}:{self.port}/ws", db_url=self.opt.db,
                      data_dir=str(self.data_dir), config_path=self.opt.config_path,
                      admin_key=self.admin_key, stop_event=self.stop_event)
        self.demo = self.ctx.Process(target=_child_main, name="ringex-demo",
                                     args=(self.opt.demo_entry, kwargs, "demo"))
        with _sigint_blocked():
            self.demo.start()
        log.info("demo started (pid %d)", self.demo.pid)

    def _known(self, repo) -> list[tuple[int, int, int, int]]:
        """The pending transfers whose account exists; the others are logged and dropped
        (``ringex accounts`` refuses them, but a file from an older version, or one edited
        by hand, may hold some)."""
        out = []
        assert self._pending is not None and self.config is not None
        for t in self._pending.transfers(self.config):
            if repo.has_account(t[1]):
                out.append(t)
            else:
                log.error("pending transfer to account %d dropped: no such account "
                          "(%s)", t[1], t)
        return out

    def _listen_http(self) -> None:
        """Bind the web view and metrics endpoint (``http_port``); it answers at once,
        ``/healthz`` with 503 until every process runs."""
        port = self.opt.http_port
        if port is None:
            port = self.port + 1 if self.port else 0
        if port < 0 or self.http is not None:
            return
        probe = Probe(self)
        routes = Routes(config=self._page_config, metrics=probe.prometheus_text,
                        health=probe.health, status=probe.status)
        try:
            self.http = OpsServer(self.opt.host, port, routes).start()
        except OSError as exc:
            raise RingexError(f"cannot serve the web view on {self.opt.host}:{port}: "
                              f"{exc.strerror}; choose another --http-port") from None

    def _page_config(self) -> dict:
        """/config.json: what the web view needs to connect and show the symbols."""
        if self.config is None or not self.gateways:
            raise NotReady("starting")
        return {"ws_port": self.port, "ws_path": "/ws",
                "symbols": [{"symbol": s.name, "base": s.base.name, "quote": s.quote.name,
                             "tick": str(s.tick), "lot": str(s.lot)}
                            for s in self.config.symbols]}

    def ring_roles(self) -> list[tuple[str, SpscRing | BroadcastRing]]:
        """The run's rings by role: ``g0-cmd``, ``g0-evt``, ..., ``md``."""
        names = [f"g{i}-{kind}" for i in range(len(self.ring_names.get("gateways", ())))
                 for kind in ("cmd", "evt")] + ["md"]
        return list(zip(names, self.rings))

    def _write_run_file(self) -> None:
        write_run_file(self.data_dir, {
            "pid": os.getpid(), "run": self.run_id, "host": self.opt.host, "port": self.port,
            "url": f"ws://{self.opt.host}:{self.port}/ws", "gateways": len(self.gateways),
            "db": self.opt.db, "http": self.http.url if self.http is not None else None})

    # ------------------------------------------------------------------ watch
    def _on_signal(self, signum, frame) -> None:
        self.request_stop(signal.Signals(signum).name)

    def children(self) -> list[tuple[str, BaseProcess]]:
        """The started children, by role name."""
        assert self.writer is not None and self.engine is not None     # started
        out = [("writer", self.writer.process), ("engine", self.engine.process)]
        out += [(f"gateway {i}", p) for i, p in enumerate(self.gateways)]
        if self.demo is not None:
            out.append(("demo", self.demo))
        return out

    def _watch(self) -> int:
        children = self.children()
        engine = self.engine
        assert engine is not None                                       # started
        stale_logged = False
        while not self._stop_reason:
            rep = self.replicator
            sentinels = [p.sentinel for _, p in children]
            if rep is not None and rep.process.is_alive():
                sentinels.append(rep.process.sentinel)
            multiprocessing.connection.wait(sentinels, timeout=0.25)
            if rep is not None and not rep.process.is_alive() and self._replicator_died():
                return 1
            for name, p in children:
                if p is self.demo and p.exitcode == 0:
                    self.request_stop("the demo finished")
                    break
                if not p.is_alive():
                    log.error("%s (pid %s) exited unexpectedly with code %s; stopping ringex",
                              name, p.pid, p.exitcode)
                    return 1
            beat = engine.ctl[Ctl.HEARTBEAT_NS]
            if beat and time.monotonic_ns() - beat > 10_000_000_000 and not stale_logged:
                log.warning("engine heartbeat is %.1f s old", (time.monotonic_ns() - beat) / 1e9)
                stale_logged = True
        log.info("stopping (%s)", self._stop_reason)
        return 0

    # ------------------------------------------------------------------ stop
    def _stop_engine(self, timeout: float) -> bool:
        """Stop the engine (drain, hand off, snapshot); True if it stopped cleanly. Killed
        at once when the trade queue is locked by a dead process: its last hand-off would
        block for good, and the journal has every batch."""
        engine = self.engine
        assert engine is not None
        owner = dead_owner(self.queue) if self.queue is not None else None
        if owner is not None and engine.process.is_alive():
            log.error("the trade queue is locked by thread %d, which died inside a put or "
                      "get; killing the engine without a clean stop (the next start "
                      "recovers from the journal and refills the database)", owner)
            engine.kill()
            return False
        if engine.process.is_alive():
            code = engine.stop(timeout=timeout)
            return code == 0 and engine.state == State.STOPPED
        return _reap(engine.process, "engine")

    def _shutdown(self) -> bool:
        """Stop in order (gateways, engine, writer, replicator), unlink rings; True if all
        went clean."""
        clean = True
        t = self.opt.stop_timeout_s
        self.stop_event.set()
        deadline = time.monotonic() + t
        others = [(f"gateway {i}", p) for i, p in enumerate(self.gateways)]
        if self.demo is not None:
            others.append(("demo", self.demo))
        for name, p in others:
            p.join(max(0.0, deadline - time.monotonic()))
            clean &= _reap(p, name)
        if self.engine is not None:
            clean &= self._stop_engine(t)
        if self.writer is not None:
            code = self.writer.stop(timeout=2 * t) if self.writer.process.is_alive() else \
                self.writer.process.exitcode
            if code != 0:
                log.error("writer exited with code %s", code)
                clean = False
        if self.replicator is not None:
            # last: it sends the engine's last groups, then releases the lease, and a
            # standby taking over must find the database complete (no writer beside its own)
            code = self.replicator.stop(timeout=t) if self.replicator.process.is_alive() \
                else self.replicator.process.exitcode
            if code != 0:
                log.error("replicator exited with code %s", code)
                clean = False
        for r in self.rings:
            r.close()
        self.rings = []
        for w in self.wakeups:
            w.close()
        if self.queue is not None:
            self.queue.close()
        remove_run_file(self.data_dir)
        if self.http is not None:
            self.http.stop()
            self.http = None
        self._unlock()
        log.info("ringex stopped%s", "" if clean else " (with errors)")
        return clean


class _Interrupted(Exception):
    """SIGINT/SIGTERM arrived while starting: stop what runs, exit 0."""


@contextmanager
def _sigint_blocked():
    """Block SIGINT while starting a child: it inherits the mask, so a Ctrl-C (sent to the
    whole process group) never reaches it, not even before it installs its handlers. The
    supervisor gets the deferred signal when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _reap(p: BaseProcess, name: str) -> bool:
    """Join a child that should have exited; kill it if not. True if it exited cleanly."""
    if p.is_alive():
        log.error("%s did not stop in time; killing it", name)
        p.kill()
        p.join(5)
        return False
    p.join(0)
    if p.exitcode not in (0, None):
        log.error("%s exited with code %s", name, p.exitcode)
        return False
    return True


def new_run_id() -> str:
    """``<pid>-<4 hex>``: unique among live runs, and it names the creating process (tools
    that clean /dev/shm, like the test suite's hygiene check, judge a segment by that pid)."""
    return f"{os.getpid()}-{secrets.token_hex(2)}"


def ring_names(run_id: str, gateways: int) -> dict:
    """The names of one run's rings (docs/architecture.md, section 1)."""
    return {"gateways": [{"cmd": f"ringex-{run_id}-g{i}-cmd", "evt": f"ringex-{run_id}-g{i}-evt"}
                         for i in range(gateways)],
            "md": f"ringex-{run_id}-md"}


def ensure_port_free(host: str, port: int) -> None:
    """RingexError if a socket already listens on ``host:port`` (any process, any
    SO_REUSEPORT setting). The probe binds without SO_REUSEPORT, which a listener refuses,
    and with SO_REUSEADDR, which lets it past connections lingering in TIME_WAIT."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RingexError(f"port {port} on {host} is in use by another process; "
                                  "stop it or choose another --port") from None
            raise RingexError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def free_port(host: str) -> int:
    """A port nothing listens on right now (resolves ``--port 0`` once for all gateways)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _child_main(entry: str, kwargs: dict, name: str) -> None:
    """A gateway or demo process: signals as the contract says (SIGINT ignored, SIGTERM
    sets stop_event), a thread that sets stop_event if the supervisor dies, the entry."""
    setup_logging()
    title_process()
    stop_event = kwargs["stop_event"]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    ppid = os.getppid()

    def watch_parent() -> None:
        while not stop_event.wait(0.5, poll_s=0.1):     # rare wake-ups: idle costs little
            if os.getppid() != ppid:
                log.error("%s: the supervisor died; stopping", name)
                stop_event.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    module, _, func = entry.partition(":")
    getattr(importlib.import_module(module), func)(**kwargs)
