"""Hierarchical bitmap over a price band: set, clear, next/previous set bit in O(levels).

Level 0 has one bit per tick; each bit of level k+1 says "word i of level k is not
zero". Four levels cover 64**4 = 16.7 M ticks, so finding the next occupied price in
a sparse, wide band touches at most 2 x 4 words instead of scanning empty ticks.

All books share one flat int64 array; a book's levels start at ``offs[l]`` and hold
``words[l]`` words. int64 (not uint64) keeps numba arithmetic integral.
"""
from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from ringex.jit import njit

MAX_LEVELS = 6


def layout(n_bits: int) -> list[int]:
    """Words per level for a band of n_bits ticks (top level is one word)."""
    words = [max(1, (n_bits + 63) // 64)]
    while words[-1] > 1:
        words.append((words[-1] + 63) // 64)
    if len(words) > MAX_LEVELS:
        raise ValueError(f"band of {n_bits} ticks needs more than {MAX_LEVELS} levels")
    return words


@njit(cache=True, inline="always")
def _ctz(w):
    return np.int64(trailing_zeros(w))


@njit(cache=True, inline="always")
def _msb(w):
    return np.int64(63) - np.int64(leading_zeros(w))


@njit(cache=True)
def bit_set(bm, offs, nlev, t):
    for lv in range(nlev):
        w = t >> 6
        i = offs[lv] + w
        old = bm[i]
        bm[i] = old | (np.int64(1) << (t & 63))
        if old != 0:
            return
        t = w


@njit(cache=True)
def bit_clear(bm, offs, nlev, t):
    for lv in range(nlev):
        w = t >> 6
        i = offs[lv] + w
        bm[i] &= ~(np.int64(1) << (t & 63))
        if bm[i] != 0:
            return
        t = w


@njit(cache=True)
def next_set(bm, offs, words, nlev, t):
    """Lowest set bit >= t, or -1."""
    if t < 0:
        t = 0
    lv = 0
    while True:
        w = t >> 6
        if w >= words[lv]:
            return -1
        m = bm[offs[lv] + w] & (np.int64(-1) << (t & 63))
        if m != 0:
            t = (w << 6) | _ctz(m)
            break
        lv += 1
        if lv == nlev:
            return -1
        t = w + 1
    while lv > 0:
        lv -= 1
        t = (t << 6) | _ctz(bm[offs[lv] + t])
    return t


@njit(cache=True)
def prev_set(bm, offs, words, nlev, t):
    """Highest set bit <= t, or -1."""
    if t < 0:
        return -1
    lv = 0
    while True:
        w = t >> 6
        if w >= words[lv]:
            w = words[lv] - 1
            t = (w << 6) | 63
        b = t & 63
        mask = np.int64(-1) if b == 63 else (np.int64(1) << (b + 1)) - 1
        m = bm[offs[lv] + w] & mask
        if m != 0:
            t = (w << 6) | _msb(m)
            break
        lv += 1
        if lv == nlev or w == 0:
            return -1
        t = w - 1
    while lv > 0:
        lv -= 1
        t = (t << 6) | _msb(bm[offs[lv] + t])
    return t
