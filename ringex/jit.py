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

import hashlib
import os
import re
from pathlib import Path

from numba import njit, typeof
from numba.core import config
from numba.core.typing.typeof import Purpose

__all__ = ["compiled", "njit", "source_hash"]

_PACKAGE = Path(__file__).resolve().parent
_IMPORT = re.compile(r"^\s*(?:from\s+(ringex(?:\.\w+)*)\s+import\s+([\w, ()]+)|"
                     r"import\s+(ringex(?:\.\w+)+))", re.M)
_USES_NUMBA = re.compile(r"^\s*(?:from|import)\s+numba\b|^from ringex\.jit import", re.M)


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return _PACKAGE / "__init__.py"
    rel = Path(*parts)
    for candidate in (_PACKAGE / rel.with_suffix(".py"), _PACKAGE / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, text: str) -> set[Path]:
    out = set()
    for m in _IMPORT.finditer(text):
        mod = m.group(1) or m.group(3)
        names = [n.split(" as ")[0].strip(" ()") for n in (m.group(2) or "").split(",")]
        for target in [mod, *(f"{mod}.{n}" for n in names if n)]:
            found = _module_file(target)
            if found is not None:
                out.add(found)
    return out


def kernel_sources() -> list[Path]:
    """The modules whose text can change compiled kernels (see the module docstring)."""
    texts = {p: p.read_text() for p in _PACKAGE.rglob("*.py")}
    todo = [p for p, t in texts.items() if _USES_NUMBA.search(t) and p.name != "jit.py"]
    seen: set[Path] = set()
    while todo:
        p = todo.pop()
        if p in seen or p not in texts:
            continue
        seen.add(p)
        todo.extend(_imports(p, texts[p]) - seen)
    return sorted(seen)


def source_hash() -> str:
    h = hashlib.sha256()
    for path in kernel_sources():
        h.update(str(path.relative_to(_PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _use_source_keyed_cache() -> None:
    if "RINGEX_NUMBA_CACHE" in os.environ:          # already chosen (or chosen by the user)
        folder = os.environ["RINGEX_NUMBA_CACHE"]
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        folder = str(root / "ringex" / "numba" / source_hash())
        os.environ["RINGEX_NUMBA_CACHE"] = folder   # children inherit the same folder
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
