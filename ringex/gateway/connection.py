"""One client socket: websockets' sans-I/O ``ServerProtocol`` for the wire, in a small
``asyncio.Protocol`` of ringex's own (no websockets internals are touched).

    loop.create_server(lambda: Connection(gateway), host, port, reuse_port=True)

The gateway (``ringex.gateway.server``) gets three calls:

- ``await gateway.handshake(conn, request)`` once the HTTP upgrade request is read: None
  accepts it (the gateway has set ``conn.session``), a ``Response`` (``conn.respond``)
  refuses it. Reading pauses meanwhile.
- ``gateway.on_frames(conn, frames)``: the data frames of one read, at most
  ``FRAMES_PER_TURN`` of them: a client that sends a large batch gets the rest delivered
  on later turns of the event loop, so it cannot hold the loop against the others.
- ``gateway.on_lost(conn)`` once the socket is gone.

Pings from the client are answered and close frames handled by the protocol object; the
gateway pings every client (``ping``) and closes one that does not answer (docs/protocol.md
section 7). ``out`` holds the frames waiting for this client; ``flush`` writes them in one
transport write, built without per-frame objects (``text_frame``).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from ringex.gateway.server import Gateway
    from ringex.protocol.session import Session

log = logging.getLogger("ringex.gateway")
_WIRE_LOG = logging.getLogger("ringex.gateway.wire")   # the protocol's per-connection lines

OPEN_TIMEOUT_S = 10.0             # the opening handshake must be done by then
FRAMES_PER_TURN = 64              # data frames handed to the gateway per loop turn
SERVER_HEADER = "ringex"
OP_TEXT, OP_CONT, OP_PONG = Opcode.TEXT, Opcode.CONT, Opcode.PONG


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 section 5.2): what ``send_text`` builds,
    without its per-frame objects. Only while the connection is OPEN."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class Connection(asyncio.Protocol):
    """A client connection: the socket, its WebSocket state, and the gateway's state of it
    (``session``, ``out``, ``backlog``: frames that arrived while an asynchronous step, a
    key lookup or a wait for ring room, was running; ``frag``: a fragmented message)."""

    def __init__(self, gateway: Gateway, max_frame_bytes: int = 1 << 20):
        self.gateway = gateway
        self.protocol = ServerProtocol(max_size=max_frame_bytes, logger=_WIRE_LOG)
        self.transport: asyncio.Transport | None = None
        self.session: Session = None  # type: ignore[assignment]  # set at the handshake
        self.number = 0
        self.addr, self.port = b"", 0
        self.out: list[bytes] = []
        self.backlog: list[Frame] | None = None
        self.frag: list[Frame] = []
        self.closed = False                        # the gateway has let it go
        self.task: asyncio.Task | None = None      # the async step running, if any
        self.ping_sent_ns = 0                      # 0: no ping awaits its pong
        self._ping_data = b""
        self._deferred: list[Frame] = []           # frames for later turns
        self._paused: set[str] = set()             # why reading is paused
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's does not subclass it
        self.addr, self.port = _peer(transport)
        self._timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT_S, self.abort)
        self.gateway.on_connect(self)

    def data_received(self, data: bytes) -> None:
        proto = self.protocol
        proto.receive_data(data)
        events = proto.events_received()
        if proto.state is WsState.CONNECTING:
            for ev in events:
                if isinstance(ev, Request):
                    self.pause("handshake")
                    asyncio.get_running_loop().create_task(self._handshake(ev))
            self._send_protocol_data()
            return
        frames: list[Frame] = []
        for ev in cast(list[Frame], events):           # after the handshake: frames only
            if ev.opcode in DATA_OPCODES:
                frames.append(ev)
            elif ev.opcode is OP_PONG and ev.data == self._ping_data:
                self.ping_sent_ns = 0
        self._send_protocol_data()
        if frames:
            if self._deferred:
                self._deferred.extend(frames)
            else:
                self._deliver(frames)

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._send_protocol_data()
        return None                                # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()
        if self._timer is not None:
            self._timer.cancel()
        self._deferred = []
        self.gateway.on_lost(self)

    # ------------------------------------------------------------ handshake
    async def _handshake(self, request: Request) -> None:
        try:
            response = await self.gateway.handshake(self, request)
        except Exception:
            log.exception("gateway: handshake failed")
            response = self.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")
        if self.transport is None or self.transport.is_closing():
            return
        if response is None:
            response = self.protocol.accept(request)
        response.headers["Server"] = SERVER_HEADER
        self.protocol.send_response(response)
        self._send_protocol_data()
        if self.protocol.state is WsState.OPEN:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.resume("handshake")
        else:
            self.gateway.on_refused(self)

    def respond(self, status: HTTPStatus, text: str) -> Response:
        """An HTTP response refusing the upgrade (return it from ``handshake``)."""
        return self.protocol.reject(status, text)

    # ------------------------------------------------------------ frames in
    def _deliver(self, frames: list[Frame]) -> None:
        if len(frames) > FRAMES_PER_TURN:
            self._deferred = frames[FRAMES_PER_TURN:]
            frames = frames[:FRAMES_PER_TURN]
            self.pause("turn")
            asyncio.get_running_loop().call_soon(self._next_turn)
        self.gateway.on_frames(self, frames)

    def _next_turn(self) -> None:
        frames, self._deferred = self._deferred, []
        if frames and self.protocol.state is WsState.OPEN:
            self._deliver(frames)
        if not self._deferred:
            self.resume("turn")

    def pause(self, reason: str) -> None:
        """Stop reading the socket until ``resume(reason)`` (reasons add up)."""
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused.add(reason)

    def resume(self, reason: str) -> None:
        self._paused.discard(reason)
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def assemble(self, f: Frame) -> tuple[bool, bytes] | None:
        """``(is_text, payload)`` once ``f`` completes a message, else None (a fragment
        was kept for later)."""
        if f.fin and not self.frag and f.opcode is not OP_CONT:
            # the protocol's parser makes bytes; Frame.data is typed as any bytes-like
            return f.opcode is OP_TEXT, f.data  # type: ignore[return-value]
        self.frag.append(f)
        if not f.fin:
            return None
        parts, self.frag = self.frag, []
        return parts[0].opcode is OP_TEXT, b"".join(bytes(p.data) for p in parts)

    # ------------------------------------------------------------ frames out
    @property
    def open(self) -> bool:
        return self.protocol.state is WsState.OPEN

    def flush(self, max_output_bytes: int) -> bool:
        """Write the queued frames now, in one transport write. False when the client
        is not reading: more than ``max_output_bytes`` wait in the transport."""
        frames = self.out
        if not frames:
            return True
        self.out = []
        transport = self.transport
        if self.protocol.state is not WsState.OPEN or transport is None:
            return True
        try:
            transport.write(b"".join([text_frame(f) for f in frames]))
        except Exception:                          # the transport is closing
            return True
        return transport.get_write_buffer_size() <= max_output_bytes

    def ping(self, now_ns: int) -> None:
        """Send a keepalive ping; its pong clears ``ping_sent_ns``."""
        if self.open:
            self._ping_data = os.urandom(4)
            self.protocol.send_ping(self._ping_data)
            self.ping_sent_ns = now_ns
            self._send_protocol_data()

    def close_now(self, code: int, reason: str, abort_after: float) -> None:
        """Send the queued frames and a close frame now; cut the TCP connection if the
        client has not completed the closing handshake ``abort_after`` seconds later."""
        if self.open:
            for f in self.out:
                self.protocol.send_text(f)
            self.protocol.send_close(code, reason)
            self._send_protocol_data()
        self.out = []
        if self.transport is not None:
            asyncio.get_running_loop().call_later(abort_after, self.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _send_protocol_data(self) -> None:
        """Write what the protocol object queued (handshake response, pongs, close
        frames); an empty chunk means: end the TCP connection."""
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:                                  # pragma: no cover  (TLS)
                transport.close()
        if self.protocol.state is WsState.CLOSED:
            transport.close()


def _peer(transport: asyncio.BaseTransport) -> tuple[bytes, int]:
    """The client's packed IPv4/IPv6 address and port (empty when unknown)."""
    try:
        host, port = transport.get_extra_info("peername")[:2]
        return ipaddress.ip_address(host).packed, int(port)
    except Exception:
        return b"", 0
