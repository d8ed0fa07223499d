"""Stand-in gateways for supervisor tests: they honour run_gateway's contract
(docs/architecture.md section 4) without any WebSocket."""
from __future__ import annotations

import os
import time
from pathlib import Path

from ringex.ring.broadcast import BroadcastRing
from ringex.records import COMMAND, EVENT
from ringex.ring.spsc import SpscRing


def run_gateway(index, ring_names, config_path, db_url, host, port, data_dir, queue,
                stop_event, wait_strategy, ready_event=None, wakeups=None, stats=None,
                crash_after=None):
    """Attach the rings, say ready, wait for stop_event (or exit 3 after ``crash_after`` s)."""
    cmd = SpscRing.attach(ring_names["cmd"], COMMAND, role="producer")
    evt = SpscRing.attach(ring_names["evt"], EVENT, role="consumer")
    md = BroadcastRing.attach(ring_names["md"], EVENT)
    Path(data_dir, f"gateway-{index}.pid").write_text(str(os.getpid()))
    if ready_event is not None:
        ready_event.set()
    try:
        deadline = None if crash_after is None else time.monotonic() + crash_after
        while not stop_event.wait(0.05):
            evt.read(1 << 16)
            if deadline is not None and time.monotonic() > deadline:
                os._exit(3)
    finally:
        for r in (cmd, evt, md):
            r.close()


def run_crashing_gateway(**kwargs):
    run_gateway(**kwargs, crash_after=1.0)


def run_short_demo(url, db_url, data_dir, config_path, admin_key, stop_event):
    """A demo that looks at its arguments, then quits by itself after a second."""
    assert url.startswith("ws://") and admin_key.startswith("rx_")
    Path(data_dir, "demo.ran").write_text(url)
    stop_event.wait(1.0)
