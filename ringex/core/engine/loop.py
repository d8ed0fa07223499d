"""The matcher's hot loop as numba kernels: poll -> process -> journal -> route -> publish.

    ret = step(bk, wl, mk, eb, wallets, max_idle, max_batches)

One call runs batches until there is something only Python can do, and says what:

    RET_IDLE     ``max_idle`` empty polls in a row (Python: hand-off, housekeeping, wait)
    RET_FLUSH    the hand-off buffers are full enough: Python hands them to the writer
    RET_BUDGET   ``max_batches`` batches done (Python: housekeeping, then call again)
    RET_BLOCKED  a gateway's event ring stays full; st[S_BLOCKED] says which (Python checks
                 whether that gateway died; calling again resumes the routing)
    RET_SIGNAL   (eventfd mode) gateways in bitmask st[S_SIGNAL] sleep: write their eventfd
    RET_JOURNAL_FAILED  the journal write failed; nothing of the group has left the
                 process and its commands wait in ``acc_cmds``. A full disk: Python cuts
                 the journal back and calls ``retry_journal`` until it succeeds (never
                 ``step`` before, which would process the group again); anything else:
                 the engine stops (its state is ahead of its journal)
    RET_REPLICATING  (durability replicated) the journaled group is not yet stored by the
                 stream's quorum after REPL_SPINS spins (Python checks the replicator,
                 waits a little; calling again resumes: nothing of the group has left)

A batch: up to ``BATCH_PER_RING`` commands from each gateway's command ring, round robin
(the ring read first rotates every batch, so no gateway is always first). Its stages:

  1. poll       ring_read_into from every command ring into ``eb.batch``
  2. process    order_service.process, one command at a time, events appended to ``eb.out``
                (the hand-off buffer: events since the last hand-off; ``acc_ev_end`` marks
                where each command's events end, so hand-offs split between commands)
  3. journal    ``journal_append``: the group's commands become one journal entry
                (ringex/core/journal.py, written from here with one writev) before any
                result leaves the process; ``grp_end``/``grp_batch`` remember the entries
                so hand-offs to the writer end on entry boundaries.
     replicated  with st[S_REPL_WAIT] set: wait until the replicator's shared word
                ``repl[THROUGH]`` reaches the group's batch (ringex/core/engine/replication.py)
  4. route      each event to the event ring of gateway ``session >> 24`` and of every
                gateway streaming its account (``eb.acct_gw``, set by ACCOUNT_STREAM
                commands, which the loop takes itself: no event, not journaled), after
                a CLOCK record (the group's time) before a gateway's first event of the
                group; waits while a live gateway's ring is full, skips gateways marked
                gone (``eb.alive``)
  5. publish    market data (market_data.publish, after its own CLOCK) on the broadcast ring

The group's time is the wall clock when its processing began: the monotonic clock the
group-time histogram reads anyway, plus ``st[S_CLOCK_OFF]`` (wall minus monotonic, kept
fresh by Python at every housekeeping), so stamping costs no clock read.
"""
from __future__ import annotations

from collections import namedtuple


import numpy as np

from ringex.jit import njit
from ringex.core.engine.replication import Repl
from ringex.core.journal import J_FD, append_entry
from ringex.core.market_data import clock_record, publish, touched_before
from ringex.core.sysio import clock_ns
from ringex.core.order_service import process
from ringex.ring.atomics import (
    cpu_relax,
    fence_seq_cst,
    load_acquire,
    load_relaxed,
    store_release,
)
from ringex.records import CMD_ACCOUNT_STREAM
from ringex.ring.shm import CONSUMER_SLEEPING, HEAD, TAIL
from ringex.ring.kernels import ring_read_into
from ringex.core.engine.control import HIST_BUCKETS, HIST_FIRST_NS

BATCH_PER_RING = 64          # commands taken from one gateway's ring per batch
ACC_COMMANDS = 8192          # commands between two hand-offs (at most)
FLUSH_EVENTS = 16384         # hand off once this many events are waiting
MD_BUFFER = 4096             # market-data staging records
ROUTE_SPINS = 20000          # spins on a full event ring before asking Python to check it
REPL_SPINS = 2000            # spins (~0.1 ms) for the replicator before Python waits: a
                             # quorum round trip is ~1 ms and 2 cores host the NATS nodes too
REPL_THROUGH = int(Repl.THROUGH)

