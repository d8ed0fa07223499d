"""Fixtures of the browser tests: one ``ringex run`` and one headless Chromium per module,
a fresh page per test, and an asyncio loop on a thread for the Python clients.

The browser is the system's Chromium (``/usr/bin/chromium``, installed by
scripts/ensure-chromium; ``RINGEX_TEST_CHROMIUM`` names another), driven by Playwright's
sync API; Playwright never downloads one. Without it these tests skip, except with
``CI=true``, where they fail.

Playwright's sync API marks the main thread's asyncio loop as running between its calls,
so the Python clients (``ringex.client``, asyncio) live on a loop of their own thread:
``aio.run(coro)`` runs a coroutine there and returns its result.
"""
from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path

import pytest

from tests.e2e.live_exchange import LiveExchange

CHROMIUM = os.environ.get("RINGEX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"      # screenshots, git-ignored
WAIT_MS = 20_000                                     # Playwright waits (loaded machine)


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the browser tests must run; scripts/ensure-chromium)")
    pytest.skip(reason + " (scripts/ensure-chromium installs it)")


@pytest.fixture(scope="module")
def playwright():
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        _missing(f"Playwright for Python is not installed: {exc}")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM}")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                   headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def exchange(browser):
    """``ringex run`` (one gateway) for the whole module; must stop cleanly. Started
    after the browser so that a missing Chromium skips before paying for it."""
    ex = LiveExchange(gateways=1).start()
    try:
        yield ex
    finally:
        code = ex.close()
        assert code == 0 and not ex.leftovers, (code, ex.leftovers, ex.log_tail())


class Aio:
    """An asyncio loop on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-tests-aio",
                                       daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 60.0):
        async def bounded():
            return await asyncio.wait_for(coro, timeout)
        return asyncio.run_coroutine_threadsafe(bounded(), self.loop).result(timeout + 10)

    def close(self) -> None:
        async def cancel_rest():
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def aio():
    a = Aio()
    try:
        yield a
    finally:
        a.close()


class View:
    """One browser page on the web view, with the console errors it logged."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.sent: list[str] = []          # every WebSocket frame the page sent
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("websocket", lambda ws: ws.on("framesent", self._sent))

    def _sent(self, payload) -> None:
        self.sent.append(payload if isinstance(payload, str) else payload.decode())

    def open(self, symbol: str | None = None) -> "View":
        """Load the page (showing ``symbol``) and wait until it is live with its book."""
        from playwright.sync_api import expect
        self.page.goto(self.base_url + (f"#{symbol}" if symbol else ""))
        expect(self.page.locator("#conn")).to_have_attribute("data-state", "open")
        expect(self.page.locator("#ladder")).to_have_attribute("data-seq", re.compile(r"\d+"))
        return self

    def login(self, api_key: str, account: int) -> None:
        from playwright.sync_api import expect
        self.page.fill("#api-key", api_key)
        self.page.click("#login-btn")
        expect(self.page.locator("#account-id")).to_have_text(f"#{account}")
        expect(self.page.locator("#balances tbody tr").first).to_be_visible()

    def hook(self, expr: str, arg=None):
        """Evaluate ``expr`` (a function of ``arg``) against ``window.ringexView``."""
        return self.page.evaluate(f"(arg) => {{ const v = window.ringexView; return {expr}; }}",
                                  arg)


@pytest.fixture
def view(browser, exchange):
    """A fresh browser context and page for one test; a console error fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    v = View(context.new_page(), exchange.http_url)
    try:
        yield v
    finally:
        context.close()
    assert not v.errors, v.errors


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """After each test that has a page, passed or not (before any fixture cleans up):
    its screenshot, tests/web/artifacts/<test>.png."""
    yield
    v = item.funcargs.get("view")
    if isinstance(v, View) and not v.page.is_closed():
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", item.name).strip("_")
        v.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
