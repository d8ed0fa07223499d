"""``ringex trades | orders | balances`` (ringex/cli/inspect.py) through click's CliRunner,
on a database filled the writer's way (projection -> repository write), with exact output."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ringex.cli import main
from ringex.cli.inspect import INSPECT_COMMANDS
from ringex.storage.projection import Projector
from ringex.storage.schema import readable_views
from ringex.storage.stores import open_repository
from tests.storage.storage_events import Script, fill_stream
from tests.storage.test_repository import payloads, session_steps

T0 = 1_700_000_000_000_000_000          # 2023-11-14T22:13:20Z; payload i is stamped T0 + i ms


ringex = main                           # the ``ringex`` command group


def fill(url, config):
    """session_steps() on BTC-USD (batches 1-7) plus 4 trades on ETH-BTC (batch 8)."""
    eth_btc, _ = fill_stream(4, symbol=config.symbol("ETH-BTC").id, first_order_id=100,
                             seed=2).take()
    ps = payloads([*session_steps(), (eth_btc, None)])
    ps = [dataclasses.replace(p, ts_ns=T0 + i * 1_000_000) for i, p in enumerate(ps)]
    with open_repository(url, config) as repo:
        repo.write(Projector(config).project(ps))


@pytest.fixture
def data_dir(tmp_path, market_config) -> Path:
    d = tmp_path / "ringex-data"
    d.mkdir()
    fill(str(d / "ringex.db"), market_config)
    return d


def run(*args, ok=True) -> str:
    res = CliRunner().invoke(ringex, [str(a) for a in args])
    assert (res.exit_code == 0) == ok, res.output
    return res.output


def as_json(*args):
    return json.loads(run(*args, "--json"))


# session_steps(): BTC-USD tick 0.01, lot 0.0001, USD scale 6; P = 3,000,000 ticks
TRADE_3 = {"time": "2023-11-14T22:13:20.002000Z", "ts_ns": T0 + 2_000_000,
           "symbol": "BTC-USD", "seq": 3, "side": "sell", "price": "30000.00",
           "qty": "0.0004", "notional": "12.000000", "taker_order_id": 2, "maker_order_id": 1,
           "taker_account": 2, "maker_account": 1, "taker_fee": "0.006000",
           "maker_fee": "0.001200", "fee_asset": "USD"}


def test_should_print_trades_as_an_aligned_table(data_dir):
    out = run("trades", "--symbol", "BTC-USD", "--data-dir", data_dir)
    assert out.splitlines() == [
        "time                      symbol   seq  side     price     qty   notional  "
        "taker_order_id  maker_order_id  taker_account  maker_account  taker_fee  maker_fee",
        "2023-11-14 22:13:20.003Z  BTC-USD    6  sell  30000.00  0.0006  18.000000  "
        "             3               1              2              1   0.009000   0.001800",
        "2023-11-14 22:13:20.002Z  BTC-USD    3  sell  30000.00  0.0004  12.000000  "
        "             2               1              2              1   0.006000   0.001200",
    ]


def test_should_print_trades_as_json_with_exact_decimals(data_dir):
    assert as_json("trades", "--symbol", "BTC-USD", "--last", 5,
                   "--data-dir", data_dir)[1] == TRADE_3
    # ETH-BTC: tick 0.00001, lot 0.001, quote BTC (scale 8); no exponent notation anywhere
    newest = as_json("trades", "--last", 2, "--data-dir", data_dir)
    assert [(t["symbol"], t["seq"], t["price"], t["qty"], t["notional"], t["taker_fee"],
             t["maker_fee"], t["fee_asset"]) for t in newest] == [
        ("ETH-BTC", 12, "0.01003", "0.002", "0.00002006", "0.00000001", "0.00000000", "BTC"),
        ("ETH-BTC", 10, "0.01002", "0.002", "0.00002004", "0.00000001", "0.00000000", "BTC"),
    ]
    assert run("trades", "--symbol", "ETH-USD", "--data-dir", data_dir) == "no trades\n"


def test_should_list_and_filter_orders(data_dir):
    out = run("orders", "--symbol", "BTC-USD", "--data-dir", data_dir)
    assert out.splitlines() == [
        "order_id  symbol   account  side     price     qty  filled  leaves  status     "
        "reason  client_order_id",
        "       1  BTC-USD        1  buy   30000.00  0.0010  0.0010  0.0000  filled     "
        "        M",                          # the client id as sent (stored 77: "M")
        "       2  BTC-USD        2  sell  29900.00  0.0004  0.0004  0.0000  filled",
        "       3  BTC-USD        2  sell  30000.00  0.0006  0.0006  0.0000  filled",
        "       4  BTC-USD        2  sell  31000.00  0.0005  0.0000  0.0000  cancelled  "
        "user",
        "       5  BTC-USD        2  sell  31500.00  0.0005  0.0000  0.0003  open",
    ]
    assert as_json("orders", "--status", "live", "--data-dir", data_dir) == [{
        "order_id": 5, "symbol": "BTC-USD", "account": 2, "side": "sell",
        "price": "31500.00", "qty": "0.0005", "filled": "0.0000", "leaves": "0.0003",
        "status": "open", "reason": None, "client_order_id": None, "session": 0,
        "created_seq": 10, "updated_seq": 11}]
    ids = [o["order_id"] for o in as_json("orders", "--account", 2, "--status", "filled",
                                          "--last", 1, "--data-dir", data_dir)]
    assert ids == [3]
    eth_btc = as_json("orders", "--symbol", "ETH-BTC", "--data-dir", data_dir)
    assert [o["order_id"] for o in eth_btc] == list(range(100, 105))       # 4 makers, 1 taker
    assert {(o["price"], o["qty"], o["status"]) for o in eth_btc[:4]} == {
        (f"0.0100{i}", "0.002", "filled") for i in range(4)}
    assert len(as_json("orders", "--data-dir", data_dir)) == 10            # default --last 20


def test_should_print_balances_in_asset_units(data_dir):
    # BTC-USD session, then ETH-BTC: account 81 sells 8 lots to four makers (2 bps of
    # 2000 satoshi rounds down to 0, the taker pays 1 satoshi per fill)
    assert run("balances", "--data-dir", data_dir).splitlines() == [
        "account  asset        total",
        "      0  USD       0.018000",
        "      0  BTC     0.00000004",
        "      1  USD      68.997000",
        "      1  BTC     0.00100000",
        "      2  USD      29.985000",
        "      2  BTC     0.00900000",
        "     11  BTC    -0.00002002",
        "     11  ETH     0.00200000",
        "     26  BTC    -0.00002000",
        "     26  ETH     0.00200000",
        "     30  BTC    -0.00002004",
        "     30  ETH     0.00200000",
        "     41  BTC    -0.00002006",
        "     41  ETH     0.00200000",
        "     81  BTC     0.00008008",
        "     81  ETH    -0.00800000",
    ]
    assert as_json("balances", "--account", 2, "--db", data_dir / "ringex.db") == [
        {"account": 2, "asset": "USD", "total": "29.985000"},
        {"account": 2, "asset": "BTC", "total": "0.00900000"}]


def test_should_read_postgresql_the_same_way(pg_url, market_config, data_dir):
    fill(pg_url, market_config)
    for cmd in (["trades", "--last", 10], ["orders", "--status", "filled"], ["balances"]):
        assert as_json(*cmd, "--db", pg_url) == as_json(*cmd, "--data-dir", data_dir)
    assert as_json("trades", "--symbol", "BTC-USD", "--db", pg_url)[1] == TRADE_3


def test_should_fail_cleanly_without_writing_anything(tmp_path, data_dir):
    empty = tmp_path / "empty"
    out = run("trades", "--data-dir", empty, ok=False)
    assert out == (f"Error: no database at {empty}/ringex.db (is this the exchange's data "
                   "dir? use --data-dir or --db)\n")
    assert not empty.exists()
    assert "unknown symbol 'DOGE-USD' (known: BTC-USD, ETH-USD, ETH-BTC)" in run(
        "orders", "--symbol", "DOGE-USD", "--data-dir", data_dir, ok=False)
    assert "is not one of" in run("orders", "--status", "gone", ok=False)
    other = tmp_path / "other.toml"
    other.write_text('[assets]\nUSD = { scale = 6 }\nBTC = { scale = 8 }\n'
                     '[symbols.BTC-USD]\nbase = "BTC"\nquote = "USD"\ntick = "0.01"\n'
                     'lot = "0.001"\nmin_price = "0.01"\nmax_price = "100000"\n')
    out = run("trades", "--config", other, "--data-dir", data_dir, ok=False)
    assert "symbol 0 is stored as" in out and "would be misread" in out


def test_should_give_help_for_every_command_and_document_it():
    doc = (Path(__file__).parents[2] / "docs" / "storage.md").read_text()
    for command in INSPECT_COMMANDS:
        out = run(command.name, "--help")
        assert out.startswith(f"Usage: ringex {command.name} [OPTIONS]")
        for option in ("--db", "--data-dir", "--config", "--json"):
            assert option in out
        assert f"`ringex {command.name}" in doc


def test_sqlite_utils_cli_reads_the_file_as_is(data_dir):
    cli = Path(sys.executable).parent / "sqlite-utils"
    db = str(data_dir / "ringex.db")

    def sqlite_utils(*args):
        res = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    tables = {t["table"] for t in sqlite_utils("tables", db)}
    assert {"trades", "orders", "order_changes", "transfers", "meta"} <= tables
    assert {v["view"] for v in sqlite_utils("views", db)} == {
        "order_events", "ledger", "order_history", *readable_views("sqlite")}
    assert sqlite_utils("query", db, "SELECT COUNT(*) AS n, SUM(qty) AS lots FROM trades "
                                     "WHERE symbol = 0") == [{"n": 2, "lots": 10}]


def test_accounts_list_prints_balances_as_exact_decimals(tmp_path, market_config):
    """One satoshi is "0.00000001", never "1E-8" (docs/cli.md: exact decimals)."""
    m = Script()
    m.deposit(1, market_config.asset("BTC").id, 1)
    m.deposit(1, market_config.asset("USD").id, 1_500_000)
    db = tmp_path / "ringex.db"
    with open_repository(str(db), market_config) as repo:
        assert repo.add_account("alice") == 1
        repo.write(Projector(market_config).project(payloads([m.take()])))
    res = CliRunner().invoke(main, ["accounts", "list", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (alice,) = [a for a in json.loads(res.output) if a["name"] == "alice"]
    assert alice["balances"] == {"BTC": "0.00000001", "USD": "1.500000"}
