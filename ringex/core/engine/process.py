"""The matcher process: command rings in, event rings and market data out, batches to the writer.

Started by ``control.EngineProcess`` (numba-free: the supervisor imports only that). Three
layers: ``loop`` (numba: poll -> process -> journal -> route -> publish),
``front.Engine`` (Python: state, rings, hand-off to the writer, idle waits) and this
module, the process: attach the rings, recover (snapshot + journal) or restore the start
state, apply pending transfers, loop until the stop flag (then drain the command rings,
hand off, snapshot; without a journal, cancel resting orders instead) or the parent's
death (then exit at once), publishing a heartbeat and counters in ``ctl`` (a shared int64
array, ``Ctl`` words) and taking a snapshot every ``[state] snapshot_every_bytes`` of
journal (``core/engine/snapshots.py``). Contract: docs/architecture.md.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import time

from ringex import records
from ringex.compile_progress import CompileProgress
from ringex.logs import setup_logging
from ringex.core.engine import loop as L
from ringex.core.engine.control import HIST_WORDS, Ctl, EngineSpec, State
from ringex.core.engine.front import Engine
from ringex.core.engine.start import StartState
from ringex.core.journal import J_BYTES, J_ENTRIES, J_FSYNC_NS
from ringex.core.snapshot import StateStore
from ringex.errors import Fenced
from ringex.process import title_process
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.spsc import SpscRing

log = logging.getLogger(__name__)

HOUSEKEEPING_NS = 5_000_000  # heartbeat, parent and stop checks


# ---------------------------------------------------------------------- the process
def attach(spec: EngineSpec, queue=None) -> Engine:
    """Attach the spec's rings (engine roles) and build the Engine over them."""
    opened: list = []
    try:
        for name in spec.cmd_rings:
            opened.append(SpscRing.attach(name, records.COMMAND, role="consumer"))
        for name in spec.evt_rings:
            opened.append(SpscRing.attach(name, records.EVENT, role="producer"))
        opened.append(BroadcastRing.attach(spec.md_ring, records.EVENT, role="producer"))
    except BaseException:
        for r in opened:
            r.close()
        raise
    ng = len(spec.cmd_rings)
    return Engine(spec.config(), opened[:ng], opened[ng:2 * ng], opened[-1], queue,
                  wait=spec.wait, wallets=spec.wallets, first_batch=spec.start.first_batch,
                  cmd_wakeups=spec.cmd_wakeups, evt_wakeups=spec.evt_wakeups,
                  replication=spec.replication, durability=spec.durability)


