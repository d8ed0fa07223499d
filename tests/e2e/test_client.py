"""ringex.client: typed results, request/reply correlation, pushed events, errors,
and the synchronous admin_transfer helper -- against a live exchange."""
from __future__ import annotations

import asyncio
import re
import time
import zlib
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from ringex.client import (
    Ack, Balance, BookSnapshot, BookUpdate, CancelAllDone, Cancelled, ClientError, Error,
    Fill, LoggedIn, Modified, MyTrade, OpenOrder, OrderState, Reject, Subscribed, Trade,
    Transfer, Unsubscribed, admin_transfer, connect, parse,
)
from ringex.client.requests import Requests
from tests.e2e.live_exchange import free_port
from tests.e2e.live_fixtures import Raw, funded, run, trader
from tests.protocol.test_protocol_book_depth import Holder

D = Decimal
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_every_documented_reply_parses_to_a_typed_result():
    kinds = {"ack": Ack, "reject": Reject, "fill": Fill, "cancelled": Cancelled,
             "modified": Modified, "trade": Trade, "book_snapshot": BookSnapshot,
             "book_update": BookUpdate, "subscribed": Subscribed,
             "unsubscribed": Unsubscribed, "login": LoggedIn, "deposit": Transfer,
             "withdraw": Transfer, "cancel_all": CancelAllDone, "error": Error,
             "balances": dict, "open_orders": list, "pong": dict,
             "order_status": OrderState, "my_trades": list}
    replies = [orjson.loads(b) for b in re.findall(r"^```json reply\n(.*?)^```",
                                                   DOC.read_text(), re.S | re.M)]
    assert {r["type"] for r in replies} == set(kinds)
    for r in replies:
        assert isinstance(parse(r), kinds[r["type"]]), r
    fill = parse(next(r for r in replies if r["type"] == "fill"))
    assert (fill.price, fill.fee, fill.liquidity) == (D("30000.00"), D("0.600000"), "maker")
    bal = parse(next(r for r in replies if r["type"] == "balances"))
    assert bal["USD"] == Balance(D("98499.25"), D("1500.75"))
    (order,) = parse(next(r for r in replies if r["type"] == "open_orders"))
    assert isinstance(order, OpenOrder) and order.qty == D("0.3")
    (mine,) = parse(next(r for r in replies if r["type"] == "my_trades"))
    assert isinstance(mine, MyTrade) and (mine.trade_id, mine.fee) == (1043, D("0.6"))
    state = parse(next(r for r in replies if r["type"] == "order_status"))
    assert (state.status, state.filled, state.reason) == ("partially_filled", D("0.2"), None)
    snap = parse(next(r for r in replies if r["type"] == "book_snapshot"))
    assert snap.bids[0] == (D("30000"), D("0.5"))


def test_requests_return_typed_results_and_pushes_arrive_as_events(exchange):
    async def go():
        a = await trader(exchange, USD="10000", BTC="1")
        assert isinstance(a.account, int) and not a.admin
        b_key, b_account = await funded(exchange, BTC="1")
        b = await connect(exchange.url, b_key)              # header login: no reply
        assert isinstance(await a.subscribe("trades", "BTC-USD"), Subscribed)
        ack = await a.place("BTC-USD", "buy", D("0.02"), "1000", client_order_id="c1",
                            stp="none")
        assert isinstance(ack, Ack) and ack.qty == D("0.0200")
        mod = await a.modify("BTC-USD", ack.order_id, "1000", "0.01")
        assert isinstance(mod, Modified) and mod.leaves == D("0.0100")
        before = time.time_ns()
        sold = await b.place("BTC-USD", "sell", "0.004", type="market")
        after = time.time_ns()
        assert isinstance(sold, Ack) and sold.price is None
        got = []
        async for ev in a.events():         # market data and fills take separate paths:
            got.append(ev)                  # either may come first
            if {Fill, Trade} <= {type(e) for e in got}:
                break
        fill = next(e for e in got if isinstance(e, Fill))
        assert (fill.qty, fill.leaves, fill.client_order_id) == (D("0.004"), D("0.006"), "c1")
        taker_fill = await b.next_event(Fill)
        assert taker_fill.liquidity == "taker"
        # one trade, one id: both fills and the public trade carry it
        trade = next(e for e in got if isinstance(e, Trade))
        assert fill.trade_id == taker_fill.trade_id == trade.trade_id == trade.seq
        assert (taker_fill.seq, fill.seq) == (trade.seq, trade.seq + 1)
        # the engine's time of the group that matched, on the ack, both fills and the tape
        assert {sold.ts, taker_fill.ts, fill.ts, trade.ts} == {sold.ts}
        assert before <= sold.ts <= after
        assert before <= sold.recv_ts <= sold.ts      # the gateway had it first
        assert ack.ts <= mod.ts <= sold.ts
        orders = await a.open_orders()
        assert [(o.order_id, o.qty) for o in orders] == [(ack.order_id, D("0.0060"))]
        bal = await a.balances()
        assert set(bal) == {"USD", "BTC", "ETH"} and bal["BTC"].available == D("1.004")
        c = await a.cancel("BTC-USD", client_order_id="c1")
        assert isinstance(c, Cancelled) and c.reason == "user"
        r = await a.cancel("BTC-USD", ack.order_id)
        assert isinstance(r, Reject) and r.code == "unknown_order" and r.op == "cancel"
        assert isinstance(await a.cancel_all("BTC-USD"), CancelAllDone)
        assert isinstance(await a.unsubscribe("trades", "BTC-USD"), Unsubscribed)
        assert (await a.ping())["type"] == "pong"
        with pytest.raises(ClientError) as e:
            await a.place("BTC-USD", "buy", "0.01", "1000.001")
        assert e.value.code == "off_tick" and "tick" in e.value.message
        await a.close()
        await b.close()
    run(go())


