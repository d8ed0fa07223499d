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

Inside it, numba would file each module's kernels under a hash of the module's absolute
folder, so a second checkout of the same sources (another clone, a CI run) would compile
everything again. ``PackageRelativeLocator`` files them under the module's folder
relative to the package (``ringex_core``) instead: every checkout of the same sources
shares one cache. numba's own check still applies (the index holds a hash of the source
file's content).
"""
from __future__ import annotations

import os
from pathlib import Path

from numba import njit, typeof
from numba.core import config
from numba.core.caching import UserProvidedCacheLocator
from numba.core.typing.typeof import Purpose

from ringex.kernel_cache import cache_folder

__all__ = ["compiled", "njit"]

_PACKAGE = Path(__file__).resolve().parent


class PackageRelativeLocator(UserProvidedCacheLocator):
    """numba's cache locator for ``NUMBA_CACHE_DIR``, keyed by the path inside the
    ringex package instead of the absolute path (see the module docstring)."""

    @classmethod
    def get_suitable_cache_subpath(cls, py_file):
        return "_".join(Path(py_file).resolve().parent.relative_to(_PACKAGE.parent).parts)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(_PACKAGE):
            return None                          # not ours: numba's usual locators
        return super().from_function(py_func, py_file)


def _use_source_keyed_cache() -> None:
    folder = cache_folder()
    os.environ["RINGEX_NUMBA_CACHE"] = folder       # children inherit the same folder
    os.environ["NUMBA_CACHE_DIR"] = folder
    config.CACHE_DIR = folder  # type: ignore[attr-defined]  # set dynamically by numba
    # numba tries these in order (NUMBA_CACHE_LOCATOR_CLASSES); the rest are its defaults
    locators = ("ringex.jit.PackageRelativeLocator", "UserProvidedCacheLocator",
                "InTreeCacheLocator", "UserWideCacheLocator")
    os.environ["NUMBA_CACHE_LOCATOR_CLASSES"] = ",".join(locators)
    config.CACHE_LOCATOR_CLASSES = os.environ["NUMBA_CACHE_LOCATOR_CLASSES"]  # type: ignore[attr-defined]


def compiled(kernel, *args):
    """``kernel``'s machine code for arguments of exactly the types of ``args`` (compiled
    or loaded from the cache now), callable without the dispatcher.

    The dispatcher types every argument on every call (about 3 µs for a kernel that takes
    state bundles and record arrays); this skips that. The caller must then pass values
    of those exact types: the entry point unboxes arrays without checking their dtype or
    layout, so a wrong array reads the wrong memory."""
    return kernel.compile(tuple(typeof(a, Purpose.argument) for a in args))


_use_source_keyed_cache()
