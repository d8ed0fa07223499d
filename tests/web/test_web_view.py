"""The web view (ringex/web/, docs/web.md) in a real browser against a live exchange.

Python clients place orders and make trades over the WebSocket; the tests wait (Playwright
``expect`` and ``wait_for_function``) until the page shows what the engine says: the same
book levels as a ``book_snapshot`` fetched here, the trade in the tape and the chart, the
account's balances and open orders, and the gateway's own refusal messages.
"""
from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import pytest

from ringex.client import Ack, Client, ClientError, connect
from tests.e2e.live_fixtures import Raw, funded, trader
from tests.web.conftest import WAIT_MS

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect
except ImportError:             # the playwright fixture skips (or fails, CI=true) saying so
    pass

READ_LADDER = """() => {
  const read = (sel) => [...document.querySelectorAll(sel)]
    .map((tr) => [...tr.cells].map((td) => td.textContent));
  return { bids: read("#bids tr"), asks: read("#asks tr").reverse() };
}"""


def shown_ladder(view) -> dict:
    """The ladder as shown: {bids, asks: [[price, qty, cumulative], ...] best first}."""
    return view.page.evaluate(READ_LADDER)


def levels(ladder: dict) -> dict:
    return {side: [row[:2] for row in rows] for side, rows in ladder.items()}


LADDER_IS = f"""(want) => {{
  const shown = ({READ_LADDER})();
  const two = (rows) => rows.map((r) => r.slice(0, 2));
  const now = {{ bids: two(shown.bids), asks: two(shown.asks) }};
  return JSON.stringify(now) === JSON.stringify(want);
}}"""


def wait_ladder(view, book: dict) -> None:
    """Wait until the page's ladder shows exactly ``book``'s levels (price, qty)."""
    try:
        view.page.wait_for_function(LADDER_IS, arg=book, timeout=WAIT_MS)
    except PlaywrightTimeout:
        pass                                  # the assertion below shows the difference
    assert levels(shown_ladder(view)) == book


