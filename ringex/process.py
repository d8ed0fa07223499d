"""Child processes: flags they share, and starting one that says when it is ready.

``SharedFlag``: the supervisor hands one to every gateway and to the demo to stop them
(``stop_event``), and one to each gateway to say it listens (``ready_event``). It is a
plain word in shared memory: ``set()`` and ``is_set()`` never block and ``wait()`` polls.
Why not ``multiprocessing.Event``: its ``set()`` waits for every sleeping waiter to
acknowledge the wake-up, so a process that died inside ``wait()`` (killed, crashed,
``os._exit``) makes ``set()`` hang forever, and every ``is_set()`` behind it too; and each
one is five named semaphores in /dev/shm, which a kill -9 of the whole group (its
resource tracker included) leaves behind.

``title_process``: names a child in ``ps``/``top`` after its role.

``ChildProcess``: the start-and-wait and kill of the engine and writer processes, which
report readiness through a word of their shared-memory counters.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable

import setproctitle

log = logging.getLogger("ringex.process")


def title_process() -> None:
    """Show this child as ``ringex-engine (run <supervisor pid>)`` (its multiprocessing
    name) instead of ``python -c from multiprocessing.spawn ...`` in ps, top and
    ``ps -ef --forest``."""
    name = multiprocessing.current_process().name
    setproctitle.setproctitle(f"{name} (run {os.getppid()})")


class SharedFlag:
    POLL_S = 0.01

    def __init__(self, ctx=None):
        ctx = ctx or multiprocessing.get_context()
        self._value = ctx.RawValue("i", 0)     # pickled into spawned children with them

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return self._value.value != 0

    def clear(self) -> None:
        self._value.value = 0

    def wait(self, timeout: float | None = None, poll_s: float = POLL_S) -> bool:
        """True once set (seen within ``poll_s``); False after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll_s if deadline is None
                       else max(0.0, min(poll_s, deadline - time.monotonic())))
        return True

    def __repr__(self) -> str:
        return f"<SharedFlag {'set' if self.is_set() else 'clear'}>"


class ChildProcess:
    """A ``multiprocessing.Process`` (``self.process``) that signals readiness."""

    process: multiprocessing.process.BaseProcess

    def _start_and_wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Start the process; return once ``ready()``; kill it and raise RuntimeError if it
        exits first or ``timeout`` seconds pass."""
        self.process.start()
        self._wait_ready(ready, timeout, what)

    def _wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Return once the started process is ``ready()``; as ``_start_and_wait``."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.process.is_alive() or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{what} did not start (exit code {self.process.exitcode})")
            time.sleep(0.005)

    def _join_or_kill(self, timeout: float, what: str) -> int | None:
        """After asking it to stop: wait up to ``timeout`` for the exit, kill if it does not
        come; the exit code (None if never started)."""
        if self.process.pid is None:         # never started
            return None
        self.process.join(timeout)
        if self.process.is_alive():
            log.error("%s: did not stop within %.0f s; killing it", what, timeout)
        self.kill()
        return self.process.exitcode

    def kill(self) -> None:
        """SIGKILL if it still runs, then reap it."""
        if self.process.is_alive():
            self.process.kill()
        if self.process.pid is not None:
            self.process.join(5)
