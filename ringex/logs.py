"""One logging setup for every ringex process.

``ringex run --log-level`` calls ``setup_logging(level)``, which also puts the level in
``RINGEX_LOG_LEVEL``; spawned children (engine, writer, gateways, demo) inherit the
environment and call ``setup_logging()`` with no argument, so every process logs the same
way at the same level.
"""
from __future__ import annotations

import logging
import os

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
ENV = "RINGEX_LOG_LEVEL"


def setup_logging(level: str | None = None) -> None:
    """Log to stderr at ``level`` (default: ``RINGEX_LOG_LEVEL``, else info). A process
    that configured logging already (a test runner, an embedding application) keeps its
    handlers; only the level is set."""
    if level is not None:
        os.environ[ENV] = level.lower()
    name = os.environ.get(ENV, "info").upper()
    if name.lower() not in LOG_LEVELS:
        name = "INFO"
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(name)
    logging.getLogger("ringex.gateway.wire").setLevel(logging.WARNING)  # no line per socket
