"""A malformed-input campaign against a live gateway.

Every bad input gets its stable code (an ``error`` from the gateway, or a ``reject``
from the engine), the engine's state is unchanged afterwards (balances, open orders,
book), and the connection survives -- unless the input is abusive (binary frames,
oversized frames, floods, a client that does not read), which closes it with the
documented close code and reason after the ``error``.
"""
from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.e2e.live_exchange import LiveExchange
from tests.e2e.live_fixtures import Raw, funded, run

P = {"op": "place", "symbol": "BTC-USD", "side": "buy", "price": "500.00", "qty": "0.01"}
FOREIGN = -1          # placeholder: an order id of another account
MINE = -2             # placeholder: this account's resting order

# (frame or message, expected type, expected code)
CAMPAIGN = [
    # not JSON
    ("hello", "error", "bad_json"), ("{", "error", "bad_json"), ("", "error", "bad_json"),
    ('{"op": "ping",}', "error", "bad_json"),
    # JSON but not a request object
    ("[1, 2]", "error", "bad_request"), ("42", "error", "bad_request"),
    ("null", "error", "bad_request"), ('"place"', "error", "bad_request"),
    # wrong types
    ({"op": 5}, "error", "bad_request"), ({"op": "ping", "req_id": 1.5}, "error", "bad_request"),
    ({**P, "symbol": 5}, "error", "bad_request"), ({**P, "price": 500}, "error", "invalid_price"),
    ({**P, "qty": 1}, "error", "invalid_qty"), ({**P, "post_only": "yes"}, "error", "bad_request"),
    ({**P, "client_order_id": 12}, "error", "invalid_client_order_id"),
    ({**P, "client_order_id": "far too long"}, "error", "invalid_client_order_id"),
    ({"op": "cancel", "symbol": "BTC-USD", "order_id": "7"}, "error", "invalid_order_id"),
    ({"op": "cancel", "symbol": "BTC-USD", "order_id": -7}, "error", "invalid_order_id"),
    ({"op": "cancel", "symbol": "BTC-USD", "order_id": 1, "client_order_id": "a"}, "error",
     "bad_request"),
    # missing fields
    ({}, "error", "missing_field"), ({"op": "place", "symbol": "BTC-USD", "qty": "1"}, "error",
                                     "missing_field"),
    ({k: v for k, v in P.items() if k != "qty"}, "error", "missing_field"),
    ({k: v for k, v in P.items() if k != "price"}, "error", "missing_field"),
    ({"op": "cancel", "symbol": "BTC-USD"}, "error", "missing_field"),
    ({"op": "modify", "symbol": "BTC-USD", "order_id": 1, "qty": "1"}, "error", "missing_field"),
    ({"op": "subscribe", "symbol": "BTC-USD"}, "error", "missing_field"),
    ({"op": "unsubscribe", "channel": "book"}, "error", "missing_field"),
    # unknown names
    ({"op": "buy"}, "error", "unknown_op"), ({**P, "symbol": "DOGE-USD"}, "error",
                                             "unknown_symbol"),
    ({**P, "side": "up"}, "error", "invalid_side"), ({**P, "tif": "day"}, "error", "invalid_tif"),
    ({**P, "type": "stop"}, "error", "invalid_type"), ({**P, "stp": "x"}, "error", "invalid_stp"),
    ({"op": "subscribe", "channel": "news", "symbol": "BTC-USD"}, "error", "unknown_channel"),
    ({**P, "account": 1}, "error", "unknown_field"), ({**P, "postonly": True}, "error",
                                                      "unknown_field"),
    # quantities
    ({**P, "qty": "0"}, "error", "invalid_qty"), ({**P, "qty": "-1"}, "error", "invalid_qty"),
    ({**P, "qty": "1e3"}, "error", "invalid_qty"), ({**P, "qty": " 1"}, "error", "invalid_qty"),
    ({**P, "qty": "NaN"}, "error", "invalid_qty"), ({**P, "qty": "9" * 33}, "error",
                                                    "invalid_qty"),
    ({**P, "qty": "99999999999999999999"}, "error", "invalid_qty"),
    ({**P, "qty": "0.00001"}, "error", "off_lot"),
    # prices
    ({**P, "price": "500.001"}, "error", "off_tick"), ({**P, "price": "0"}, "error",
                                                      "invalid_price"),
    ({**P, "price": "-5"}, "error", "invalid_price"), ({**P, "price": "Infinity"}, "error",
                                                      "invalid_price"),
    ({**P, "price": "100000.01"}, "error", "price_out_of_band"),
    ({**P, "type": "market"}, "error", "invalid_price"),
    ({**P, "type": "market", "price": None, "tif": "gtc"}, "error", "invalid_tif"),
    ({**P, "tif": "ioc", "post_only": True}, "error", "invalid_tif"),
    # auth and admin
    ({"op": "login", "api_key": "x"}, "error", "already_authenticated"),
    ({"op": "deposit", "account": 1, "asset": "USD", "amount": "5"}, "error", "not_authorized"),
    # the engine's refusals: nothing changes either
    ({"op": "cancel", "symbol": "BTC-USD", "order_id": 999_999_999_999}, "reject",
     "unknown_order"),
    ({"op": "cancel", "symbol": "BTC-USD", "order_id": FOREIGN}, "reject", "unknown_order"),
    ({"op": "modify", "symbol": "BTC-USD", "order_id": FOREIGN, "price": "500", "qty": "1"},
     "reject", "unknown_order"),
    ({"op": "cancel", "symbol": "BTC-USD", "client_order_id": "theirs"}, "reject",
     "unknown_order"),
    ({"op": "cancel", "symbol": "ETH-USD", "order_id": MINE}, "reject", "unknown_order"),
    ({**P, "qty": "1000"}, "reject", "insufficient_funds"),
    ({**P, "client_order_id": "mine"}, "reject", "duplicate_client_order_id"),
    ({**P, "price": "100000", "qty": "922337203685477.5807"}, "reject", "overflow"),
    ({"op": "modify", "symbol": "BTC-USD", "order_id": MINE, "price": "500", "qty": "1000"},
     "reject", "insufficient_funds"),
]


