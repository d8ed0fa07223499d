"""Two checkouts of the same sources at different paths share one kernel cache: the
second loads what the first compiled (ringex/jit.py, PackageRelativeLocator)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ringex"

# compile (or load) one small kernel; print how many kernels numba compiled
SCRIPT = """
import json
import numpy as np
from numba.core import event
compiled = []
class Count(event.Listener):
    def on_start(self, ev): compiled.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev): pass
event.register("numba:compile", Count())
from ringex.core.journal import fnv_check
fnv_check(np.zeros(8, np.uint64))
print(json.dumps(compiled))
"""


def _checkout(root: Path) -> Path:
    shutil.copytree(PACKAGE, root / "ringex",
                    ignore=shutil.ignore_patterns("__pycache__", "web"))
    return root


def _compiled_in(checkout: Path, cache: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "RINGEX_NUMBA_CACHE": str(cache)}
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=checkout, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_checkout_loads_the_first_ones_kernels(tmp_path):
    cache = tmp_path / "cache"
    first = _compiled_in(_checkout(tmp_path / "a"), cache)
    assert "fnv_check" in first                    # compiled there, into the cache
    assert _compiled_in(_checkout(tmp_path / "b"), cache) == []
