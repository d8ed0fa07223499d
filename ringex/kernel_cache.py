"""Where ringex's compiled kernels are cached, whether that cache is warm, and where the
kernel counts of the start-up progress lines are kept (ringex/compile_progress.py), without
importing numba (the supervisor asks before it starts the engine).

The folder is named after a hash of every module that uses numba and of every ringex
module those import (transitively): see ringex/jit.py for why.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_IMPORT = re.compile(r"^\s*(?:from\s+(ringex(?:\.\w+)*)\s+import\s+([\w, ()]+)|"
                     r"import\s+(ringex(?:\.\w+)+))", re.M)
_USES_NUMBA = re.compile(r"^\s*(?:from|import)\s+numba\b|^from ringex\.jit import", re.M)
_NO_KERNELS = ("jit.py", "compile_progress.py")    # use numba, define no kernel
WARM_MARKER = "order_service.process-*.nbi"       # see is_warm


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
    todo = [p for p, t in texts.items() if _USES_NUMBA.search(t) and p.name not in _NO_KERNELS]
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


def _ringex_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ringex"


def cache_folder() -> str:
    """``$RINGEX_NUMBA_CACHE`` if set, else ``~/.cache/ringex/numba/<source hash>``."""
    if "RINGEX_NUMBA_CACHE" in os.environ:          # already chosen (or chosen by the user)
        return os.environ["RINGEX_NUMBA_CACHE"]
    return str(_ringex_cache() / "numba" / source_hash())


def counts_file() -> Path:
    """``~/.cache/ringex/compile-counts.json``: how many kernels each process needed the
    last time it compiled any (the total of ringex/compile_progress.py's progress lines),
    kept whatever the cache folder, so that a start with an empty one has it."""
    return _ringex_cache() / "compile-counts.json"


def is_warm(folder: str | None = None) -> bool:
    """True when the cache folder holds the matcher's compiled kernel (numba's index file
    of ``order_service.process``), which only the engine (or a test) compiles: the
    supervisor compiles and caches the small ring kernels itself when it creates the rings,
    before it asks, so any index file at all would say "warm" on every first start."""
    root = Path(folder or cache_folder())
    return root.is_dir() and any(root.rglob(WARM_MARKER))
