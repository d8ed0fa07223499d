"""The demo's live terminal view: where to connect, each symbol's book, the last trades,
laid out for the terminal it is drawn on (docs/architecture.md section 8).

    view = MarketView(["BTC-USD", "ETH-USD"], ws_url="ws://127.0.0.1:8765/ws")
    view.apply(event)                  # BookSnapshot, BookUpdate, Trade from a client
    Console().print(view.render())     # or rich.live.Live(view.render(), ...)

The layout is chosen at each render from the console's size (``plan``): with room for
every book and the trades side by side (120 columns for two symbols) they sit in one
row; narrower, the books share a row (40 columns each) with the trades below; narrower
still, everything is stacked. Panels always end on the screen: fewer book levels and
fewer trades are shown on a smaller terminal, never half a panel.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ringex.client import BookSnapshot, BookUpdate, Trade

BOOK_W = 40          # a book panel: qty, bid, ask, qty at full precision, borders
TRADES_W = 40        # the trades panel when it sits beside the books
PANEL_ROWS = 3       # a panel's borders and column header
MAX_TRADES = 200     # trades kept (a tall terminal shows this many at most)
GAP = "  "           # between the header's items


@dataclass(frozen=True)
class Plan:
    """What one frame shows: the header's lines, how many books per row, book levels
    per side and trades, and whether the trades sit beside the books."""
    header: list[str]
    book_cols: int
    levels: int
    trades: int
    trades_beside: bool

    def height(self, n_books: int) -> int:
        rows = -(-n_books // self.book_cols)
        books = rows * (PANEL_ROWS + self.levels)
        trades = PANEL_ROWS + self.trades
        return len(self.header) + (max(books, trades) if self.trades_beside
                                   else books + trades)


def wrap_items(items: list[str], width: int) -> list[str]:
    """The items on as few lines of ``width`` as fit, GAP apart (a longer item alone,
    folded)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(GAP) + len(item) <= width:
            lines[-1] += GAP + item
        else:
            lines.append(item)
    return [line[i:i + width] for line in lines for i in range(0, len(line), max(1, width))]


def plan(width: int, height: int, n_books: int, header_items: list[str],
         depth: int) -> Plan:
    """The layout for a ``width`` x ``height`` screen (see the module docstring): at least
    one level per side and one trade; of the rows left, about 2/5 go to book levels (up to
    ``depth``) and the rest to trades."""
    header = wrap_items(header_items, width)
    top = len(header)
    if width >= (n_books + 1) * BOOK_W:                       # books and trades in a row
        free = height - top - PANEL_ROWS
        return Plan(header, n_books, max(1, min(depth, free)), max(1, free), True)
    cols = max(1, min(n_books, width // BOOK_W))
    rows = -(-n_books // cols)
    free = height - top - rows * PANEL_ROWS - PANEL_ROWS
    levels = max(1, min(depth, free * 2 // 5 // rows))
    return Plan(header, cols, levels, max(1, free - rows * levels), False)


class MarketView:
    """Books and recent trades, fed by an anonymous client's events; ``render()`` is a
    rich renderable that lays itself out for the console it is drawn on."""

    def __init__(self, symbols: list[str], depth: int = 10, ws_url: str | None = None,
                 web_url: str | None = None):
        self.depth = depth
        self.ws_url = ws_url
        self.web_url = web_url
        # symbol -> (bids, asks), each price -> qty
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {
            s: ({}, {}) for s in symbols}
        self.trades: deque[Trade] = deque(maxlen=MAX_TRADES)
        self.count = 0
        self.started = time.monotonic()

    def apply(self, ev) -> None:
        if isinstance(ev, BookSnapshot):
            self.books[ev.symbol] = (dict(ev.bids), dict(ev.asks))
        elif isinstance(ev, BookUpdate):
            bids, asks = self.books[ev.symbol]
            for book, levels in ((bids, ev.bids), (asks, ev.asks)):
                for p, q in levels:
                    if q:
                        book[p] = q
                    else:
                        book.pop(p, None)
        elif isinstance(ev, Trade):
            self.trades.appendleft(ev)
            self.count += 1

    def render(self) -> "MarketView":
        """The view as a renderable (laid out when drawn; draw it from the thread that
        calls ``apply``)."""
        return self

    def header_items(self) -> list[str]:
        items = []
        if self.ws_url:
            items.append(f"connect {self.ws_url}")
        if self.web_url:
            items.append(f"web view {self.web_url}")
        items.append("Ctrl-C stops")
        return items

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        p = plan(width, options.height or options.max_height, len(self.books),
                 self.header_items(), self.depth)
        yield Text("\n".join(p.header), style="bold", no_wrap=False, overflow="fold")
        books = [self._book(name, bids, asks, p.levels)
                 for name, (bids, asks) in self.books.items()]
        trades = self._trades(p.trades)
        if p.trades_beside:
            yield _row([*books, trades])
            return
        for i in range(0, len(books), p.book_cols):
            yield _row(books[i:i + p.book_cols], p.book_cols)
        yield trades

    def _book(self, name: str, bids: dict, asks: dict, levels: int) -> Panel:
        t = Table(box=None, pad_edge=False, expand=True, header_style="bold")
        for col in ("qty", "bid", "ask", "qty"):
            t.add_column(col, justify="right", no_wrap=True)
        best_bids = sorted(bids, reverse=True)[:levels]
        best_asks = sorted(asks)[:levels]
        for i in range(levels):
            b = best_bids[i] if i < len(best_bids) else None
            a = best_asks[i] if i < len(best_asks) else None
            t.add_row("" if b is None else str(bids[b]),
                      "" if b is None else f"[green]{b}[/]",
                      "" if a is None else f"[red]{a}[/]",
                      "" if a is None else str(asks[a]))
        spread = f"spread {best_asks[0] - best_bids[0]}" if best_bids and best_asks else None
        return Panel(t, title=f"[bold]{name}[/]", subtitle=spread, expand=True)

    def _trades(self, rows: int) -> Panel:
        t = Table(box=None, pad_edge=False, expand=True, header_style="bold")
        for col in ("symbol", "price", "qty", "taker"):
            t.add_column(col, justify="right" if col in ("price", "qty") else "left",
                         no_wrap=True)
        shown = list(self.trades)[:rows]
        for x in shown:
            color = "green" if x.taker_side == "buy" else "red"
            t.add_row(x.symbol, f"[{color}]{x.price}[/]", str(x.qty), x.taker_side)
        for _ in range(rows - len(shown)):
            t.add_row("", "", "", "")
        rate = self.count / max(1e-9, time.monotonic() - self.started)
        return Panel(t, title=f"trades: {self.count} ({rate:.1f}/s)", expand=True)


def _row(panels: Sequence[RenderableType], cols: int | None = None) -> Table:
    """Panels side by side in equal columns of the full width (``cols`` columns: a short
    last row keeps the others' widths)."""
    grid = Table.grid(expand=True)
    n = cols or len(panels)
    for _ in range(n):
        grid.add_column(ratio=1)
    grid.add_row(*panels, *[""] * (n - len(panels)))
    return grid

