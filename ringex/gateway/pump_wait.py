"""How a gateway's event pump waits when its event and market-data rings are both empty.

The pump runs on the asyncio loop. While there is traffic it polls once per loop
iteration (``await asyncio.sleep(0)``: 1-2 us with uvloop when no socket is ready, so the
loop keeps serving sockets between polls) and stays *hot* for ``spin`` empty polls after
the last event or command (the strategy's own ``spin``: 2000 for spin_then_sleep, a
couple of milliseconds; 200 for eventfd). Then it goes *cold* and awaits
:meth:`PumpWait.wait`, which returns when the rings may hold records, when
:meth:`PumpWait.kick` is called (the gateway just wrote a command, so a reply is due), or
after ``timeout``; it returns False only in the last case, and the pump then waits cold
again instead of spinning hot (an idle gateway costs next to nothing). One class per
``ringex.ring.wait`` strategy name:

- ``busy_spin``        never cold: lowest latency, one core per gateway while idle.
- ``spin_then_sleep``  cold: a helper thread polls the rings with sleeps doubling from
                       20 us to 1 ms and wakes the loop (``call_soon_threadsafe``) --
                       asyncio timers cannot sleep under a millisecond. After
                       ``DEEP_IDLE_S`` with no records and no kick it polls every
                       ``DEEP_SLEEP_S`` instead: an idle gateway costs about 1 % of a core
                       (4-5 % at 1 ms), and only market data or another gateway's fill
                       arriving after such a quiet second waits up to 5 ms more; a
                       client's own request kicks the pump at once. The default.
- ``eventfd``          cold: the loop watches the engine's eventfd (``loop.add_reader``);
                       the engine signals it after writing the event ring or the md ring.
                       Zero CPU while idle; needs the supervisor's ``wakeups``.

Why hot at all: on a busy machine a sleeping process waits for the scheduler to run it
again (measured here: +250 us median per request with no hot window, at 1,000 requests
per second), while a polling one is already on a core.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from ringex.ring.wait import EventfdWait, Gate, SleepSchedule, SpinThenSleepWait, make_wait

Poll = Callable[[], int]
DEEP_IDLE_S = 1.0           # spin_then_sleep: this long without records or kicks ...
DEEP_SLEEP_S = 0.005        # ... and the helper thread polls this often


class PumpWait:
    """Base: a future that ``kick`` (or a subclass's wake-up source) resolves."""

    name = "?"
    spin = 2000                 # empty polls before going cold

    def __init__(self) -> None:
        self._fut: asyncio.Future | None = None

    def _arm(self) -> asyncio.Future:
        self._fut = asyncio.get_running_loop().create_future()
        return self._fut

    def _fire(self, fut: asyncio.Future | None = None, woken: bool = True) -> None:
        fut = fut or self._fut
        if fut is not None and not fut.done():
            fut.set_result(woken)

    def kick(self) -> None:
        """Wake a pending ``wait`` now (call from the loop thread)."""
        self._fire()

    async def wait(self, poll: Poll, timeout: float) -> bool:
        """Until the rings may hold records or a kick (True), or ``timeout`` (False)."""
        raise NotImplementedError

    def close(self) -> None:
        self._fire()


class BusySpinPumpWait(PumpWait):
    name = "busy_spin"
    spin = 1 << 62

    async def wait(self, poll: Poll, timeout: float) -> bool:
        await asyncio.sleep(0)
        return True


class SleepThreadPumpWait(PumpWait):
    """A helper thread polls while the pump is cold (see the module docstring)."""

    name = "spin_then_sleep"

    def __init__(self, schedule: SleepSchedule = SleepSchedule()):
        super().__init__()
        self.schedule = schedule
        self.spin = schedule.spin
        self._cond = threading.Condition()
        self._armed: tuple[asyncio.AbstractEventLoop, asyncio.Future, Poll] | None = None
        self._quit = False
        self._active = time.monotonic()        # last records seen or kick
        self._thread = threading.Thread(target=self._run, name="ringex-pump-wait",
                                        daemon=True)
        self._thread.start()

    async def wait(self, poll: Poll, timeout: float) -> bool:
        fut = self._arm()
        loop = asyncio.get_running_loop()
        with self._cond:
            self._armed = (loop, fut, poll)
            self._cond.notify()
        handle = loop.call_later(timeout, self._fire, fut, False)
        try:
            woken = await fut
            if woken:
                self._active = time.monotonic()
            return woken
        finally:
            handle.cancel()
            with self._cond:
                self._armed = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._armed is None and not self._quit:
                    self._cond.wait()
                if self._quit:
                    return
                assert self._armed is not None      # the wait above ends only so
                loop, fut, poll = self._armed
            rounds = self.spin                  # the pump spun those already
            while True:
                if poll():
                    try:
                        loop.call_soon_threadsafe(self._fire, fut)
                    except RuntimeError:        # the loop is closed
                        return
                    break
                deep = time.monotonic() - self._active > DEEP_IDLE_S
                time.sleep(max(DEEP_SLEEP_S, self.schedule.max_sleep) if deep
                           else self.schedule.sleep_for(rounds))
                rounds += 1
                with self._cond:
                    if self._quit:
                        return
                    if self._armed is None or self._armed[1] is not fut:
                        break
            with self._cond:                    # wait for the next arm
                while self._armed is not None and self._armed[1] is fut and not self._quit:
                    self._cond.wait(0.05)

    def close(self) -> None:
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        super().close()
        self._thread.join(1.0)


class EventfdPumpWait(PumpWait):
    """Block on the engine's eventfd for the event ring (it also signals md publishes)."""

    name = "eventfd"

    def __init__(self, wakeup: EventfdWait, gate: Gate):
        super().__init__()
        self._wakeup = wakeup
        self._gate = gate
        self.spin = wakeup.spin

    async def wait(self, poll: Poll, timeout: float) -> bool:
        if self._wakeup.arm(self._gate, poll):
            return True
        fut = self._arm()
        loop = asyncio.get_running_loop()
        fd = self._wakeup.fileno()
        loop.add_reader(fd, self._fire, fut)
        handle = loop.call_later(timeout, self._fire, fut, False)
        try:
            return await fut
        finally:
            handle.cancel()
            loop.remove_reader(fd)
            self._wakeup.disarm(self._gate)


def make_pump_wait(name: str, wakeups: dict | None, evt_gate: Gate) -> PumpWait:
    """The pump wait for a ``ringex.ring.wait`` strategy name (see module docstring)."""
    strategy = make_wait(name)      # validates the name (ConfigError for an unknown one)
    try:
        if strategy.name == "busy_spin":
            return BusySpinPumpWait()
        if strategy.name == "eventfd":
            if not wakeups or "evt" not in wakeups:
                raise ValueError("the eventfd wait strategy needs the supervisor's wakeups")
            return EventfdPumpWait(wakeups["evt"], evt_gate)
        assert isinstance(strategy, SpinThenSleepWait)
        return SleepThreadPumpWait(strategy.schedule)
    finally:
        strategy.close()
