"""A live exchange for end-to-end tests and benchmarks: ``ringex run`` as a subprocess.

    with LiveExchange(gateways=1) as ex:          # temp data dir, ephemeral port
        key = ex.add_account("alice")             # API key of a new account
        ex.url, ex.admin_key, ex.accounts["alice"]

``close()`` sends SIGTERM, waits for a clean exit (code 0) and checks that nothing is
left: no process of the run, no shared-memory segment of the run. ``env`` adds
environment variables (``RINGEX_SESSION_LIMITS`` for benchmarks).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ringex.storage.stores import open_repository
from tests.e2e.procs import descendants

# RINGEX_SESSION_LIMITS for benchmarks and fault tests, whose clients send as fast as
# replies come: every per-connection and per-account budget out of the way
UNLIMITED = ("rate_per_s=10000000,burst=10000000,max_pending=1000000,"
             "account_rate_per_s=10000000,account_burst=10000000")

START_TIMEOUT_S = 280.0       # a first run may compile the numba kernels
STOP_TIMEOUT_S = 90.0


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveExchange:
    def __init__(self, gateways: int = 1, wait: str = "spin", env: dict | None = None,
                 log_to: str | None = None):
        self.gateways = gateways
        self.wait = wait
        self.env = env or {}
        self.data_dir = Path(tempfile.mkdtemp(prefix="ringex-e2e-"))
        self.log_path = Path(log_to) if log_to else self.data_dir / "ringex.log"
        self.db_url = str(self.data_dir / "ringex.db")
        self.accounts: dict[str, int] = {}
        self.keys: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.http_url = ""            # web view, /metrics, /healthz: http://host:port/
        self.port = 0
        self.admin_key = ""
        self.leftovers: list[str] = []

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "LiveExchange":
        log = open(self.log_path, "ab")
        cmd = [sys.executable, "-c", "from ringex.cli import main; main()", "run",
               "--data-dir", str(self.data_dir), "--port", "0",
               "--gateways", str(self.gateways), "--wait", self.wait]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **self.env})
        log.close()
        run_file = self.data_dir / "ringex.run"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not run_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                code = self.close()
                raise RuntimeError(f"ringex run did not start (exit {code}); log:\n{tail}")
            time.sleep(0.05)
        info = json.loads(run_file.read_text())
        self.url, self.port, self.http_url = info["url"], info["port"], info["http"]
        self.admin_key = (self.data_dir / "admin.key").read_text().strip()
        return self

    def close(self) -> int | None:
        """SIGTERM, wait, check that nothing is left (``leftovers``); the exit code."""
        code = None
        if self.proc is not None:
            pid = self.proc.pid
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for p in descendants(pid) | {pid}:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(10)
                code = None
            self.leftovers = [f"pid {p}" for p in descendants(pid)]
            self.leftovers += sorted(n for n in os.listdir("/dev/shm")
                                     if n.startswith(f"ringex-{pid}-"))
            for n in self.leftovers:
                if n.startswith("ringex-"):
                    try:
                        os.unlink(f"/dev/shm/{n}")
                    except FileNotFoundError:
                        pass
            self.proc = None
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return code

    def __enter__(self) -> "LiveExchange":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # ---------------------------------------------------------------- accounts
    def add_account(self, name: str) -> str:
        """A new account and API key (straight into the database)."""
        with open_repository(self.db_url) as repo:
            account = repo.add_account(name)
            key = repo.add_api_key(account)
        self.accounts[name] = account
        self.keys[name] = key
        return key
