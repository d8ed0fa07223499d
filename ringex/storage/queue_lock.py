"""Is the trade queue locked for good? faster-fifo's mutex is not robust: a process killed
while it holds it (a producer inside ``put``, copying its payload in; the writer inside
``get``, copying payloads out) leaves it locked, and every later ``put`` or ``get`` blocks
in ``pthread_mutex_lock`` forever, with no timeout.

    owner = dead_owner(queue)      # the dead thread id holding the lock, or None

The process that made the queue (the supervisor) maps its control block, so it can read
the mutex: glibc's ``pthread_mutex_t`` keeps the lock word and the owner's thread id
(``__lock``, ``__owner``). A held lock whose owner no longer exists (or is a zombie) can
never be released: the queue is unusable and only a new one (a restart of the group) helps.
Unlocking it by hand would not be sound: the dead process may have stopped between a
message's size and its bytes, so the buffer's bookkeeping cannot be trusted either.

The layout is checked against this faster-fifo build (``max_size_bytes`` first, the
process-shared mutex attribute word); anything else turns the check off (None).
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

ATTR_OFFSET = 48             # pthread_mutexattr_t (after five size_t fields)
MUTEX_OFFSET = 56            # pthread_mutex_t: __lock (int), __count, __owner (int), ...
PSHARED_ATTR = 0x80000000    # glibc: a process-shared mutex attribute, nothing else set
_warned = False


def _words(queue) -> tuple[int, int] | None:
    """(__lock, __owner) of the queue's mutex, or None when the layout is not the known one."""
    global _warned
    fifo = getattr(queue, "_q", queue)
    block = fifo.queue_obj_buffer
    base = ctypes.addressof(block)
    known = (len(block) >= MUTEX_OFFSET + 16
             and ctypes.c_size_t.from_address(base).value == fifo.max_size_bytes
             and ctypes.c_uint32.from_address(base + ATTR_OFFSET).value == PSHARED_ATTR)
    if not known:
        if not _warned:
            log.warning("trade queue: unknown faster-fifo layout; a queue left locked by a "
                        "dead process is not detected (stops wait their full timeouts)")
            _warned = True
        return None
    lock = ctypes.c_int32.from_address(base + MUTEX_OFFSET).value
    owner = ctypes.c_int32.from_address(base + MUTEX_OFFSET + 8).value
    return lock, owner


def lock_owner(queue) -> int | None:
    """The thread id holding the queue's lock right now, or None (free, or unknown)."""
    words = _words(queue)
    if words is None or words[0] == 0 or words[1] <= 0:
        return None
    return words[1]


def thread_gone(tid: int) -> bool:
    """No such thread any more, or only its zombie (killed, not reaped yet)."""
    try:
        with open(f"/proc/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def dead_owner(queue) -> int | None:
    """The id of a dead thread that holds the queue's lock (the queue is locked for good),
    else None."""
    owner = lock_owner(queue)
    if owner is None or not thread_gone(owner):
        return None
    if lock_owner(queue) != owner:           # released meanwhile: someone else's lock
        return None
    return owner
