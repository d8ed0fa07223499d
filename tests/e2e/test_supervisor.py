"""The supervisor as a real process (stand-in gateways): start, stop, failures, orphans."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.procs import (REPO, descendants, kill_tree, segments, stop, wait_for,
                             wait_run_file)

LAUNCH = """
import logging, sys
from ringex.ops.supervisor import RunOptions, Supervisor
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
demo = sys.argv[4] if len(sys.argv) > 4 else None
sys.exit(Supervisor(RunOptions(data_dir=sys.argv[1], port=0, gateways=int(sys.argv[2]),
                               gateway_entry=sys.argv[3], demo=demo is not None,
                               demo_entry=demo or "")).run())
"""
STUB = "tests.e2e.stub_gateway:run_gateway"


def launch(data_dir: Path, gateways: int = 2, entry: str = STUB, log_name="supervisor.log",
           demo: str | None = None):
    """The supervisor in its own process group (so a test can Ctrl-C the whole group)."""
    log = open(data_dir / log_name, "wb")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(data_dir), str(gateways), entry,
                             *([demo] if demo else [])],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    return proc


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace").strip()
    except OSError:
        return ""


def log_text(data_dir: Path, name="supervisor.log") -> str:
    return (data_dir / name).read_text(errors="replace")


@pytest.mark.timeout(300)
def test_should_start_everything_and_stop_cleanly_on_sigterm(tmp_path):
    proc = launch(tmp_path)
    try:
        info = wait_run_file(tmp_path, proc)
        assert info["pid"] == proc.pid and info["gateways"] == 2 and info["port"] > 0
        assert len(segments(proc.pid)) == 5                   # 2 x (cmd, evt) + md
        kids = descendants(proc.pid)
        assert len(kids) >= 4                                 # writer, engine, 2 gateways
        roles = {f"ringex-{r} (run {proc.pid})" for r in ("engine", "writer", "gateway-0",
                                                           "gateway-1")}
        assert roles <= {_title(k) for k in kids}             # what ps shows for each
        assert (tmp_path / "admin.key").stat().st_mode & 0o777 == 0o600
        second = launch(tmp_path, log_name="second.log")     # same data dir: refused
        assert second.wait(60) == 1
        assert "another ringex runs" in log_text(tmp_path, "second.log")
        assert (tmp_path / "ringex.run").exists()            # and the first one's untouched
        assert stop(proc, signal.SIGTERM) == 0, log_text(tmp_path)
        assert wait_for(lambda: not (kids & descendants(1)) and not segments(proc.pid), 10)
        assert not (tmp_path / "ringex.run").exists()
        assert "ringex stopped" in log_text(tmp_path)
    finally:
        kill_tree(proc.pid)


@pytest.mark.timeout(300)
def test_should_stop_everything_with_exit_1_when_a_child_dies(tmp_path):
    proc = launch(tmp_path, 1, "tests.e2e.stub_gateway:run_crashing_gateway")
    try:
        wait_run_file(tmp_path, proc)
        kids = descendants(proc.pid)
        assert proc.wait(90) == 1
        text = log_text(tmp_path)
        assert "gateway 0" in text and "exited unexpectedly with code 3" in text
        assert wait_for(lambda: not (kids & descendants(1)) and not segments(proc.pid), 10)
    finally:
        kill_tree(proc.pid)


@pytest.mark.timeout(300)
def test_should_leave_no_orphan_when_the_supervisor_is_killed(tmp_path):
    proc = launch(tmp_path, 1)
    try:
        wait_run_file(tmp_path, proc)
        kids = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # engine and writer watch getppid(), gateways get stop_event from their parent watch;
        # the resource tracker unlinks the rings the dead supervisor created
        alive = lambda: {p for p in kids if p in descendants(1) or Path(f"/proc/{p}").exists()}
        assert wait_for(lambda: not alive() and not segments(proc.pid), 30), \
            (alive(), segments(proc.pid))
    finally:
        kill_tree(proc.pid)


@pytest.mark.timeout(300)
def test_should_stop_with_exit_0_when_the_demo_quits(tmp_path):
    proc = launch(tmp_path, 1, demo="tests.e2e.stub_gateway:run_short_demo")
    try:
        info = wait_run_file(tmp_path, proc)
        kids = descendants(proc.pid)
        assert proc.wait(90) == 0, log_text(tmp_path)
        assert (tmp_path / "demo.ran").read_text() == info["url"]
        assert "the demo finished" in log_text(tmp_path)
        assert wait_for(lambda: not (kids & descendants(1)) and not segments(proc.pid), 10)
    finally:
        kill_tree(proc.pid)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("when", ["running", "starting"])
def test_ctrl_c_to_the_process_group_is_a_clean_stop(tmp_path, when):
    proc = launch(tmp_path, 2)
    try:
        if when == "running":
            wait_run_file(tmp_path, proc)
        else:
            wait_for(lambda: (tmp_path / "admin.key").exists(), 60)
            time.sleep(0.3)                                  # children are being spawned
        kids = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)                   # what a terminal's Ctrl-C does
        assert proc.wait(90) == 0, log_text(tmp_path)
        text = log_text(tmp_path)
        assert "KeyboardInterrupt" not in text and "Traceback" not in text, text
        assert wait_for(lambda: not (kids & descendants(1)) and not segments(proc.pid), 10)
    finally:
        kill_tree(proc.pid)
