"""Fixtures for ring tests: fresh ring names and spawned children that are always stopped."""
from __future__ import annotations

import multiprocessing

import pytest

from ringex.ring.shm import segment_name

JOIN_TIMEOUT = 30.0


@pytest.fixture
def ring_name() -> str:
    return segment_name("test")


@pytest.fixture
def spawn():
    """``spawn(target, *args)`` starts a spawned daemon child; all are killed at teardown."""
    ctx = multiprocessing.get_context("spawn")
    started = []

    def start(target, *args):
        p = ctx.Process(target=target, args=args, daemon=True)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        if p.is_alive():
            p.kill()
        p.join(10)


def join_ok(p, timeout: float = JOIN_TIMEOUT) -> None:
    """Join a child and fail (killing it) unless it exited 0 in time."""
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join(5)
        pytest.fail(f"child {p.name} did not finish within {timeout} s")
    assert p.exitcode == 0, f"child {p.name} exit code {p.exitcode}"
