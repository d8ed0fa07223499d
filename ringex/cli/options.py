"""Options shared by ``ringex`` commands."""
from __future__ import annotations

import json

import click

from ringex.config import Config
from ringex.ops.datadir import DB_FILE, DEFAULT_DATA_DIR, db_url


def store_options(f):
    """--config, --data-dir and --db: which market config and which exchange's data."""
    for option in reversed((
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                     help="Market config TOML.  [default: the shipped config]"),
        click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
                     show_default=True, help="Data directory (database, admin key, run file)."),
        click.option("--db", "db_url", metavar="URL",
                     help="SQLite path (or sqlite:///path) or postgresql:// URL.  "
                          f"[default: DATA_DIR/{DB_FILE}]"),
    )):
        f = option(f)
    return f


def json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print a JSON array (exact decimal strings) instead of a "
                             "table.")(f)


def load_config(config_path: str | None) -> Config:
    return Config.load(config_path)


def database(data_dir: str, db: str | None) -> str:
    return db_url(data_dir, db)


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))
