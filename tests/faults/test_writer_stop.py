"""A stuck trade queue must not hang the shutdown: ``WriterProcess.stop`` is bounded.

The queue (faster-fifo) can stay unusable for good: its mutex is not robust, so a
producer killed while copying a payload in (the matcher under ``kill -9``) leaves it
locked, and every later ``put``/``get`` blocks. The deterministic stand-in here is a full
queue whose writer no longer drains it (stopped with SIGSTOP): ``put_stop`` can never
complete, and the supervisor's shutdown must still end (the writer is killed; what it
did not write comes back from the journal at the next start)."""
from __future__ import annotations

import os
import signal
import time
from queue import Full

import numpy as np
import pytest

from ringex.config import Config
from ringex.storage.trade_queue import PayloadKind, TradeQueue, encode
from ringex.storage.writer import start_writer
from ringex import records


@pytest.mark.timeout(60)
def test_writer_stop_is_bounded_when_the_queue_cannot_take_stop(tmp_path):
    q = TradeQueue(1 << 20)
    w = start_writer(q, str(tmp_path / "ringex.db"), Config.default())
    try:
        os.kill(w.process.pid, signal.SIGSTOP)          # alive, but drains nothing
        for n in (100, 0):                              # big payloads, then header-only
            payload = encode(PayloadKind.EVENTS, 5, 1, np.zeros(n, records.EVENT))
            with pytest.raises(Full):
                for _ in range(100_000):
                    q._q.put_nowait(payload)
        t0 = time.monotonic()
        code = w.stop(timeout=2.0)
        took = time.monotonic() - t0
        assert code == -signal.SIGKILL, code
        assert took < 10, f"stop took {took:.1f} s"
    finally:
        w.kill()
        q.close()
