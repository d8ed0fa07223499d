"""libc calls usable inside numba kernels: writev(2), fsync(2), fallocate(2),
clock_gettime(2) (CLOCK_MONOTONIC, through the vDSO: about 20 ns, no system call) and
the calling thread's errno.

Each is an intrinsic that declares the C function by name, so the machine code refers
to the symbol (resolved in this process at load time) rather than to an address: the
kernels that use them stay cacheable on disk. Errors come back as -1; ``sys_errno`` reads
why, right after the failed call (the journal tells a full disk from other failures).
"""
from __future__ import annotations

import llvmlite.ir as ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

_I32, _I64 = ir.IntType(32), ir.IntType(64)
_PTR = ir.IntType(8).as_pointer()


def _call(builder, name, ret, argtys, args):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, argtys), name)
    return builder.call(fn, args)


@intrinsic
def sys_writev(typingctx, fd, iov_address, iovcnt):
    """writev(fd, iov, iovcnt): iov_address points at int64 pairs (base, length)."""
    def codegen(context, builder, sig, args):
        r = _call(builder, "writev", _I64, [_I32, _PTR, _I32],
                  [builder.trunc(args[0], _I32), builder.inttoptr(args[1], _PTR),
                   builder.trunc(args[2], _I32)])
        return r
    return types.int64(types.int64, types.int64, types.int64), codegen


@intrinsic
def sys_fsync(typingctx, fd):
    def codegen(context, builder, sig, args):
        r = _call(builder, "fsync", _I32, [_I32], [builder.trunc(args[0], _I32)])
        return builder.sext(r, _I64)
    return types.int64(types.int64), codegen


@intrinsic
def sys_fallocate(typingctx, fd, mode, offset, length):
    """fallocate(fd, mode, offset, length); 0 or -1."""
    def codegen(context, builder, sig, args):
        r = _call(builder, "fallocate", _I32, [_I32, _I32, _I64, _I64],
                  [builder.trunc(args[0], _I32), builder.trunc(args[1], _I32), args[2], args[3]])
        return builder.sext(r, _I64)
    return types.int64(types.int64, types.int64, types.int64, types.int64), codegen


@intrinsic
def sys_errno(typingctx):
    """The calling thread's errno (glibc's ``__errno_location``)."""
    def codegen(context, builder, sig, args):
        where = _call(builder, "__errno_location", _I32.as_pointer(), [], [])
        return builder.sext(builder.load(where), _I64)
    return types.int64(), codegen


CLOCK_MONOTONIC = 1


@intrinsic
def clock_ns(typingctx):
    """clock_gettime(CLOCK_MONOTONIC) in nanoseconds, the clock of time.monotonic_ns()."""
    def codegen(context, builder, sig, args):
        ts = cgutils.alloca_once(builder, ir.ArrayType(_I64, 2))      # struct timespec
        _call(builder, "clock_gettime", _I32, [_I32, _PTR],
              [ir.Constant(_I32, CLOCK_MONOTONIC), builder.bitcast(ts, _PTR)])
        sec = builder.load(builder.gep(ts, [ir.Constant(_I32, 0), ir.Constant(_I32, 0)]))
        nsec = builder.load(builder.gep(ts, [ir.Constant(_I32, 0), ir.Constant(_I32, 1)]))
        return builder.add(builder.mul(sec, ir.Constant(_I64, 1_000_000_000)), nsec)
    return types.int64(), codegen


def _pointer(item):
    """An intrinsic turning an integer address into an ``item*`` (for numba.carray over
    raw memory)."""
    ptr = types.CPointer(item)

    @intrinsic
    def as_pointer(typingctx, address):
        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))
        return ptr(types.int64), codegen
    return as_pointer


u64_pointer = _pointer(types.uint64)
u8_pointer = _pointer(types.uint8)
