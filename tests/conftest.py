"""Suite-wide hygiene: no test may leave a ringex shared-memory segment or a child process."""
from __future__ import annotations

import multiprocessing
import os

import pytest

SHM_DIR = "/dev/shm"


def _ringex_segments() -> set[str]:
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith("ringex")}
    except FileNotFoundError:
        return set()


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves shared memory in /dev/shm or a live child process."""
    before = _ringex_segments()
    yield
    leaked = _ringex_segments() - before
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
    assert not children, f"child processes left running: {children}"
