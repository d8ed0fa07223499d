"""``ringex standby``: a hot standby in the foreground until SIGINT/SIGTERM.

It follows the primary's replicated journal into its own data dir and watches the
primary's lease (ringex/cluster/standby.py, docs/cluster.md "Hot standby"). Exit codes:
0 stopped by a signal, 4 took over (the data dir is ready to serve from), 1 an error.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import click

from ringex.cli.options import load_config
from ringex.logs import LOG_LEVELS, setup_logging
from ringex.ops.datadir import DEFAULT_DATA_DIR, lock_exclusive


@click.command()
@click.option("--cluster", "cluster_url", metavar="URL", default=None,
              help="NATS servers (nats://host:port, comma-separated) holding the primary's "
                   "replicated journal.  [default: [cluster] url of the config]")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Market config TOML: the primary's (same markets, same [cluster] name).  "
                   "[default: the shipped config]")
@click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
              show_default=True, help="This standby's own data directory (journal, "
                                      "snapshots, standby.json).")
@click.option("--takeover/--no-takeover", default=True, show_default=True,
              help="Take over when the primary's lease lapses (--no-takeover: only follow "
                   "and report).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default="info", show_default=True)
def standby(cluster_url, config_path, data_dir, takeover, log_level):
    """Follow the primary's journal stream and take over when its lease lapses."""
    setup_logging(log_level)
    config = load_config(config_path)
    opts = config.cluster.with_overrides(cluster_url)
    if not opts.enabled:
        raise click.ClickException("no cluster: give --cluster nats://... (or [cluster] url)")
    folder = Path(data_dir)
    lock = lock_exclusive(folder)          # not beside an exchange or another standby
    try:
        code = asyncio.run(_main(opts, config, folder, takeover))
    except RuntimeError as exc:            # NATS unreachable at start (stream.retrying)
        raise click.ClickException(str(exc)) from None
    finally:
        os.close(lock)
    sys.exit(code)


async def _main(opts, config, folder: Path, takeover: bool) -> int:
    from ringex.cluster.standby import Standby   # nats, numba: only when it runs

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await Standby(opts, config, folder, takeover, stop).run()
