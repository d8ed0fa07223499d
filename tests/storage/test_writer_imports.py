"""The writer process carries no numba or llvmlite (about 140 MB of RSS and 1 s of start-up
each process): only the matcher compiles kernels."""
from __future__ import annotations

import multiprocessing
import subprocess
import sys
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
