"""The matcher loop's Python front: one ``Engine`` over attached rings.

    eng = Engine(config, cmd_rings, evt_rings, md_ring, queue, wait="spin_then_sleep")
    eng.restore(start); eng.warm_up()
    eng.snapshot_periodically(store)     # with a journal (ringex/core/engine/snapshots.py)
    while ...:
        r = eng.step()          # loop.step, then what its return code asks for
        eng.idle(r)             # the wait strategy when idle
        eng.snapshot_if_due()   # now and then (housekeeping)

It owns the OrderService (state), the rings and the buffers the kernels share
(``loop.EngineBuffers``), journals every group once ``use_journal`` gave it a journal,
hands processed commands and events to the writer through the trade queue (payloads split
between commands, numbered by the queue's producer), runs internal commands (``inject``:
pending transfers at start; a cancel-all at a stop without a journal), and waits when
idle as the strategy says, and takes the periodic snapshots between steps. A full journal
disk pauses it (``disk_full.DiskFull``: the unjournaled group is held, nothing new is
polled, the write is retried with backoff). The process around it is
``ringex.core.engine.process``.
"""
from __future__ import annotations

import logging
import os
import select
import time

import numpy as np

from ringex import records
from ringex.config import Config
from ringex.core.engine import loop as L
from ringex.core.engine.control import HIST_WORDS
from ringex.core.engine.replication import DURABILITIES, Repl, as_array
from ringex.core.engine.disk_full import DiskFull
from ringex.core.engine.snapshots import PeriodicSnapshots
from ringex.core.engine.start import ENGINE_PRODUCER, StartState
from ringex.core.journal import J_FD, J_WORDS, Journal
from ringex.core.order_book import ORDER_SEQ, SLOT_BITS
from ringex.core.order_service import OrderService
from ringex.core.snapshot import StateStore
from ringex.core.structs import bundle
from ringex.errors import Fenced, StorageError
from ringex.ring.atomics import atomic_store, store_then_fence
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.shm import CONSUMER_SLEEPING
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import WAITS, EventfdWait, SleepSchedule

log = logging.getLogger("ringex.core.engine.process")

HANDOFF_EVENTS = 16384       # events per trade-queue payload (split between commands)
HANDOFF_EVERY_NS = 2_000_000  # hand off at least this often while events wait
MAX_IDLE_POLLS = 4096        # empty polls inside numba before returning to Python
IDLE_RECHECK_POLLS = 16      # the same once idle (spin_then_sleep, eventfd): mostly sleep
MAX_BATCHES = 256            # batches per step call under load
IDLE_SLEEP = SleepSchedule(spin=0, min_sleep=50e-6, max_sleep=500e-6)  # per idle step
EVENTFD_BLOCK_S = 0.05       # eventfd: longest block (the loop's housekeeping needs a turn)
REPL_SLEEP = SleepSchedule(spin=2, min_sleep=20e-6, max_sleep=200e-6)  # per RET_REPLICATING
REPL_SILENT_NS = 2_000_000_000   # a wait this long on a silent replicator is logged
PAUSED_STEP_S = 0.002        # journal disk full: longest sleep per step (housekeeping runs)
RETRY_WAIT_S = 1.0           # the same inside finish_batch/inject (a retry is due by then)


