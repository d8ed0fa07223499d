"""The SDK is typed for its users: ``ringex`` ships ``py.typed``, and a type checker holds
calls to the protocol's vocabularies (docs/sdk.md): a misspelt side, tif, stp or channel
is an error before the gateway ever sees it, and ``next_event(Fill)`` is a Fill."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from mypy import api as mypy

ROOT = Path(__file__).resolve().parents[1]

USER_CODE = '''\
from ringex.client import Client, Fill, ReconnectingClient
from ringex.client.sync import SyncClient


async def trade(c: Client, rc: ReconnectingClient, s: SyncClient) -> None:
    await c.place("BTC-USD", "buy", "1", "2", tif="gtc", stp="none", post_only=True)
    await c.place("BTC-USD", "bye", "1")                          # E: side
    await c.place("BTC-USD", "buy", "1", tif="GTC")               # E: tif
    await rc.place("BTC-USD", "sell", "1", stp="cancel")           # E: stp
    await rc.subscribe("candles", "BTC-USD")                      # E: channel
    s.place("BTC-USD", "buy", "1", type="stop")                   # E: type
    fill = await c.next_event(Fill)
    reveal_type(fill)                                             # N: Fill
    reveal_type(s.balances())                                     # N: Balance
'''


def test_the_package_ships_its_type_marker():
    assert (ROOT / "ringex" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["ringex"]


def test_mypy_holds_user_code_to_the_protocols_literals(tmp_path, monkeypatch):
    (tmp_path / "user.py").write_text(USER_CODE)
    (tmp_path / "mypy.ini").write_text("[mypy]\npython_version = 3.11\n")
    monkeypatch.setenv("MYPYPATH", str(ROOT))
    monkeypatch.chdir(tmp_path)
    out, err, _ = mypy.run(["--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "c"),
                            "--follow-imports", "silent", "user.py"])
    errors = {int(n) for n in re.findall(r"^user\.py:(\d+): error:", out, re.M)}
    lines = USER_CODE.splitlines()
    assert errors == {i + 1 for i, line in enumerate(lines) if "# E:" in line}, out + err
    notes = {n: line for n, line in (re.findall(r"^user\.py:(\d+): note: (.*)$", out, re.M))}
    for i, line in enumerate(lines):
        if "# N:" in line:
            assert line.split("# N: ")[1] in notes[str(i + 1)], out
