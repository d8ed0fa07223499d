"""A gateway's counters, in shared memory for the supervisor's metrics (``ops.metrics``).

    stats = GatewayStats.alloc(ctx)       # supervisor, one per gateway; passed to the child
    stats.add(GatewayStat.ACCEPTED)       # gateway, on rare paths only
    stats.acks.observe(ns)                # gateway, per answered place (two array writes)

Gauges (open connections, subscriptions) are set by the gateway's housekeeping, not on
every change, so the frame path pays nothing for them.
"""
from __future__ import annotations

import multiprocessing
from enum import IntEnum

from ringex.ops.counters import LATENCY_BOUNDS_NS, Histogram


class GatewayStat(IntEnum):
    CONNECTIONS = 0          # gauge: logged-in or not, handshake done
    SUBSCRIPTIONS = 1        # gauge: (connection, channel, symbol) pairs
    ACCEPTED = 2             # connections accepted
    REFUSED = 3              # handshakes refused (bad path, unknown key, too many)
    ABUSE_CLOSES = 4         # closed by the session: flood, oversized/binary frame, logins
    SLOW_CONSUMER_CLOSES = 5 # closed for not reading (1013)
    OVERLOADED = 6           # requests answered `overloaded` (command ring full)
    PENDING = 7              # gauge: requests awaiting the engine, all connections
    MD_LOST = 8              # market-data records lost when the ring lapped this gateway
    WORDS = 9


class GatewayStats:
    __slots__ = ("words", "acks")

    def __init__(self, words, acks: Histogram):
        self.words, self.acks = words, acks

    @classmethod
    def alloc(cls, ctx=None) -> "GatewayStats":
        ctx = ctx or multiprocessing.get_context()
        return cls(ctx.RawArray("q", GatewayStat.WORDS), Histogram.alloc(ctx, LATENCY_BOUNDS_NS))

    def add(self, stat: GatewayStat, n: int = 1) -> None:
        self.words[stat] += n

    def set(self, stat: GatewayStat, value: int) -> None:
        self.words[stat] = value

    def get(self, stat: GatewayStat) -> int:
        return int(self.words[stat])

    def __getstate__(self):
        return self.words, self.acks

    def __setstate__(self, state) -> None:
        self.words, self.acks = state
