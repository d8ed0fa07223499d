"""One client connection of the gateway: websockets' connection object, adapted so frames
reach the gateway synchronously, and the fast path that writes frames to the socket.

``WsConnection`` is websockets' ``ServerConnection`` with one change: once the gateway
installs a ``sink``, every data frame of a TCP read is handed to it in one call, from
``data_received`` itself -- no ``recv()`` future and no task switch per frame, and all the
commands of one read go to the command ring in one write. Control frames (ping, pong,
close) and the closing handshake stay websockets' business.

``Conn`` holds the per-connection state: the protocol ``Session``, frames queued for
sending (``out``), frames that arrived while an asynchronous step (a key lookup, a wait
for ring room) was in progress (``backlog``), and a fragmented message being assembled.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import State as WsState

from ringex.protocol.session import Session

OP_TEXT, OP_CONT = Opcode.TEXT, Opcode.CONT


def _text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 section 5.2): what ``protocol.send_text``
    builds, without its per-frame objects. Only while the connection is OPEN."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class WsConnection(ServerConnection):
    sink: Callable[[list[Frame]], None] | None = None
    on_lost: Callable[[], object] | None = None
    _batch: list[Frame] | None = None

    def process_event(self, event) -> None:
        if self.sink is not None and isinstance(event, Frame) and event.opcode in DATA_OPCODES:
            if self._batch is not None:
                self._batch.append(event)
            else:                                    # outside data_received (eof)
                self.sink([event])
            return
        super().process_event(event)

    def data_received(self, data: bytes) -> None:
        self._batch = []
        try:
            super().data_received(data)
        finally:
            batch, self._batch = self._batch, None
        if batch:
            sink = self.sink
            assert sink is not None                  # frames are batched only for a sink
            sink(batch)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()


class Conn:
    """A client connection's gateway-side state (see the module docstring)."""

    __slots__ = ("ws", "session", "number", "addr", "port", "out", "backlog", "frag",
                 "closed", "task")

    def __init__(self, ws: WsConnection, session: Session, number: int, addr: bytes,
                 port: int):
        self.ws, self.session, self.number = ws, session, number
        self.addr, self.port = addr, port
        self.out: list[bytes] = []
        self.backlog: list[Frame] | None = None    # not None while an async step runs
        self.frag: list[Frame] = []                # a fragmented message so far
        self.closed = False
        self.task: asyncio.Task | None = None      # the async step running, if any

    def assemble(self, f: Frame) -> tuple[bool, bytes] | None:
        """``(is_text, payload)`` once ``f`` completes a message, else None (a fragment
        was kept for later)."""
        if f.fin and not self.frag and f.opcode is not OP_CONT:
            # websockets' parser makes bytes; Frame.data is typed as any bytes-like
            return f.opcode is OP_TEXT, f.data  # type: ignore[return-value]
        self.frag.append(f)
        if not f.fin:
            return None
        parts, self.frag = self.frag, []
        return parts[0].opcode is OP_TEXT, b"".join(bytes(p.data) for p in parts)

    def flush(self, max_output_bytes: int) -> bool:
        """Write the queued frames now, in one transport write. False when the client
        is not reading: more than ``max_output_bytes`` wait in the transport."""
        frames = self.out
        if not frames:
            return True
        self.out = []
        ws = self.ws
        protocol = ws.protocol
        if protocol.state is not WsState.OPEN:
            return True
        transport = ws.transport
        try:
            transport.write(b"".join([_text_frame(f) for f in frames]))
        except Exception:                          # the transport is closing
            return True
        return transport.get_write_buffer_size() <= max_output_bytes

    def close_now(self, code: int, reason: str, abort_after: float) -> None:
        """Send the queued frames and a close frame now; cut the TCP connection if the
        client has not completed the closing handshake ``abort_after`` seconds later."""
        ws = self.ws
        if ws.protocol.state is WsState.OPEN:
            for f in self.out:
                ws.protocol.send_text(f)
            ws.protocol.send_close(code, reason)
            ws.send_data()
        self.out = []
        ws.loop.call_later(abort_after, ws.transport.abort)