async def engine_book(ex, symbol: str, until=lambda book: True, timeout: float = 20.0) -> dict:
    """The gateway's ``book_snapshot`` of ``symbol`` ({bids, asks} as sent), fetched on a
    fresh connection, again until ``until(book)`` (the gateway's book follows the engine's
    market data a moment after the acks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        raw = await Raw.open(ex.url)
        try:
            await raw.send({"op": "subscribe", "channel": "book", "symbol": symbol})
            while (msg := await raw.recv())["type"] != "book_snapshot":
                pass
        finally:
            await raw.close()
        book = {"bids": msg["bids"], "asks": msg["asks"]}
        if until(book):
            return book
        assert loop.time() < deadline, f"the book never got there: {book}"
        await asyncio.sleep(0.05)


def prices(book: dict, side: str) -> set[str]:
    return {p for p, _ in book[side]}


@pytest.fixture
def clients(aio, exchange):
    """Make logged-in clients (``clients(USD="1000")``); afterwards each cancels its
    orders and closes, so every test starts from the book it found."""
    made = []

    def make(key: str | None = None, **amounts) -> Client:
        """A new funded account's client, or another connection of ``key``'s account."""
        c = aio.run(trader_with_key(exchange, key) if key else trader(exchange, **amounts))
        made.append(c)
        return c
    yield make
    for c in made:
        aio.run(c.cancel_all())
        aio.run(c.close())


async def trader_with_key(ex, key: str) -> Client:
    """Another connection of the account of ``key``."""
    return await connect(ex.url, key, login="message")


def place(aio, client, *args, **kw) -> Ack:
    res = aio.run(client.place(*args, **kw))
    assert isinstance(res, Ack), res
    return res


# ---------------------------------------------------------------------- page and assets
def test_page_loads_without_console_errors(view, exchange):
    page = view.page
    view.open()
    config = json.loads(urllib.request.urlopen(exchange.http_url + "config.json").read())
    names = [s["symbol"] for s in config["symbols"]]
    expect(page.locator("#symbol option")).to_have_text(names)
    expect(page.locator("#conn")).to_have_text("live")
    # the chart library loaded and drew; every symbol's book arrived
    expect(page.locator("#price-chart canvas").first).to_be_attached()
    for name in names:
        page.wait_for_function("(s) => window.ringexView.book(s).seq !== null", arg=name)
        page.select_option("#symbol", name)
        expect(page.locator("#ladder")).to_have_attribute("data-seq", re.compile(r"\d+"))
        assert page.evaluate("location.hash") == f"#{name}"
    # the attribution the library's NOTICE asks for, and the files beside it
    link = page.locator("footer a[href='https://www.tradingview.com/']")
    expect(link).to_be_visible()
    expect(page.locator("footer")).to_contain_text("Copyright (c) 2023 TradingView, Inc.")
    for name, text in (("NOTICE", b"TradingView, Inc."), ("LICENSE", b"Apache License")):
        with urllib.request.urlopen(exchange.http_url + f"web/vendor/{name}") as r:
            assert r.status == 200 and text in r.read()
    assert view.errors == []


MODEL_CHECKS = """async () => {
  const m = await import("./web/model.js");
  const out = {};
  out.fixed = [m.formatFixed(m.parseFixed("0.0500").n + m.parseFixed("1.2000").n, 4),
               m.formatFixed(-5n, 3), m.decimalsOf("30000.00"), m.decimalsOf("7")];
  const b = new m.Book();
  out.before = b.update({ prev_seq: 0, seq: 1, bids: [], asks: [] });
  b.snapshot({ seq: 10, bids: [["2.00", "1.0"], ["3.00", "0.5"]], asks: [["4.00", "2.0"]] });
  out.follow = b.update({ prev_seq: 10, seq: 12, bids: [["2.00", "0.0"]], asks: [] });
  out.gap = b.update({ prev_seq: 11, seq: 15, bids: [["1.00", "1.0"]], asks: [] });
  out.whileResyncing = b.update({ prev_seq: 12, seq: 16, bids: [["1.00", "1.0"]], asks: [] });
  out.bids = b.levels("bids");
  b.snapshot({ seq: 20, bids: [["1.50", "0.3"]], asks: [] });
  out.resynced = [b.resyncing, b.levels("bids")];
  const c = new m.Candles(60);
  c.add(10, 1, 120_000); c.add(12, 1, 150_000); c.add(9, 1, 179_999); c.add(11, 2, 180_000);
  c.add(13, 1, 100_000);             // a clock that went back: stays in the last candle
  out.candles = c.bars;
  return out;
}"""


def test_model(view):
    """The page's data module alone: exact sums, the book's prev_seq rule, candles."""
    view.open()
    out = view.page.evaluate(MODEL_CHECKS)
    assert out["fixed"] == ["1.2500", "-0.005", 2, 0]
    assert out["before"] is False                         # no snapshot yet: ignored
    assert out["follow"] is True and out["gap"] == "gap" and out["whileResyncing"] is False
    assert out["bids"] == [["3.00", "0.5", "0.5"]]        # the gap's level not applied
    assert out["resynced"] == [False, [["1.50", "0.3", "0.3"]]]
    assert out["candles"] == [
        {"time": 120, "open": 10, "high": 12, "low": 9, "close": 9, "volume": 3},
        {"time": 180, "open": 11, "high": 13, "low": 11, "close": 13, "volume": 3}]


# ---------------------------------------------------------------------- the book
def test_ladder_matches_engine_book(view, exchange, aio, clients):
    symbol = "BTC-USD"
    view.open(symbol)
    maker = clients(USD="100000", BTC="5")
    place(aio, maker, symbol, "buy", "0.5", "29990.00")
    place(aio, maker, symbol, "buy", "0.25", "29990.00")
    place(aio, maker, symbol, "buy", "1.2", "29980.50")
    place(aio, maker, symbol, "sell", "0.75", "30010.00")
    far = place(aio, maker, symbol, "sell", "0.1", "30025.25")
    ours = {("bids", "29990.00"), ("bids", "29980.50"), ("asks", "30010.00"),
            ("asks", "30025.25")}
    book = aio.run(engine_book(exchange, symbol,
                               lambda b: all(p in prices(b, s) for s, p in ours)))
    wait_ladder(view, book)                              # built from book_updates
    shown = shown_ladder(view)
    bids = dict((p, (q, c)) for p, q, c in shown["bids"])
    assert bids["29990.00"][0] == "0.7500"               # two orders, one level
    # cumulative: each level adds its quantity to the better ones
    for rows in shown.values():
        total = 0
        for _, qty, cum in rows:
            total += round(float(qty) * 10_000)
            assert round(float(cum) * 10_000) == total

    aio.run(maker.cancel(symbol, far.order_id))
    book = aio.run(engine_book(exchange, symbol, lambda b: "30025.25" not in prices(b, "asks")))
    wait_ladder(view, book)
    assert "30025.25" not in [p for p, _ in levels(shown_ladder(view))["asks"]]

    view.page.reload()                                   # now from a book_snapshot
    view.open(symbol)
    wait_ladder(view, book)


def test_book_gap_resyncs(view, exchange, aio, clients):
    """A book the page no longer matches the server's: the next real update does not
    follow on (prev_seq), the page asks for a snapshot with "resync": true and shows the
    engine's book again."""
    symbol = "BTC-USD"
    view.open(symbol)
    # a level the server never sent, as an update that follows on: applied and shown
    view.hook("v.receive({type: 'book_update', symbol: arg, seq: v.book(arg).seq + 1, "
              "prev_seq: v.book(arg).seq, bids: [['1.00', '9.0000']], asks: []})", symbol)
    expect(view.page.locator("#bids tr[data-price='1.00']")).to_have_count(1)
    maker = clients(USD="100000")
    place(aio, maker, symbol, "buy", "0.3", "29000.00")  # the server's next update: a gap
    book = aio.run(engine_book(exchange, symbol, lambda b: "29000.00" in prices(b, "bids")))
    wait_ladder(view, book)
    assert "1.00" not in prices(levels(shown_ladder(view)), "bids")
    counters = view.hook("v.counters")
    assert counters["bookGaps"] >= 1 and counters["resyncs"] >= 1, counters
    resyncs = [json.loads(f) for f in view.sent if '"resync"' in f]
    assert resyncs and all(m["op"] == "subscribe" and m["channel"] == "book"
                           and m["symbol"] == symbol and m["resync"] is True
                           for m in resyncs), resyncs


