"""The ``ringex`` command line (click).

    ringex run      [--config FILE] [--data-dir DIR] [--db URL] [--host H] [--port P]
                    [--http-port P]
                    [--gateways N] [--wait busy|spin|eventfd] [--fsync none|batch]
                    [--log-level LEVEL]
    ringex demo     (the same options) run plus demo bots and a live view
    ringex accounts add NAME [--deposit ASSET=AMOUNT ...]   JSON with account_id, api_key
    ringex accounts list
    ringex accounts deposit|withdraw ID ASSET AMOUNT
    ringex trades | orders | balances                       read-only views of the database
    ringex status [--data-dir DIR] [--json]                 health and counters of a running one
    ringex standby --cluster URL [--data-dir DIR] [--config FILE] [--no-takeover]
                                                            follow a primary's stream, take over
    ringex --version

Commands live in ``run``, ``status``, ``standby``, ``accounts`` and ``inspect`` (loaded
when used);
shared options in ``options``.
Deposits and withdrawals go to a running exchange on the same data dir through an admin
WebSocket connection; with none running they are stored and applied at the next start
(docs/architecture.md, section 5). Errors print one line and exit 1.
"""
from __future__ import annotations

import importlib

import click

from ringex.errors import RingexError

# name -> "module:attribute", imported when the command runs: every process spawned from
# the `ringex` script imports this module again (multiprocessing's spawn re-runs the
# script), and none of them needs the commands' imports (psycopg, the supervisor, ...).
COMMANDS = {
    "run": "ringex.cli.run:run",
    "demo": "ringex.cli.run:demo",
    "status": "ringex.cli.status:status",
    "standby": "ringex.cli.standby:standby",
    "accounts": "ringex.cli.accounts:accounts",
    "trades": "ringex.cli.inspect:trades",
    "orders": "ringex.cli.inspect:orders",
    "balances": "ringex.cli.inspect:balances",
}


class Group(click.Group):
    """Loads each command on first use, and turns ringex's own errors into one clean line
    and exit code 1."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, cmd_name):
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RingexError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(name="ringex", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ringex", prog_name="ringex")
def main():
    """ringex: a low-latency exchange engine (matcher, WebSocket gateways, SQLite or
    PostgreSQL)."""