# group-time histogram (layout in control.py): a clock read before and after a group

(RET_NONE, RET_IDLE, RET_FLUSH, RET_BUDGET, RET_BLOCKED, RET_SIGNAL, RET_JOURNAL_FAILED,
 RET_REPLICATING) = range(8)

# st[] words
(S_BATCH_N, S_BATCH_I, S_ACC_NC, S_ACC_NEV, S_GROUP, S_G_E0, S_G_E1, S_KEYS_N, S_RR,
 S_BLOCKED, S_SIGNAL, S_EVENTFD, S_BATCHES, S_COMMANDS, S_EVENTS, S_MD, S_ACC_NG,
 S_REPL_WAIT, S_G_BATCH, S_CLOCK_OFF, S_TS, S_CLOCKED, S_JP_I, S_JP_C, S_JP_E,
 S_WORDS) = range(26)
# S_GROUP: 0 nothing pending, 1 a processed group awaits routing, 2 awaits publishing;
# S_REPL_WAIT: 1 = durability replicated; S_G_BATCH: the pending group's journal batch;
# S_TS: the pending group's time (ns since the epoch); S_CLOCKED: bit g set once gateway g
# got the group's CLOCK; S_JP_*: a processed group whose journal write failed ends at
# batch[S_JP_I], acc_cmds[S_JP_C] and out[S_JP_E] (retry_journal)

EngineBuffers = namedtuple("EngineBuffers", [
    "cmd_hdr", "cmd_slots",            # tuples, one per gateway: its command ring (we read)
    "evt_hdr", "evt_slots",            # tuples, one per gateway: its event ring (we write)
    "md_hdr", "md_stamps", "md_slots",  # the market-data broadcast ring
    "batch",        # COMMAND[n_gateways * BATCH_PER_RING]: the batch being processed
    "out",          # EVENT: events since the last hand-off (OrderService's output buffer)
    "acc_cmds",     # COMMAND[ACC_COMMANDS]: commands processed since the last hand-off
    "acc_ev_end",   # int64[ACC_COMMANDS]: where each of those commands' events end in out
    "keys",         # int64: touched book levels of the current group (market_data)
    "md",           # EVENT[MD_BUFFER]: market-data staging
    "rpos",         # int64[n_gateways]: next event of the group to route to that gateway
    "alive",        # int64[n_gateways]: 0 once the gateway is gone (its events are dropped)
    "journal",      # int64[8]: Journal.state of the open journal (J_FD < 0: none)
    "journal_head",  # uint8[20]: entry header scratch (Journal.head)
    "journal_iov",  # int64[4]: writev scratch (Journal.iov)
    "grp_end",      # int64[ACC_COMMANDS]: where each journaled group ends in acc_cmds
    "grp_batch",    # int64[ACC_COMMANDS]: that group's journal batch number
    "st",           # int64[S_WORDS]: loop state and counters (S_* above)
    "hist",         # int64[HIST_WORDS]: time of each group's process + journal stages
    "acct_gw",      # int64[max_accounts]: bit g set while gateway g streams the account
    "repl",         # int64[Repl.WORDS]: the words shared with the replicator
])


@njit(cache=True)
def journal_append(eb, cmds, c0, c1):
    """Stage 3: append the accepted commands cmds[c0:c1] to the journal, in processing
    order, as one entry (one writev, fsync per the journal's policy). Runs after
    ``process`` and before ``route``/``publish``: when it returns, the commands are in
    the journal and their results may leave the process. Returns the entry's batch
    number, 0 when there is no journal (or nothing to write), -1 when the write failed."""
    if eb.journal[J_FD] < 0 or c1 <= c0:
        return 0
    return append_entry(eb.journal, eb.journal_head, eb.journal_iov, cmds, c0, c1)


@njit(cache=True)
def poll(eb, st):
    """Stage 1: read up to BATCH_PER_RING commands from every ring, round robin."""
    hdrs, slots, batch = eb.cmd_hdr, eb.cmd_slots, eb.batch
    ng = len(hdrs)
    first = st[S_RR]
    st[S_RR] = first + 1 if first + 1 < ng else 0
    n = 0
    for k in range(ng):
        g = first + k
        if g >= ng:
            g -= ng
        n += ring_read_into(hdrs[g], slots[g], batch[n:], BATCH_PER_RING)
    return n


