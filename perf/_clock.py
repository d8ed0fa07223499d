"""The CPU cycle counter for numba timing loops, and its calibration to nanoseconds."""
from __future__ import annotations

import time

import llvmlite.ir as ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic


@intrinsic
def read_cycles(typingctx):
    """The CPU cycle counter (x86: rdtsc)."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])

    return types.int64(), codegen


@njit(cache=True)
def cycles():
    return read_cycles()


def ns_per_cycle() -> float:
    """Nanoseconds per counter tick, measured over 0.2 s."""
    c0, t0 = cycles(), time.perf_counter_ns()
    time.sleep(0.2)
    c1, t1 = cycles(), time.perf_counter_ns()
    return (t1 - t0) / (c1 - c0)
