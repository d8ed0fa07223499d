"""Point numba's on-disk cache at a folder named after a hash of ringex's source.

numba checks only the *calling* file's timestamp when it loads a cached kernel, so
after an edit to a kernel that others call, the callers' stale machine code would
still load. Keying the cache folder on the kernel packages' source makes any edit
start clean.
Must run before any ringex module decorates a function with ``@njit(cache=True)``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_KERNEL_DIRS = ("core", "ring")      # where @njit code and the record layouts live


def source_hash() -> str:
    h = hashlib.sha256()
    paths = (p for d in _KERNEL_DIRS for p in (_PACKAGE / d).rglob("*.py"))
    for path in sorted(paths):
        h.update(str(path.relative_to(_PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def use_source_keyed_cache() -> None:
    if "RINGEX_NUMBA_CACHE" in os.environ:          # already chosen (or chosen by the user)
        folder = os.environ["RINGEX_NUMBA_CACHE"]
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        folder = str(root / "ringex" / "numba" / source_hash())
        os.environ["RINGEX_NUMBA_CACHE"] = folder   # children inherit the same folder
    os.environ["NUMBA_CACHE_DIR"] = folder
    from numba.core import config

    config.CACHE_DIR = folder
