"""A stop flag shared between processes, with ``multiprocessing.Event``'s interface.

The supervisor hands one to every gateway (``stop_event``) and to the demo. It is a plain
word in shared memory: ``set()`` and ``is_set()`` never block and ``wait()`` polls.
Why not ``multiprocessing.Event``: its ``set()`` waits for every sleeping waiter to
acknowledge the wake-up, so a process that died inside ``wait()`` (killed, crashed,
``os._exit``) makes ``set()`` hang forever, and every ``is_set()`` behind it too.
"""
from __future__ import annotations

import multiprocessing
import time


class StopFlag:
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

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.POLL_S if deadline is None
                       else max(0.0, min(self.POLL_S, deadline - time.monotonic())))
        return True

    def __repr__(self) -> str:
        return f"<StopFlag {'set' if self.is_set() else 'clear'}>"
