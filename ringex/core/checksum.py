"""CRC32C (Castagnoli) over raw memory, for numba kernels and Python.

    reg = crc32c_update(CRC_INIT, address, nbytes)   # the running register; chainable
    reg = crc32c_update(reg, address2, nbytes2)
    value = reg ^ CRC_INIT                            # the standard CRC32C

Where the JIT's target has SSE4.2 (``HARDWARE``), ``crc32c_update`` is ``update_hw``, the
``crc32`` instruction through its LLVM intrinsic; elsewhere ``update_sw``, table-driven
(slicing by 8), about ten times slower and giving the same values.

``update_hw`` runs three independent streams over consecutive blocks of ``BLOCK`` words:
the instruction's latency is 3 cycles but it issues one per cycle, so one stream would
run at a third of the speed. The register update is linear over GF(2), so the streams
join exactly: crc(A + B) = shift_B(crc(A)) ^ crc_from_0(B), where shift_B, the register
after len(B) zero bytes, is looked up per register byte in ``SHIFT``.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np
from numba import carray, types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.core.extending import intrinsic

from ringex.core.sysio import u8_pointer, u64_pointer
from ringex.jit import njit

POLY = 0x82F63B78        # Castagnoli, bit-reflected
CRC_INIT = 0xFFFFFFFF    # initial register, and the final xor
BLOCK = 64               # words per stream per round of update_hw (3 x 512 bytes)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """SLICE[k][v]: register after byte v then k zero bytes (from register 0);
    SHIFT[j][v]: register v << 8j after BLOCK words of zero bytes."""
    t0 = np.arange(256, dtype=np.uint64)
    for _ in range(8):
        t0 = np.where(t0 & 1, (t0 >> np.uint64(1)) ^ np.uint64(POLY), t0 >> np.uint64(1))
    slices = [t0]
    for _ in range(7):
        slices.append((slices[-1] >> np.uint64(8)) ^ t0[slices[-1] & np.uint64(0xFF)])
    reg = np.arange(256, dtype=np.uint64)[None, :] << (np.arange(4, dtype=np.uint64)[:, None]
                                                        * np.uint64(8))
    for _ in range(8 * BLOCK):
        reg = (reg >> np.uint64(8)) ^ t0[reg & np.uint64(0xFF)]
    return np.stack(slices), reg


SLICE, SHIFT = _tables()


def _jit_has_sse42() -> bool:
    """Whether the kernels are compiled for a CPU with SSE4.2 (the features numba's own
    codegen uses: NUMBA_CPU_FEATURES if set, else the host's)."""
    features = getattr(config, "CPU_FEATURES", None)    # set dynamically by numba
    if features is None:
        features = get_host_cpu_features()
    return "+sse4.2" in features.split(",")


HARDWARE = _jit_has_sse42()


@intrinsic
def _crc_u64(typingctx, reg, word):
    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64, i64]),
                                            "llvm.x86.sse42.crc32.64.64")
        return builder.call(fn, args)
    return types.uint64(types.uint64, types.uint64), codegen


@intrinsic
def _crc_u8(typingctx, reg, byte):
    def codegen(context, builder, sig, args):
        i8, i32 = ir.IntType(8), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32, i8]),
                                            "llvm.x86.sse42.crc32.32.8")
        r = builder.call(fn, [builder.trunc(args[0], i32), args[1]])
        return builder.zext(r, ir.IntType(64))
    return types.uint64(types.uint64, types.uint8), codegen


@njit(cache=True)
def _shift(r):
    m = np.uint64(0xFF)
    return (SHIFT[0, r & m] ^ SHIFT[1, (r >> np.uint64(8)) & m]
            ^ SHIFT[2, (r >> np.uint64(16)) & m] ^ SHIFT[3, (r >> np.uint64(24)) & m])


@njit(cache=True)
def update_hw(reg, address, nbytes):
    """The register after nbytes at address (SSE4.2 only: see HARDWARE)."""
    r = np.uint64(reg)
    nw = nbytes >> 3
    w = carray(u64_pointer(address), nw)
    i = 0
    while nw - i >= 3 * BLOCK:
        a, b, c = r, np.uint64(0), np.uint64(0)
        for k in range(i, i + BLOCK):
            a = _crc_u64(a, w[k])
            b = _crc_u64(b, w[k + BLOCK])
            c = _crc_u64(c, w[k + 2 * BLOCK])
        r = _shift(_shift(a) ^ b) ^ c
        i += 3 * BLOCK
    for k in range(i, nw):
        r = _crc_u64(r, w[k])
    tail = carray(u8_pointer(address + 8 * nw), nbytes - 8 * nw)
    for k in range(tail.shape[0]):
        r = _crc_u8(r, tail[k])
    return r


@njit(cache=True)
def update_sw(reg, address, nbytes):
    """The register after nbytes at address, table-driven (any CPU)."""
    r = np.uint64(reg)
    m = np.uint64(0xFF)
    nw = nbytes >> 3
    w = carray(u64_pointer(address), nw)
    for k in range(nw):
        x = r ^ (w[k] & np.uint64(0xFFFFFFFF))
        h = w[k] >> np.uint64(32)
        r = (SLICE[7, x & m] ^ SLICE[6, (x >> np.uint64(8)) & m]
             ^ SLICE[5, (x >> np.uint64(16)) & m] ^ SLICE[4, x >> np.uint64(24)]
             ^ SLICE[3, h & m] ^ SLICE[2, (h >> np.uint64(8)) & m]
             ^ SLICE[1, (h >> np.uint64(16)) & m] ^ SLICE[0, h >> np.uint64(24)])
    tail = carray(u8_pointer(address + 8 * nw), nbytes - 8 * nw)
    for k in range(tail.shape[0]):
        r = (r >> np.uint64(8)) ^ SLICE[0, (r ^ np.uint64(tail[k])) & m]
    return r


crc32c_update = update_hw if HARDWARE else update_sw


def crc32c(data, hardware: bool | None = None) -> int:
    """CRC32C of a bytes-like object (``hardware``: force a path; None: the default)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    fn = crc32c_update if hardware is None else (update_hw if hardware else update_sw)
    return int(fn(np.uint64(CRC_INIT), buf.ctypes.data, buf.shape[0])) ^ CRC_INIT