async def _state(c: Raw, watcher: Raw) -> tuple:
    bal = await c.ask({"op": "balances", "req_id": "state-b"})
    orders = await c.ask({"op": "open_orders", "req_id": "state-o"})
    await watcher.ask({"op": "subscribe", "channel": "book", "symbol": "BTC-USD",
                       "resync": True, "req_id": "state-s"})
    snap = await watcher.recv()
    while snap["type"] == "book_update":     # a re-subscribe: the running subscription's
        snap = await watcher.recv()          # updates may come before the fresh snapshot
    assert snap["type"] == "book_snapshot"
    return bal["balances"], orders["orders"], snap["bids"], snap["asks"]


def test_every_bad_input_gets_its_code_and_changes_nothing(exchange):
    async def go():
        key, _ = await funded(exchange, USD="1000")
        other_key, _ = await funded(exchange, USD="1000")
        c = await Raw.open(exchange.url, key)
        other = await Raw.open(exchange.url, other_key)
        watcher = await Raw.open(exchange.url)
        mine = await c.ask({**P, "client_order_id": "mine", "req_id": "m"})
        theirs = await other.ask({**P, "price": "400", "client_order_id": "theirs",
                                  "req_id": "t"})
        assert mine["type"] == theirs["type"] == "ack"
        before = await _state(c, watcher)
        for i, (frame, kind, code) in enumerate(CAMPAIGN):
            if isinstance(frame, dict):
                frame = {k: {FOREIGN: theirs["order_id"], MINE: mine["order_id"]}.get(v, v)
                         if k == "order_id" else v for k, v in frame.items()}
                frame.setdefault("req_id", f"r{i}")
            await c.send(frame)
            reply = await c.recv()          # nothing else is sent to this connection
            assert (reply["type"], reply.get("code")) == (kind, code), (frame, reply)
            assert reply["message"]
            if isinstance(frame, dict) and isinstance(frame["req_id"], str):
                assert reply["req_id"] == frame["req_id"]
        assert (await c.ask({"op": "ping", "req_id": "alive"}))["type"] == "pong"
        after = await _state(c, watcher)
        assert after == before
        assert await c.quiet(0.2) == [] and await other.quiet(0.1) == []
        for x in (c, other):
            await x.ask({"op": "cancel_all", "req_id": "end"})
            await x.close()
        await watcher.close()
    run(go())