# ---------------------------------------------------------------------- trades
def test_trade_appears_in_tape_and_chart(view, aio, clients):
    symbol = "ETH-USD"
    view.open(symbol)
    page = view.page
    maker = clients(ETH="5")
    taker = clients(USD="100000")
    place(aio, maker, symbol, "sell", "0.5", "1834.56")
    place(aio, taker, symbol, "buy", "0.2", "1834.56", tif="ioc")

    first = page.locator("#tape tbody tr").first
    expect(first.locator("td").nth(1)).to_have_text("1834.56")
    expect(first.locator("td").nth(2)).to_have_text("0.200")
    expect(first.locator("td").nth(3)).to_have_text("buy")
    chart = page.locator("#price-chart")
    expect(chart).to_have_attribute("data-last-close", "1834.56")
    candles = view.hook("v.chartCandles()")
    assert candles and candles[-1]["close"] == 1834.56

    aio.run(maker.cancel_all(symbol))                    # the rest of the ask
    place(aio, taker, symbol, "buy", "0.1", "1840.00")   # a bid ...
    place(aio, maker, symbol, "sell", "0.1", "1840.00", tif="ioc")   # ... taken by a sell
    expect(first.locator("td").nth(1)).to_have_text("1840.00")
    expect(first.locator("td").nth(3)).to_have_text("sell")
    expect(page.locator("#tape tbody tr")).to_have_count(2)
    expect(chart).to_have_attribute("data-last-close", "1840")
    last = view.hook("v.chartCandles()")[-1]
    assert last["high"] >= 1840 and last["low"] <= 1834.56 and last["close"] == 1840
    # the page's own record of the trades (bucketed by receive time: no ts on the wire)
    trades = view.hook("v.trades(arg)", symbol)
    assert [(t["price"], t["qty"], t["side"]) for t in trades] == [
        ("1834.56", "0.200", "buy"), ("1840.00", "0.100", "sell")]


