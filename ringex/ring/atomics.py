"""Memory-ordering primitives for numba code that shares memory with another process.

Why this file exists: numba compiles ``while cursor[0] == last: pass`` into a loop that
loads ``cursor[0]`` once (LLVM hoists the load because nothing in the loop writes it), so a
consumer spinning on a producer's cursor can hang forever. Every load of a cursor written by
another process goes through ``load_acquire`` and every store of a cursor another process
reads goes through ``store_release``. They are LLVM atomic operations on an array element:

    load_acquire(a, i)        -> a[i]   (no later memory access moves before it)
    store_release(a, i, v)              (no earlier memory access moves after it)
    load_relaxed / store_relaxed        atomic, no ordering (seqlock stamps)
    fence_acquire / fence_release       ordering without an access (seqlock reader/writer)
    fence_seq_cst                       full fence: orders a store before a later load
    cpu_relax()                         spin-loop hint (x86 PAUSE; no-op elsewhere)

x86-TSO assumption. On x86-64 every aligned 8-byte load is an acquire and every aligned
8-byte store a release in hardware; the only reordering the CPU does is a store followed by
a load of a *different* address (the store buffer). So on x86 ``load_acquire`` and
``store_release`` compile to plain ``mov`` and only stop the *compiler* from reordering,
hoisting or caching; ``fence_seq_cst`` is the one instruction that costs (``mfence``) and it
is used only on the eventfd sleep/wake handshake (store my flag, then load your cursor).
The pure-Python/numpy ring paths rely on TSO directly: each numpy call is an opaque C call
the interpreter cannot reorder, and the CPU keeps loads in order and stores in order.
On other CPUs (ARM64) the numba intrinsics emit the needed barriers (``ldar``/``stlr``),
but the numpy paths would need explicit fences: ringex's rings support x86-64 only.

The array passed must be a 1-D integer array whose elements are naturally aligned (all ring
headers are; shared memory is page aligned).
"""
from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ringex.jit import njit

IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _element_pointer(context, builder, sig, args):
    """LLVM pointer to ``args[0][args[1]]`` (no bounds check: callers own the indices)."""
    aryty, idxty = sig.args[0], sig.args[1]
    ary = context.make_array(aryty)(context, builder, value=args[0])
    idx = context.cast(builder, args[1], idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx])


def _check_array(arr, idx) -> bool:
    return (
        isinstance(arr, types.Array) and arr.ndim == 1
        and isinstance(arr.dtype, types.Integer)
        and arr.dtype.bitwidth in (32, 64)  # type: ignore[attr-defined]  # not in numba's stub
        and isinstance(idx, types.Integer)
    )


def _make_load(ordering: str):
    def load(typingctx, arr, idx):
        if not _check_array(arr, idx):
            return None

        def codegen(context, builder, sig, args):
            ptr = _element_pointer(context, builder, sig, args)
            align = sig.args[0].dtype.bitwidth // 8
            return builder.load_atomic(ptr, ordering, align)

        return arr.dtype(arr, idx), codegen

    return load


def _make_store(ordering: str):
    def store(typingctx, arr, idx, val):
        if not _check_array(arr, idx) or not isinstance(val, types.Integer):
            return None

        def codegen(context, builder, sig, args):
            ptr = _element_pointer(context, builder, sig, args)
            aryty = sig.args[0]
            value = context.cast(builder, args[2], sig.args[2], aryty.dtype)
            builder.store_atomic(value, ptr, ordering, aryty.dtype.bitwidth // 8)
            return context.get_dummy_value()

        return types.void(arr, idx, val), codegen

    return store


def _make_fence(ordering: str):
    def fence(typingctx):
        def codegen(context, builder, sig, args):
            builder.fence(ordering)
            return context.get_dummy_value()

        return types.void(), codegen

    return fence


load_acquire = intrinsic(_make_load("acquire"))
load_acquire.__doc__ = "a[i] as an acquire load: later accesses stay after it."
load_relaxed = intrinsic(_make_load("monotonic"))
load_relaxed.__doc__ = "a[i] as an atomic load with no ordering (never hoisted out of a loop)."
store_release = intrinsic(_make_store("release"))
store_release.__doc__ = "a[i] = v as a release store: earlier accesses stay before it."
store_relaxed = intrinsic(_make_store("monotonic"))
store_relaxed.__doc__ = "a[i] = v as an atomic store with no ordering."
fence_acquire = intrinsic(_make_fence("acquire"))
fence_release = intrinsic(_make_fence("release"))
fence_seq_cst = intrinsic(_make_fence("seq_cst"))


@intrinsic
def cpu_relax(typingctx):
    """Spin-loop hint: x86 PAUSE (saves power, avoids a pipeline flush on exit); else no-op."""

    def codegen(context, builder, sig, args):
        if IS_X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


# ------------------------------------------------------- Python-callable wrappers
# Intrinsics are callable only from numba code. These are for Python paths that need an
# ordering numpy cannot give (the eventfd handshake) and for tests.

@njit(cache=True)
def atomic_load(a, i):
    """Acquire load of ``a[i]`` (Python-callable)."""
    return load_acquire(a, i)


@njit(cache=True)
def atomic_store(a, i, v):
    """Release store ``a[i] = v`` (Python-callable)."""
    store_release(a, i, v)


@njit(cache=True)
def store_then_fence(a, i, v):
    """``a[i] = v`` followed by a full fence: the store is visible before any later load."""
    store_relaxed(a, i, v)
    fence_seq_cst()


@njit(cache=True)
def fence_then_load(a, i):
    """A full fence followed by a load of ``a[i]``: earlier stores are visible first."""
    fence_seq_cst()
    return load_acquire(a, i)


@njit(cache=True)
def spin_until_changed(a, i, last, max_spins):
    """Spin (with PAUSE) until ``a[i] != last``; return the spins taken or -1 on giving up."""
    for n in range(max_spins):
        if load_acquire(a, i) != last:
            return n
        cpu_relax()
    return -1
