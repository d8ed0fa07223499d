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

Commands live in ``run``, ``accounts`` and ``inspect``; shared options in ``options``.
Deposits and withdrawals go to a running exchange on the same data dir through an admin
WebSocket connection; with none running they are stored and applied at the next start
(docs/architecture.md, section 5). Errors print one line and exit 1.
"""
from __future__ import annotations

import click

from ringex.cli.accounts import accounts
from ringex.cli.inspect import INSPECT_COMMANDS
from ringex.cli.run import demo, run
from ringex.cli.standby import standby
from ringex.cli.status import status
from ringex.errors import RingexError


class Group(click.Group):
    """Turns ringex's own errors into one clean line and exit code 1."""

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


for _command in (run, demo, status, standby, accounts, *INSPECT_COMMANDS):
    main.add_command(_command)
