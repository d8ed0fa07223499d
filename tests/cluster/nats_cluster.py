"""A private 3-node JetStream cluster of ``nats-server`` processes for one test module.

    with NatsCluster(tmp_path) as nc:        # free ports, own store dirs, waits for a leader
        nc.url                               # "nats://127.0.0.1:p1,nats://127.0.0.1:p2,..."
        nc.stop_node(1); nc.start_node(1)    # a node down and back (same store dir)

Leaving the block (or ``stop()``) kills every server, waits for each to exit and removes
the folder. Never the shared server on 4222: every port here is picked free.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0


def nats_server_binary() -> str:
    """The path of nats-server; skips the test without one (fails it with CI=true:
    scripts/ensure-nats installs it)."""
    for candidate in ("/usr/sbin/nats-server", shutil.which("nats-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = "nats-server is not installed (scripts/ensure-nats installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class NatsCluster:
    """Three JetStream nodes routed to each other on loopback (see module docstring)."""

    def __init__(self, parent: Path | None = None, nodes: int = 3):
        self.binary = nats_server_binary()
        self.root = Path(tempfile.mkdtemp(prefix="ringex-nats-", dir=parent))
        ports = _free_ports(3 * nodes)
        self.client_ports = ports[:nodes]
        self.route_ports = ports[nodes:2 * nodes]
        self.http_ports = ports[2 * nodes:]
        self.procs: list[subprocess.Popen | None] = [None] * nodes
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.route_ports)
        for i in range(nodes):
            store = self.root / f"n{i}"
            store.mkdir()
            (self.root / f"n{i}.conf").write_text(
                f'server_name: n{i}\nlisten: 127.0.0.1:{self.client_ports[i]}\n'
                f'http: 127.0.0.1:{self.http_ports[i]}\n'
                f'jetstream {{ store_dir: "{store}" }}\n'
                f'cluster {{ name: ringex-test\n listen: 127.0.0.1:{self.route_ports[i]}\n'
                f' routes: [{routes}] }}\n')

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client_ports)

    def node_url(self, i: int) -> str:
        return f"nats://127.0.0.1:{self.client_ports[i]}"

    def start(self) -> "NatsCluster":
        try:
            for i in range(len(self.procs)):
                self.start_node(i, wait=False)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, i: int, wait: bool = True) -> None:
        assert self.procs[i] is None, f"node {i} runs"
        log = open(self.root / f"n{i}.log", "ab")
        with log:
            self.procs[i] = subprocess.Popen(
                [self.binary, "-c", str(self.root / f"n{i}.conf")], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_ready()

    def stop_node(self, i: int) -> None:
        """SIGKILL node i and reap it (its store stays for a restart)."""
        p = self.procs[i]
        if p is not None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            self.procs[i] = None

    def _jsz(self, i: int) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_ports[i]}/jsz",
                                        timeout=1) as r:
                return json.loads(r.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until every running node reports the same JetStream meta leader (polled on the
        monitoring port), and all running nodes are among its current peers."""
        deadline = time.monotonic() + timeout
        running = [i for i, p in enumerate(self.procs) if p is not None]
        while True:
            for i in running:
                p = self.procs[i]
                assert p is not None
                if p.poll() is not None:
                    raise RuntimeError(f"nats-server n{i} exited ({p.returncode}):\n"
                                       + self.log(i))
            infos = {i: self._jsz(i) for i in running}
            leaders = {(j or {}).get("meta_cluster", {}).get("leader") for j in infos.values()}
            leader = leaders.pop() if len(leaders) == 1 else None
            if leader and int(leader[1:]) in infos:
                # only the leader lists its followers and whether each is current
                meta = (infos[int(leader[1:])] or {}).get("meta_cluster", {})
                current = {r.get("name") for r in meta.get("replicas") or [] if r.get("current")}
                if {f"n{i}" for i in running} <= current | {leader}:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"no JetStream leader after {timeout} s: {infos}")
            time.sleep(0.05)

    def log(self, i: int) -> str:
        return (self.root / f"n{i}.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        for i in range(len(self.procs)):
            self.stop_node(i)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "NatsCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
