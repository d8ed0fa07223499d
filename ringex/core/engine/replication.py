"""The words the engine and the replicator share (docs/cluster.md).

One ``multiprocessing.RawArray("q", Repl.WORDS)``, made by the supervisor and handed to
both: the replicator (``ringex/cluster/replicator.py``) writes them, the engine reads them.
With durability ``replicated`` the loop routes a group's results only once
``THROUGH`` >= the group's journal batch (``loop.finish_group``); with ``local`` it never
looks at ``THROUGH``, and only the housekeeping (every 5 ms) reads ``FENCED``.
"""
from __future__ import annotations

import multiprocessing
from enum import IntEnum

import numpy as np

DURABILITIES = ("local", "replicated")


class Repl(IntEnum):
    THROUGH = 0         # every journal batch <= this one is stored by the stream's quorum
    FENCED = 1          # the stream's last batch when another writer was found there (> 0)
    HEARTBEAT_NS = 2    # replicator: time.monotonic_ns() of its last turn
    PID = 3             # replicator's pid
    STATE = 4           # ReplState
    PUBLISHED = 5       # entries appended (acknowledged) by the current replicator
    RESYNCS = 6         # times it had to ask the stream where it stands (timeouts, refusals)
    SENT = 7            # the last journal batch it has sent to the stream (stored or not)
    WORDS = 8


class ReplState(IntEnum):
    STARTING = 0
    RUNNING = 1
    STOPPED = 2
    FAILED = 3


def replication_words(ctx=None):
    """A fresh shared array of ``Repl.WORDS`` int64 words, all 0."""
    ctx = ctx or multiprocessing.get_context("spawn")
    return ctx.RawArray("q", int(Repl.WORDS))


def as_array(words) -> np.ndarray:
    """The int64 view the kernels read (the RawArray must outlive it)."""
    return np.frombuffer(words, dtype=np.int64)
