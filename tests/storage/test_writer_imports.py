"""The writer process carries no numba or llvmlite (about 100 MB of RSS and 0.3 s of
start-up, 12 s with a cold kernel cache): only the matcher compiles kernels."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ringex.storage.trade_queue import TradeQueue
from ringex.storage.writer import WriterProcess
from tests.storage.storage_events import fill_stream

ROOT = Path(__file__).resolve().parents[2]
# the writer module, the child's entry (writer._main) and what it imports once running
WRITER_MODULES = ("ringex.storage.writer", "ringex.storage.stores", "ringex.storage.sqlite_store",
                  "ringex.storage.pg_store")


def test_importing_the_writer_loads_neither_numba_nor_llvmlite():
    code = (f"import sys, {', '.join(WRITER_MODULES)}; "
            "print(' '.join(sorted({'numba', 'llvmlite'} & set(sys.modules))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.split() == []


def test_a_running_writer_process_has_no_numba_mapped(tmp_path, market_config):
    """The spawned child as the supervisor starts it, after it has written a group."""
    q = TradeQueue(1 << 20)
    w = WriterProcess(q, str(tmp_path / "writer.db"), market_config,
                      ctx=multiprocessing.get_context("spawn")).start()
    try:
        ev, _ = fill_stream(100).take()
        q.producer(0, first_batch=1).put_events(ev)
        assert w.wait_payloads(1, timeout=60)
        maps = Path(f"/proc/{w.process.pid}/maps").read_text()
        assert w.stats()["trades"] == 100
        assert w.stop(timeout=60) == 0
    finally:
        w.kill()
    assert "llvmlite" not in maps and "/numba/" not in maps


def test_a_writer_spawned_from_the_ringex_command_has_no_numba_mapped(tmp_path):
    """Spawned children import the parent's script again (as ``__mp_main__``): the
    ``ringex`` command's script imports ``ringex.cli``, which must not load numba."""
    script = tmp_path / "ringex_like.py"
    script.write_text(textwrap.dedent(f"""
        from ringex.cli import main                     # what the ringex script does
        if __name__ == "__main__":
            import multiprocessing
            from ringex.config import Config
            from ringex.storage.trade_queue import TradeQueue
            from ringex.storage.writer import WriterProcess
            w = WriterProcess(TradeQueue(1 << 20), {str(tmp_path / "w.db")!r}, Config.default(),
                              ctx=multiprocessing.get_context("spawn")).start()
            try:
                with open(f"/proc/{{w.process.pid}}/maps") as f:
                    maps = f.read()
            finally:
                w.stop(timeout=60)
            print("llvmlite" in maps, "/numba/" in maps)
        """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.split() == ["False", "False"]