def test_decimals_of_any_exponent_go_out_as_plain_strings(exchange):
    """str(Decimal("1E-4")) is "1E-4", which the gateway refuses: the client sends
    "0.0001" (and "30000" for Decimal("3E+4"))."""
    async def go():
        a = await trader(exchange, USD="10000", BTC="1")
        ack = await a.place("BTC-USD", "buy", D("1E-4"), D("3E+4"))
        assert isinstance(ack, Ack), ack
        assert (ack.qty, ack.price) == (D("0.0001"), D("30000.00"))
        mod = await a.modify("BTC-USD", ack.order_id, D("2.9E+4"), D("1E-4"))
        assert isinstance(mod, Modified) and mod.price == D("29000.00")
        await a.close()
    run(go())


def test_concurrent_requests_are_matched_by_req_id(exchange):
    async def go():
        a = await trader(exchange, USD="100000")
        acks = await asyncio.gather(*(a.place("ETH-USD", "buy", "0.01", f"{100 + i}.00")
                                      for i in range(50)))
        assert [x.price for x in acks] == [D(f"{100 + i}.00") for i in range(50)]
        assert len({x.order_id for x in acks}) == 50
        await a.cancel_all()
        await a.close()
    run(go())


def test_errors_timeouts_and_closed_connections_raise_client_errors(exchange):
    async def go():
        with pytest.raises(ClientError) as e:
            await connect(exchange.url, "rx_unknown")
        assert e.value.code == "auth_failed"
        with pytest.raises(ClientError) as e:
            await connect(exchange.url, "rx_unknown", login="message")
        assert e.value.code == "auth_failed"
        c = await trader(exchange)
        with pytest.raises(ClientError) as e:
            await c.request({"op": "ping"}, timeout=0)
        assert e.value.code == "timeout"
        pending = asyncio.ensure_future(c.request({"op": "balances"}, timeout=5))
        await asyncio.sleep(0)              # sent; the reply cannot be read before:
        c.ws.transport.abort()
        with pytest.raises(ClientError) as e:
            await pending
        assert e.value.code == "closed"
        with pytest.raises(ClientError) as e:
            await c.ping()
        assert e.value.code == "closed"
        assert [ev async for ev in c.events()] == []     # ends once closed
        await c.close()
    run(go())


def test_admin_transfer_is_synchronous_and_raises_on_refusal(exchange):
    key, account = run(funded(exchange))
    out = admin_transfer(exchange.url, exchange.admin_key, "deposit", account, "ETH", "2.5")
    assert (out["type"], out["account"], out["available"]) == ("deposit", account,
                                                               "2.50000000")
    out = admin_transfer(exchange.url, exchange.admin_key, "withdraw", account, "ETH", "0.5")
    assert out["available"] == "2.00000000"
    with pytest.raises(ClientError) as e:
        admin_transfer(exchange.url, exchange.admin_key, "withdraw", account, "ETH", "9")
    assert e.value.code == "insufficient_funds"
    with pytest.raises(ClientError) as e:
        admin_transfer(exchange.url, exchange.admin_key, "deposit", account, "ETH", "0.1x")
    assert e.value.code == "invalid_amount"
    with pytest.raises(ClientError) as e:
        admin_transfer(exchange.url, key, "deposit", account, "ETH", "1")
    assert e.value.code == "not_authorized"
    with pytest.raises(OSError):
        admin_transfer(f"ws://127.0.0.1:{free_port()}/ws", exchange.admin_key, "deposit",
                       account, "ETH", "1", timeout=2)
    with pytest.raises(ValueError):
        admin_transfer(exchange.url, exchange.admin_key, "steal", account, "ETH", "1")


def test_a_handshake_cut_short_or_never_answered_is_a_client_error():
    """A server that hangs up during the handshake, or never answers it, raises
    ClientError (handshake_failed / timeout), not a websockets exception."""
    async def go():
        async def hang_up(reader, writer):
            writer.close()

        async def silent(reader, writer):
            await reader.read()                  # until the client gives up and closes
            writer.close()

        codes = []
        for handler in (hang_up, silent):
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                with pytest.raises(ClientError) as e:
                    await connect(f"ws://127.0.0.1:{port}/ws", "key", timeout=0.5)
                codes.append(e.value.code)
            finally:
                server.close()
                await server.wait_closed()
        return codes
    assert asyncio.run(go()) == ["handshake_failed", "timeout"]


