"""The WebSocket gateway: a thin asyncio adapter over ``ringex.protocol``.

One process per gateway (``run_gateway``, called by the supervisor; the contract is
docs/architecture.md section 4). Several gateways share one port with SO_REUSEPORT.

    client frames ─► Session.receive_text ─► SendCommand ─► g<i>-cmd ring ─► engine
    engine ─► g<i>-evt ring / md ring ─► EventPump ─► Session.event_to_messages ─► frames

- Serves ``ws://HOST:PORT/ws`` (websockets, ``compression=None``, uvloop when installed).
  ``Authorization: Bearer <key>`` is checked during the handshake (unknown key: HTTP 401);
  ``?cancel_on_disconnect=true`` on the URL sets that option for the connection.
- API keys are looked up in the repository on a worker thread (never on the loop) and
  cached; the key mapped to ``ADMIN_ACCOUNT`` makes an admin session.
- Frames are handled synchronously as websockets parses them (``connection``): the
  commands of one TCP read go to the command ring in one write, the replies to the
  socket in one write, without awaiting anything. Events are pushed the same way by the
  pump (``pump``), one socket write per connection per round. A client with more
  than 8 MiB of unsent output does not read: it is closed (1013, ``slow_consumer``)
  rather than slowing the exchange down. docs/gateway.md walks through both paths.
- A full command ring is waited on for ``RING_PATIENCE_S``, then the request is answered
  ``overloaded``; nothing ever blocks the loop.
- AUDIT records (connect, login, auth failure, abusive close, disconnect) go to the
  trade queue from a worker thread, in small batches.
- Stops when ``stop_event`` is set or the parent process dies: stops accepting, closes
  every connection with 1001 (their cancel-on-disconnect commands are written), flushes
  the audit records and closes the rings.
- Per-connection limits are the protocol's defaults (docs/protocol.md section 7); an
  operator (or a benchmark) may change them with the environment variable
  ``RINGEX_SESSION_LIMITS``, e.g. ``rate_per_s=100000,burst=100000``.
  ``RINGEX_GATEWAY_WAIT`` (busy_spin, spin_then_sleep, eventfd) overrides the gateways'
  wait strategy alone, e.g. a busy-spinning engine with gateways that sleep when idle.
"""
from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ringex.config import Config
from ringex.logs import setup_logging
from ringex.gateway.auth import KeyLookup
from ringex.gateway.audit import AuditLog
from ringex.gateway.connection import Conn, WsConnection
from ringex.gateway.pump import EventPump
from ringex.gateway.pump_wait import make_pump_wait
from ringex.protocol.actions import (
    Authenticate, Close, Reply, SendCommand, Subscribe, Unsubscribe,
)
from ringex.protocol.booksync import BookSync
from ringex.protocol.codes import CloseCode, ErrorCode
from ringex.protocol.feed import MarketFeed
from ringex.config import GatewayLimits
from ringex.protocol.ratelimit import Budgets
from ringex.protocol.session import Session, session_number
from ringex.protocol.codes import ERROR_NUMBERS
from ringex.ring.broadcast import BroadcastRing
from ringex.records import COMMAND, EVENT, AuditKind
from ringex.ring.spsc import SpscRing

log = logging.getLogger("ringex.gateway")

RING_PATIENCE_S = 0.005           # wait this long for command-ring room, then `overloaded`
INTERNAL_PATIENCE_S = 2.0         # ... for the gateway's own and disconnect commands
CLOSE_TIMEOUT_S = 2.0             # closing handshake
HOUSEKEEPING_S = 0.02             # stop-event / parent checks, audit flushes
MAX_BACKLOG = 256                 # frames held during an async step before reading pauses
MAX_CONNECTION = 0xFFFFFE         # connection numbers 1 .. MAX_CONNECTION
OWN_CONNECTION = 0xFFFFFF         # the gateway's own session (book queries): session 0
                                  # of gateway 0 is the engine's internal one


