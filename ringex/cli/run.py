"""``ringex run`` and ``ringex demo``: an exchange in the foreground until SIGINT/SIGTERM."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ringex.cli.options import store_options
from ringex.logs import LOG_LEVELS, setup_logging
from ringex.ring.wait import CLI_WAITS

if TYPE_CHECKING:
    from ringex.ops.supervisor import Supervisor

# The supervisor is imported only to run one: every process spawned from the `ringex`
# command imports this module again (multiprocessing's spawn re-runs the script's
# imports), and none of them needs what the supervisor imports.


def run_options(f):
    """--host, --port, --http-port, --gateways, --wait, --fsync, --cluster, --durability and
    --log-level, shared by run and demo."""
    for option in reversed((
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address the gateways listen on."),
        click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
                     help="WebSocket port (0: pick a free one; see DATA_DIR/ringex.run)."),
        click.option("--http-port", type=click.IntRange(-1, 65535), default=None,
                     help="Port of the web view, /metrics and /healthz [default: the "
                          "WebSocket port + 1, or a free port with --port 0; -1: none]."),
        click.option("--gateways", type=click.IntRange(1, 63), default=1, show_default=True,
                     help="Gateway processes sharing the port (SO_REUSEPORT)."),
        click.option("--wait", type=click.Choice(sorted(CLI_WAITS)), default="spin",
                     show_default=True,
                     help="Idle strategy: spin (spin, then sleep: the default, kind to small "
                          "machines), busy (a core at 100%, lowest latency), eventfd (block "
                          "in the kernel when idle)."),
        click.option("--fsync", type=click.Choice(["none", "batch"]), default="none",
                     show_default=True,
                     help="Journal durability: none (survives any process crash, not a "
                          "power cut) or batch (fsync every journal entry: survives a power "
                          "cut, costs a disk flush per batch)."),
        click.option("--cluster", "cluster_url", metavar="URL", default=None,
                     help="NATS servers (nats://host:port, comma-separated) holding the "
                          "replicated journal (docs/cluster.md).  [default: [cluster] url "
                          "of the config: none]"),
        click.option("--durability", type=click.Choice(["local", "replicated"]),
                     default=None,
                     help="When an order is acknowledged: local (in the local journal) or "
                          "replicated (also stored by the NATS stream's quorum).  [default: "
                          "[cluster] durability of the config: local]"),
        click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
                     default="info", show_default=True,
                     help="Log level of every process of the exchange."),
    )):
        f = option(f)
    return f


def _supervisor(log_level: str, **options) -> Supervisor:
    """A supervisor past its preflight: a busy data dir or port ends here with
    "Error: ..." and exit code 1."""
    from ringex.ops.supervisor import RunOptions, Supervisor

    setup_logging(log_level)               # children inherit the level (RINGEX_LOG_LEVEL)
    supervisor = Supervisor(RunOptions(**options))
    supervisor.preflight()
    return supervisor


@click.command()
@store_options
@run_options
def run(config_path, data_dir, db_url, host, port, http_port, gateways, wait, fsync,
        cluster_url, durability, log_level):
    """Run the exchange until SIGINT/SIGTERM (then drain, flush and stop cleanly)."""
    sys.exit(_supervisor(log_level, data_dir=data_dir, config_path=config_path,
                         db_url=db_url, host=host, port=port, http_port=http_port,
                         gateways=gateways, wait=wait, journal_fsync=fsync,
                         cluster_url=cluster_url, durability=durability).run())


@click.command()
@store_options
@run_options
def demo(config_path, data_dir, db_url, host, port, http_port, gateways, wait, fsync,
         cluster_url, durability, log_level):
    """Run the exchange with demo market-maker and taker bots and a live view.

    Logs go to DATA_DIR/ringex.log; Ctrl-C stops everything."""
    supervisor = _supervisor(log_level, data_dir=data_dir, config_path=config_path,
                             db_url=db_url, host=host, port=port, http_port=http_port,
                             gateways=gateways, wait=wait, journal_fsync=fsync,
                             cluster_url=cluster_url, durability=durability, demo=True)
    log_path = Path(data_dir) / "ringex.log"
    click.echo(f"ringex demo: logs in {log_path}; Ctrl-C to stop", err=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)                     # every process's logs (children inherit fd 2)
    os.close(log_fd)
    sys.exit(supervisor.run())
