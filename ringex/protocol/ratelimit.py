"""Token buckets (they can go into debt, so a flood is told apart from a burst), and the
budgets the sessions of one gateway share (per account, per remote address).

Integer arithmetic in nano-tokens (one token = 10**9): exact, no float drift. A rate is a
whole number of tokens per second or a ``Fraction`` (``Fraction(30, 60)``: 30 a minute).
"""
from __future__ import annotations

from fractions import Fraction

from ringex.config import GatewayLimits

_ONE = 1_000_000_000


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per message.

    A message that finds no token is refused, but still costs one: the bucket goes
    into debt. When the debt reaches ``burst`` tokens the client is flooding
    (:attr:`flooding`), and the caller closes the connection. A client that stops
    pays the debt back at ``rate`` per second.
    """

    __slots__ = ("rate", "burst", "_num", "_den", "_level", "_rem", "_last")

    def __init__(self, rate: int | Fraction, burst: int, now_ns: int):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        r = Fraction(rate)
        self._num, self._den = r.numerator, r.denominator
        self._level = burst * _ONE
        self._rem = 0                 # refill below one nano-token, times _den (kept exact)
        self._last = now_ns

    def _refill(self, now_ns: int) -> None:
        elapsed = now_ns - self._last
        if elapsed > 0:
            add, self._rem = divmod(elapsed * self._num + self._rem, self._den)
            self._level += add
            if self._level >= self.burst * _ONE:
                self._level, self._rem = self.burst * _ONE, 0
            self._last = now_ns

    def take(self, now_ns: int) -> bool:
        """Spend one token at time ``now_ns`` (monotonic nanoseconds). True: allowed."""
        self._refill(now_ns)
        self._level -= _ONE
        return self._level >= 0

    def try_take(self, now_ns: int, n: int = 1) -> bool:
        """Spend ``n`` tokens if there are; a refusal costs nothing (no debt)."""
        self._refill(now_ns)
        if self._level < n * _ONE:
            return False
        self._level -= n * _ONE
        return True

    def retry_after_ms(self, now_ns: int, n: int = 1) -> int:
        """Milliseconds until ``n`` tokens are there again (0: now), rounded up."""
        self._refill(now_ns)
        missing = n * _ONE - self._level
        if missing <= 0:
            return 0
        ns = -(-missing * self._den // self._num)
        return -(-ns // 1_000_000)

    def full(self, now_ns: int) -> bool:
        """Refilled to the burst: nothing spent lately."""
        self._refill(now_ns)
        return self._level >= self.burst * _ONE

    @property
    def flooding(self) -> bool:
        return self._level <= -self.burst * _ONE

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: debt); for tests and metrics."""
        return self._level / _ONE


class AddressBudget:
    """What one remote address may do at one gateway, across its connections."""

    __slots__ = ("connections", "anonymous", "login_failures")

    def __init__(self, limits: GatewayLimits, now_ns: int):
        self.connections = 0          # open now (the gateway counts them)
        self.anonymous = TokenBucket(limits.ip_anonymous_rate_per_s,
                                     limits.ip_anonymous_burst, now_ns)
        self.login_failures = TokenBucket(Fraction(limits.ip_login_failures_per_min, 60),
                                          limits.ip_login_failure_burst, now_ns)

    def idle(self, now_ns: int) -> bool:
        """No connection and nothing spent: it can be forgotten."""
        return (self.connections == 0 and self.anonymous.full(now_ns)
                and self.login_failures.full(now_ns))


class Budgets:
    """The budgets the sessions of one gateway share: messages per account (over all its
    connections) and, per remote address, open connections, messages of connections not
    logged in, and failed logins. Shared buckets never go into debt: one connection's
    flood must not close another's. Entries are made on first use and forgotten when
    idle (swept once the tables grow past ``sweep_at``)."""

    def __init__(self, limits: GatewayLimits, sweep_at: int = 10_000):
        self.limits = limits
        self.sweep_at = sweep_at
        self._accounts: dict[int, TokenBucket] = {}
        self._addresses: dict[bytes, AddressBudget] = {}

    def account(self, account: int, now_ns: int) -> TokenBucket:
        bucket = self._accounts.get(account)
        if bucket is None:
            if len(self._accounts) >= self.sweep_at:
                self._accounts = {a: b for a, b in self._accounts.items() if not b.full(now_ns)}
            bucket = self._accounts[account] = TokenBucket(
                self.limits.account_rate_per_s, self.limits.account_burst, now_ns)
        return bucket

    def address(self, addr: bytes, now_ns: int) -> AddressBudget:
        budget = self._addresses.get(addr)
        if budget is None:
            if len(self._addresses) >= self.sweep_at:
                self._addresses = {a: b for a, b in self._addresses.items()
                                   if not b.idle(now_ns)}
            budget = self._addresses[addr] = AddressBudget(self.limits, now_ns)
        return budget