@njit(cache=True)
def observe(hist, ns):
    """Count one group's time ``ns`` in its power-of-two bucket (see HIST_*)."""
    b, d = 0, ns // HIST_FIRST_NS
    while d > 0 and b < HIST_BUCKETS - 1:
        d >>= 1
        b += 1
    hist[b] += 1
    hist[HIST_BUCKETS] += ns


@njit(cache=True)
def run_group(bk, wl, mk, eb, st, wallets):
    """Stages 2-3 over batch[S_BATCH_I:S_BATCH_N], as far as ``out`` has room.

    Returns the commands processed (0: out is full, hand off first)."""
    batch, out, acc, ends = eb.batch, eb.out, eb.acc_cmds, eb.acc_ev_end
    i0, i1 = st[S_BATCH_I], st[S_BATCH_N]
    nk = touched_before(bk, batch, i0, i1, eb.keys, 0)
    c0, e0 = st[S_ACC_NC], st[S_ACC_NEV]
    c, e, i = c0, e0, i0
    t0 = clock_ns()
    while i < i1:
        if batch[i].kind == CMD_ACCOUNT_STREAM:
            account_stream(eb.acct_gw, batch[i])
            i += 1
            continue
        done, n = process(bk, wl, mk, batch[i:i + 1], 0, out[e:], wallets)
        if done == 0:
            break
        acc[c] = batch[i]
        e += n
        ends[c] = e
        c += 1
        i += 1
    st[S_TS] = t0 + st[S_CLOCK_OFF]         # kept while a full disk holds the group
    jb = journal_append(eb, acc, c0, c)
    if jb < 0:
        st[S_JP_I], st[S_JP_C], st[S_JP_E], st[S_KEYS_N] = i, c, e, nk
        return -1
    if i > i0:
        observe(eb.hist, clock_ns() - t0)
    return commit_group(eb, st, i, c, e, nk, jb)


@njit(cache=True, inline="always")
def commit_group(eb, st, i, c, e, nk, jb):
    """After stage 3: the group (up to batch[i], acc_cmds[c], out[e]) is journaled as
    batch ``jb``; hand it to routing. Returns the commands it holds."""
    i0, e0 = st[S_BATCH_I], st[S_ACC_NEV]
    if jb > 0:
        g = st[S_ACC_NG]
        eb.grp_end[g], eb.grp_batch[g] = c, jb
        st[S_ACC_NG] = g + 1
    st[S_BATCH_I], st[S_ACC_NC], st[S_ACC_NEV] = i, c, e
    st[S_G_E0], st[S_G_E1], st[S_KEYS_N], st[S_G_BATCH] = e0, e, nk, jb
    if i > i0:
        st[S_GROUP] = 1
        st[S_CLOCKED] = 0
        eb.rpos[:] = e0
        st[S_COMMANDS] += i - i0
        st[S_EVENTS] += e - e0
    return i - i0


@njit(cache=True)
def account_stream(acct_gw, cmd):
    """ACCOUNT_STREAM: gateway ``cmd.session >> 24`` starts (qty 1) or stops (qty 0)
    getting every event of ``cmd.account``; out-of-range accounts are ignored."""
    a = cmd.account
    if a >= acct_gw.shape[0]:
        return
    bit = np.int64(1) << np.int64(cmd.session >> 24)
    if cmd.qty != 0:
        acct_gw[a] |= bit
    else:
        acct_gw[a] &= ~bit


@njit(cache=True)
def retry_journal(eb):
    """Journal again the processed group whose write failed (RET_JOURNAL_FAILED; the
    journal cut back first); on success it goes on to routing like any group. Returns
    its batch number, or -1 if the write failed again."""
    st = eb.st
    jb = journal_append(eb, eb.acc_cmds, st[S_ACC_NC], st[S_JP_C])
    if jb < 0:
        return -1
    commit_group(eb, st, st[S_JP_I], st[S_JP_C], st[S_JP_E], st[S_KEYS_N], jb)
    return jb


