"""docs/protocol.md replayed against a live gateway: every ```json request block, in doc
order, gets a direct reply of a type its section documents.

The examples name things a real exchange does not have (API key ``rk_live_5f2c9a``,
account 17, order 42); the replay substitutes the test's real key, account and the
order the doc's first ``place`` created. Examples without a ``req_id`` get one, so the
reply can be told apart. A section's documented types are its ```json reply blocks,
plus ``reject`` where its text says the engine may refuse the command.
"""
from __future__ import annotations

import re
from pathlib import Path

import orjson

from tests.e2e.live_fixtures import Raw, funded, run

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
FENCE = re.compile(r"^```json[ \t]*(\w*)\n(.*?)^```", re.S | re.M)


def sections() -> list[tuple[str, list[dict], set[str]]]:
    """(heading, request examples, documented reply types) per ### section."""
    out = []
    for part in re.split(r"^### ", DOC.read_text(), flags=re.M)[1:]:
        heading, body = part.split("\n", 1)
        body = re.split(r"^## ", body, flags=re.M)[0]
        blocks = FENCE.findall(body)
        requests = [orjson.loads(b) for tag, b in blocks if tag == "request"]
        types = {orjson.loads(b)["type"] for tag, b in blocks if tag == "reply"}
        if "`reject`" in body:
            types.add("reject")
        if requests:
            out.append((heading.strip(), requests, types))
    return out


def test_the_doc_has_examples_for_every_request_section():
    heads = [h for h, _, _ in sections()]
    assert len(heads) >= 9 and sum(len(r) for _, r, _ in sections()) >= 17


def test_every_request_example_gets_a_documented_reply(exchange):
    async def go():
        key, account = await funded(exchange, USD="1000000", BTC="10", ETH="100")
        user = await Raw.open(exchange.url, key)
        admin = await Raw.open(exchange.url, exchange.admin_key)
        first_order = None
        seen = []
        n = 1000
        for heading, requests, types in sections():
            for req in requests:
                n += 1
                msg = dict(req)
                msg.setdefault("req_id", n)
                if msg.get("order_id") == 42 and first_order is not None:
                    msg["order_id"] = first_order
                if msg.get("account") == 17:
                    msg["account"] = account
                if msg["op"] == "login":
                    msg["api_key"] = key
                    conn = await Raw.open(exchange.url)
                elif msg["op"] in ("deposit", "withdraw"):
                    conn = admin
                else:
                    conn = user
                reply = await conn.ask(msg)
                if msg["op"] == "login":
                    await conn.close()
                assert reply["type"] in types, (heading, msg, reply)
                assert reply.get("req_id") == msg["req_id"]
                if reply["type"] == "ack" and first_order is None:
                    first_order = reply["order_id"]
                seen.append((msg["op"], reply["type"]))
        ops = {op for op, _ in seen}
        assert {"login", "ping", "place", "cancel", "modify", "cancel_all", "balances",
                "open_orders", "subscribe", "unsubscribe", "deposit", "withdraw"} <= ops
        # the doc's flow really happens: its first order is acknowledged, then cancelled
        assert ("place", "ack") in seen and ("cancel", "cancelled") in seen
        await user.ask({"op": "cancel_all", "req_id": 1})
        await user.close()
        await admin.close()
    run(go())


def test_replies_of_the_live_gateway_have_the_documented_keys(exchange):
    """The keys of live replies match the doc's reply example of the same type."""
    documented = {}
    for tag, body in FENCE.findall(DOC.read_text()):
        if tag == "reply":
            m = orjson.loads(body)
            documented.setdefault(m["type"], set()).add(frozenset(m) - {"req_id"})

    async def go():
        key, account = await funded(exchange, USD="100000", BTC="1")
        c = await Raw.open(exchange.url, key)
        got = [await c.ask({"op": "place", "symbol": "BTC-USD", "side": "buy",
                            "price": "300", "qty": "0.1", "req_id": 1}),
               await c.ask({"op": "balances", "req_id": 2}),
               await c.ask({"op": "open_orders", "req_id": 3}),
               await c.ask({"op": "cancel_all", "req_id": 4}),
               await c.ask({"op": "ping", "req_id": 5}),
               await c.ask({"op": "place", "symbol": "BTC-USD", "side": "buy",
                            "price": "300", "qty": "1000", "req_id": 6})]
        await c.close()
        return got
    for reply in run(go()):
        assert frozenset(reply) - {"req_id"} in documented[reply["type"]], reply
