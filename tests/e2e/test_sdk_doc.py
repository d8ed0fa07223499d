"""docs/sdk.md cannot rot: its scripts run as written, and its ```python sdk blocks run in
order, in one session, against a live gateway.

A ``python sdk`` block whose first line is a protocol.md request (``# {"op": ...}``) must
send exactly that request (``req_id`` aside; the doc's key, account 17 and order 42 stand
for the test's real ones) and get a reply of a type its protocol.md section documents;
together those blocks cover every request example of protocol.md. The reply table must
name what ``parse`` makes of every reply example.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from ringex.client import (
    Ack, CancelAllDone, Cancelled, Client, LoggedIn, Modified, OrderState, Reject, Subscribed,
    Transfer, Unsubscribed, connect, parse,
)
from tests.e2e.live_fixtures import funded, run
from tests.e2e.test_protocol_live import sections

DOCS = Path(__file__).resolve().parents[2] / "docs"
SDK_TEXT = (DOCS / "sdk.md").read_text()
PROTOCOL_TEXT = (DOCS / "protocol.md").read_text()
BLOCKS = re.findall(r"^```python[ \t]*(\w*)\n(.*?)^```", SDK_TEXT, re.S | re.M)
SNIPPETS = [body for tag, body in BLOCKS if tag == "sdk"]
SCRIPTS = [body for tag, body in BLOCKS if tag == "script"]
DOC_URL, DOC_KEY, DOC_ACCOUNT, DOC_ORDER = "ws://127.0.0.1:8765/ws", "rk_live_5f2c9a", 17, 42


def _protocol(kind: str) -> list[dict]:
    return [orjson.loads(b) for b in
            re.findall(rf"^```json {kind}\n(.*?)^```", PROTOCOL_TEXT, re.S | re.M)]


def _header(body: str) -> dict | None:
    """The protocol.md request a block sends: its first line, as a comment."""
    first = body.split("\n", 1)[0]
    return orjson.loads(first[2:]) if first.startswith("# {") else None


def _canon(msg: dict) -> bytes:
    return orjson.dumps({k: v for k, v in msg.items() if k != "req_id"},
                        option=orjson.OPT_SORT_KEYS)


def test_every_python_block_is_a_script_or_an_sdk_example():
    assert BLOCKS and all(tag in ("sdk", "script") for tag, _ in BLOCKS)
    assert len(SCRIPTS) >= 2               # the quick start: async and sync


def test_every_protocol_request_example_has_exactly_one_sdk_block():
    headers = [h for h in map(_header, SNIPPETS) if h is not None]
    assert sorted(map(_canon, headers)) == sorted(map(_canon, _protocol("request")))


def test_the_reply_table_names_what_parse_makes_of_every_reply_example():
    table = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)`", SDK_TEXT, re.M))
    replies = _protocol("reply")
    assert set(table) == {r["type"] for r in replies}
    for r in replies:
        got, name = parse(r), table[r["type"]]
        outer, _, inner = name.partition("[")
        if outer == "dict":
            assert isinstance(got, dict)
            if inner:                                 # dict[str, Balance]
                assert {type(v).__name__ for v in got.values()} == {inner.split()[-1][:-1]}
        elif outer == "list":
            assert isinstance(got, list) and {type(v).__name__ for v in got} == {inner[:-1]}
        else:
            assert type(got).__name__ == name, (r, got)


def _documented_types() -> dict[bytes, set[str]]:
    """protocol.md request (canonical) -> the reply types its section documents."""
    return {_canon(req): types for _, requests, types in sections() for req in requests}


def _is_of_type(result: Any, wire_type: str) -> bool:
    kinds = {"balances": dict, "open_orders": list, "my_trades": list, "pong": dict,
             "login": LoggedIn, "ack": Ack, "reject": Reject, "cancelled": Cancelled,
             "modified": Modified, "cancel_all": CancelAllDone, "order_status": OrderState,
             "subscribed": Subscribed, "unsubscribed": Unsubscribed, "deposit": Transfer,
             "withdraw": Transfer}
    return isinstance(result, kinds[wire_type])


def test_the_sdk_blocks_send_the_documented_requests(exchange, monkeypatch):
    async def go():
        key, account = await funded(exchange, USD="1000000", BTC="10", ETH="100")
        admin = await connect(exchange.url, exchange.admin_key)
        sent: list[tuple[dict, Any]] = []
        plain_request = Client.request

        async def recording(self, msg, timeout=None, raw=False):
            res = await plain_request(self, msg, timeout, raw)
            sent.append((dict(msg), res))
            return res

        monkeypatch.setattr(Client, "request", recording)
        ns: dict[str, Any] = {"url": exchange.url, "api_key": key, "account": account,
                              "admin": admin}
        documented = _documented_types()
        try:
            for body in SNIPPETS:
                before = len(sent)
                code = compile(body, "docs/sdk.md", "exec",
                               flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                pending = eval(code, ns)          # a coroutine when the block awaits
                if pending is not None:
                    await pending
                header = _header(body)
                if header is None:
                    continue
                expect = {**header, **({"api_key": key} if "api_key" in header else {}),
                          **({"account": account} if header.get("account") == DOC_ACCOUNT
                             else {}),
                          **({"order_id": ns["order_id"]}
                             if header.get("order_id") == DOC_ORDER else {})}
                ((msg, result),) = sent[before:]
                assert _canon(msg) == _canon(expect), body
                types = documented[_canon(header)]
                assert any(_is_of_type(result, t) for t in types), (body, result, types)
        finally:
            await admin.close()
            if isinstance(ns.get("c"), Client):
                await ns["c"].close()
    run(go())


@pytest.mark.parametrize("n", range(len(SCRIPTS)))
def test_the_quick_start_scripts_run_as_written(exchange, n, capsys):
    key, _ = run(funded(exchange, USD="10000"))
    body = SCRIPTS[n].replace(DOC_URL, exchange.url).replace(DOC_KEY, key)
    exec(compile(body, "docs/sdk.md", "exec"), {"__name__": "__sdk_doc__"})
    assert capsys.readouterr().out            # they print what they did