# ---------------------------------------------------------------------- the account
def test_login_shows_balances(view, exchange, aio, clients):
    view.open()
    page = view.page
    key, account = aio.run(funded(exchange, USD="12345.67", BTC="0.5"))

    async def refused_login():
        raw = await Raw.open(exchange.url)
        try:
            return await raw.ask({"op": "login", "api_key": "rk_not_a_key", "req_id": 1})
        finally:
            await raw.close()
    refusal = aio.run(refused_login())
    assert refusal["type"] == "error" and refusal["code"] == "auth_failed"
    page.fill("#api-key", "rk_not_a_key")
    page.click("#login-btn")
    expect(page.locator("#login-msg")).to_have_text(
        f"{refusal['code']}: {refusal['message']}")
    expect(page.locator("#account-body")).to_be_hidden()

    view.login(key, account)
    balances = aio.run(clients(key).request({"op": "balances"}, raw=True))["balances"]
    assert balances["USD"]["available"] == "12345.670000"
    for asset, b in balances.items():
        row = page.locator(f"#balances tr[data-asset='{asset}'] td")
        expect(row).to_have_text([asset, b["available"], b["locked"]])

    page.click("#logout-btn")                 # a fresh connection, not logged in
    expect(page.locator("#account-body")).to_be_hidden()
    expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    assert view.hook("v.account") is None
    view.login(key, account)
    expect(page.locator("#balances tr[data-asset='USD'] td").nth(1)).to_have_text(
        "12345.670000")


def order_row(page, order_id: int):
    return page.locator(f"#orders tr[data-order-id='{order_id}']")


def test_place_modify_cancel_from_page(view, exchange, aio, clients):
    symbol = "BTC-USD"
    view.open(symbol)
    page = view.page
    key, account = aio.run(funded(exchange, USD="10000"))
    view.login(key, account)
    other = clients(key)                                 # the engine's view of the account

    def engine_orders():
        return aio.run(other.request({"op": "open_orders"}, raw=True))["orders"]

    page.check("input[name=side][value=buy]")
    page.select_option("#order-type", "limit")
    page.select_option("#order-tif", "gtc")
    page.fill("#order-price", "25000.00")
    page.fill("#order-qty", "0.01")
    page.click("#place-btn")
    msg = page.locator("#order-msg")
    expect(msg).to_have_attribute("data-code", "ok")
    order_id = int(re.search(r"order (\d+) placed", msg.inner_text()).group(1))
    row = order_row(page, order_id)
    expect(row.locator("td")).to_have_text(
        [symbol, str(order_id), "buy", "25000.00", "0.0100", re.compile("modify")])
    [o] = engine_orders()
    assert (o["order_id"], o["side"], o["price"], o["qty"]) == (
        order_id, "buy", "25000.00", "0.0100")
    usd = page.locator("#balances tr[data-asset='USD'] td")
    # locked: price x qty and the largest fee it may pay (taker, 5 bp)
    expect(usd).to_have_text(["USD", "9749.875000", "250.125000"])

    row.locator("button.modify").click()
    page.fill("#modify-qty", "0.005")
    page.click("#modify-btn")
    expect(msg).to_have_text(f"order {order_id} modified: 0.0050 at 25000.00")
    expect(row.locator("td").nth(4)).to_have_text("0.0050")
    [o] = engine_orders()
    assert (o["order_id"], o["qty"]) == (order_id, "0.0050")
    expect(usd).to_have_text(["USD", "9874.937500", "125.062500"])

    row.locator("button.cancel").click()
    expect(msg).to_have_text(f"order {order_id} cancelled (0.0050 open)")
    expect(row).to_have_count(0)
    assert engine_orders() == []
    expect(usd).to_have_text(["USD", "10000.000000", "0.000000"])


