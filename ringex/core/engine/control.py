"""The engine process seen from outside: its control words, states, spec and handle.

Numba-free, so the supervisor (and anything else that only starts, watches or stops an
engine) never loads the kernels: the spawned child imports ``ringex.core.engine.process``,
which runs the loop.

    eng = EngineProcess(spec, queue).start()     # in the supervisor (or a test)
    ...gateways write COMMANDs into their rings, read EVENTs from theirs...
    eng.stop()                                   # drain, hand off, snapshot, join
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from enum import IntEnum

from ringex.config import Config
from ringex.core.engine.start import StartState
from ringex.process import ChildProcess
from ringex.ring.wait import EventfdWait


DRAIN_TIMEOUT_S = 10.0       # stop: longest wait for gateways to finish writing

# The loop's group-time histogram (published in Ctl.GROUP_HIST): bucket b counts groups
# that took < HIST_FIRST_NS << b (the last one: any longer), then the sum of their times.
HIST_FIRST_NS = 512
HIST_BUCKETS = 16
HIST_WORDS = HIST_BUCKETS + 1


class Ctl(IntEnum):
    """Words of the engine's shared control array (``multiprocessing.RawArray("q")``)."""
    STOP = 0            # supervisor: 1 = drain and stop
    STATE = 1           # engine: State
    PID = 2
    HEARTBEAT_NS = 3    # engine: time.monotonic_ns() of its last housekeeping
    BATCHES = 4
    COMMANDS = 5
    EVENTS = 6
    MD = 7              # market-data records published
    HANDOFFS = 8        # trade-queue payloads sent
    DROPPED_GATEWAYS = 9
    JOURNAL_BYTES = 10  # journal bytes written by this run (0 without a journal)
    JOURNAL_ENTRIES = 11
    JOURNAL_FSYNC_NS = 12   # time in fsync (--fsync batch)
    JOURNAL_DISK_FULL = 13  # 1 while acknowledgements wait for journal disk space
    JOURNAL_DISK_FULL_PAUSES = 14   # such pauses in this run
    JOURNAL_PAUSED_NS = 15  # time spent in them (the current one included)
    GROUP_HIST = 16     # HIST_WORDS words: the loop's group-time histogram
    WORDS = GROUP_HIST + HIST_WORDS


class State(IntEnum):
    STARTING = 0
    RUNNING = 1
    DRAINING = 2
    STOPPED = 3
    FAILED = 4


@dataclass
class EngineSpec:
    """Everything the engine process needs (picklable)."""
    cmd_rings: list[str]                 # per gateway: ringex-<run>-g<i>-cmd
    evt_rings: list[str]                 # per gateway: ringex-<run>-g<i>-evt
    md_ring: str
    config_path: str | None = None       # None: the shipped config
    wait: str = "spin_then_sleep"
    start: StartState = field(default_factory=StartState)
    wallets: bool = True
    drain_timeout_s: float = DRAIN_TIMEOUT_S       # stop: longest wait for the gateways
    cmd_wakeups: list[EventfdWait] | None = None   # eventfd: one per command ring
    evt_wakeups: list[EventfdWait] | None = None   # eventfd: one per event ring
    state_dir: str | None = None         # journal + snapshots (None: no journal)
    journal_fsync: str = "none"          # "none" | "batch" (ringex/core/journal.py)
    replication: object | None = None    # the replicator's shared words (RawArray), or None
    durability: str = "local"            # "local" | "replicated" (docs/cluster.md)

    def config(self) -> Config:
        return Config.load(self.config_path)


def _engine_main(spec: EngineSpec, queue, ctl) -> None:
    from ringex.core.engine.process import engine_main   # the child: loads the kernels
    engine_main(spec, queue, ctl)


class EngineProcess(ChildProcess):
    """A started engine process (spawned): ``start()`` waits until it runs."""

    def __init__(self, spec: EngineSpec, queue=None, ctx=None):
        ctx = ctx or multiprocessing.get_context("spawn")
        self.spec = spec
        self.ctl = ctx.RawArray("q", Ctl.WORDS)
        self.process = ctx.Process(target=_engine_main, name="ringex-engine",
                                   args=(spec, queue, self.ctl))

    @property
    def state(self) -> State:
        return State(self.ctl[Ctl.STATE])

    def start(self, timeout: float = 300.0) -> "EngineProcess":
        """Start; return once the loop runs (kernels loaded, pending transfers applied)."""
        self.process.start()
        return self.wait_running(timeout)

    def wait_running(self, timeout: float = 300.0) -> "EngineProcess":
        """After ``process.start()``: return once the loop runs (``start``'s second half,
        so a caller can start other processes meanwhile)."""
        self._wait_ready(lambda: self.ctl[Ctl.STATE] == State.RUNNING, timeout, "engine")
        return self

    def request_stop(self) -> None:
        self.ctl[Ctl.STOP] = 1

    def stop(self, timeout: float = 30.0) -> int | None:
        """Drain, hand off, snapshot (or, without a journal, cancel resting orders), exit;
        kill if it takes longer."""
        self.request_stop()
        return self._join_or_kill(timeout, "engine")

    def counters(self) -> dict[str, int]:
        return {w.name.lower(): int(self.ctl[w]) for w in Ctl
                if w not in (Ctl.WORDS, Ctl.GROUP_HIST)}