def test_a_list_subscribe_sends_a_checksummed_snapshot_per_symbol(exchange):
    async def go():
        a = await trader(exchange, USD="10000", BTC="1")
        try:
            ack = await a.place("BTC-USD", "buy", "0.01", "1000")
            sub = await a.subscribe("book", ["BTC-USD", "ETH-USD"])
            assert (sub.symbol, sub.symbols) == (None, ["BTC-USD", "ETH-USD"])
            snaps = {}
            while len(snaps) < 2:
                snap = await a.next_event(BookSnapshot)
                snaps[snap.symbol] = snap
            btc = snaps["BTC-USD"]
            top = ",".join(f"{p}:{q}" for p, q in btc.bids[:10]) + "|" + \
                ",".join(f"{p}:{q}" for p, q in btc.asks[:10])
            assert btc.checksum == zlib.crc32(top.encode())
            mine = (D("1000.00"), D("0.0100"))
            # market data reaches the gateway on its own path: the order may show in the
            # snapshot or in an update after it
            while mine not in btc.bids:
                up = await a.next_event(BookUpdate)
                if up.symbol == "BTC-USD" and mine in up.bids:
                    break
            await a.cancel("BTC-USD", ack.order_id)
            update = await a.next_event(BookUpdate)
            while update.symbol != "BTC-USD":         # ETH-USD's, of earlier tests
                update = await a.next_event(BookUpdate)
            assert update.bids == [(D("1000.00"), D("0.0000"))] and update.ts >= ack.ts
            assert isinstance(await a.unsubscribe("book", ["ETH-USD", "BTC-USD"]),
                              Unsubscribed)
        finally:
            await a.close()
    run(go())


class _Recorder(Requests):
    """The requests the SDK would send, without a connection."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def request(self, msg, timeout=None, raw=False):
        self.sent.append({k: v for k, v in msg.items() if k != "req_id"})


def test_requests_leave_out_what_the_protocol_defaults_to():
    r = _Recorder()

    async def go():
        await r.place("BTC-USD", "buy", "0.5", "30000.00")
        await r.place("BTC-USD", "sell", "0.01")
        await r.place("BTC-USD", "sell", "1", "30100", type="limit", tif="gtc",
                      post_only=True, stp="cancel_both", client_order_id="an-id-longer-than-8")
        await r.my_trades("BTC-USD")
        await r.my_trades("BTC-USD", from_trade_id=7, since_ts=5, limit=2)
        await r.subscribe("book", "BTC-USD", resync=True)
    asyncio.run(go())
    assert r.sent == [
        {"op": "place", "symbol": "BTC-USD", "side": "buy", "qty": "0.5", "price": "30000.00"},
        {"op": "place", "symbol": "BTC-USD", "side": "sell", "qty": "0.01", "type": "market"},
        {"op": "place", "symbol": "BTC-USD", "side": "sell", "qty": "1", "price": "30100",
         "type": "limit", "tif": "gtc", "client_order_id": "an-id-longer-than-8",
         "stp": "cancel_both", "post_only": True},
        {"op": "my_trades", "symbol": "BTC-USD"},
        {"op": "my_trades", "symbol": "BTC-USD", "from_trade_id": 7, "since_ts": 5, "limit": 2},
        {"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "resync": True},
    ]


def test_a_depth_10_book_keeps_the_ten_best_bids_as_orders_come_and_go(exchange):
    """docs/protocol.md section 5, "Depth", on ETH-BTC (no other test here trades it)."""
    async def go():
        a = await trader(exchange, BTC="1")
        d = await Raw.open(exchange.url)
        try:
            reply = await d.ask({"op": "subscribe", "channel": "book", "symbol": "ETH-BTC",
                                 "depth": 10, "req_id": 1})
            assert reply == {"type": "subscribed", "channel": "book", "symbol": "ETH-BTC",
                             "depth": 10, "req_id": 1}
            snap = await d.recv()
            assert snap["type"] == "book_snapshot" and not snap["bids"] and not snap["asks"]
            holder = Holder(snap)
            acks = [await a.place("ETH-BTC", "buy", "0.01", f"0.050{i:02d}") for i in range(12)]
            await a.cancel("ETH-BTC", acks[-1].order_id)      # the best bid leaves
            # 0.05000 and 0.05001 fell out as better bids came; 0.05001 is back once
            # 0.05011 leaves: the holder must end with exactly 0.05001 ... 0.05010
            want = {f"0.050{i:02d}": "0.010" for i in range(1, 11)}
            while holder.bids != want:
                m = await d.recv()
                assert m["type"] == "book_update"
                holder.apply(m)
                assert len(holder.bids) <= 10 and holder.checksum() == m["checksum"]
        finally:
            await d.close()
            await a.close()
    run(go())