def test_post_only_and_market_order_from_page(view, exchange, aio, clients):
    symbol = "BTC-USD"
    view.open(symbol)
    page = view.page
    maker = clients(BTC="1")
    place(aio, maker, symbol, "sell", "0.02", "30500.00")
    aio.run(engine_book(exchange, symbol, lambda b: "30500.00" in prices(b, "asks")))
    key, account = aio.run(funded(exchange, USD="10000"))
    view.login(key, account)

    activity = page.locator("#activity li").first
    page.check("input[name=side][value=buy]")
    page.fill("#order-price", "30500.00")               # post-only, would take: cancelled
    page.fill("#order-qty", "0.01")
    page.check("#order-post-only")
    page.click("#place-btn")
    expect(activity).to_contain_text(
        re.compile(r"order \d+ cancelled: buy 0\.0100 BTC-USD at 30500\.00 \(post_only\)"))
    expect(page.locator("#orders tbody tr")).to_have_count(0)

    page.uncheck("#order-post-only")
    page.select_option("#order-type", "market")
    expect(page.locator("#order-price")).to_be_disabled()
    expect(page.locator("#order-tif")).to_have_value("ioc")
    page.fill("#order-qty", "0.01")
    page.click("#place-btn")
    expect(page.locator("#order-msg")).to_have_text(
        re.compile(r"order \d+ placed: buy 0\.0100 BTC-USD at market"))
    expect(page.locator("#tape tbody tr").first.locator("td").nth(1)).to_have_text("30500.00")
    expect(activity).to_contain_text(re.compile(
        r"order \d+ filled: buy 0\.0100 BTC-USD at 30500\.00 \(taker, fee 0\.152500 USD\), "
        r"0\.0000 open"))
    # filled at once: gone from the open orders, the coins in the balances
    # (305.00 USD + the 5 bp taker fee, 0.1525)
    expect(page.locator("#orders tbody tr")).to_have_count(0)
    expect(page.locator("#balances tr[data-asset='BTC'] td")).to_have_text(
        ["BTC", "0.01000000", "0.00000000"])
    expect(page.locator("#balances tr[data-asset='USD'] td")).to_have_text(
        ["USD", "9694.847500", "0.000000"])


@pytest.mark.parametrize("price, qty", [
    ("30000.005", "0.01"),       # off_tick
    ("30000.00", "0"),           # invalid_qty
    ("30000.00", "0.00001"),     # off_lot
    ("", "0.01"),                # missing_field: a limit order without a price
    ("30000.00", "100"),         # insufficient_funds: the engine's reject
], ids=["off_tick", "zero_qty", "off_lot", "no_price", "insufficient_funds"])
def test_refused_order_shows_server_message(view, exchange, aio, clients, price, qty):
    symbol = "BTC-USD"
    view.open(symbol)
    page = view.page
    key, account = aio.run(funded(exchange, USD="1000"))
    view.login(key, account)
    msg = {"op": "place", "symbol": symbol, "type": "limit", "side": "buy", "qty": qty,
           "tif": "gtc"}
    if price:
        msg["price"] = price
    try:
        reply = aio.run(clients(key).request(msg, raw=True))   # the engine's reject
    except ClientError as exc:
        reply = exc.reply                                       # the gateway's error
    assert reply["type"] in ("error", "reject"), reply

    page.fill("#order-price", price)
    page.fill("#order-qty", qty)
    page.click("#place-btn")
    shown = page.locator("#order-msg")
    expect(shown).to_have_text(f"{reply['code']}: {reply['message']}")
    expect(shown).to_have_attribute("data-code", reply["code"])
    expect(page.locator("#orders tbody tr")).to_have_count(0)


