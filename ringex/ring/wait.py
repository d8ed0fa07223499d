"""Wait strategies: what a ring side does while there is nothing to read (or no room).

One interface, chosen by config name through ``make_wait(name, **opts)``:

    wait(poll, gate=None, timeout=None) -> int
        Call ``poll()`` (returns how many records are ready, 0 for none) until it is non-zero
        and return that count; return 0 when ``timeout`` seconds pass; raise ``PeerGone``
        when the gate's peer process has died or closed the ring and ``poll()`` is still 0
        (everything the peer published before dying is returned first).
    idle(iteration)
        One pause between two empty polls (the part that differs between strategies).
    signal(gate)
        Called by the *other* side after it moved its cursor: wakes the waiter if it sleeps.
        A no-op except for ``EventfdWait``.

A ``Gate`` names the shared words one waiting side uses in a ring header: its own "I am
sleeping" flag and its peer's pid word. Rings expose ``data_gate`` (the consumer waits on it,
the producer signals it) and, for SPSC rings, ``space_gate`` (the producer waits for room).

The same three strategies, by the same names (``WAITS``; ``ringex run --wait`` spells them
busy, spin, eventfd: ``CLI_WAITS``), drive the matcher's idle loop
(``ringex.core.engine.front``) and the gateway's event pump (``ringex.gateway.pump_wait``).
Every spin-then-sleep wait sleeps by a ``SleepSchedule``.

Poll loops never call ``os.sched_yield()``: with more busy processes than cores a yield can
give away a whole time slice (docs/rings.md).
"""
from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass
from multiprocessing import reduction
from typing import Callable

from ringex.errors import ConfigError, RingError
from ringex.ring.fence import fence_then_load, store_then_fence
from ringex.ring.shm import PID_CLOSED, PID_NONE

PEER_CHECK_S = 0.05        # how often a waiter checks that its peer is alive


class PeerGone(RingError):
    """The process on the other side of a ring died or closed it; nothing more will come."""

    def __init__(self, ring: str, pid: int):
        how = "closed the ring" if pid == PID_CLOSED else f"(pid {pid}) is gone"
        super().__init__(f"peer of ring {ring!r} {how}")
        self.ring = ring
        self.pid = pid


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as dead: its parent just has not reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True          # no procfs: trust kill()
    state = stat[stat.rindex(b")") + 2:][:1]
    return state not in (b"Z", b"X")


@dataclass(frozen=True)
class SleepSchedule:
    """Spin ``spin`` idle rounds, then sleep ``min_sleep`` doubling up to ``max_sleep``."""

    spin: int = 2000
    min_sleep: float = 20e-6
    max_sleep: float = 1e-3

    def __post_init__(self) -> None:
        if self.spin < 0 or self.min_sleep <= 0 or self.max_sleep < self.min_sleep:
            raise ConfigError("spin_then_sleep needs spin >= 0, 0 < min_sleep <= max_sleep")

    def sleep_for(self, iteration: int) -> float:
        """Seconds to sleep after ``iteration`` idle rounds (0 while spinning)."""
        k = iteration - self.spin
        if k < 0:
            return 0.0
        return min(self.max_sleep, self.min_sleep * (1 << min(k, 40)))


class Gate:
    """The header words one waiting side shares with its peer (see module docstring)."""

    __slots__ = ("hdr", "sleeping", "peer_pid", "ring")

    def __init__(self, hdr, sleeping: int | None, peer_pid: int, ring: str = "?"):
        self.hdr = hdr              # the ring's int64 header view
        self.sleeping = sleeping    # word index of the waiter's sleeping flag, or None
        self.peer_pid = peer_pid    # word index of the peer's pid
        self.ring = ring

    def peer_state(self) -> int:
        """0 if the peer is alive or not registered yet, else its pid (or PID_CLOSED)."""
        pid = int(self.hdr[self.peer_pid])
        if pid == PID_NONE or (pid > 0 and pid_alive(pid)):
            return 0
        return pid

    def announce_sleep(self) -> None:
        """Set my sleeping flag, visible before my next poll (full fence)."""
        assert self.sleeping is not None          # EventfdWait checks its gates
        store_then_fence(self.hdr, self.sleeping, 1)

    def cancel_sleep(self) -> None:
        self.hdr[self.sleeping] = 0

    def waiter_sleeping(self) -> bool:
        """(Signalling side) my cursor store is visible before I read the waiter's flag."""
        assert self.sleeping is not None
        return fence_then_load(self.hdr, self.sleeping) != 0


