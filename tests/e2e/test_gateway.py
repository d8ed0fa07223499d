"""End to end through ``ringex run`` (two gateways): trading, market data, cancel-on-
disconnect, authentication, isolation between accounts, admin transfers, audit.

Each test works in its own price zone or symbol and cancels what it leaves resting, so
the tests share one exchange per module.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from decimal import Decimal

from ringex.client import (
    Ack, BookSnapshot, BookUpdate, CancelAllDone, Cancelled, ClientError, Fill, Reject,
    Trade, Transfer, connect,
)
from ringex.storage.stores import open_repository
from ringex.records import AuditKind
from tests.e2e.live_exchange import LiveExchange
from tests.e2e.live_fixtures import Raw, funded, run, trader

D = Decimal


def _disconnects(exchange, account: int) -> int:
    """DISCONNECT audit records of ``account`` stored so far."""
    with sqlite3.connect(f"file:{exchange.db_url}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM audit WHERE account = ? AND kind = ?",
                          (account, int(AuditKind.DISCONNECT))).fetchone()[0]


async def _until(condition, timeout: float) -> bool:
    """Wait for ``condition()`` to hold (polled), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_two_accounts_trade_and_both_see_acks_and_fills_at_once(exchange):
    async def go():
        alice = await trader(exchange, USD="100000")
        bob = await trader(exchange, BTC="10")
        admin = await connect(exchange.url, exchange.admin_key)
        fees_before = (await admin.balances())["USD"]
        ack = await alice.place("BTC-USD", "buy", "0.5", "30000", client_order_id="a1")
        assert isinstance(ack, Ack) and (ack.price, ack.qty, ack.client_order_id) == (
            D("30000.00"), D("0.5000"), "a1")
        t0 = time.perf_counter()
        ack_b = await bob.place("BTC-USD", "sell", "0.2", "29000")
        assert isinstance(ack_b, Ack)
        fill_a = await alice.next_event(Fill, timeout=5)
        fill_b = await bob.next_event(Fill, timeout=5)
        assert time.perf_counter() - t0 < 2.0        # pushed as they happen, not batched
        assert (fill_a.order_id, fill_a.client_order_id, fill_a.price, fill_a.qty,
                fill_a.leaves, fill_a.liquidity, fill_a.fee) == (
            ack.order_id, "a1", D("30000.00"), D("0.2000"), D("0.3000"), "maker", D("0.6"))
        assert (fill_b.order_id, fill_b.side, fill_b.price, fill_b.qty, fill_b.leaves,
                fill_b.liquidity, fill_b.fee) == (
            ack_b.order_id, "sell", D("30000.00"), D("0.2000"), D("0"), "taker", D("3"))
        # exact balances: alice locks 0.3 x 30000 + the worst taker fee on it (5 bp)
        a, b = await alice.balances(), await bob.balances()
        assert (a["USD"].available, a["USD"].locked, a["BTC"].available) == (
            D("84994.9"), D("9004.5"), D("0.2"))
        assert (b["BTC"].available, b["BTC"].locked, b["USD"].available) == (
            D("9.8"), D("0"), D("5997"))
        fees = (await admin.balances())["USD"]
        assert fees.available - fees_before.available == D("3.6")
        total = a["USD"].available + a["USD"].locked + b["USD"].available + D("3.6")
        assert total == D("100000")                  # nothing created or lost
        done = await alice.cancel_all()
        assert isinstance(done, CancelAllDone)
        c = await alice.next_event(Cancelled)
        assert (c.order_id, c.qty, c.reason) == (ack.order_id, D("0.3000"), "cancel_all")
        assert (await alice.balances())["USD"].locked == 0
        for cl in (alice, bob, admin):
            await cl.close()
    run(go())


def _apply(book: dict, levels) -> None:
    for price, qty in levels:
        if qty:
            book[price] = qty
        else:
            book.pop(price, None)


