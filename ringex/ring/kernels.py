"""The rings' numba side: the matcher's loops (and benchmarks) call these over ``ring.hdr``,
``ring.slots`` (and a broadcast ring's ``stamps``). The same rules as the Python methods of
``SpscRing`` and ``BroadcastRing``, which are plain numpy so that gateways, the writer and
the supervisor never load numba (docs/rings.md). Each function is one side's operation;
never call a producer function from two processes.
"""
from __future__ import annotations

from ringex.jit import njit
from ringex.ring.atomics import (cpu_relax, fence_acquire, fence_release, load_acquire,
                                 load_relaxed, store_relaxed, store_release)
from ringex.ring.shm import CAPACITY, HEAD, TAIL

# ---------------------------------------------------------------- SPSC (ringex.ring.spsc)


@njit(cache=True)
def ring_available(hdr):
    """(Consumer) records ready to read."""
    return load_acquire(hdr, HEAD) - load_relaxed(hdr, TAIL)


@njit(cache=True)
def ring_free(hdr):
    """(Producer) slots free to write."""
    return hdr[CAPACITY] - (load_relaxed(hdr, HEAD) - load_acquire(hdr, TAIL))


@njit(cache=True)
def ring_read_into(hdr, slots, out, max_n):
    """(Consumer) copy up to ``max_n`` records into ``out[0:]``; return how many."""
    tail = load_relaxed(hdr, TAIL)
    n = min(load_acquire(hdr, HEAD) - tail, max_n, len(out))
    if n <= 0:
        return 0
    mask = len(slots) - 1
    for j in range(n):
        out[j] = slots[(tail + j) & mask]
    store_release(hdr, TAIL, tail + n)
    return n


@njit(cache=True)
def ring_write(hdr, slots, recs, n):
    """(Producer) copy up to ``n`` of ``recs`` into the ring; return how many (0: full)."""
    head = load_relaxed(hdr, HEAD)
    cap = len(slots)
    k = min(n, cap - (head - load_acquire(hdr, TAIL)), len(recs))
    if k <= 0:
        return 0
    mask = cap - 1
    for j in range(k):
        slots[(head + j) & mask] = recs[j]
    store_release(hdr, HEAD, head + k)
    return k


@njit(cache=True)
def ring_wait_available(hdr, max_spins):
    """(Consumer) spin with PAUSE until records are ready, at most ``max_spins`` times.

    Returns the count ready (0 after ``max_spins``: go back to Python to check for
    shutdown or a dead peer, then call again)."""
    tail = load_relaxed(hdr, TAIL)
    for _ in range(max_spins):
        n = load_acquire(hdr, HEAD) - tail
        if n > 0:
            return n
        cpu_relax()
    return 0


# ------------------------------------------------- broadcast (ringex.ring.broadcast)
# hdr, stamps, slots: ring.hdr, ring.stamps, ring.slots; cursor: an int64[1] array.

@njit(cache=True)
def bcast_write(hdr, stamps, slots, recs, n):
    """(Producer) publish ``recs[:n]``; never waits. Returns n."""
    n = min(n, len(recs))
    head = load_relaxed(hdr, HEAD)
    mask = len(slots) - 1
    for j in range(n):
        c = head + j
        s = c & mask
        store_relaxed(stamps, s, 2 * c + 1)
        fence_release()
        slots[s] = recs[j]
        store_release(stamps, s, 2 * c + 2)
    store_release(hdr, HEAD, head + n)
    return n


@njit(cache=True)
def bcast_read_into(hdr, stamps, slots, cursor, out, max_n):
    """(Reader) copy up to ``max_n`` consecutive records into ``out``; advance
    ``cursor[0]``. Returns ``(n, lost)`` with the overrun semantics of
    ``BroadcastReader.read()``."""
    cap = len(slots)
    mask = cap - 1
    limit = min(max_n, len(out))
    r = cursor[0]
    lost = 0
    n = 0
    head = load_acquire(hdr, HEAD)
    if head - r > cap:
        lost += head - cap - r
        r = head - cap
    while n < limit and r < head:
        s = r & mask
        want = 2 * r + 2
        if load_acquire(stamps, s) == want:
            out[n] = slots[s]
            fence_acquire()
            if load_relaxed(stamps, s) == want:
                n += 1
                r += 1
                continue
        if n > 0:              # keep the batch consecutive: report the gap next call
            break
        head = load_acquire(hdr, HEAD)
        skip = max(r + 1, head - cap) - r
        lost += skip
        r += skip
    cursor[0] = r
    return n, lost
