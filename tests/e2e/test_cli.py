"""The ``ringex`` command line: help everywhere, accounts offline, ``ringex run`` for real."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from ringex.cli import main
from ringex.ops.datadir import offline
from tests.e2e.procs import REPO, descendants, kill_tree, segments, stop, wait_for, wait_run_file


def all_commands(group: click.Group, prefix=()):
    for name in group.list_commands(click.Context(group)):
        cmd = group.get_command(click.Context(group), name)
        assert cmd is not None and cmd.name == name, name
        yield prefix + (name,)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, prefix + (name,))


def cli(*args, data_dir=None):
    extra = ("--data-dir", str(data_dir)) if data_dir is not None else ()
    return CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)


def test_the_cli_module_loads_its_commands_only_when_used():
    """Every process spawned from the `ringex` script imports ringex.cli again."""
    code = "import sys, ringex.cli; print(sorted({'numpy', 'psycopg', 'numba'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert out.strip() == "[]"


@pytest.mark.timeout(60)
def test_every_command_has_help():
    paths = [()] + list(all_commands(main))
    assert {"run", "demo", "accounts", "accounts add", "accounts list", "accounts deposit",
            "accounts withdraw"} <= {" ".join(p) for p in paths}
    for path in paths:
        res = CliRunner().invoke(main, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage:" in res.output and len(res.output.splitlines()) > 3


@pytest.mark.timeout(60)
def test_every_command_is_documented():
    doc = (REPO / "docs" / "cli.md").read_text()
    for path in all_commands(main):
        if isinstance(main.get_command(None, path[0]), click.Group) and len(path) == 1:
            continue
        assert f"ringex {' '.join(path)}" in doc, f"docs/cli.md lacks `ringex {' '.join(path)}`"


@pytest.mark.timeout(120)
def test_accounts_offline_add_list_deposit_withdraw(tmp_path):
    res = cli("accounts", "add", "alice", "--deposit", "USD=1000.25", "--deposit", "BTC=0.5",
              data_dir=tmp_path)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["account_id"] == 1 and out["api_key"].startswith("rx_")
    assert [(d["asset"], d["units"], d["status"]) for d in out["deposits"]] == \
        [("USD", 1_000_250_000, "pending"), ("BTC", 50_000_000, "pending")]
    res = cli("accounts", "withdraw", "1", "USD", "0.25", data_dir=tmp_path)
    assert res.exit_code == 0 and json.loads(res.output)["status"] == "pending"
    pending = [json.loads(line) for line in
               (tmp_path / "pending_transfers.jsonl").read_text().splitlines()]
    assert [(p["op"], p["account"], p["asset"], p["units"]) for p in pending] == [
        ("deposit", 1, "USD", 1_000_250_000), ("deposit", 1, "BTC", 50_000_000),
        ("withdraw", 1, "USD", 250_000)]
    listed = json.loads(cli("accounts", "list", data_dir=tmp_path).output)
    assert [(a["account_id"], a["name"]) for a in listed] == [(0, "fees"), (1, "alice")]
    # errors: one clean line, exit 1, nothing stored
    for args, words in ((("accounts", "deposit", "1", "BTC", "0.000000001"), "finer"),
                        (("accounts", "deposit", "9", "USD", "1"), "no account 9"),
                        (("accounts", "deposit", "1", "XYZ", "1"), "unknown asset"),
                        (("accounts", "withdraw", "1", "USD", "0"), "positive"),
                        (("accounts", "add", "bob", "--deposit", "USD"), "ASSET=AMOUNT")):
        res = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path)])
        assert res.exit_code == 1 and words in res.output, (args, res.output)
    assert len((tmp_path / "pending_transfers.jsonl").read_text().splitlines()) == 3


@pytest.mark.timeout(300)
def test_run_applies_pending_then_live_deposits_and_stops_clean_on_sigterm(tmp_path):
    assert cli("accounts", "add", "alice", "--deposit", "USD=10", data_dir=tmp_path).exit_code == 0
    with open(tmp_path / "pending_transfers.jsonl", "a") as f:     # by hand: nobody's account
        f.write(json.dumps({"op": "deposit", "account": 17, "asset": "USD", "units": 5}) + "\n")
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ringex.cli", "run", "--port", "0",
                             "--data-dir", str(tmp_path)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    try:
        info = wait_run_file(tmp_path, proc)
        assert info["url"].startswith("ws://127.0.0.1:")
        kids = descendants(proc.pid)
        assert not (tmp_path / "pending_transfers.jsonl").exists()   # taken at start
        res = cli("accounts", "deposit", "1", "USD", "2.5", data_dir=tmp_path)
        assert res.exit_code == 0, res.output
        applied = json.loads(res.output)
        assert applied["status"] == "applied" and applied["reply"]["available"] == "12.500000"
        assert stop(proc, signal.SIGTERM) == 0, (tmp_path / "run.log").read_text()
        assert wait_for(lambda: not (kids & descendants(1)) and not segments(proc.pid), 10)
        assert not (tmp_path / "ringex.run").exists()
        listed = json.loads(cli("accounts", "list", data_dir=tmp_path).output)
        assert listed[1]["balances"] == {"USD": "12.500000"}
        assert "pending transfer to account 17 dropped" in (tmp_path / "run.log").read_text()
        balances = json.loads(cli("balances", "--json", data_dir=tmp_path).output)
        assert 17 not in {b["account"] for b in balances}, balances
    finally:
        kill_tree(proc.pid)


@pytest.mark.timeout(60)
def test_run_refuses_a_port_another_process_serves(tmp_path):
    """Even a listener that allows sharing (SO_REUSEPORT, as ringex's own gateways do):
    two exchanges on one port would split the clients between them."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        for command in ("run", "demo"):
            res = CliRunner().invoke(main, [command, "--port", str(port),
                                            "--data-dir", str(tmp_path / command)])
            assert res.exit_code == 1, res.output
            assert f"Error: port {port} on 127.0.0.1 is in use by another process" \
                in res.output
            assert not (tmp_path / command / "ringex.run").exists()
    # the data dir is not left locked: a run on a free port could start now
    with offline(tmp_path / "run") as idle:
        assert idle