def run_engine(spec: EngineSpec, queue, ctl) -> int:
    """Main of the engine process; returns its exit code (0 after a clean stop).

    SIGINT is ignored (the supervisor orchestrates shutdown); SIGTERM means stop.
    The parent's death stops the engine at once, without draining."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: ctl.__setitem__(Ctl.STOP, 1))
    ppid = os.getppid()
    ctl[Ctl.PID] = os.getpid()
    compiling = CompileProgress("engine").install()    # logs while kernels compile
    eng = attach(spec, queue)
    store = None
    try:
        if spec.state_dir:
            store = StateStore(spec.state_dir, spec.config(), spec.journal_fsync)
            _recover(eng, store, spec.start)
            eng.snapshot_periodically(store)
        else:
            eng.restore(spec.start)
        eng.warm_up()
        _apply_transfers(eng, spec.start.transfers)
        compiling.finish()  # listens no longer: nothing of it in the loop
        gc.collect()
        gc.freeze()         # a full collection over numba's ~10^5 objects would stall ~15 ms
        ctl[Ctl.STATE] = State.RUNNING
        log.info("engine: running (%d gateways, wait %s, journal %s, durability %s)",
                 len(spec.cmd_rings), spec.wait, spec.state_dir or "off", spec.durability)
        code = _loop(eng, ctl, ppid, spec.drain_timeout_s)
        if code != 0:
            return code
        if store is None:   # nothing to restore books from: leave nothing open
            n = eng.cancel_everything()
            log.info("engine: cancelled %d resting orders (no journal)", n)
        eng.finish_batch()
        eng.hand_off()
        if store is not None:
            journal = store.journal
            assert journal is not None      # _recover opened it
            if journal.last_batch > 0:
                path = store.save_snapshot(eng.svc, journal.last_batch)
                log.info("engine: snapshot %s", path.name)
        log.info("engine: stopped; %s", eng.counters())
        ctl[Ctl.STATE] = State.STOPPED
        return 0
    except Fenced as exc:           # deposed: stop at once, with one clear line
        log.error("%s", exc)
        ctl[Ctl.STATE] = State.FAILED
        return 1
    except BaseException:
        ctl[Ctl.STATE] = State.FAILED
        raise
    finally:
        if store is not None:
            store.close()
        eng.close()


def _recover(eng: Engine, store: StateStore, start: StartState) -> None:
    """Continue from the journal (and a snapshot the database holds), resend to the writer
    every replayed entry the database lacks, and journal from there on."""
    held = start.first_batch - 1            # the database's last batch of the engine
    if store.snapshots() or store.segments():
        rec = store.recover(eng.svc, keep_events=True, upto=held, keep_after=held)
        for problem in rec.problems:
            log.warning("engine: recovery: %s", problem)
        sent = eng.send_replayed(rec.entries, held)
        log.info("engine: recovered batch %d (snapshot %d + %d journal entries); %d entries "
                 "resent to the writer", rec.last_batch, rec.snapshot_batch,
                 rec.replayed_batches, sent)
        if rec.snapshot_batch:
            store.prune_before(rec.snapshot_batch)
        next_batch = max(rec.last_batch, held) + 1
    else:                                   # first run on this data dir
        eng.restore(start)
        next_batch = held + 1
    eng.use_journal(store.open_journal(next_batch))


def _loop(eng: Engine, ctl, ppid: int, drain_timeout_s: float) -> int:
    next_house = 0
    drain_until = None
    while True:
        r = eng.step()
        eng.idle(r)
        now = time.monotonic_ns()
        if now < next_house:
            continue
        next_house = now + HOUSEKEEPING_NS
        eng.snapshot_if_due()
        eng.sync_clock()
        eng.check_fenced()
        ctl[Ctl.HEARTBEAT_NS] = now
        c = eng.counters()
        ctl[Ctl.BATCHES], ctl[Ctl.COMMANDS], ctl[Ctl.EVENTS] = (c["batches"], c["commands"],
                                                                c["events"])
        ctl[Ctl.MD], ctl[Ctl.HANDOFFS] = c["md"], c["handoffs"]
        ctl[Ctl.DROPPED_GATEWAYS] = int(len(eng.arrays.alive) - eng.arrays.alive.sum())
        ctl[Ctl.JOURNAL_BYTES] = eng.arrays.journal[J_BYTES]
        ctl[Ctl.JOURNAL_ENTRIES] = eng.arrays.journal[J_ENTRIES]
        ctl[Ctl.JOURNAL_FSYNC_NS] = eng.arrays.journal[J_FSYNC_NS]
        full = eng.disk_full
        ctl[Ctl.JOURNAL_DISK_FULL] = int(full.active)
        ctl[Ctl.JOURNAL_DISK_FULL_PAUSES] = full.pauses
        ctl[Ctl.JOURNAL_PAUSED_NS] = full.total_paused_ns()
        ctl[Ctl.GROUP_HIST:Ctl.GROUP_HIST + HIST_WORDS] = eng.arrays.hist.tolist()
        if os.getppid() != ppid:
            log.error("engine: the supervisor died; exiting without draining")
            ctl[Ctl.STATE] = State.FAILED
            return 1
        if drain_until is None and ctl[Ctl.STOP]:
            drain_until = time.monotonic() + drain_timeout_s
            ctl[Ctl.STATE] = State.DRAINING
            log.info("engine: stop requested; draining the command rings")
        if drain_until is None:
            continue
        if r == L.RET_IDLE and eng.st[L.S_GROUP] == 0 and eng.drained():
            return 0
        if time.monotonic() > drain_until and eng.disk_full.active:
            log.error("engine: journal disk still full at %s after %.0f s of draining; "
                      "exiting without the unjournaled group (never acknowledged) and "
                      "without a snapshot: the next start recovers from the journal",
                      eng.disk_full.path, drain_timeout_s)
            ctl[Ctl.STATE] = State.FAILED
            return 1
        if time.monotonic() > drain_until:
            log.warning("engine: gateways %s still attached (or not reading) after %.0f s; "
                        "dropping their events and stopping",
                        sorted(set(range(len(eng.cmd_rings))) - set(eng.gateways_gone())),
                        drain_timeout_s)
            eng.arrays.alive[:] = 0
            eng.finish_batch()
            return 0


def _apply_transfers(eng: Engine, transfers) -> None:
    """Deposits/withdrawals stored while no exchange ran: the engine's first batch."""
    if not transfers:
        return
    cmds = records.commands(len(transfers))
    for i, (kind, account, asset, units) in enumerate(transfers):
        cmds[i]["kind"], cmds[i]["account"], cmds[i]["symbol"] = kind, account, asset
        cmds[i]["qty"], cmds[i]["ref"] = units, i + 1
    for e in eng.inject(cmds):
        what = records.CommandKind(int(cmds[int(e["ref"]) - 1]["kind"])).name.lower()
        if e["kind"] == records.EventKind.REJECT:
            log.error("engine: pending %s #%d for account %d rejected: %s", what, e["ref"],
                      e["account"], records.RejectCode(records.info_code(int(e["info"]))).name)
        else:
            log.info("engine: pending %s #%d applied: account %d asset %d available %d",
                     what, e["ref"], e["account"], e["symbol"], e["qty"])


def engine_main(spec: EngineSpec, queue, ctl) -> None:
    """The spawned engine process (``control.EngineProcess``)."""
    setup_logging()
    title_process()
    raise SystemExit(run_engine(spec, queue, ctl))