def test_book_subscribers_get_a_snapshot_then_updates_in_sequence(exchange):
    async def go():
        maker = await trader(exchange, USD="100000", ETH="100")
        taker = await trader(exchange, USD="100000", ETH="100")
        for side, price in (("buy", "1800"), ("buy", "1799.5"), ("sell", "1801"),
                            ("sell", "1802")):
            assert isinstance(await maker.place("ETH-USD", side, "2", price), Ack)
        watcher = await connect(exchange.url)            # no key: public data only
        await watcher.subscribe("book", "ETH-USD")
        await watcher.subscribe("trades", "ETH-USD")
        snap = await watcher.next_event(BookSnapshot)
        assert snap.bids == [(D("1800.00"), D("2.000")), (D("1799.50"), D("2.000"))]
        assert snap.asks == [(D("1801.00"), D("2.000")), (D("1802.00"), D("2.000"))]
        bids, asks = dict(snap.bids), dict(snap.asks)
        last_book, last_trade = snap.seq, None
        # activity: a sweep through both asks, a modify, a cancel
        await taker.place("ETH-USD", "buy", "3", "1802")
        orders = {(o.side, o.price): o for o in await maker.open_orders()}
        await maker.modify("ETH-USD", orders[("buy", D("1800.00"))].order_id, "1800", "1")
        await maker.cancel("ETH-USD", orders[("buy", D("1799.50"))].order_id)
        # the maker's remaining book, as the engine has it
        deadline = time.monotonic() + 5
        want_bids, want_asks = {D("1800.00"): D("1.000")}, {D("1802.00"): D("1.000")}
        trades = []
        while (bids, asks) != (want_bids, want_asks) or len(trades) < 2:
            ev = await watcher.next_event((BookUpdate, Trade),
                                          timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(ev, BookUpdate):
                assert ev.prev_seq == last_book and ev.seq > last_book   # no gap, in order
                last_book = ev.seq
                _apply(bids, ev.bids)
                _apply(asks, ev.asks)
            else:
                assert last_trade is None or ev.prev_seq == last_trade
                last_trade = ev.seq
                trades.append(ev)
        assert [(t.price, t.qty, t.taker_side) for t in trades] == [
            (D("1801.00"), D("2.000"), "buy"), (D("1802.00"), D("1.000"), "buy")]
        # a late subscriber's snapshot, plus the updates after it, is the same book (its
        # gateway may be the other one, whose mirror can be a batch behind this one's)
        late = await connect(exchange.url)
        await late.subscribe("book", "ETH-USD")
        snap2 = await late.next_event(BookSnapshot)
        late_bids, late_asks, late_seq = dict(snap2.bids), dict(snap2.asks), snap2.seq
        while late_seq < last_book:
            ev = await late.next_event(BookUpdate, timeout=5)
            assert ev.prev_seq == late_seq
            late_seq = ev.seq
            _apply(late_bids, ev.bids)
            _apply(late_asks, ev.asks)
        assert (late_bids, late_asks) == (bids, asks) and late_seq == last_book
        await maker.cancel_all()
        while bids or asks:
            ev = await watcher.next_event(BookUpdate, timeout=5)
            assert ev.prev_seq == last_book
            last_book = ev.seq
            _apply(bids, ev.bids)
            _apply(asks, ev.asks)
        for cl in (maker, taker, watcher, late):
            await cl.close()
    run(go())


def test_a_disconnected_session_that_asked_has_its_orders_cancelled(exchange):
    async def go():
        key, account = await funded(exchange, USD="10000")
        keeper = await connect(exchange.url, key)                    # no option
        quitter = await connect(exchange.url, key, cancel_on_disconnect=True)
        quitter2 = await connect(exchange.url, key, login="message", cancel_on_disconnect=True)
        kept = await keeper.place("BTC-USD", "buy", "0.01", "101")
        gone1 = await quitter.place("BTC-USD", "buy", "0.01", "102")
        gone2 = await quitter2.place("BTC-USD", "buy", "0.01", "103")
        assert all(isinstance(x, Ack) for x in (kept, gone1, gone2))
        await quitter.close()
        quitter2.ws.transport.abort()                 # no closing handshake at all
        await quitter2.close()
        deadline = time.monotonic() + 5
        while True:
            live = {o.order_id for o in await keeper.open_orders()}
            if live == {kept.order_id} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert live == {kept.order_id}                 # only the quitters' orders went
        # a connection without the option leaves its orders when it goes: once the
        # gateway has handled all three disconnects (their audit records are stored)
        await keeper.close()
        assert await _until(lambda: _disconnects(exchange, account) == 3, 10)
        again = await connect(exchange.url, key)
        assert {o.order_id for o in await again.open_orders()} == {kept.order_id}
        await again.cancel_all()
        await again.close()
    run(go())


def test_unauthenticated_connections_get_only_public_market_data(exchange):
    async def go():
        anon = await Raw.open(exchange.url)
        sub = await anon.ask({"op": "subscribe", "channel": "trades", "symbol": "BTC-USD",
                              "req_id": 1})
        assert sub["type"] == "subscribed"
        for i, op in enumerate(({"op": "place", "symbol": "BTC-USD", "side": "buy",
                                 "price": "1", "qty": "1"},
                                {"op": "balances"}, {"op": "open_orders"},
                                {"op": "cancel", "symbol": "BTC-USD", "order_id": 1},
                                {"op": "cancel_all"},
                                {"op": "deposit", "account": 1, "asset": "USD",
                                 "amount": "1"})):
            reply = await anon.ask({**op, "req_id": 10 + i})
            assert (reply["type"], reply["code"]) == ("error", "not_authenticated"), reply
        a = await trader(exchange, USD="1000")
        b = await trader(exchange, BTC="1")
        await a.place("BTC-USD", "buy", "0.01", "150")
        await b.place("BTC-USD", "sell", "0.01", "150")
        seen = await anon.quiet(0.5)
        assert [m["type"] for m in seen] == ["trade"]
        assert seen[0]["price"] == "150.00" and "account" not in seen[0]
        for cl in (a, b):
            await cl.close()
        await anon.close()
    run(go())


def test_one_account_never_sees_or_touches_another_accounts_orders(exchange):
    async def go():
        alice = await trader(exchange, USD="1000", BTC="1")
        bob = await trader(exchange, USD="1000")
        mine = await alice.place("BTC-USD", "buy", "0.01", "201", client_order_id="x1")
        await alice.place("BTC-USD", "sell", "0.01", "90000", client_order_id="x2")
        r = await bob.cancel("BTC-USD", mine.order_id)
        assert isinstance(r, Reject) and r.code == "unknown_order"
        r = await bob.cancel("BTC-USD", client_order_id="x1")
        assert isinstance(r, Reject) and r.code == "unknown_order"
        r = await bob.modify("BTC-USD", mine.order_id, "202", "0.01")
        assert isinstance(r, Reject) and r.code == "unknown_order"
        assert await bob.open_orders() == []
        assert isinstance(await bob.cancel_all(), CancelAllDone)
        try:
            await bob.request({"op": "balances", "account": alice.account})
            raise AssertionError("an account field must be refused")
        except ClientError as e:
            assert e.code == "unknown_field"
        bal = await bob.balances()
        assert (bal["USD"].available, bal["BTC"].available) == (D("1000"), D("0"))
        assert {o.client_order_id for o in await alice.open_orders()} == {"x1", "x2"}
        assert bob.pending_events() == []              # nothing of alice's reached bob
        await alice.cancel_all()
        for cl in (alice, bob):
            await cl.close()
    run(go())


def test_admin_deposits_and_withdrawals(exchange):
    async def go():
        key, account = await funded(exchange)
        admin = await connect(exchange.url, exchange.admin_key, login="message")
        assert admin.admin and admin.account == 0
        dep = await admin.deposit(account, "BTC", "1.23456789")
        assert isinstance(dep, Transfer) and (dep.account, dep.amount, dep.available) == (
            account, D("1.23456789"), D("1.23456789"))
        wd = await admin.withdraw(account, "BTC", "0.23456789")
        assert isinstance(wd, Transfer) and wd.available == D("1")
        r = await admin.withdraw(account, "BTC", "2")
        assert isinstance(r, Reject) and (r.code, r.op) == ("insufficient_funds", "withdraw")
        r = await admin.place("BTC-USD", "buy", "0.01", "100")
        assert isinstance(r, Reject) and r.code == "unknown_account"   # the house never trades
        user = await connect(exchange.url, key)
        try:
            await user.deposit(account, "BTC", "1")
            raise AssertionError("a user must not deposit")
        except ClientError as e:
            assert e.code == "not_authorized"
        assert (await user.balances())["BTC"].available == D("1")
        for cl in (admin, user):
            await cl.close()
    run(go())


def test_unknown_keys_are_refused(exchange):
    async def go():
        try:
            await connect(exchange.url, "rx_not_a_key")
            raise AssertionError("the handshake must fail")
        except ClientError as e:
            assert e.code == "auth_failed"
        raw = await Raw.open(exchange.url)
        for i in range(3):
            reply = await raw.ask({"op": "login", "api_key": "nope", "req_id": i})
            assert reply["code"] == "auth_failed"
        await raw.quiet(0.3)
        assert raw.ws.close_code == 1008 and raw.ws.close_reason == "too many failed logins"
    run(go())


def test_audit_records_reach_the_database(exchange):
    async def go():
        key, account = await funded(exchange)
        c = await connect(exchange.url, key)
        await c.ping()
        await c.close()
        try:
            await connect(exchange.url, "rx_wrong")
        except ClientError:
            pass
    run(go())
    deadline = time.monotonic() + 10
    with open_repository(exchange.db_url) as repo:
        while True:
            rows = repo._fetch("SELECT kind, account, producer, addr FROM audit")
            kinds = {r["kind"] for r in rows}
            if {AuditKind.CONNECT, AuditKind.LOGIN, AuditKind.AUTH_FAILED,
                    AuditKind.DISCONNECT} <= kinds or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert {AuditKind.CONNECT, AuditKind.LOGIN, AuditKind.AUTH_FAILED,
            AuditKind.DISCONNECT} <= kinds
    assert {r["producer"] for r in rows} <= {1, 2}
    assert all(r["addr"] == "127.0.0.1" for r in rows)


def test_shutdown_closes_connections_with_going_away():
    ex = LiveExchange(gateways=1).start()
    try:
        async def go():
            c = await trader(ex, USD="100")
            await c.place("BTC-USD", "buy", "0.01", "100")
            stopper = asyncio.get_running_loop().run_in_executor(None, ex.close)
            events = [ev async for ev in c.events()]
            code = await stopper
            return c.close_code, c.close_reason, events, code
        close_code, reason, events, code = run(go(), 120)
        assert (close_code, reason) == (1001, "gateway shutting down")
        assert code == 0 and not ex.leftovers, ex.log_tail()
    finally:
        ex.close()


def test_fills_cross_gateways(exchange):
    """Connections land on either gateway (SO_REUSEPORT); the audit records tell which.
    A maker on one gateway and a taker on the other both get their fills."""
    async def go():
        clients = [await trader(exchange, USD="1000", BTC="1") for _ in range(12)]
        ports = {c.ws.local_address[1]: c for c in clients}
        deadline = time.monotonic() + 10
        with open_repository(exchange.db_url) as repo:
            while True:
                rows = repo._fetch("SELECT producer, port FROM audit WHERE kind = ?",
                                   (int(AuditKind.LOGIN),))
                where = {r["port"]: r["producer"] for r in rows if r["port"] in ports}
                if len(where) == len(ports) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        by_gateway = {}
        for port, producer in where.items():
            by_gateway.setdefault(producer, []).append(ports[port])
        assert set(by_gateway) == {1, 2}, "12 connections all went to one gateway"
        maker, taker = by_gateway[1][0], by_gateway[2][0]
        ack = await maker.place("BTC-USD", "sell", "0.01", "77777")
        await taker.place("BTC-USD", "buy", "0.01", "77777")
        f_maker = await maker.next_event(Fill, timeout=5)
        f_taker = await taker.next_event(Fill, timeout=5)
        assert (f_maker.order_id, f_maker.liquidity) == (ack.order_id, "maker")
        assert f_taker.liquidity == "taker" and f_taker.price == D("77777.00")
        for c in clients:
            await c.close()
    run(go())


def test_a_fragmented_message_is_one_request(exchange):
    async def go():
        raw = await Raw.open(exchange.url)
        await raw.ws.send(['{"op": "pi', 'ng", "req', '_id": 5}'])
        assert await raw.recv() == {"type": "pong", "req_id": 5}
        await raw.close()
    run(go())


def test_the_eventfd_and_busy_wait_strategies_serve_requests():
    for wait in ("eventfd", "busy"):
        with LiveExchange(gateways=1, wait=wait) as ex:
            async def go():
                a = await trader(ex, USD="100")
                for _ in range(20):
                    assert isinstance(await a.place("BTC-USD", "buy", "0.01", "100"), Ack)
                await asyncio.sleep(0.3)                        # idle: the waits block
                assert isinstance(await a.cancel_all(), CancelAllDone)
                watcher = await connect(ex.url)
                await watcher.subscribe("book", "BTC-USD")
                assert (await watcher.next_event(BookSnapshot)).bids == []
                await a.close()
                await watcher.close()
            run(go())
            assert ex.close() == 0 and not ex.leftovers, ex.log_tail()


def test_gateways_exit_when_the_supervisor_dies():
    ex = LiveExchange(gateways=2).start()
    try:
        from tests.e2e.procs import descendants
        kids = descendants(ex.proc.pid)
        assert len(kids) >= 4                       # writer, engine, 2 gateways (+ tracker)
        os.kill(ex.proc.pid, signal.SIGKILL)
        ex.proc.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alive = [p for p in kids if os.path.exists(f"/proc/{p}")
                     and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
            if not alive:
                break
            time.sleep(0.1)
        assert not alive, f"still running after the supervisor died: {alive}"
    finally:
        ex.close()                                  # unlinks the rings nobody was left to
