"""``ringex standby`` as a subprocess in its own session, and the state comparisons of
the standby tests.

    sb = StandbyRun(tmp_path / "standby", cluster, config).start()
    sb.wait_for(lambda s: s["lease"] == "alive", "the primary's lease")   # standby.json
    sb.stop() == 0; sb.cleanup()                                          # always cleanup
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ringex.config import Config
from ringex.core import snapshot_format as fmt
from ringex.core.order_service import OrderService
from ringex.core.snapshot import StateStore
from ringex.ring.shm import unlink as shm_unlink
from tests.e2e.live_exchange import UNLIMITED
from tests.faults.rig import REPO, Run

WAIT_S = 120.0          # generous: a first start compiles the kernels


class StandbyRun:
    def __init__(self, data_dir: Path, url: str, config: Path, *args: str,
                 env: dict | None = None):
        self.data_dir, self.url, self.config, self.args = Path(data_dir), url, config, args
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self) -> "StandbyRun":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "standby.json").unlink(missing_ok=True)
        self.starts += 1
        cmd = [sys.executable, "-c", "from ringex.cli import main; main()", "standby",
               "--cluster", self.url, "--data-dir", str(self.data_dir),
               "--config", str(self.config), *self.args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=REPO, start_new_session=True,
                env={**os.environ, "RINGEX_SESSION_LIMITS": UNLIMITED, **self.env})
        self.wait_for(lambda s: s["state"] == "following", "the standby to follow")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def status(self) -> dict:
        try:
            return json.loads((self.data_dir / "standby.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_for(self, ready, what: str, timeout: float = WAIT_S) -> dict:
        """Until ``ready(status)`` holds; fails if the standby exits or time runs out."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            if s and ready(s):
                return s
            if self.proc.poll() is not None:
                raise AssertionError(f"standby exited ({self.proc.returncode}) waiting for "
                                     f"{what}; status {s}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s; status {s}:\n"
                                     f"{self.log()[-4000:]}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"standby did not exit within {timeout} s:\n"
                                 f"{self.log()[-4000:]}") from None

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def cleanup(self) -> None:
        """kill -9 (its whole session) if it still runs; the rings of the exchange it may
        have become (``serving``) unlinked."""
        if self.proc is None:
            return
        if self.proc.poll() is None:       # (a reaped pid may belong to another process)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for name in os.listdir("/dev/shm"):
            if name.startswith(f"ringex-{self.proc.pid}-"):
                shm_unlink(name)


def recovered(config: Config, state_dir: Path) -> OrderService:
    """The state a data dir holds (its newest snapshot + journal), as an engine start
    recovers it."""
    svc = OrderService(config)
    store = StateStore(state_dir, config)
    try:
        rec = store.recover(svc)
        assert not rec.problems, rec.problems
    finally:
        store.close()
    return svc


def canonical_state(svc: OrderService) -> dict[str, bytes]:
    """svc's state arrays with every dead entry reset (what a snapshot keeps): two
    services that took snapshots at different batches compare equal when their live state
    does (ringex/core/snapshot_format.py, "Dead entries")."""
    arrays = {k: v.copy() for k, v in svc.state_arrays().items()}
    fmt.canonicalize(arrays, None)
    return {k: v.tobytes() for k, v in arrays.items()}


def serving(sb: StandbyRun, db: str) -> Run:
    """The exchange a standby started with ``--db`` runs after its takeover (the same
    process, now ``ringex run`` on the standby's data dir), as a fault-rig ``Run``: its
    ``url``, ``admin_key``, ``stop`` and ``cleanup``."""
    assert sb.proc is not None
    run_file = sb.data_dir / "ringex.run"
    deadline = time.monotonic() + WAIT_S
    while not run_file.exists():
        if sb.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the standby did not serve (exit {sb.proc.poll()}):\n"
                                 f"{sb.log()[-6000:]}")
        time.sleep(0.02)
    run = Run(sb.data_dir, db=db)
    run.proc, run.log_path = sb.proc, sb.log_path
    run.pgids.add(sb.proc.pid)
    run.url = json.loads(run_file.read_text())["url"]
    run.admin_key = (sb.data_dir / "admin.key").read_text().strip()
    return run
