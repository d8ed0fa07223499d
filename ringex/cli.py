"""The ``ringex`` command line (click).

    ringex run      [--config FILE] [--data-dir DIR] [--db URL] [--host H] [--port P]
                    [--gateways N] [--wait busy|spin|eventfd] [--fsync none|batch]
    ringex demo     (the same options) run plus demo bots and a live view
    ringex accounts add NAME [--deposit ASSET=AMOUNT ...]   JSON with account_id, api_key
    ringex accounts list
    ringex accounts deposit|withdraw ID ASSET AMOUNT
    ringex trades | orders | balances                       (ringex.io.inspect_cli)

Deposits and withdrawals go to a running exchange on the same data dir through an admin
WebSocket connection; with none running they are stored and applied at the next start
(docs/architecture.md, section 5). Errors print one line and exit 1.
"""
from __future__ import annotations

import fcntl
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from ringex.config import Config
from ringex.errors import RingexError
from ringex.io import accounts as acc
from ringex.supervisor import LOCK_FILE, RUN_FILE, RunOptions, Supervisor, WAIT_NAMES

DEFAULT_DATA_DIR = "ringex-data"
RUN_FILE_WAIT_S = 120.0       # an exchange that is starting: wait this long for its URL


# ---------------------------------------------------------------------- shared options
def store_options(f):
    """--config, --data-dir and --db, shared by every command."""
    for option in reversed((
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                     help="Market config TOML.  [default: the shipped config]"),
        click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
                     show_default=True, help="Data directory (database, admin key, run file)."),
        click.option("--db", "db_url", metavar="URL",
                     help="SQLite path or postgresql:// URL.  [default: DATA_DIR/ringex.db]"),
    )):
        f = option(f)
    return f


def run_options(f):
    """--host, --port, --gateways, --wait and --fsync, shared by run and demo."""
    for option in reversed((
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address the gateways listen on."),
        click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
                     help="WebSocket port (0: pick a free one; see DATA_DIR/ringex.run)."),
        click.option("--gateways", type=click.IntRange(1, 63), default=1, show_default=True,
                     help="Gateway processes sharing the port (SO_REUSEPORT)."),
        click.option("--wait", type=click.Choice(sorted(WAIT_NAMES)), default="spin",
                     show_default=True,
                     help="Idle strategy: spin (spin, then sleep: the default, kind to small "
                          "machines), busy (a core at 100%, lowest latency), eventfd (block "
                          "in the kernel when idle)."),
        click.option("--fsync", type=click.Choice(["none", "batch"]), default="none",
                     show_default=True,
                     help="Journal durability: none (survives any process crash, not a "
                          "power cut) or batch (fsync every journal entry: survives a power "
                          "cut, costs a disk flush per batch)."),
    )):
        f = option(f)
    return f


def _config(config_path: str | None) -> Config:
    return Config.from_toml(config_path) if config_path else Config.default()


def _db(data_dir: str, db_url: str | None) -> str:
    return db_url or str(Path(data_dir) / "ringex.db")


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