class Gateway:
    def __init__(self, index: int, config: Config, cmd: SpscRing, evt: SpscRing,
                 md: BroadcastRing, keys: KeyLookup, queue=None, *,
                 wait_strategy: str = "spin_then_sleep", wakeups: dict | None = None,
                 limits: GatewayLimits = GatewayLimits()):
        self.index = index
        self.config = config
        self.limits = limits
        self.cmd, self.evt, self.md_ring = cmd, evt, md
        self.keys = keys
        self.conns: dict[int, Conn] = {}
        self._subs: dict[tuple[str, str], set[Conn]] = {}
        self._dirty: list[Conn] = []
        self._next_number = 0
        self._tasks: set[asyncio.Task] = set()
        self._cmd_signal = wakeups.get("cmd") if wakeups else None
        self.feed = MarketFeed(config)
        self.sync = BookSync(self.feed, session_number(index, OWN_CONNECTION))
        self.pump = EventPump(evt, md.reader(), self.feed, self.sync, self,
                              make_pump_wait(wait_strategy, wakeups, evt.data_gate))
        self.audit = AuditLog(queue, index)
        self.budgets = Budgets(limits)
        self._server: Server | None = None
        self._pump_task: asyncio.Task | None = None

    # ================================================================ lifecycle
    async def start(self, host: str, port: int) -> None:
        """Load the books from the engine, start the pump and listen."""
        self.write_internal(self.sync.request(self.feed.symbol_ids))
        self._pump_task = asyncio.create_task(self.pump.run(), name="ringex-pump")
        self._server = await serve(
            _handler, host, port, compression=None, reuse_port=True,
            process_request=self._handshake, create_connection=WsConnection,
            max_size=4 * self.limits.max_frame_bytes, max_queue=64,
            close_timeout=CLOSE_TIMEOUT_S, ping_interval=20, ping_timeout=20,
            server_header="ringex")

    @property
    def port(self) -> int:
        server = self._server
        assert server is not None, "the gateway is not started"
        return server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (1001), deliver their disconnect commands, stop the
        pump, flush the audit records."""
        if self._server is not None:
            self._server.close(close_connections=True, code=CloseCode.GOING_AWAY,
                               reason="gateway shutting down")
            await self._server.wait_closed()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.pump.stop()
        if self._pump_task is not None:
            await self._pump_task
        await self.audit.close()
        self.pump.wait.close()
        self.keys.close()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ================================================================ handshake
    async def _handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        """``process_request``: path, query options, the Bearer key; then the
        connection is registered and its frames go to ``_on_frames``."""
        assert isinstance(ws, WsConnection)           # serve(create_connection=WsConnection)
        path, _, query = request.path.partition("?")
        if path != "/ws":
            return ws.respond(HTTPStatus.NOT_FOUND, "not found: connect to /ws\n")
        cod = False
        for name, values in parse_qs(query, keep_blank_values=True).items():
            if name != "cancel_on_disconnect" or values[-1] not in ("true", "false", "1", "0"):
                return ws.respond(HTTPStatus.BAD_REQUEST, f"bad query parameter {name!r}: "
                                  "only cancel_on_disconnect=true|false\n")
            cod = values[-1] in ("true", "1")
        addr, port = _peer(ws)
        budget = self.budgets.address(addr, time.perf_counter_ns())
        if budget.connections >= self.limits.ip_connections:
            return ws.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many connections from your "
                              f"address (at most {self.limits.ip_connections})\n")
        number = self._new_number()
        sid = session_number(self.index, number)
        session = Session(self.config, sid, limits=self.limits, cancel_on_disconnect=cod,
                          budgets=self.budgets, address=addr)
        header = request.headers.get("Authorization")
        if header is not None:
            wait_ms = session.login_backoff_ms(time.perf_counter_ns())
            if wait_ms:
                return ws.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many failed logins from "
                                  f"your address; retry in {wait_ms} ms\n")
            scheme, _, key = header.partition(" ")
            found = None
            if scheme.lower() == "bearer" and key.strip():
                found = await self.keys.lookup(key.strip())
            if found is None:
                budget.login_failures.try_take(time.perf_counter_ns())
                self.audit.record(AuditKind.AUTH_FAILED, sid, 0, addr, port,
                                ERROR_NUMBERS["auth_failed"])
                return ws.respond(HTTPStatus.UNAUTHORIZED, "unknown api key\n")
            session.authenticated(*found)
        conn = Conn(ws, session, number, addr, port)
        budget.connections += 1
        self.conns[sid] = conn
        ws.sink = lambda frames: self._on_frames(conn, frames)
        ws.on_lost = lambda: self._spawn(self._gone(conn))
        self.audit.record(AuditKind.CONNECT, sid, 0, addr, port)
        if session.account is not None:
            self.audit.record(AuditKind.LOGIN, sid, session.account, addr, port)
        return None

    def _new_number(self) -> int:
        for _ in range(MAX_CONNECTION):
            self._next_number = self._next_number % MAX_CONNECTION + 1
            if session_number(self.index, self._next_number) not in self.conns:
                return self._next_number
        raise RuntimeError("no free connection number")

    async def _gone(self, conn: Conn) -> None:
        """The socket is closed: unregister, deliver the cancel-on-disconnect command."""
        if conn.closed:
            return
        conn.closed = True
        while conn.task is not None and not conn.task.done():
            await asyncio.wait([conn.task])      # its commands go before the disconnect's
        session = conn.session
        self.conns.pop(session.session_id, None)
        self.budgets.address(conn.addr, time.perf_counter_ns()).connections -= 1
        for key in session.subscriptions:
            self._subs.get(key, set()).discard(conn)
        conn.out.clear()
        conn.backlog = None
        records = [a.record for a in session.disconnected() if type(a) is SendCommand]
        if records and not await self._write(records, INTERNAL_PATIENCE_S):
            log.error("gateway: command ring full; cancel-on-disconnect of session %#x lost",
                      session.session_id)
        self.audit.record(AuditKind.DISCONNECT, session.session_id, session.account or 0,
                        conn.addr, conn.port)

    # ================================================================ frames -> actions
    def _on_frames(self, conn: Conn, frames: list) -> None:
        """Every data frame of one TCP read (called from ``data_received``)."""
        if conn.backlog is not None:                 # an async step is running
            conn.backlog.extend(frames)
            if len(conn.backlog) > MAX_BACKLOG:
                conn.ws.transport.pause_reading()
            return
        try:
            self._run(conn, frames, [])
        except Exception:
            self._internal_error(conn)

    def _run(self, conn: Conn, frames: list, pending: list) -> None:
        """Feed ``frames`` to the session and carry out the actions in order
        (docs/protocol.md section 8). Commands are gathered in ``pending`` (one list of
        records per request) and written together; a step that must wait (a key lookup,
        a full command ring, a close) hands the rest to ``_resume``."""
        session = conn.session
        for idx, frame in enumerate(frames):
            msg = conn.assemble(frame)
            if msg is None:
                continue
            if msg[0]:
                try:
                    text = msg[1].decode()
                except UnicodeDecodeError as e:          # RFC 6455 section 8.1
                    conn.close_now(1007, f"invalid UTF-8 at position {e.start}",
                                   CLOSE_TIMEOUT_S)
                    return
                actions = session.receive_text(text)
            else:
                actions = session.receive_binary(msg[1])
            records: list[np.ndarray] = []
            for i, a in enumerate(actions):
                # type(a) per branch: mypy narrows `type(a) is C`, not a saved type(a)
                if type(a) is SendCommand:
                    records.append(a.record)
                elif type(a) is Reply:
                    self.queue(conn, orjson.dumps(a.message))
                elif type(a) is Subscribe:
                    self._subscribe(conn, a.channel, a.symbol)
                elif type(a) is Unsubscribe:
                    self._subs.get((a.channel, a.symbol), set()).discard(conn)
                elif type(a) is Close:
                    self._abusive(conn, a, actions, pending + ([records] if records else []))
                    return
                elif type(a) is Authenticate:
                    if records:
                        pending.append(records)
                    self._suspend(conn, self._login(conn, a.api_key, actions[i + 1:], pending,
                                                    frames[idx + 1:]))
                    return
            if records:
                pending.append(records)
        if pending and not self._write_now([r for group in pending for r in group]):
            self._suspend(conn, self._write_groups(conn, pending))
            return
        self._send(conn)

    def _suspend(self, conn: Conn, coro) -> None:
        """Run ``coro`` before any later frame of ``conn`` (they wait in its backlog)."""
        conn.backlog = []
        self._send(conn)
        conn.task = self._spawn(self._resume(conn, coro))

    async def _resume(self, conn: Conn, coro) -> None:
        try:
            leftover = await coro
            while not conn.closed and (leftover or conn.backlog):
                frames = (leftover or []) + (conn.backlog or [])
                conn.backlog = None
                conn.ws.transport.resume_reading()
                self._run(conn, frames, [])
                if conn.backlog is not None:         # suspended again: that task resumes
                    return
                leftover = None
        except Exception:
            self._internal_error(conn)
            return
        if not conn.closed:
            conn.backlog = None
            conn.ws.transport.resume_reading()

    async def _login(self, conn: Conn, api_key: str, after: list, pending: list,
                     rest: list) -> list:
        """The key lookup of a ``login``, then the actions after it; returns ``rest``,
        the frames of the same read still to process."""
        session = conn.session
        found = await self.keys.lookup(api_key)
        more = session.authenticated(*found) if found else session.auth_failed()
        if found:
            self.audit.record(AuditKind.LOGIN, session.session_id, found[0], conn.addr,
                            conn.port)
        else:
            self.audit.record(AuditKind.AUTH_FAILED, session.session_id, 0, conn.addr,
                            conn.port, ERROR_NUMBERS["auth_failed"])
        for a in more + after:
            if type(a) is Reply:
                self.queue(conn, orjson.dumps(a.message))
            elif type(a) is Close:
                self._abusive(conn, a, more, pending)
                return []
        if pending:
            await self._write_groups(conn, pending)
        self._send(conn)
        return rest

    async def _write_groups(self, conn: Conn, groups: list) -> list:
        """Write each request's records, waiting up to RING_PATIENCE_S for room; a
        request that still finds none is answered ``overloaded``."""
        for records in groups:
            if not await self._write(records, RING_PATIENCE_S):
                for r in conn.session.commands_refused(records):
                    self.queue(conn, orjson.dumps(r.message))
        self._send(conn)
        return []

    def _abusive(self, conn: Conn, close: Close, actions: list, pending: list) -> None:
        """The session closes the connection (flood, oversized or binary frame, failed
        logins): commands before it still go out, then the error and the close frame."""
        if pending:
            records = [r for group in pending for r in group]
            if not self._write_now(records):
                self._spawn(self._write(records, INTERNAL_PATIENCE_S))
        codes = [a.message.get("code", "") for a in actions
                 if type(a) is Reply and a.message.get("type") == "error"]
        self.audit.record(AuditKind.CLOSED_ABUSE, conn.session.session_id,
                        conn.session.account or 0, conn.addr, conn.port,
                        ERROR_NUMBERS.get(codes[-1], 0) if codes else 0)
        conn.close_now(close.code, close.reason, CLOSE_TIMEOUT_S)

    def _internal_error(self, conn: Conn) -> None:
        log.exception("gateway: internal error on connection %d", conn.number)
        conn.out.clear()
        conn.close_now(CloseCode.INTERNAL_ERROR, "internal error", CLOSE_TIMEOUT_S)

    def _subscribe(self, conn: Conn, channel: str, symbol: str) -> None:
        # the pump may be idle and a few market-data records behind: a snapshot must not
        # be older than what was published before the request arrived
        self.pump.catch_up()
        self._subs.setdefault((channel, symbol), set()).add(conn)
        if channel == "book" and not self.feed.syncing(symbol):
            self.queue(conn, self.feed.snapshot_frame(symbol))
        # while the book is loading, the snapshot follows in book_loaded()

    # ================================================================ pump callbacks
    def subscribers(self, channel: str, symbol: str):
        return self._subs.get((channel, symbol))

    def queue(self, conn: Conn, frame: bytes) -> None:
        if not conn.out:
            self._dirty.append(conn)
        conn.out.append(frame)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            self._send(conn)

    def book_loaded(self, symbol: str) -> None:
        conns = self._subs.get(("book", symbol))
        if conns:
            data = self.feed.snapshot_frame(symbol)
            for conn in conns:
                self.queue(conn, data)

    def write_internal(self, records: list[np.ndarray]) -> None:
        if records and not self._write_now(records):
            self._spawn(self._write_or_log(records))

    async def _write_or_log(self, records: list[np.ndarray]) -> None:
        if not await self._write(records, INTERNAL_PATIENCE_S):
            log.error("gateway: command ring full; book query lost")

    # ================================================================ I/O primitives
    def _send(self, conn: Conn) -> None:
        """Write ``conn``'s queued frames now; close a client that does not read."""
        if conn.out and not conn.flush(self.limits.max_output_bytes) and not conn.closed:
            actions = conn.session.close(CloseCode.TRY_AGAIN_LATER, ErrorCode.SLOW_CONSUMER,
                                         "too slow: the output buffer is full")
            for a in actions:
                if type(a) is Reply:
                    conn.out.append(orjson.dumps(a.message))
            self.audit.record(AuditKind.CLOSED_ABUSE, conn.session.session_id,
                            conn.session.account or 0, conn.addr, conn.port,
                            ERROR_NUMBERS["slow_consumer"])
            close = actions[-1]
            assert type(close) is Close                 # session.close() ends with it
            conn.close_now(close.code, close.reason, CLOSE_TIMEOUT_S)

    def _write_now(self, records: list[np.ndarray]) -> bool:
        k = len(records)
        if self.cmd.free() < k:
            return False
        # one array for the batch: joining raw bytes is ~200x faster than concatenating
        # structured arrays (numpy promotes the record dtype once per input array)
        self.cmd.write(records[0] if k == 1 else
                       np.frombuffer(b"".join([r.tobytes() for r in records]), COMMAND))
        if self._cmd_signal is not None:
            self._cmd_signal.signal(self.cmd.data_gate)
        self.pump.kick()
        return True

    async def _write(self, records: list[np.ndarray], patience: float) -> bool:
        """All of ``records`` or none, waiting up to ``patience`` seconds for room."""
        if self._write_now(records):
            return True
        deadline = time.perf_counter() + patience
        while time.perf_counter() < deadline:
            await asyncio.sleep(0)
            if self._write_now(records):
                return True
        return False