async def _closed(raw: Raw) -> list[dict]:
    msgs = await raw.quiet(2.0)
    assert raw.ws.close_code is not None, msgs
    return msgs


@pytest.mark.parametrize("frame,code,error,reason", [
    (b"\x00\x01binary", 1003, "binary_frame",
     "binary frames are not supported; send JSON text frames"),
    ('{"op": "ping", "pad": "' + "x" * 5000 + '"}', 1009, "frame_too_large",
     "frames are limited to 4096 bytes"),
])
def test_abusive_frames_close_the_connection_after_an_error(exchange, frame, code, error,
                                                            reason):
    async def go():
        raw = await Raw.open(exchange.url)
        await raw.send(frame)
        msgs = await _closed(raw)
        assert [m["code"] for m in msgs] == [error]
        assert (raw.ws.close_code, raw.ws.close_reason) == (code, reason)
    run(go())


def test_frames_beyond_the_websocket_limit_and_bad_utf8_fail_the_connection(exchange):
    async def go():
        raw = await Raw.open(exchange.url)
        await raw.send("x" * 20_000)
        assert await _closed(raw) == [] and raw.ws.close_code == 1009
        raw = await Raw.open(exchange.url)
        await raw.ws.send(b'{"op": "\xff"}', text=True)
        assert await _closed(raw) == [] and raw.ws.close_code == 1007
    run(go())


def test_a_request_flood_is_rate_limited_then_closed(exchange):
    async def go():
        raw = await Raw.open(exchange.url)
        ping = orjson.dumps({"op": "ping"})
        for _ in range(4000):
            await raw.ws.send(ping, text=True)
        msgs = await _closed(raw)
        kinds = [m.get("code", m["type"]) for m in msgs]
        assert kinds.count("pong") >= 900 and "rate_limited" in kinds
        assert kinds[-1] == "rate_limited"
        assert (raw.ws.close_code, raw.ws.close_reason) == (1008, "rate limit exceeded")
        ok = await Raw.open(exchange.url)            # others are unaffected
        assert (await ok.ask({"op": "ping", "req_id": 1}))["type"] == "pong"
        await ok.close()
    run(go())


def test_a_client_that_does_not_read_is_closed():
    """More unsent messages than ``max_output_bytes`` (64 KiB here, beyond what the
    kernel's socket buffers absorb): the gateway queues ``slow_consumer`` and a 1013 close
    behind them (a client that then reads gets both; one that never reads is cut off after
    the closing timeout). The snapshot budget is raised so that resyncs can fill it."""
    limits = "max_output_bytes=65536,snapshot_burst=1000,snapshots_per_min=60000"
    exchange = LiveExchange(env={"RINGEX_SESSION_LIMITS": limits}).start()

    async def go():
        key, _ = await funded(exchange, ETH="10")
        maker = await Raw.open(exchange.url, key)
        for i in range(1500):                       # a deep book: ~40 KB snapshots
            await maker.send({"op": "place", "symbol": "ETH-USD", "side": "sell",
                              "price": f"{10000 + i}.00", "qty": "0.001"})
            if i % 500 == 499:
                await asyncio.sleep(0.6)            # stay under the rate limit
        await maker.quiet(0.5)
        sub = orjson.dumps({"op": "subscribe", "channel": "book", "symbol": "ETH-USD",
                            "resync": True})
        # max_queue=1: the client library stops reading the socket at once
        lazy = await ws_connect(exchange.url, compression=None, max_queue=1, max_size=None)
        for _ in range(3):
            for _ in range(100):                    # ~4 MB of ~40 KB snapshots
                await lazy.send(sub, text=True)
            await asyncio.sleep(0.11)
        last = None
        try:
            async for frame in lazy:                # now read everything
                last = orjson.loads(frame)
        except Exception:
            pass
        assert (lazy.close_code, lazy.close_reason) == (
            1013, "too slow: the output buffer is full"), (lazy.close_code, last)
        assert last["type"] == "error" and last["code"] == "slow_consumer"
        await maker.ask({"op": "cancel_all", "req_id": 1})
        await maker.close()
    try:
        run(go(), 90)
    finally:
        assert exchange.close() == 0 and not exchange.leftovers, exchange.log_tail()