class WaitStrategy:
    """Base: the poll loop with timeout and peer-death checks; subclasses provide ``idle``."""

    name = "?"
    spin = 1 << 62            # idle iterations that do not sleep (time checked every 256)

    def __init__(self, peer_check_s: float = PEER_CHECK_S):
        self.peer_check_s = peer_check_s

    def idle(self, iteration: int) -> None:
        raise NotImplementedError

    def signal(self, gate: Gate) -> None:
        """Nothing to do: this strategy's waiter never sleeps on anything signalable."""

    def wait(self, poll: Callable[[], int], gate: Gate | None = None,
             timeout: float | None = None) -> int:
        n = poll()
        if n:
            return n
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        next_check = now + self.peer_check_s
        spin = self.spin
        i = 0
        while True:
            self.idle(i)
            i += 1
            n = poll()
            if n:
                return n
            if i >= spin or not i & 0xFF:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return 0
                if gate is not None and now >= next_check:
                    _check_peer(gate, poll)
                    next_check = now + self.peer_check_s

    def close(self) -> None:
        """Release OS resources (only ``EventfdWait`` has any)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _check_peer(gate: Gate, poll: Callable[[], int]) -> None:
    gone = gate.peer_state()
    if gone and not poll():       # records published just before dying still count
        raise PeerGone(gate.ring, gone)


class BusySpinWait(WaitStrategy):
    """Poll again at once, forever.

    Trade-off: the lowest latency (the next poll is ~0.1 us away from Python; numba loops
    use ``ring_wait_available``, which adds the PAUSE hint) for a whole core burnt while
    idle. Use only where a core is reserved for the poller (the matcher)."""

    name = "busy_spin"

    def idle(self, iteration: int) -> None:
        pass


class SpinThenSleepWait(WaitStrategy):
    """Spin ``spin`` polls, then sleep ``min_sleep`` doubling up to ``max_sleep`` seconds.

    Trade-off: busy-spin latency for records that arrive within the spin window (~0.1 ms
    from Python at the default 2000 polls); after that a record waits up to ``max_sleep``
    plus the kernel timer slack (~50 us), while an idle waiter costs only ~1/max_sleep
    short wake-ups per second. The default for gateways and tools."""

    name = "spin_then_sleep"

    def __init__(self, spin: int = 2000, min_sleep: float = 20e-6, max_sleep: float = 1e-3,
                 peer_check_s: float = PEER_CHECK_S):
        super().__init__(peer_check_s)
        self.schedule = SleepSchedule(spin, min_sleep, max_sleep)
        self.spin = spin

    def sleep_for(self, iteration: int) -> float:
        """Seconds slept after ``iteration`` empty polls (0 while spinning)."""
        return self.schedule.sleep_for(iteration)

    def idle(self, iteration: int) -> None:
        if iteration >= self.spin:
            time.sleep(self.schedule.sleep_for(iteration))


class EventfdWait(WaitStrategy):
    """Spin briefly, then block in the kernel on an eventfd until the peer signals.

    Trade-off: zero CPU while idle, for the highest wake-up latency (a syscall on each
    side and a scheduler wake-up: ~5-50 us, more when cores are busy); and every
    ``signal()`` costs the producer a full fence (~0.3 us from Python) even when nobody
    sleeps (``ringex.ring.fence``). For gateways and tools waiting on a mostly idle ring.

    Protocol (no lost wake-up): the waiter sets its sleeping flag, fences, polls once more,
    and only then blocks; the signaller publishes its cursor, fences, and writes the eventfd
    only if the flag is set. Each side's store is visible before its load, so at least one
    of them sees the other's.

    One eventfd serves one gate and both processes must hold it: create the strategy before
    starting the peer and pass the object as a ``multiprocessing.Process`` argument (any
    start method: pickling duplicates the fd into the child through ``reduction.DupFd``), or
    pass ``fd=`` an inherited descriptor. An asyncio waiter uses ``arm``/``fileno``/``disarm``.
    """

    name = "eventfd"

    spin_default = 200

    def __init__(self, spin: int = spin_default, fd: int | None = None,
                 peer_check_s: float = PEER_CHECK_S):
        super().__init__(peer_check_s)
        self.spin = spin
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) if fd is None else fd
        os.set_blocking(self._fd, False)
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)

    def fileno(self) -> int:
        return self._fd

    def signal(self, gate: Gate) -> None:
        if gate.waiter_sleeping():
            os.eventfd_write(self._fd, 1)

    def drain(self) -> None:
        """Consume pending wake-ups (non-blocking)."""
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:
            pass

    def arm(self, gate: Gate, poll: Callable[[], int]) -> int:
        """Announce sleep, then poll once more; if that returns 0, block on ``fileno()``
        (e.g. ``loop.add_reader``) and call ``disarm`` when woken. Returns the poll count."""
        _check_gate(gate)
        gate.announce_sleep()
        n = poll()
        if n:
            gate.cancel_sleep()
        return n

    def disarm(self, gate: Gate) -> None:
        gate.cancel_sleep()
        self.drain()

    def wait(self, poll: Callable[[], int], gate: Gate | None = None,
             timeout: float | None = None) -> int:
        gate = _check_gate(gate)
        for _ in range(self.spin + 1):
            n = poll()
            if n:
                return n
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            n = self.arm(gate, poll)
            if n:
                return n
            block = self.peer_check_s
            if deadline is not None:
                block = min(block, deadline - time.monotonic())
            try:
                woken = block > 0 and self._poller.poll(block * 1000.0)
            finally:
                self.disarm(gate)
            n = poll()
            if n:
                return n
            if deadline is not None and time.monotonic() >= deadline:
                return 0
            if not woken:
                _check_peer(gate, poll)

    def close(self) -> None:
        if self._fd >= 0:
            self._poller.unregister(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __reduce__(self):
        return _rebuild_eventfd, (reduction.DupFd(self._fd), self.spin, self.peer_check_s)

    def __repr__(self) -> str:
        return f"<EventfdWait fd={self._fd}>"


def _rebuild_eventfd(dup, spin: int, peer_check_s: float) -> EventfdWait:
    return EventfdWait(spin=spin, fd=dup.detach(), peer_check_s=peer_check_s)


def _check_gate(gate: Gate | None) -> Gate:
    if gate is None or gate.sleeping is None:
        raise RingError("EventfdWait needs a gate with a sleeping flag (an SPSC ring's "
                        "data_gate or space_gate)")
    return gate


WAITS: dict[str, type[WaitStrategy]] = {
    cls.name: cls for cls in (BusySpinWait, SpinThenSleepWait, EventfdWait)
}
CLI_WAITS = {"busy": "busy_spin", "spin": "spin_then_sleep", "eventfd": "eventfd"}


def make_wait(name: str, **opts) -> WaitStrategy:
    """The wait strategy called ``name`` in config: busy_spin, spin_then_sleep or eventfd
    (dashes and case are ignored), built with ``opts`` as keyword arguments."""
    key = str(name).strip().lower().replace("-", "_")
    try:
        cls = WAITS[key]
    except KeyError:
        raise ConfigError(f"unknown wait strategy {name!r}; one of {sorted(WAITS)}") from None
    try:
        return cls(**opts)
    except TypeError as e:
        raise ConfigError(f"wait strategy {key}: {e}") from None