def limits_from_env(text: str | None = None,
                    base: GatewayLimits = GatewayLimits()) -> GatewayLimits:
    """``base`` (the config's ``[gateway]``) with the overrides of ``RINGEX_SESSION_LIMITS``
    (``name=int,...``; for benchmarks)."""
    text = os.environ.get("RINGEX_SESSION_LIMITS", "") if text is None else text
    changes = {}
    names = {f.name for f in dataclasses.fields(GatewayLimits)}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        if name.strip() not in names or not value.strip().isdigit():
            raise ValueError(f"RINGEX_SESSION_LIMITS: bad item {item!r}; "
                             f"use name=integer with a name of {sorted(names)}")
        changes[name.strip()] = int(value)
    return dataclasses.replace(base, **changes)


async def _handler(ws: ServerConnection) -> None:
    """websockets' per-connection handler: frames arrive through the sink, so it only
    waits for the end (cleanup runs from ``connection_lost``)."""
    await ws.wait_closed()


def _peer(ws: ServerConnection) -> tuple[bytes, int]:
    try:
        host, port = ws.remote_address[:2]
        return ipaddress.ip_address(host).packed, int(port)
    except Exception:
        return b"", 0


# ==================================================================== entry point
def run_gateway(index: int, ring_names: dict[str, str], config_path: str | None,
                db_url: str, host: str, port: int, data_dir: str, queue,
                stop_event, wait_strategy: str, ready_event=None,
                wakeups: dict | None = None) -> None:
    """Run gateway ``index`` until ``stop_event`` is set (docs/architecture.md section 4)."""
    run: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop
        run = uvloop.run
    except ImportError:                      # pragma: no cover
        run = asyncio.run
    setup_logging()
    config = Config.load(config_path)
    main = _serve(index, ring_names, config, db_url, host, port, data_dir, queue,
                  stop_event, wait_strategy, ready_event, wakeups)
    run(main)


async def _serve(index, ring_names, config, db_url, host, port, data_dir, queue, stop_event,
                 wait_strategy, ready_event, wakeups) -> None:
    parent = os.getppid()
    cmd = SpscRing.attach(ring_names["cmd"], COMMAND, role="producer")
    evt = SpscRing.attach(ring_names["evt"], EVENT, role="consumer")
    md = BroadcastRing.attach(ring_names["md"], EVENT)
    keys = KeyLookup(db_url, data_dir)
    wait_strategy = os.environ.get("RINGEX_GATEWAY_WAIT") or wait_strategy
    gw = Gateway(index, config, cmd, evt, md, keys, queue, wait_strategy=wait_strategy,
                 wakeups=wakeups, limits=limits_from_env(base=config.gateway))
    try:
        await gw.start(host, port)
        log.info("gateway %d listening on ws://%s:%d/ws", index, host, port)
        if ready_event is not None:
            ready_event.set()
        while not stop_event.is_set():
            if os.getppid() != parent:
                log.error("gateway %d: the supervisor died; stopping", index)
                break
            await asyncio.sleep(HOUSEKEEPING_S)
            gw.audit.flush()
        await gw.stop()
    finally:
        del gw
        cmd.close()
        evt.close()
        md.close()
