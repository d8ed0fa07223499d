"""Database fixtures (a pytest plugin, loaded by tests/conftest.py): every storage test
runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``RINGEX_TEST_PG_DSN`` (default the shared local server); each test
gets its own schema, dropped afterwards, so concurrent runs never collide. An unreachable
server skips those tests, except with ``CI=true`` where it fails them.

``throwaway_cluster()`` starts a private PostgreSQL (initdb + pg_ctl on a free port) that a
fault test may stop and start; the shared server is never touched.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

from ringex.config import Config

PG_DSN = os.environ.get("RINGEX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_BIN = "/usr/lib/postgresql/15/bin"


def with_schema(dsn: str, schema: str) -> str:
    opt = "options=" + quote(f"-csearch_path={schema}")
    return dsn + ("&" if "?" in dsn else "?") + opt


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        msg = f"PostgreSQL at {PG_DSN} unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(msg)
    return PG_DSN


@pytest.fixture
def pg_url(pg_dsn):
    schema = f"rx_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(pg_dsn, schema)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return str(tmp_path / "ringex.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param])


@pytest.fixture(scope="session")
def market_config() -> Config:
    return Config.default()


# ---------------------------------------------------------------- throwaway cluster
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root: str, port: int, as_user: list[str]):
        self.root, self.port, self._as = root, port, as_user
        self.data = os.path.join(root, "data")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _ctl(self, *args, timeout=30):
        subprocess.run([*self._as, f"{PG_BIN}/pg_ctl", "-D", self.data, *args], check=True,
                       timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", opts, "-l", os.path.join(self.root, "log"), "-w", "start")

    def stop(self, mode="fast"):
        self._ctl("-m", mode, "-w", "stop")


@contextmanager
def throwaway_cluster():
    """A private PostgreSQL 15 cluster in a temp dir; always stopped and removed."""
    if not os.path.exists(f"{PG_BIN}/initdb"):
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
    root = tempfile.mkdtemp(prefix="ringex-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:                      # initdb refuses root: run as postgres
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(root, _free_port(), as_user)
    try:
        subprocess.run([*as_user, f"{PG_BIN}/initdb", "-D", cluster.data, "-A", "trust",
                        "-U", "postgres", "--no-sync", "-E", "UTF8"], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except Exception:                      # already stopped, or never started
            pass
        shutil.rmtree(root, ignore_errors=True)
