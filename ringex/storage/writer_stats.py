"""The writer's counters, in shared memory for the supervisor (``WriterProcess.stats``)
and the metrics: progress words (``Stat``), then events committed by EVENT.kind, then
rejects by reject code.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np

from ringex.records import INFO_CODE_MASK, EventKind
from ringex.storage.trade_queue import Payload, PayloadKind


class Stat(IntEnum):
    """Counters the writer publishes in shared memory (``WriterProcess.stats()``)."""
    RUNNING = 0          # 1 once the loop runs
    CONNECTED = 1        # 1 while the database is reachable
    GROUPS = 2           # transactions committed
    PAYLOADS = 3         # payloads written
    SKIPPED = 4          # payloads skipped as already written
    TRADES = 5           # trade rows written (attempted; replays are ignored by the DB)
    ROWS = 6             # rows of all tables written
    FAILURES = 7         # failed connects or transactions
    DEAD_LETTERS = 8     # malformed payloads kept aside
    BACKLOG_BYTES = 9    # payload bytes held in memory while the database is down
    LAST_COMMIT_NS = 10  # time.time_ns() of the last commit
    CPU_NS = 11          # the writer process's CPU time (all threads) at the last commit
    LAST_PAYLOAD_NS = 12 # time.time_ns() its producer stamped on the last payload committed
    DISK_FULL = 13       # 1 from a write that failed for a full disk to the next that succeeds


# after the Stat words: events committed by EVENT.kind, then rejects by reject code
# (``WriterProcess.event_counts``); the metrics' "events by kind, rejects by code"
EVENT_KINDS = 16
REJECT_CODES = INFO_CODE_MASK + 1
STAT_WORDS = len(Stat) + EVENT_KINDS + REJECT_CODES


def count_events(stats, group: list[Payload]) -> None:
    """Add a committed group's events to the per-kind and per-reject-code counters."""
    last = 0
    for p in group:
        last = max(last, p.ts_ns)
        if p.kind != PayloadKind.EVENTS or not len(p.records):
            continue
        kinds = p.records["kind"]
        for kind, n in enumerate(np.bincount(kinds, minlength=EVENT_KINDS)[:EVENT_KINDS]):
            if n:
                stats[len(Stat) + kind] += int(n)
        # account 0's rejects are the gateways' own book-load end markers, not clients'
        clients = (kinds == EventKind.REJECT) & (p.records["account"] != 0)
        rejects = p.records["info"][clients] & INFO_CODE_MASK
        if len(rejects):
            for code, n in enumerate(np.bincount(rejects, minlength=REJECT_CODES)):
                if n:
                    stats[len(Stat) + EVENT_KINDS + code] += int(n)
    stats[Stat.LAST_PAYLOAD_NS] = last
