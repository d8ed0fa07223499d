"""``ringex accounts add | list | deposit | withdraw``."""
from __future__ import annotations

from pathlib import Path

import click

from ringex.cli.options import database, echo_json, load_config, store_options
from ringex.errors import RingexError
from ringex.ops import accounts as acc
from ringex.storage.repository import check_account_name
from ringex.storage.stores import open_repository


@click.group()
def accounts():
    """Create and list accounts; deposit and withdraw."""


@accounts.command("add")
@click.argument("name")
@click.option("--deposit", "deposits", multiple=True, metavar="ASSET=AMOUNT",
              help="Fund the new account (repeatable), e.g. --deposit USD=1000.")
@store_options
def accounts_add(name, deposits, config_path, data_dir, db_url):
    """Create account NAME and print its id and one-time API key (JSON).

    NAME must not be empty nor the name of another account."""
    check_account_name(name)
    config = load_config(config_path)
    wanted = [acc.parse_deposit(d) for d in deposits]
    units = [acc.to_minor_units(config, a, amt) for a, amt in wanted]   # validate first
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open_repository(database(data_dir, db_url), config) as repo:
        account = repo.add_account(name)
        key = repo.add_api_key(account)
    done = [acc.transfer(data_dir, "deposit", account, a, amt, u)
            for (a, amt), u in zip(wanted, units)]
    echo_json({"account_id": account, "name": name, "api_key": key, "deposits": done})


@accounts.command("list")
@store_options
def accounts_list(config_path, data_dir, db_url):
    """List accounts (JSON) with their stored balances (available + locked)."""
    config = load_config(config_path)
    assets = {a.id: a for a in config.assets}
    with open_repository(database(data_dir, db_url), config) as repo:
        rows = repo.list_accounts()
        totals = repo.balances()
    by_account: dict[int, dict] = {}
    for t in totals:
        a = assets.get(int(t["asset"]))
        name, amount = (a.name, a.unit.format(int(t["total"]))) if a else \
            (str(t["asset"]), str(t["total"]))
        by_account.setdefault(int(t["account"]), {})[name] = amount
    echo_json([{**r, "balances": by_account.get(int(r["account_id"]), {})} for r in rows])


def _transfer_command(op: str):
    @click.argument("account_id", type=click.IntRange(min=0))
    @click.argument("asset")
    @click.argument("amount")
    @store_options
    def command(account_id, asset, amount, config_path, data_dir, db_url):
        config = load_config(config_path)
        units = acc.to_minor_units(config, asset, amount)
        with open_repository(database(data_dir, db_url), config) as repo:
            if not repo.has_account(account_id):
                raise RingexError(f"no account {account_id}; nothing was applied or stored "
                                  "(`ringex accounts list` shows the accounts)")
        echo_json({"account_id": account_id,
                   **acc.transfer(data_dir, op, account_id, asset, amount, units)})

    command.__doc__ = (f"{op.capitalize()} AMOUNT (a decimal in ASSET units, exact) "
                       f"{'to' if op == 'deposit' else 'from'} account ACCOUNT_ID: now if an "
                       "exchange runs on DATA_DIR, else at its next start.")
    return command


accounts.command("deposit")(_transfer_command("deposit"))
accounts.command("withdraw")(_transfer_command("withdraw"))
