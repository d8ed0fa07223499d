"""The demo's live view fits the terminal it is drawn on: where to connect, both books'
best prices and the last trades on 80x24, more levels when there is room, whole panels
only (ringex/ops/demo_view.py)."""
from __future__ import annotations

import json
import os
from decimal import Decimal as D

import pytest
from rich.console import Console

from ringex.client import BookSnapshot, Trade
from ringex.ops.demo import served_web_url
from ringex.ops.demo_view import MarketView, plan, wrap_items

WS = "ws://127.0.0.1:8765/ws"
WEB = "http://127.0.0.1:8766/"
BTC_BIDS = [D("30000.00") - D("0.50") * i for i in range(1, 13)]     # 12 levels a side
BTC_ASKS = [D("30000.00") + D("0.50") * i for i in range(1, 13)]
ETH_BIDS = [D("1800.00") - D("0.05") * i for i in range(1, 13)]
ETH_ASKS = [D("1800.00") + D("0.05") * i for i in range(1, 13)]


def market(web_url: str | None = WEB, trades: int = 40) -> MarketView:
    v = MarketView(["BTC-USD", "ETH-USD"], ws_url=WS, web_url=web_url)
    v.apply(BookSnapshot("BTC-USD", 1, [(p, D("0.1230")) for p in BTC_BIDS],
                         [(p, D("1.5000")) for p in BTC_ASKS]))
    v.apply(BookSnapshot("ETH-USD", 1, [(p, D("2.100")) for p in ETH_BIDS],
                         [(p, D("3.500")) for p in ETH_ASKS]))
    for i in range(trades):                 # distinct prices: the newest is 31039.00
        v.apply(Trade("BTC-USD", 2 + i, 1 + i, D("31000.00") + i, D("0.0100"), "buy"))
    return v


def draw(view: MarketView, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(view.render())
    return console.export_text().splitlines()


def whole(lines: list[str], width: int, height: int) -> str:
    """The text, after checking it fits and every panel that starts also ends."""
    assert len(lines) <= height and all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    assert text.count("╭") == text.count("╰") > 0
    assert text.count("╮") == text.count("╯") == text.count("╭")
    return text


def levels_shown(text: str) -> int:
    return sum(str(p) in text for p in BTC_BIDS)


def test_80x24_shows_both_books_the_last_trades_and_where_to_connect():
    text = whole(draw(market(), 80, 24), 80, 24)
    assert WS in text and WEB in text
    for best in (BTC_BIDS[0], BTC_ASKS[0], ETH_BIDS[0], ETH_ASKS[0]):
        assert str(best) in text
    for price in ("31039.00", "31038.00", "31037.00"):           # the three newest trades
        assert price in text
    assert "trades: 40" in text
    assert 3 <= levels_shown(text) < 12


def test_120x40_shows_more_levels_and_more_trades():
    small = whole(draw(market(), 80, 24), 80, 24)
    big = whole(draw(market(), 120, 40), 120, 40)
    assert levels_shown(big) > levels_shown(small)
    assert sum(f"{31000 + i}.00" in big for i in range(40)) > \
        sum(f"{31000 + i}.00" in small for i in range(40))
    assert WS in big and WEB in big


@pytest.mark.parametrize("width,height", [(40, 20), (60, 24), (79, 24), (80, 16),
                                          (100, 30), (119, 30), (160, 50), (200, 24)])
def test_any_size_fits_with_best_prices_and_the_newest_trade(width, height):
    text = whole(draw(market(), width, height), width, height)
    for best in (BTC_BIDS[0], BTC_ASKS[0], ETH_BIDS[0], ETH_ASKS[0]):
        assert str(best) in text
    assert "31039.00" in text and "trades: 40" in text
    assert text.count("connect ws://") == 1


def test_the_layout_follows_the_width():
    header = wrap_items([f"connect {WS}", f"web view {WEB}", "Ctrl-C stops"], 80)
    assert len(header) == 1                            # both URLs on one line at 80 wide
    wide = plan(120, 40, 2, ["x"], depth=10)
    assert wide.trades_beside and wide.book_cols == 2 and wide.levels == 10
    side_by_side = plan(80, 24, 2, ["x"], depth=10)
    assert not side_by_side.trades_beside and side_by_side.book_cols == 2
    stacked = plan(60, 24, 2, ["x"], depth=10)
    assert stacked.book_cols == 1
    for p in (wide, side_by_side, stacked):
        assert p.levels >= 1 and p.trades >= 1
    assert side_by_side.height(2) == 24 and stacked.height(2) == 24


def test_a_url_wider_than_the_terminal_is_folded_and_the_view_still_fits():
    v = market()
    v.ws_url = "ws://[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:18765/ws"      # 63 characters
    text = whole(draw(v, 50, 30), 50, 30)
    assert v.ws_url in text.replace("\n", "")
    assert "31039.00" in text


def test_without_a_web_view_only_the_websocket_url_is_shown():
    text = whole(draw(market(web_url=None), 80, 24), 80, 24)
    assert WS in text and "web view" not in text


def test_an_empty_market_draws_whole_panels():
    v = MarketView(["BTC-USD", "ETH-USD"], ws_url=WS)
    text = whole(draw(v, 80, 24), 80, 24)
    assert "BTC-USD" in text and "ETH-USD" in text and "trades: 0" in text


def test_the_web_url_comes_from_the_run_file_of_this_process_parent(tmp_path):
    assert served_web_url(str(tmp_path)) == (False, None)          # not written yet
    run = tmp_path / "ringex.run"
    run.write_text(json.dumps({"pid": os.getppid() + 1, "http": WEB}))
    assert served_web_url(str(tmp_path)) == (False, None)          # an earlier run's
    run.write_text(json.dumps({"pid": os.getppid(), "http": WEB}))
    assert served_web_url(str(tmp_path)) == (True, WEB)
    run.write_text(json.dumps({"pid": os.getppid(), "http": None}))
    assert served_web_url(str(tmp_path)) == (True, None)           # --http-port -1
