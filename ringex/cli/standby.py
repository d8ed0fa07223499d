"""``ringex standby``: a hot standby in the foreground until SIGINT/SIGTERM.

It follows the primary's replicated journal into its own data dir and watches the
primary's lease (ringex/cluster/standby.py, docs/cluster.md "Hot standby"). It takes
``ringex run``'s options: with ``--db`` (the primary's database) it serves after a
takeover, replacing itself (same pid) with ``ringex run`` on its data dir with those
options. Exit codes: 0 stopped by a signal, 4 took over without ``--db`` (the data dir is
ready to serve from), 1 an error.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import click

from ringex.cli.options import load_config, store_options
from ringex.cli.run import run_options
from ringex.logs import setup_logging
from ringex.ops.datadir import lock_exclusive

log = logging.getLogger("ringex.cluster.standby")


@click.command()
@store_options
@run_options
@click.option("--takeover/--no-takeover", default=True, show_default=True,
              help="Take over when the primary's lease lapses (--no-takeover: only follow "
                   "and report).")
def standby(config_path, data_dir, db_url, host, port, http_port, gateways, wait, fsync,
            cluster_url, durability, log_level, takeover):
    """Follow the primary's journal stream; take over when its lease lapses and, with
    --db (the primary's database), serve as `ringex run` with these options.

    --config must give the primary's markets and [cluster] name; --data-dir is this
    standby's own (journal, snapshots, standby.json)."""
    setup_logging(log_level)
    config = load_config(config_path)
    opts = config.cluster.with_overrides(cluster_url)
    if not opts.enabled:
        raise click.ClickException("no cluster: give --cluster nats://... (or [cluster] url)")
    folder = Path(data_dir)
    lock = lock_exclusive(folder)          # not beside an exchange or another standby
    try:
        code = asyncio.run(_main(opts, config, folder, takeover, db_url))
    except RuntimeError as exc:            # NATS unreachable at start (stream.retrying)
        raise click.ClickException(str(exc)) from None
    finally:
        os.close(lock)
    from ringex.cluster.standby import READY_EXIT    # loaded by _main already
    if code == READY_EXIT and db_url is not None:
        argv = [sys.executable, "-m", "ringex.cli", "run", "--data-dir", str(folder),
                "--db", db_url, "--cluster", opts.url, "--host", host, "--port", str(port),
                "--gateways", str(gateways), "--wait", wait, "--fsync", fsync,
                "--log-level", log_level]
        argv += ["--config", config_path] if config_path else []
        argv += ["--http-port", str(http_port)] if http_port is not None else []
        argv += ["--durability", durability] if durability else []
        log.info("standby: serving: %s", " ".join(argv[1:]))
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.execv(sys.executable, argv)
    sys.exit(code)


async def _main(opts, config, folder: Path, takeover: bool, db_url: str | None) -> int:
    from ringex.cluster.db_watermark import DatabaseWatermark
    from ringex.cluster.standby import Standby   # nats, numba: only when it runs

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    held = DatabaseWatermark(db_url, config) if db_url is not None else None
    return await Standby(opts, config, folder, takeover, stop, held).run()
