"""Process and shared-memory checks for tests that run ringex as a real subprocess."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from ringex.ring.wait import pid_alive

REPO = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (from /proc)."""
    parent_of = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] not in ("Z", "X"):        # zombies are gone, just unreaped
                    parent_of[int(entry)] = int(fields[1])
            except (OSError, ValueError, IndexError):
                pass
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier} - out
        out |= frontier
    return {p for p in out if pid_alive(p)}


def segments(pid: int) -> list[str]:
    """/dev/shm entries of runs created by process ``pid`` (run id ``<pid>-xxxx``)."""
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(f"ringex-{pid}-"))


def wait_for(pred, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def wait_run_file(data_dir: Path, proc: subprocess.Popen, timeout: float = 280) -> dict:
    path = Path(data_dir) / "ringex.run"
    ok = wait_for(lambda: path.exists() or proc.poll() is not None, timeout, 0.1)
    assert ok and path.exists(), f"no run file (exit code {proc.poll()})"
    return json.loads(path.read_text())


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
    """Signal and wait; kill the whole group if it overstays (then fail)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.wait(10)
        raise AssertionError(f"process {proc.pid} did not exit within {timeout} s") from None


def kill_tree(pid: int) -> None:
    for p in descendants(pid) | {pid}:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
