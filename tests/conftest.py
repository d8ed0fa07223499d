"""Suite-wide hygiene: no test may leave a ringex shared-memory segment, a named semaphore or
a child process."""
from __future__ import annotations

import multiprocessing
import os

import pytest

from ringex.ring.shm import creator_pid

pytest_plugins = ["tests.db"]       # database fixtures for the storage and fault tests

SHM_DIR = "/dev/shm"


def _ringex_segments() -> set[str]:
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith("ringex")}
    except FileNotFoundError:
        return set()


def _semaphores() -> set[str]:
    """multiprocessing's named semaphores (Lock, Event, ...): a kill -9 of a process group
    leaves those of its processes behind, as files in /dev/shm."""
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith("sem.mp-")}
    except FileNotFoundError:
        return set()


def _in_our_tree(pid: int) -> bool:
    """True when pid is this process or one of its descendants."""
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def _someone_elses(name: str) -> bool:
    """A segment named ringex-<pid>-... whose live creator is outside this test run
    (another developer's concurrent test run): not ours to judge."""
    pid = creator_pid(name)
    return pid is not None and os.path.exists(f"/proc/{pid}") and not _in_our_tree(pid)


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves shared memory in /dev/shm or a live child process."""
    before, sems = _ringex_segments(), _semaphores()
    yield
    leaked = {n for n in _ringex_segments() - before if not _someone_elses(n)}
    sems = _semaphores() - sems
    children = multiprocessing.active_children()
    for child in children:  # stop them so one leak does not cascade into later tests
        child.kill()
        child.join(5)
    for name in leaked:
        try:
            os.unlink(os.path.join(SHM_DIR, name))
        except FileNotFoundError:
            pass
    assert not leaked, f"shared memory left in {SHM_DIR}: {sorted(leaked)}"
    assert not sems, f"named semaphores left in {SHM_DIR}: {sorted(sems)}"
    assert not children, f"child processes left running: {children}"
