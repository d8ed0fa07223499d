"""Per-connection token bucket that can go into debt, so a flood is told apart from a burst.

Integer arithmetic in nano-tokens (one token = 10**9): exact, no float drift.
"""
from __future__ import annotations

_ONE = 1_000_000_000


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per message.

    A message that finds no token is refused, but still costs one: the bucket goes
    into debt. When the debt reaches ``burst`` tokens the client is flooding
    (:attr:`flooding`), and the caller closes the connection. A client that stops
    pays the debt back at ``rate`` per second.
    """

    __slots__ = ("rate", "burst", "_level", "_last")

    def __init__(self, rate: int, burst: int, now_ns: int):
        if rate < 1 or burst < 1:
            raise ValueError("rate and burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._level = burst * _ONE
        self._last = now_ns

    def take(self, now_ns: int) -> bool:
        """Spend one token at time ``now_ns`` (monotonic nanoseconds). True: allowed."""
        elapsed = now_ns - self._last
        if elapsed > 0:
            self._level = min(self._level + elapsed * self.rate, self.burst * _ONE)
            self._last = now_ns
        self._level -= _ONE
        return self._level >= 0

    @property
    def flooding(self) -> bool:
        return self._level <= -self.burst * _ONE

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: debt); for tests and metrics."""
        return self._level / _ONE