class Engine:
    """The loop's Python front over attached rings (see module docstring)."""

    def __init__(self, config: Config, cmd_rings: list[SpscRing], evt_rings: list[SpscRing],
                 md_ring: BroadcastRing, queue=None, *, wait: str = "spin_then_sleep",
                 wallets: bool = True, first_batch: int = 1,
                 cmd_wakeups: list[EventfdWait] | None = None,
                 evt_wakeups: list[EventfdWait] | None = None,
                 replication=None, durability: str = "local"):
        if wait not in WAITS:
            raise ValueError(f"wait must be one of {sorted(WAITS)}, got {wait!r}")
        if not cmd_rings or len(cmd_rings) != len(evt_rings) or len(cmd_rings) > 63:
            raise ValueError("need 1..63 gateways, one command and one event ring each")
        if wait == "eventfd" and (not cmd_wakeups or not evt_wakeups):
            raise ValueError("wait='eventfd' needs cmd_wakeups and evt_wakeups")
        if durability not in DURABILITIES or (durability != "local" and replication is None):
            raise ValueError(f"durability must be one of {DURABILITIES} ('replicated' needs "
                             f"the replicator's words), got {durability!r}")
        # the replicator's shared words (ringex/core/engine/replication.py); kept alive here
        # because the kernels borrow them
        self.replication = replication
        self.repl = as_array(replication) if replication is not None \
            else np.zeros(Repl.WORDS, np.int64)
        self._repl_waits = 0
        self._repl_wait_since = 0
        self._repl_logged_ns = 0
        self.svc = OrderService(config, wallets=wallets)
        self.wallets = wallets
        self.cmd_rings, self.evt_rings, self.md_ring = cmd_rings, evt_rings, md_ring
        self.wait = wait
        self.cmd_wakeups, self.evt_wakeups = cmd_wakeups, evt_wakeups
        self.producer = queue.producer(ENGINE_PRODUCER, first_batch) if queue is not None else None
        ng = len(cmd_rings)
        self.arrays = L.EngineBuffers(
            cmd_hdr=tuple(r.hdr for r in cmd_rings), cmd_slots=tuple(r.slots for r in cmd_rings),
            evt_hdr=tuple(r.hdr for r in evt_rings), evt_slots=tuple(r.slots for r in evt_rings),
            md_hdr=md_ring.hdr, md_stamps=md_ring.stamps, md_slots=md_ring.slots,
            batch=records.commands(ng * L.BATCH_PER_RING),
            out=self.svc._out,
            acc_cmds=records.commands(L.ACC_COMMANDS),
            acc_ev_end=np.zeros(L.ACC_COMMANDS, np.int64),
            keys=np.zeros(len(self.svc._out) + ng * L.BATCH_PER_RING, np.int64),
            md=records.events(L.MD_BUFFER),
            rpos=np.zeros(ng, np.int64), alive=np.ones(ng, np.int64),
            journal=_no_journal(), journal_head=np.zeros(20, np.uint8),
            journal_iov=np.zeros(4, np.int64),
            grp_end=np.zeros(L.ACC_COMMANDS, np.int64),
            grp_batch=np.zeros(L.ACC_COMMANDS, np.int64),
            st=np.zeros(L.S_WORDS, np.int64),
            hist=np.zeros(HIST_WORDS, np.int64),
            acct_gw=np.zeros(config.limits.max_accounts, np.int64),
            repl=self.repl,
        )
        self.st = self.arrays.st
        self.st[L.S_EVENTFD] = wait == "eventfd"
        self.st[L.S_REPL_WAIT] = durability == "replicated"
        self.sync_clock()
        self._eb = bundle(self.arrays)
        self._args = (*self.svc._state, self._eb, self.wallets)
        self.handoffs = 0
        self.last_handoff_ns = time.monotonic_ns()
        self.snapshots: PeriodicSnapshots | None = None
        self.journal: Journal | None = None
        self.disk_full = DiskFull()
        self._idle_streak = 0
        if wait == "eventfd":
            assert cmd_wakeups is not None          # checked above
            self._poller = select.poll()
            for w in cmd_wakeups:
                self._poller.register(w.fileno(), select.POLLIN)

    # ------------------------------------------------------------------ start state
    def restore(self, start: StartState) -> None:
        """Continue from a previous run: balances, sequences, order ids (no events)."""
        svc = self.svc
        avail = svc.wallets.avail
        for account, asset, units in start.balances:
            if not (0 <= account < avail.shape[0] and 0 <= asset < avail.shape[1]):
                raise ValueError(f"stored balance of account {account} asset {asset} does not "
                                 f"fit this config (max_accounts {avail.shape[0]})")
            if units < 0:
                raise ValueError(f"stored balance of account {account} asset {asset} is "
                                 f"negative ({units})")
            avail[account, asset] = units
        seqs = np.asarray(start.seqs, np.int64)[:len(svc.markets.seq)]
        svc.markets.seq[:len(seqs)] = np.maximum(svc.markets.seq[:len(seqs)], seqs)
        meta = svc.book.meta
        meta[ORDER_SEQ] = max(int(meta[ORDER_SEQ]),
                              (start.last_order_id >> int(meta[SLOT_BITS])) + 1)

    def sync_clock(self) -> None:
        """The loop stamps groups with monotonic time plus this offset (loop.py): call it
        now and then so a step of the wall clock shows up within a housekeeping round."""
        self.st[L.S_CLOCK_OFF] = time.time_ns() - time.monotonic_ns()

    def warm_up(self) -> None:
        """Compile (or load) the loop now: one step over the (empty) rings."""
        L.step(*self._args, 1, 1)

    # ------------------------------------------------------------------ the loop
    def step(self, max_idle: int | None = None, max_batches: int = MAX_BATCHES) -> int:
        """One ``loop.step`` and what its return code asks for; returns the code.

        ``max_idle`` defaults to MAX_IDLE_POLLS, or to IDLE_RECHECK_POLLS once the loop is
        idle and sleeping between steps (spin once, then mostly sleep)."""
        if self.disk_full.active:
            return self._retry_journal(PAUSED_STEP_S)
        if max_idle is None:
            max_idle = MAX_IDLE_POLLS if self._idle_streak == 0 or self.wait == "busy_spin" \
                else IDLE_RECHECK_POLLS
        r = self._after(L.step(*self._args, max_idle, max_batches))
        if self.disk_full.active:     # the buffers hold the unjournaled group: no hand-off
            return r
        st = self.st
        if st[L.S_GROUP] == 0 and st[L.S_ACC_NC]:
            # not on every idle step: at a trickle of orders the writer would wake for each
            # one and take the second core from the gateway; a few ms later is harmless
            # (the journal has them). Before an eventfd block, which may last 50 ms: now.
            if r == L.RET_FLUSH or (r == L.RET_IDLE and self.wait == "eventfd") \
                    or time.monotonic_ns() - self.last_handoff_ns >= HANDOFF_EVERY_NS:
                self.hand_off()
        elif r == L.RET_FLUSH:
            raise RuntimeError("engine loop asked for a hand-off with nothing to hand off")
        return r

    def hand_off(self) -> None:
        """Send the processed commands and their events to the writer; empty the buffers."""
        if self.disk_full.active:
            raise RuntimeError("hand-off while a group waits for the journal")
        st = self.st
        nc, ne, ng = int(st[L.S_ACC_NC]), int(st[L.S_ACC_NEV]), int(st[L.S_ACC_NG])
        if self.producer is not None and ng:
            self._hand_off_entries(ng)
        elif self.producer is not None and ne:
            out = self.arrays.out
            for _, _, e0, e1 in payload_bounds(self.arrays.acc_ev_end[:nc], HANDOFF_EVENTS):
                self.producer.put_events(out[e0:e1])
                self.handoffs += 1
        st[L.S_ACC_NC] = st[L.S_ACC_NEV] = st[L.S_ACC_NG] = 0
        self.last_handoff_ns = time.monotonic_ns()

    def _hand_off_entries(self, ng: int) -> None:
        """With a journal: payloads of whole journal entries, each numbered with the batch
        of its last entry, so the database's last batch says which entries it holds."""
        producer = self.producer
        assert producer is not None                 # hand_off checks
        a = self.arrays
        ends, c = a.acc_ev_end, 0
        g = 0
        while g < ng:
            e0 = int(ends[c - 1]) if c else 0
            while True:                       # whole entries up to about HANDOFF_EVENTS
                c = int(a.grp_end[g])
                g += 1
                if g >= ng or int(ends[c - 1]) - e0 >= HANDOFF_EVENTS:
                    break
            producer.put_events(a.out[e0:int(ends[c - 1])], batch=int(a.grp_batch[g - 1]))
            self.handoffs += 1

    def use_journal(self, journal: Journal) -> None:
        """Journal every group from now on (the loop writes it; journal.state becomes the
        loop's own array, so both sides see the same batch numbers)."""
        self.arrays.journal[:] = journal.state
        journal.state = self.arrays.journal
        self.journal = journal

    def snapshot_periodically(self, store: StateStore) -> None:
        """Journal into ``store``'s open segment (``use_journal`` already done) and snapshot
        every ``[state] snapshot_every_bytes`` of journal from now on."""
        self.snapshots = PeriodicSnapshots(self, store)

    def snapshot_if_due(self) -> None:
        """Between steps: a periodic snapshot if one is due (a pause of milliseconds)."""
        if self.snapshots is not None and not self.disk_full.active:
            self.snapshots.poll()     # (paused, the state is ahead of the journal)

    def send_replayed(self, entries, after: int) -> int:
        """Hand the writer the events of replayed journal entries numbered above ``after``
        (what the database does not hold yet); returns how many entries were sent."""
        sent = 0
        for batch, _, events in entries:
            if batch > after and self.producer is not None:
                self.producer.put_events(events, batch=batch)
                sent += 1
        return sent

    def _after(self, r: int) -> int:
        """What a step's return code asks of Python (besides hand-offs); returns r."""
        if r == L.RET_JOURNAL_FAILED:
            self._journal_failed()
            self.disk_full.pause(self._journal().path)
            return r
        if r == L.RET_REPLICATING:
            self._await_replication()
            return r
        self._repl_waits = 0
        if r == L.RET_BLOCKED:
            self._check_gateway(int(self.st[L.S_BLOCKED]))
        elif r == L.RET_SIGNAL:
            mask = int(self.st[L.S_SIGNAL])
            wakeups = self.evt_wakeups
            assert wakeups is not None              # signals happen only with eventfd
            for g, w in enumerate(wakeups):
                if mask >> g & 1:
                    os.eventfd_write(w.fileno(), 1)
        return r

    def check_fenced(self) -> None:
        """Raise Fenced once the replicator found another writer on the stream."""
        if self.repl[Repl.FENCED]:
            raise Fenced("engine: fenced: another writer appended to the replicated journal "
                         f"(replicated through batch {int(self.repl[Repl.THROUGH])}); this "
                         "primary stops without acknowledging anything the stream lacks")

    def _await_replication(self) -> None:
        """The pending group is journaled but not yet replicated: nothing of it may leave.
        Sleep a little (the kernel has spun already); say so if the replicator is silent."""
        self.check_fenced()
        now = time.monotonic_ns()
        if self._repl_waits == 0:
            self._repl_wait_since = now
        self._repl_waits += 1
        beat = int(self.repl[Repl.HEARTBEAT_NS])
        if now - self._repl_wait_since > REPL_SILENT_NS and now - beat > REPL_SILENT_NS \
                and now - self._repl_logged_ns > 5 * REPL_SILENT_NS:
            self._repl_logged_ns = now
            log.warning("engine: batch %d waits for replication for %.1f s and the replicator "
                        "is silent (last heartbeat %.1f s ago); nothing is acknowledged "
                        "until the stream's quorum stores it", int(self.st[L.S_G_BATCH]),
                        (now - self._repl_wait_since) / 1e9, (now - beat) / 1e9 if beat else -1)
        pause = REPL_SLEEP.sleep_for(self._repl_waits - 1)
        if pause:
            time.sleep(pause)

    def _journal(self) -> Journal:
        assert self.journal is not None         # the loop writes only an open journal
        return self.journal

    def _journal_failed(self) -> None:
        """A journal write failed: cut the file back to its last whole entry; stop unless
        the disk is full (nothing of the unjournaled group has left the process)."""
        journal = self._journal()
        if not journal.disk_full():     # (the next start cuts the torn tail)
            raise StorageError(f"engine: the journal {journal.failure()} at {journal.path}; "
                               "stopping (nothing of the unjournaled batch left the process)")
        journal.cut_back()

    def _retry_journal(self, longest_wait_s: float) -> int:
        """Paused on a full disk: wait up to ``longest_wait_s`` for the next retry, and
        retry when due. RET_NONE once the group is journaled (the loop goes on), else
        RET_JOURNAL_FAILED."""
        full = self.disk_full
        if not full.due():
            time.sleep(min(full.wait_s(), longest_wait_s))
            if not full.due():
                return L.RET_JOURNAL_FAILED
        if L.retry_journal(self._eb) < 0:
            self._journal_failed()
            full.failed_again()
            return L.RET_JOURNAL_FAILED
        full.resume()
        return L.RET_NONE

    def finish_batch(self) -> None:
        """Process, route and publish what is left of the current batch (polls nothing new
        once it is done: call between steps, e.g. before stopping)."""
        st = self.st
        while st[L.S_BATCH_I] < st[L.S_BATCH_N] or st[L.S_GROUP]:
            self._internal_step()

    def _internal_step(self) -> None:
        """One batch at most, nothing polled once the current batch is done (paused on a
        full journal disk: one retry, waiting for it)."""
        if self.disk_full.active:
            self._retry_journal(RETRY_WAIT_S)
        else:
            self._after(L.step(*self._args, 1, 1))

    def inject(self, cmds: np.ndarray) -> np.ndarray:
        """Run internal commands (session 0) through the loop; returns their events."""
        self.finish_batch()
        self.hand_off()
        st, batch = self.st, self.arrays.batch
        events = []
        for a in range(0, len(cmds), len(batch)):
            part = cmds[a:a + len(batch)]
            batch[:len(part)] = part
            st[L.S_BATCH_N], st[L.S_BATCH_I] = len(part), 0
            while st[L.S_BATCH_I] < st[L.S_BATCH_N] or st[L.S_GROUP]:
                self._internal_step()
                if st[L.S_GROUP] == 0 and not self.disk_full.active:
                    events.append(self.arrays.out[:st[L.S_ACC_NEV]].copy())
                    self.hand_off()
        return np.concatenate(events) if events else records.events(0)

    def idle(self, r: int) -> None:
        """Wait after an idle step, as the wait strategy says."""
        if r != L.RET_IDLE:
            self._idle_streak = 0
            return
        self._idle_streak += 1
        if self.wait == "spin_then_sleep":
            time.sleep(IDLE_SLEEP.sleep_for(self._idle_streak - 1))
        elif self.wait == "eventfd":
            self._block(EVENTFD_BLOCK_S)

    def _block(self, timeout_s: float) -> None:
        hdrs = [r.hdr for r in self.cmd_rings]
        for h in hdrs:
            store_then_fence(h, CONSUMER_SLEEPING, 1)
        try:
            if not any(len(r) for r in self.cmd_rings):
                self._poller.poll(timeout_s * 1000.0)
        finally:
            for h in hdrs:
                atomic_store(h, CONSUMER_SLEEPING, 0)
            assert self.cmd_wakeups is not None     # _block runs only with eventfd
            for w in self.cmd_wakeups:
                w.drain()

    def _check_gateway(self, g: int) -> None:
        """Gateway g's event ring stays full: drop its events if its process is gone."""
        gone = self.evt_rings[g].space_gate.peer_state()
        if gone and self.arrays.alive[g]:
            self.arrays.alive[g] = 0
            log.warning("engine: gateway %d is gone (%s); its events are dropped from now on "
                        "(they are still persisted)", g, "closed" if gone < 0 else f"pid {gone}")

    def gateways_gone(self) -> list[int]:
        """Gateways whose process closed or left its command ring."""
        return [g for g, r in enumerate(self.cmd_rings) if r.data_gate.peer_state()]

    def drained(self) -> bool:
        """Every command ring empty and its gateway gone (closed or dead)."""
        return all(len(r) == 0 for r in self.cmd_rings) and \
            len(self.gateways_gone()) == len(self.cmd_rings)

    def cancel_everything(self) -> int:
        """CANCEL_ALL (session 0) for every account with resting orders; returns orders."""
        accounts = np.flatnonzero(self.svc.book.acct_head >= 0)
        if not len(accounts):
            return 0
        cmds = records.commands(len(accounts))
        cmds["kind"], cmds["symbol"], cmds["account"] = (records.CommandKind.CANCEL_ALL,
                                                         records.ALL_SYMBOLS, accounts)
        ev = self.inject(cmds)
        return int(np.count_nonzero(ev["kind"] == records.EventKind.CANCELLED))

    def counters(self) -> dict[str, int]:
        st = self.st
        return {"batches": int(st[L.S_BATCHES]), "commands": int(st[L.S_COMMANDS]),
                "events": int(st[L.S_EVENTS]), "md": int(st[L.S_MD]),
                "handoffs": self.handoffs}

    def close(self) -> None:
        rings: tuple[SpscRing | BroadcastRing, ...] = (*self.cmd_rings, *self.evt_rings,
                                                       self.md_ring)
        for r in rings:
            r.close()
        if self.wait == "eventfd":
            assert self.cmd_wakeups is not None and self.evt_wakeups is not None
            for w in (*self.cmd_wakeups, *self.evt_wakeups):
                w.close()


def _no_journal() -> np.ndarray:
    state = np.zeros(J_WORDS, np.int64)
    state[J_FD] = -1
    return state


def payload_bounds(ends: np.ndarray, limit: int):
    """Split a hand-off into payloads of at most ``limit`` events, between commands.

    ``ends[i]`` is where command i's events end. Yields (c0, c1, e0, e1): commands
    [c0, c1) travel with events [e0, e1). A command with more events than ``limit``
    (a cancel-all of many orders) is split; its later pieces carry no command."""
    nc, c, e = len(ends), 0, 0
    while c < nc:
        c2 = max(int(np.searchsorted(ends, e + limit, "right")), c + 1)
        e2 = int(ends[c2 - 1])
        if e2 > e:
            yield c, c2, e, min(e2, e + limit)
            for a in range(e + limit, e2, limit):
                yield c2, c2, a, min(a + limit, e2)
        c, e = c2, e2
