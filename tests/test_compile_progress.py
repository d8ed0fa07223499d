"""Start-up progress while numba compiles (ringex/compile_progress.py): a line per kernel
with ``every_s=0``, the total from the last start that compiled, and silence when every
kernel comes from the cache."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

from numba import njit

from ringex import compile_progress, kernel_cache
from ringex.compile_progress import CompileProgress

TINY = """
def inner(x):
    return x + 1

def outer(x):
    return inner(x) * 2
"""


def tiny_kernels():
    """Two fresh kernels (outer calls inner) that look like ringex's: module ringex.*."""
    ns: dict = {"__name__": "ringex.tiny_kernels"}
    exec(TINY, ns)
    ns["inner"] = njit(ns["inner"])
    return njit(ns["outer"])


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ringex.compile_progress"]


def test_each_compiled_kernel_is_logged_then_the_sum_and_the_count_is_kept(
        caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("RINGEX_NUMBA_CACHE", str(tmp_path / "empty"))     # a first start
    monkeypatch.setattr(compile_progress, "loaded_from_cache", lambda: 0)  # (other tests')
    caplog.set_level(logging.INFO, logger="ringex.compile_progress")
    progress = CompileProgress("tiny", every_s=0).install()
    try:
        assert tiny_kernels()(1) == 4
    finally:
        progress.finish()
    got = lines(caplog)
    assert re.fullmatch(r"tiny: compiling kernels: 1 compiled \(outer\), \d+ s so far", got[0])
    assert re.fullmatch(r"tiny: compiling kernels: 2 compiled, \d+ s so far", got[1])
    assert re.match(r"tiny: compiled 2 kernels in \d+ s", got[2]) and len(got) == 3
    assert json.loads(kernel_cache.counts_file().read_text())["tiny"]["kernels"] == 2

    caplog.clear()              # the next start knows the total
    progress = CompileProgress("tiny", every_s=0).install()
    try:
        tiny_kernels()(1)
    finally:
        progress.finish()
    assert re.fullmatch(r"tiny: compiling kernels: 1/2 \(outer\), \d+ s so far, \d+ s last time",
                        lines(caplog)[0])


def test_a_partly_warm_cache_keeps_the_last_total(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kernel_cache.counts_file().parent.mkdir(parents=True)
    kernel_cache.counts_file().write_text(json.dumps({"tiny": {"kernels": 40}}))
    warm = tmp_path / "warm" / "core_x"
    warm.mkdir(parents=True)
    (warm / "order_service.process-40.py311.nbi").write_bytes(b"x")
    monkeypatch.setenv("RINGEX_NUMBA_CACHE", str(tmp_path / "warm"))
    caplog.set_level(logging.INFO, logger="ringex.compile_progress")
    progress = CompileProgress("tiny", every_s=0).install()
    tiny_kernels()(1)
    progress.finish()
    assert lines(caplog)[0].startswith("tiny: compiling kernels: 1/40 (outer)")
    assert json.loads(kernel_cache.counts_file().read_text())["tiny"]["kernels"] == 40


def test_nothing_is_logged_when_nothing_compiles(caplog):
    kernel = tiny_kernels()
    kernel(1)                                   # compiled before listening
    caplog.set_level(logging.INFO, logger="ringex.compile_progress")
    progress = CompileProgress("tiny", every_s=0).install()
    kernel(2)
    progress.finish()
    progress.finish()                           # twice is harmless
    assert lines(caplog) == [] and progress.started is None


SCRIPT = """
import logging, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(message)s")
from ringex.compile_progress import CompileProgress
progress = CompileProgress("tiny", every_s=0).install()
import ringex_tiny_kernels
assert ringex_tiny_kernels.outer(1) == 4
progress.finish()
"""


def test_a_start_from_the_disk_cache_is_silent(tmp_path):
    """numba sends no compile event for a kernel it loads from its cache."""
    (tmp_path / "ringex_tiny_kernels.py").write_text(
        "from numba import njit\n" + TINY.replace("def ", "@njit(cache=True)\ndef "))
    env = {k: v for k, v in os.environ.items() if k != "RINGEX_NUMBA_CACHE"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), NUMBA_CACHE_DIR=str(tmp_path / "numba"))

    def start() -> str:
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stderr

    cold = start()
    assert "tiny: compiling kernels: 1 compiled (outer)" in cold
    assert "tiny: compiled 2 kernels" in cold
    assert "compil" not in start()              # warm: everything loaded from the cache