# ---------------------------------------------------------------------- all at once
def test_overview(view, exchange, aio, clients):
    """Everything at once, as docs/img/web-view.png shows it: a two-sided book, a run of
    trades in the tape and the chart, an account whose orders (placed elsewhere) the page
    lists after the login, and a market sale from the page."""
    symbol = "BTC-USD"
    page = view.page
    view.open(symbol)

    async def tape_listener():
        raw = await Raw.open(exchange.url)
        await raw.ask({"op": "subscribe", "channel": "trades", "symbol": symbol, "req_id": 1})
        return raw
    listener = aio.run(tape_listener())
    maker = clients(USD="1000000", BTC="50")
    taker = clients(USD="1000000", BTC="50")
    for i in range(10):
        place(aio, maker, symbol, "buy", f"{1 + 0.25 * i:.2f}", f"{29_995 - 3.5 * i:.2f}")
        place(aio, maker, symbol, "sell", f"{0.8 + 0.3 * i:.2f}", f"{30_005 + 4 * i:.2f}")
    # each taker order takes from the best level only, and no more than it holds
    takes = [("buy", "0.1", "30005.00"), ("sell", "0.2", "29995.00"),
             ("buy", "0.25", "30005.00"), ("sell", "0.3", "29995.00"),
             ("buy", "0.45", "30005.00"), ("buy", "0.2", "30009.00"),
             ("sell", "0.5", "29995.00"), ("sell", "0.15", "29991.50"),
             ("buy", "0.05", "30009.00")]
    for side, qty, price in takes:
        place(aio, taker, symbol, side, qty, price, tif="ioc")

    async def trades_heard():
        got = []
        while len(got) < len(takes):
            msg = await listener.recv()
            if msg["type"] == "trade":
                got.append((msg["price"], msg["qty"], msg["taker_side"]))
        await listener.close()
        return got
    trades = aio.run(trades_heard())
    assert [(p, s) for p, _, s in trades] == [(p, s) for s, _, p in takes]

    key, account = aio.run(funded(exchange, USD="50000", BTC="1"))
    mine = clients(key)
    place(aio, mine, symbol, "buy", "0.2", "29950.00")
    place(aio, mine, symbol, "sell", "0.1", "30100.00")
    view.login(key, account)
    expect(page.locator("#orders tbody tr")).to_have_count(2)
    page.check("input[name=side][value=sell]")           # and a sale from the page
    page.select_option("#order-type", "market")
    page.fill("#order-qty", "0.1")
    page.click("#place-btn")
    expect(page.locator("#activity li").first).to_contain_text(
        "filled: sell 0.1000 BTC-USD at 29991.50")
    trades.append(("29991.50", "0.1000", "sell"))

    shown_tape = page.locator("#tape tbody tr")
    expect(shown_tape).to_have_count(len(trades))
    for row, (price, qty, side) in zip(shown_tape.all(), reversed(trades)):
        expect(row.locator("td").nth(1)).to_have_text(price)
        expect(row.locator("td").nth(2)).to_have_text(qty)
        expect(row.locator("td").nth(3)).to_have_text(side)
    candles = view.hook("v.chartCandles()")
    prices_traded = [float(p) for p, _, _ in trades]
    assert max(c["high"] for c in candles) == max(prices_traded)
    assert min(c["low"] for c in candles) == min(prices_traded)
    assert candles[-1]["close"] == prices_traded[-1]

    book = aio.run(engine_book(exchange, symbol,
                               lambda b: {"29950.00"} <= prices(b, "bids")
                               and {"30100.00"} <= prices(b, "asks")
                               and ["29991.50", "1.0000"] in b["bids"]))
    wait_ladder(view, book)
    depth = page.locator("#depth")
    expect(depth).to_have_attribute("data-points",
                                    str(len(book["bids"]) + len(book["asks"])))
