"""``njit`` for ringex's kernels, with numba's on-disk cache in a folder keyed on their source.

Every module with kernels imports ``njit`` from here (``from ringex.jit import njit``), so
the cache folder is chosen before the first ``@njit(cache=True)`` decorates anything, and
only processes that compile kernels import numba at all (the client and the protocol
never do).

Why a keyed folder: numba checks only the *calling* file's timestamp when it loads a
cached kernel, so after an edit to a kernel that others call -- or to a constant it folds
in, such as a ``ringex.records`` code -- the callers' stale machine code would still load.
The folder is named after a hash of every module that uses numba and of every ringex
module those import (transitively), so any such edit starts clean.
"""
from __future__ import annotations

import os

from numba import njit, typeof
from numba.core import config
from numba.core.typing.typeof import Purpose

from ringex.kernel_cache import cache_folder

__all__ = ["compiled", "njit"]


def _use_source_keyed_cache() -> None:
    folder = cache_folder()
    os.environ["RINGEX_NUMBA_CACHE"] = folder       # children inherit the same folder
    os.environ["NUMBA_CACHE_DIR"] = folder
    config.CACHE_DIR = folder  # type: ignore[attr-defined]  # set dynamically by numba


def compiled(kernel, *args):
    """``kernel``'s machine code for arguments of exactly the types of ``args`` (compiled
    or loaded from the cache now), callable without the dispatcher.

    The dispatcher types every argument on every call (about 3 µs for a kernel that takes
    state bundles and record arrays); this skips that. The caller must then pass values
    of those exact types: the entry point unboxes arrays without checking their dtype or
    layout, so a wrong array reads the wrong memory."""
    return kernel.compile(tuple(typeof(a, Purpose.argument) for a in args))


_use_source_keyed_cache()
