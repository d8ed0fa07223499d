"""The supervisor's HTTP endpoint: the web view, Prometheus metrics, health and status.

    server = OpsServer("127.0.0.1", 8766, routes).start()   # a daemon thread
    server.port, server.url                                 # the port it got (0: a free one)
    server.stop()

Routes (docs/operations.md):

    /                   the web view (``ringex/web/index.html``)
    /web/<file>         its files (scripts, styles, the vendored chart library)
    /config.json        what the page needs: the WebSocket port and path, the symbols
    /metrics            Prometheus text format
    /healthz            200 ``{"ok": true, ...}`` or 503 with the reasons
    /status.json        every counter, as ``ringex status`` prints them

It runs in the supervisor, which holds every process's shared counters; nothing it does
touches the engine's or a gateway's loop. Each request gets a thread (``ThreadingHTTPServer``)
so a slow client cannot hold up a Prometheus scrape.
"""
from __future__ import annotations

import logging
import mimetypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import orjson

log = logging.getLogger("ringex.ops.http")

WEB_DIR = Path(str(resources.files("ringex") / "web"))
MAX_FILE_BYTES = 4 << 20


@dataclass
class Routes:
    """What the dynamic routes answer with; each is called per request, on its thread."""
    config: Callable[[], dict]                      # /config.json
    metrics: Callable[[], bytes]                    # /metrics (Prometheus text)
    health: Callable[[], tuple[bool, dict]]         # /healthz: (ok, details)
    status: Callable[[], dict]                      # /status.json


METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NotReady(Exception):
    """A route cannot answer yet (the exchange is starting): 503."""


class OpsServer:
    def __init__(self, host: str, port: int, routes: Routes, web_dir: Path = WEB_DIR):
        handler = type("Handler", (_Handler,), {"routes": routes, "web_dir": web_dir})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "OpsServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="ringex-http",
                                        kwargs={"poll_interval": 0.25}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    routes: Routes
    web_dir: Path
    server_version = "ringex"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:                            # noqa: N802 - the stdlib's name
        path = self.path.partition("?")[0]
        try:
            if path in ("/", "/index.html"):
                self._file("index.html")
            elif path.startswith("/web/"):
                self._file(path[len("/web/"):])
            elif path == "/config.json":
                self._json(HTTPStatus.OK, self.routes.config())
            elif path == "/metrics":
                self._send(HTTPStatus.OK, METRICS_TYPE, self.routes.metrics())
            elif path == "/healthz":
                ok, details = self.routes.health()
                self._json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                           {"ok": ok, **details})
            elif path == "/status.json":
                self._json(HTTPStatus.OK, self.routes.status())
            else:
                self._text(HTTPStatus.NOT_FOUND, "not found\n")
        except NotReady as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "problems": [str(exc)]})
        except Exception:                                # noqa: BLE001 - answer, log
            log.exception("http: GET %s failed", path)
            self._text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")

    def do_HEAD(self) -> None:                           # noqa: N802
        self._text(HTTPStatus.METHOD_NOT_ALLOWED, "")

    def _file(self, name: str) -> None:
        root = self.web_dir.resolve()
        target = (root / name).resolve()
        if not target.is_relative_to(root) or not target.is_file() \
                or target.stat().st_size > MAX_FILE_BYTES:
            self._text(HTTPStatus.NOT_FOUND, "not found\n")
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        self._send(HTTPStatus.OK, kind, target.read_bytes())

    def _json(self, status: HTTPStatus, body: dict) -> None:
        self._send(status, "application/json", orjson.dumps(body))

    def _text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode())

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:   # noqa: A002 - the stdlib's name
        log.debug("http: " + format, *args)