class Group(click.Group):
    """Turns ringex's own errors into one clean line and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RingexError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """ringex: a low-latency exchange engine (matcher, WebSocket gateways, SQLite or
    PostgreSQL)."""


# ---------------------------------------------------------------------- run / demo
def _supervise(options: RunOptions) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return Supervisor(options).run()


@main.command()
@store_options
@run_options
def run(config_path, data_dir, db_url, host, port, gateways, wait, fsync):
    """Run the exchange until SIGINT/SIGTERM (then drain, flush and stop cleanly)."""
    sys.exit(_supervise(RunOptions(data_dir=data_dir, config_path=config_path, db_url=db_url,
                                   host=host, port=port, gateways=gateways, wait=wait,
                                   journal_fsync=fsync)))


@main.command()
@store_options
@run_options
def demo(config_path, data_dir, db_url, host, port, gateways, wait, fsync):
    """Run the exchange with demo market-maker and taker bots and a live view.

    Logs go to DATA_DIR/ringex.log; Ctrl-C stops everything."""
    if importlib.util.find_spec("ringex.io.demo") is None:
        raise click.ClickException("the demo is not available (ringex.io.demo is missing)")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    log_path = Path(data_dir) / "ringex.log"
    click.echo(f"ringex demo: logs in {log_path}; Ctrl-C to stop", err=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)                     # every process's logs (children inherit fd 2)
    os.close(log_fd)
    sys.exit(_supervise(RunOptions(data_dir=data_dir, config_path=config_path, db_url=db_url,
                                   host=host, port=port, gateways=gateways, wait=wait,
                                   journal_fsync=fsync, demo=True)))


# ---------------------------------------------------------------------- accounts
@main.group()
def accounts():
    """Create and list accounts; deposit and withdraw."""


@accounts.command("add")
@click.argument("name")
@click.option("--deposit", "deposits", multiple=True, metavar="ASSET=AMOUNT",
              help="Fund the new account (repeatable), e.g. --deposit USD=1000.")
@store_options
def accounts_add(name, deposits, config_path, data_dir, db_url):
    """Create account NAME and print its id and one-time API key (JSON)."""
    from ringex.io.repository import open_repository
    config = _config(config_path)
    wanted = [acc.parse_deposit(d) for d in deposits]
    units = [acc.to_minor_units(config, a, amt) for a, amt in wanted]   # validate first
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open_repository(_db(data_dir, db_url), config) as repo:
        account = repo.add_account(name)
        key = repo.add_api_key(account)
    done = [_transfer(data_dir, db_url, config, "deposit", account, a, amt, u)
            for (a, amt), u in zip(wanted, units)]
    _echo_json({"account_id": account, "name": name, "api_key": key, "deposits": done})


@accounts.command("list")
@store_options
def accounts_list(config_path, data_dir, db_url):
    """List accounts (JSON) with their stored balances (available + locked)."""
    from ringex.io.repository import open_repository
    config = _config(config_path)
    scale = {a.id: (a.name, a.scale) for a in config.assets}
    with open_repository(_db(data_dir, db_url), config) as repo:
        rows = repo.list_accounts()
        totals = repo.balances()
    by_account: dict[int, dict] = {}
    for t in totals:
        name, sc = scale.get(int(t["asset"]), (str(t["asset"]), 0))
        by_account.setdefault(int(t["account"]), {})[name] = _decimal(int(t["total"]), sc)
    _echo_json([{**r, "balances": by_account.get(int(r["account_id"]), {})} for r in rows])


def _decimal(units: int, scale: int) -> str:
    from decimal import Decimal
    return str(Decimal(units).scaleb(-scale)) if scale else str(units)


def _transfer_command(op: str):
    @click.argument("account_id", type=click.IntRange(min=0))
    @click.argument("asset")
    @click.argument("amount")
    @store_options
    def command(account_id, asset, amount, config_path, data_dir, db_url):
        from ringex.io.repository import open_repository
        config = _config(config_path)
        units = acc.to_minor_units(config, asset, amount)
        with open_repository(_db(data_dir, db_url), config) as repo:
            if not any(int(r["account_id"]) == account_id for r in repo.list_accounts()):
                raise RingexError(f"no account {account_id}")
        _echo_json({"account_id": account_id,
                    **_transfer(data_dir, db_url, config, op, account_id, asset, amount, units)})

    command.__doc__ = (f"{op.capitalize()} AMOUNT (a decimal in ASSET units, exact) "
                       f"{'to' if op == 'deposit' else 'from'} account ACCOUNT_ID: now if an "
                       "exchange runs on DATA_DIR, else at its next start.")
    return command


accounts.command("deposit")(_transfer_command("deposit"))
accounts.command("withdraw")(_transfer_command("withdraw"))


# ---------------------------------------------------------------------- transfers
@contextmanager
def _offline(data_dir: str):
    """Yields True while holding the data dir's lock (no exchange runs), else False."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _transfer(data_dir, db_url, config, op, account, asset, amount, units) -> dict:
    """Apply now through a running exchange, or store for the next start."""
    with _offline(data_dir) as offline:
        if offline:
            acc.add_pending(data_dir, op, account, asset, units)
            return {"op": op, "asset": asset, "amount": amount, "units": units,
                    "status": "pending"}
    url = _running_url(data_dir)
    from ringex.io.client import ClientError, admin_transfer
    try:
        reply = admin_transfer(url, acc.read_admin_key(data_dir), op, account, asset, amount)
    except ClientError as exc:
        raise RingexError(f"{op} refused by the exchange: {exc}") from None
    except OSError as exc:
        raise RingexError(f"exchange at {url} unreachable ({exc}); nothing was applied") from None
    return {"op": op, "asset": asset, "amount": amount, "units": units, "status": "applied",
            "reply": reply}


def _running_url(data_dir: str) -> str:
    """The URL of the exchange that holds the data dir's lock (waits while it starts)."""
    path = Path(data_dir) / RUN_FILE
    deadline = time.monotonic() + RUN_FILE_WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise RingexError(f"an exchange holds {data_dir} but wrote no {RUN_FILE}")
        time.sleep(0.2)
    info = json.loads(path.read_text())
    return info["url"]


# ---------------------------------------------------------------------- inspection
if importlib.util.find_spec("ringex.io.inspect_cli") is not None:
    for _command in importlib.import_module("ringex.io.inspect_cli").INSPECT_COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":
    main()
