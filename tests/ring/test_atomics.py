"""Acquire/release intrinsics: what they compile to, and that a spin sees another process."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
from numba import njit

from ringex.ring.atomics import (atomic_load, atomic_store, fence_then_load, load_acquire,
                                 spin_until_changed, store_then_fence)
from ringex.records import COMMAND
from ringex.ring.shm import CONSUMER_PID, HEAD, TAIL
from ringex.ring.spsc import SpscRing
from tests.ring import _workers
from tests.ring.conftest import join_ok

pytestmark = pytest.mark.timeout(60)


@njit
def _plain_spin(a):
    last = a[0]
    while a[0] == last:
        pass
    return a[0]


@njit
def _acquire_spin(a):
    last = a[0]
    while load_acquire(a, 0) == last:
        pass
    return a[0]


def _self_loops(asm: str) -> list[str]:
    """Labels whose only instruction is a jump to themselves (an empty infinite loop)."""
    return re.findall(r"^(\.LBB\w+):\s*\n\s*jmp\s+\1\s*$", asm, flags=re.M)


def _asm(fn) -> str:
    fn.compile("(int64[::1],)")
    return fn.inspect_asm(fn.signatures[0]).split("cpython")[0]   # the native function only


def test_plain_numba_spin_is_hoisted_into_an_empty_loop():
    # The hazard docs/rings.md warns about: the load leaves the loop, the loop never ends.
    assert _self_loops(_asm(_plain_spin)), "LLVM no longer hoists the plain load"


def test_acquire_spin_reloads_every_iteration():
    assert not _self_loops(_asm(_acquire_spin))
    ir = _acquire_spin.inspect_llvm(_acquire_spin.signatures[0])
    assert re.search(r"load atomic i64, ptr %\S+ acquire, align 8", ir)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_python_callable_wrappers(dtype):
    a = np.zeros(8, dtype)
    atomic_store(a, 3, 7)
    assert atomic_load(a, 3) == 7 and a[3] == 7
    store_then_fence(a, 5, 9)
    assert fence_then_load(a, 5) == 9
    assert spin_until_changed(a, 3, 7, 100) == -1
    assert spin_until_changed(a, 3, 0, 100) == 0


def test_acquire_spin_sees_a_store_from_another_process(ring_name, spawn):
    with SpscRing.create(ring_name, COMMAND, 2) as ring:
        child = spawn(_workers.spin_on_head, ring_name)
        deadline = time.monotonic() + 30
        while ring.hdr[CONSUMER_PID] == 0 and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)                       # let it spin a while on the old value
        atomic_store(ring.hdr, HEAD, 42)
        join_ok(child)
        assert ring.hdr[TAIL] > 0              # spins + 1: it saw the change, did not give up
