"""A minimal blocking WebSocket client for the benchmarks: the cost of the measuring side
must not hide the gateway's.

Plain socket, TCP_NODELAY, one handshake, frames pre-encoded by the caller (client frames
are masked with an all-zero key, so the payload goes out as is), and a reader that
returns every complete text message of one ``recv`` call with one timestamp. Pings from
the server are answered. One sending thread and one reading thread may share it.
"""
from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time


def frame(payload: bytes) -> bytes:
    """A masked, final text frame carrying ``payload`` (mask key 0: bytes unchanged)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x81, 0x80 | 127)) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


class RawWs:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 10.0,
                 source: str | None = None):
        """``source``: the local address to connect from (``127.0.0.2``: another client
        address on this machine, for the gateway's per-address budgets)."""
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout,
                                             (source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET /{path} HTTP/1.1", f"Host: {hostport}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if api_key:
            lines.append(f"Authorization: Bearer {api_key}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            buf += chunk
        head, _, self._buf = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        self.sock.settimeout(None)
        self._lock = threading.Lock()
        self.closed = False

    def send(self, data: bytes) -> None:
        """Send pre-encoded frames (``frame(...)``, possibly several joined)."""
        with self._lock:
            self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> tuple[int, list[bytes]]:
        """Block until at least one message arrives: ``(perf_counter_ns, messages)``;
        ``(t, [])`` on timeout or close (then ``closed`` is True)."""
        self.sock.settimeout(timeout)
        out: list[bytes] = []
        while not out:
            try:
                chunk = self.sock.recv(1 << 20)
            except (TimeoutError, socket.timeout):
                return time.perf_counter_ns(), []
            now = time.perf_counter_ns()
            if not chunk:
                self.closed = True
                return now, out
            self._buf += chunk
            out = self._parse()
            if self.closed:
                return now, out
        return now, out

    def _parse(self) -> list[bytes]:
        buf, i, out = self._buf, 0, []
        while len(buf) - i >= 2:
            op, n = buf[i] & 0x0F, buf[i + 1] & 0x7F
            j = i + 2
            if n == 126:
                if len(buf) - j < 2:
                    break
                n = struct.unpack_from("!H", buf, j)[0]
                j += 2
            elif n == 127:
                if len(buf) - j < 8:
                    break
                n = struct.unpack_from("!Q", buf, j)[0]
                j += 8
            if len(buf) - j < n:
                break
            payload = buf[j:j + n]
            i = j + n
            if op == 1:
                out.append(payload)
            elif op == 9:                                   # ping -> pong
                self.send(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            elif op == 8:
                self.closed = True
        self._buf = buf[i:]
        return out

    def close(self) -> None:
        try:
            self.send(bytes((0x88, 0x82)) + b"\0\0\0\0" + struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def precise_sleep_slack() -> None:
    """Ask Linux for 1 us timer slack in this thread (default 50 us), so ``time.sleep``
    wakes close to its deadline without spinning (spinning would hold the GIL)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)          # PR_SET_TIMERSLACK
    except Exception:
        pass