@njit(cache=True)
def route(eb, e0, e1):
    """Stage 4, one pass: copy each gateway's events of out[e0:e1] into its event ring as
    far as there is room, each gateway's first one after the group's CLOCK. Returns the
    first gateway still waiting for room, or -1."""
    out, hdrs, slots, rpos, alive = eb.out, eb.evt_hdr, eb.evt_slots, eb.rpos, eb.alive
    st, acct_gw = eb.st, eb.acct_gw
    n_acct = acct_gw.shape[0]
    waiting = -1
    for g in range(len(hdrs)):
        j = rpos[g]
        if j >= e1:
            continue
        if alive[g] == 0:
            rpos[g] = e1
            continue
        hdr, ring = hdrs[g], slots[g]
        cap = ring.shape[0]
        mask = cap - 1
        head = load_relaxed(hdr, HEAD)
        tail = load_acquire(hdr, TAIL)
        start = head
        while j < e1:
            s = out[j].session
            if s == 0 or ((s >> 24) != g and (out[j].account >= n_acct
                                              or (acct_gw[out[j].account] >> g) & 1 == 0)):
                j += 1
                continue
            if (st[S_CLOCKED] >> g) & 1 == 0:
                if head - tail >= cap:
                    tail = load_acquire(hdr, TAIL)
                    if head - tail >= cap:
                        break
                clock_record(st[S_TS], g << 24, ring[head & mask])
                head += 1
                st[S_CLOCKED] |= 1 << g
            if head - tail >= cap:
                tail = load_acquire(hdr, TAIL)
                if head - tail >= cap:
                    break
            ring[head & mask] = out[j]
            head += 1
            j += 1
        if head != start:
            store_release(hdr, HEAD, head)
        rpos[g] = j
        if j < e1 and waiting < 0:
            waiting = g
    return waiting


@njit(cache=True)
def finish_group(bk, mk, eb, st):
    """Stages 4-5 for the pending group; RET_NONE when done."""
    e0, e1 = st[S_G_E0], st[S_G_E1]
    if st[S_GROUP] == 1:
        if st[S_REPL_WAIT] != 0 and load_acquire(eb.repl, REPL_THROUGH) < st[S_G_BATCH]:
            spins = 0
            while load_acquire(eb.repl, REPL_THROUGH) < st[S_G_BATCH]:
                if spins == REPL_SPINS:
                    return RET_REPLICATING
                cpu_relax()
                spins += 1
        waiting = route(eb, e0, e1)
        spins = 0
        while waiting >= 0:
            if spins == ROUTE_SPINS:
                st[S_BLOCKED] = waiting
                return RET_BLOCKED
            cpu_relax()
            spins += 1
            waiting = route(eb, e0, e1)
        st[S_GROUP] = 2
    st[S_MD] += publish(bk, mk, eb.out, e0, e1, eb.keys, st[S_KEYS_N], eb.md,
                        eb.md_hdr, eb.md_stamps, eb.md_slots, st[S_TS])
    st[S_GROUP] = 0
    st[S_BATCHES] += 1
    if st[S_EVENTFD] != 0:
        fence_seq_cst()            # our cursor stores before their sleeping flags
        mask = 0
        for g in range(len(eb.evt_hdr)):
            if eb.alive[g] != 0 and load_acquire(eb.evt_hdr[g], CONSUMER_SLEEPING) != 0:
                mask |= 1 << g
        if mask != 0:
            st[S_SIGNAL] = mask
            return RET_SIGNAL
    return RET_NONE


@njit(cache=True)
def step(bk, wl, mk, eb, wallets, max_idle, max_batches):
    """Run batches until Python is needed; returns a RET_* code (module docstring)."""
    st = eb.st
    batches = 0
    idle = 0
    acc_cap = eb.acc_cmds.shape[0]
    while True:
        if st[S_GROUP] != 0:
            r = finish_group(bk, mk, eb, st)
            if r == RET_BLOCKED or r == RET_REPLICATING:
                return r
            batches += 1
            if r == RET_SIGNAL:
                return r
        if st[S_ACC_NEV] >= FLUSH_EVENTS:
            return RET_FLUSH
        if batches >= max_batches:
            return RET_BUDGET
        if st[S_BATCH_I] >= st[S_BATCH_N]:
            n = poll(eb, st)
            if n == 0:
                idle += 1
                if idle >= max_idle:
                    return RET_IDLE
                cpu_relax()
                continue
            idle = 0
            st[S_BATCH_N], st[S_BATCH_I] = n, 0
        if st[S_ACC_NC] + st[S_BATCH_N] - st[S_BATCH_I] > acc_cap:
            return RET_FLUSH
        done = run_group(bk, wl, mk, eb, st, wallets)
        if done < 0:
            return RET_JOURNAL_FAILED
        if done == 0:
            return RET_FLUSH
