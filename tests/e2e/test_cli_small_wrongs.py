"""Issue 11's small wrongs at the command line and at a live gateway, one test each.

``ringex --version``; ``ringex accounts add`` refuses blank and duplicate names;
deposits and withdrawals to an account nobody created are refused (``unknown_account``
over the WebSocket, ``Error: no account N`` from the CLI, online or stored for the next
start); a second ``ringex run`` on a busy data dir prints the documented ``Error:`` line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import version

import pytest
from click.testing import CliRunner

from ringex.cli import main
from ringex.ops.datadir import lock_exclusive
from tests.e2e.live_fixtures import Raw, run
from tests.e2e.procs import REPO

NOBODY = 4000            # an account id below the engine's capacity that no one created
BALANCE_MAX = "4611686018427.387904"      # 2^62 USD minor units


def cli(*args, data_dir=None):
    extra = ("--data-dir", str(data_dir)) if data_dir is not None else ()
    return CliRunner().invoke(main, [*args, *extra])


def error_line(res) -> str:
    """The one line a failed command prints (exit code 1, nothing else)."""
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def test_version_prints_the_installed_version():
    res = cli("--version")
    assert res.exit_code == 0 and res.output == f"ringex, version {version('ringex')}\n"


@pytest.mark.timeout(120)
def test_accounts_add_refuses_an_empty_or_duplicate_name(tmp_path):
    assert error_line(cli("accounts", "add", "", data_dir=tmp_path)) == \
        "Error: an account name must not be empty"
    assert error_line(cli("accounts", "add", "   ", data_dir=tmp_path)) == \
        "Error: an account name must not be empty"
    assert cli("accounts", "add", "alice", data_dir=tmp_path).exit_code == 0
    assert error_line(cli("accounts", "add", "alice", "--deposit", "USD=5",
                          data_dir=tmp_path)) == \
        'Error: an account named "alice" exists already (account 1)'
    assert error_line(cli("accounts", "add", "fees", data_dir=tmp_path)) == \
        'Error: an account named "fees" exists already (account 0)'
    listed = json.loads(cli("accounts", "list", data_dir=tmp_path).output)
    assert [(a["account_id"], a["name"]) for a in listed] == [(0, "fees"), (1, "alice")]
    assert not (tmp_path / "pending_transfers.jsonl").exists()   # the refused --deposit


@pytest.mark.timeout(120)
def test_offline_transfers_to_an_account_nobody_created_store_nothing(tmp_path):
    assert cli("accounts", "add", "alice", data_dir=tmp_path).exit_code == 0
    for op in ("deposit", "withdraw"):
        line = error_line(cli("accounts", op, "17", "USD", "1", data_dir=tmp_path))
        assert line.startswith("Error: no account 17; nothing was applied or stored")
    assert not (tmp_path / "pending_transfers.jsonl").exists()
    assert cli("accounts", "deposit", "1", "USD", "1", data_dir=tmp_path).exit_code == 0
    assert len((tmp_path / "pending_transfers.jsonl").read_text().splitlines()) == 1


@pytest.mark.timeout(60)
def test_run_on_a_data_dir_another_exchange_holds_prints_an_error_line(tmp_path):
    fd = lock_exclusive(tmp_path)             # what a running exchange holds
    try:
        for command in ("run", "demo"):
            res = cli(command, "--port", "0", "--http-port", "-1", data_dir=tmp_path)
            assert error_line(res) == f"Error: another ringex runs on {tmp_path}"
    finally:
        os.close(fd)


# ---------------------------------------------------------------- against `ringex run`
@pytest.mark.timeout(300)
def test_admin_transfers_to_an_account_nobody_created_are_refused_unknown_account(exchange):
    async def go():
        admin = await Raw.open(exchange.url, exchange.admin_key)
        try:
            for i, op in enumerate(("deposit", "withdraw")):
                reply = await admin.ask({"op": op, "account": NOBODY, "asset": "USD",
                                         "amount": "5", "req_id": i})
                assert reply == {"type": "error", "code": "unknown_account",
                                 "message": f"no account {NOBODY}", "req_id": i}
            # an account made while the exchange runs can be funded at once: misses are
            # not remembered
            exchange.add_account("late")
            late = exchange.accounts["late"]
            reply = await admin.ask({"op": "deposit", "account": late, "asset": "USD",
                                     "amount": "5", "req_id": 10})
            assert (reply["type"], reply["available"]) == ("deposit", "5.000000")
            # refused and accepted transfers sent back to back: each gets its answer, and
            # frames after a lookup wait for it
            for m in ({"op": "deposit", "account": NOBODY + 1, "asset": "USD",
                       "amount": "1", "req_id": 11},
                      {"op": "deposit", "account": late, "asset": "USD", "amount": "1",
                       "req_id": 12},
                      {"op": "ping", "req_id": 13}):
                await admin.send(m)
            got = {}
            while len(got) < 3:
                reply = await admin.recv()
                got[reply.get("req_id")] = reply
            assert got[11]["code"] == "unknown_account"
            assert (got[12]["type"], got[12]["available"]) == ("deposit", "6.000000")
            assert got[13]["type"] == "pong"
            return late
        finally:
            await admin.close()
    late = run(go())
    # the database never hears of the refused ones
    deadline = time.monotonic() + 30
    while True:
        res = cli("balances", "--json", "--db", exchange.db_url)
        rows = json.loads(res.output) if res.exit_code == 0 else []
        # both of late's deposits stored (the writer may land them in two batches)
        if any(r["account"] == late and r["total"] == "6.000000" for r in rows) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(r["account"], r["total"]) for r in rows if r["account"] in (late, NOBODY,
                                                                        NOBODY + 1)] == \
        [(late, "6.000000")]
    # the CLI refuses before asking the exchange
    line = error_line(cli("accounts", "deposit", str(NOBODY), "USD", "1",
                          data_dir=exchange.data_dir))
    assert line.startswith(f"Error: no account {NOBODY}; nothing was applied or stored")


@pytest.mark.timeout(300)
def test_a_deposit_past_the_balance_limit_is_rejected_as_an_overflowing_balance(exchange):
    exchange.add_account("rich")

    async def go():
        admin = await Raw.open(exchange.url, exchange.admin_key)
        try:
            account = exchange.accounts["rich"]
            full = await admin.ask({"op": "deposit", "account": account, "asset": "USD",
                                    "amount": BALANCE_MAX, "req_id": 1})
            assert full["type"] == "deposit" and full["available"] == BALANCE_MAX
            return await admin.ask({"op": "deposit", "account": account, "asset": "USD",
                                    "amount": "0.000001", "req_id": 2})
        finally:
            await admin.close()
    reply = run(go())
    assert (reply["type"], reply["code"], reply["op"]) == ("reject", "overflow", "deposit")
    assert reply["message"] == ("the account's balance of this asset (available + locked) "
                                "would exceed 2^62 minor units")


@pytest.mark.timeout(120)
def test_a_second_run_on_the_same_data_dir_prints_an_error_line(exchange):
    proc = subprocess.run([sys.executable, "-m", "ringex.cli", "run", "--port", "0",
                           "--data-dir", str(exchange.data_dir)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == f"Error: another ringex runs on {exchange.data_dir}\n"
    assert (exchange.data_dir / "ringex.run").exists()        # the first one is untouched
