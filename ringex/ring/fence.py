"""A full memory fence from plain Python, for the eventfd sleep/wake handshake.

The handshake (``ringex.ring.wait.EventfdWait``) needs each side's store to be visible
before its next load of the other side's word. x86 keeps stores in order and loads in
order, but may let a load pass an earlier store (the store buffer): only a fence or a
locked instruction stops that. Acquiring and releasing an uncontended lock executes
locked read-modify-writes (glibc's semaphore and mutex fast paths are ``lock cmpxchg`` /
``lock xadd``), which drain the store buffer like ``mfence``. That keeps numba out of
every process but the matcher (whose kernels use ``ringex.ring.atomics``). x86-64 only,
like the rings (``ringex.ring.atomics``).
"""
from __future__ import annotations

import threading

_lock = threading.Lock()


def full_fence() -> None:
    """Every store before this call is visible before any load after it (~0.1 us)."""
    with _lock:
        pass


def store_then_fence(words, i: int, value: int) -> None:
    """``words[i] = value``, visible before any later load."""
    words[i] = value
    full_fence()


def fence_then_load(words, i: int) -> int:
    """Earlier stores made visible, then ``words[i]``."""
    full_fence()
    return int(words[i])
