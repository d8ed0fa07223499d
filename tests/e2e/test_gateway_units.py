"""Gateway pieces without a live exchange: frame building, fragment assembly, limits from
the environment, API key lookup, and the pump's wait strategies."""
from __future__ import annotations

import asyncio
import time

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol

from ringex.errors import ConfigError
from ringex.gateway.auth import KeyLookup
from ringex.gateway.process import limits_from_env
from ringex.gateway.connection import Connection, text_frame
from ringex.gateway.pump_wait import (
    BusySpinPumpWait, SleepThreadPumpWait, make_pump_wait,
)
from ringex.ring.wait import SleepSchedule
from ringex.storage.stores import open_repository


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_text_frames_are_what_websockets_would_send(n):
    proto = Protocol(Side.SERVER, state=State.OPEN)
    payload = b"x" * n
    proto.send_text(payload)
    assert text_frame(payload) == b"".join(proto.data_to_send())


def test_fragments_are_assembled_into_one_message():
    c = Connection(gateway=None)
    assert c.assemble(Frame(Opcode.TEXT, b'{"op"', fin=False)) is None
    assert c.assemble(Frame(Opcode.CONT, b': "pi', fin=False)) is None
    assert c.assemble(Frame(Opcode.CONT, b'ng"}', fin=True)) == (True, b'{"op": "ping"}')
    assert c.assemble(Frame(Opcode.BINARY, b"\x00")) == (False, b"\x00")
    assert c.frag == []


def test_limits_come_from_the_environment():
    lim = limits_from_env("rate_per_s=5000, burst=100,max_pending=7")
    assert (lim.rate_per_s, lim.burst, lim.max_pending, lim.max_frame_bytes) == (
        5000, 100, 7, 4096)
    assert limits_from_env("") == limits_from_env(" ")
    for bad in ("rate=5", "burst=-1", "burst", "burst=1.5"):
        with pytest.raises(ValueError):
            limits_from_env(bad)


def test_key_lookup_finds_accounts_and_the_admin(tmp_path):
    db = str(tmp_path / "r.db")
    with open_repository(db) as repo:
        account = repo.add_account("a")
        key = repo.add_api_key(account)
        admin = repo.add_api_key(0)
    (tmp_path / "admin.key").write_text("file-admin-key\n")
    keys = KeyLookup(db, str(tmp_path))

    async def go():
        assert await keys.lookup(key) == (account, False)
        assert await keys.lookup(key) == (account, False)          # cached
        assert await keys.lookup(admin) == (0, True)
        assert await keys.lookup("file-admin-key") == (0, True)
        assert await keys.lookup("nope") is None
        assert await keys.lookup("") is None
        with open_repository(db) as repo:                         # added while running
            late = repo.add_api_key(account)
        assert await keys.lookup(late) == (account, False)
    try:
        asyncio.run(go())
    finally:
        keys.close()


def test_a_failing_database_means_unknown_keys(tmp_path):
    keys = KeyLookup(str(tmp_path / "missing" / "dir" / "r.db"))
    try:
        assert asyncio.run(keys.lookup("k")) is None
    finally:
        keys.close()


def test_pump_waits_by_strategy_name():
    assert isinstance(make_pump_wait("busy_spin", None, None), BusySpinPumpWait)
    w = make_pump_wait("spin-then-sleep", None, None)
    assert isinstance(w, SleepThreadPumpWait)
    w.close()
    with pytest.raises(ValueError):
        make_pump_wait("eventfd", None, None)
    with pytest.raises(ConfigError):
        make_pump_wait("nap", None, None)


def test_the_sleep_thread_wakes_the_loop_on_data_and_on_kick():
    w = SleepThreadPumpWait(SleepSchedule(min_sleep=20e-6, max_sleep=1e-3))
    ready = [0]

    async def go():
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, lambda: ready.__setitem__(0, 1))
        t = time.perf_counter()
        woken = [await w.wait(lambda: ready[0], 5.0)]    # the thread sees the data
        took_data = time.perf_counter() - t
        ready[0] = 0
        loop.call_later(0.02, w.kick)
        t = time.perf_counter()
        woken.append(await w.wait(lambda: 0, 5.0))       # a kick ends the wait
        took_kick = time.perf_counter() - t
        t = time.perf_counter()
        woken.append(await w.wait(lambda: 0, 0.05))      # or the timeout
        return took_data, took_kick, time.perf_counter() - t, woken
    try:
        took_data, took_kick, took_timeout, woken = asyncio.run(go())
    finally:
        w.close()
    assert 0.015 < took_data < 1.0 and 0.015 < took_kick < 1.0 and took_timeout >= 0.045
    assert woken == [True, True, False]      # the pump stays cold after a timeout


# ---------------------------------------------------------------- the connection path
# A Gateway over real (small) rings but fake sockets: no engine, no server.

import orjson  # noqa: E402

from ringex.config import Config  # noqa: E402
from ringex.gateway.server import Gateway  # noqa: E402
from ringex.protocol.session import Session, session_number  # noqa: E402
from ringex.ring.broadcast import BroadcastRing  # noqa: E402
from ringex.records import COMMAND, EVENT, CMD_DISCONNECT, CommandKind  # noqa: E402
from ringex.ring.shm import segment_name  # noqa: E402
from ringex.ring.spsc import SpscRing  # noqa: E402


class FakeTransport:
    """What a Connection writes, kept; server frames are unmasked, so they read back."""

    def __init__(self):
        self.data = bytearray()
        self.paused = self.aborted = False

    def write(self, b):
        self.data += b

    def get_write_buffer_size(self):
        return 0

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False

    def is_closing(self):
        return self.aborted

    def can_write_eof(self):
        return True

    def write_eof(self):
        pass

    def close(self):
        pass

    def abort(self):
        self.aborted = True

    def sent(self) -> list[dict]:
        """The text messages written so far."""
        buf, out, i = bytes(self.data), [], 0
        while i < len(buf):
            op, n = buf[i] & 0x0F, buf[i + 1] & 0x7F
            j = i + 2
            if n == 126:
                n, j = int.from_bytes(buf[j:j + 2], "big"), j + 2
            if op == 1:
                out.append(orjson.loads(buf[j:j + n]))
            i = j + n
        return out


class FakeKeys:
    db_url = None

    async def lookup(self, key):
        await asyncio.sleep(0.01)
        return (7, False) if key == "good" else None

    def close(self):
        pass


class Rig:
    def __init__(self, cmd_capacity=4):
        self.cmd = SpscRing.create(segment_name("gwunit"), COMMAND, cmd_capacity)
        self.evt = SpscRing.create(segment_name("gwunit"), EVENT, 16)
        self.md = BroadcastRing.create(segment_name("gwunit"), EVENT, 16, role=None)
        self.gw = Gateway(0, Config.default(), self.cmd, self.evt, self.md, FakeKeys(),
                          wait_strategy="busy_spin")

    def conn(self, account=None, cod=False):
        """A Connection past its handshake, over a fake transport."""
        s = Session(Config.default(), session_number(0, 1), cancel_on_disconnect=cod)
        if account is not None:
            s.authenticated(account)
        c = Connection(self.gw)
        c.transport = FakeTransport()
        c.protocol = ServerProtocol(state=State.OPEN)
        c.session, c.number = s, 1
        self.gw.conns[s.session_id] = c
        return c

    def feed(self, c, *msgs):
        self.gw.on_frames(c, [Frame(Opcode.TEXT, orjson.dumps(m)) for m in msgs])

    def kinds(self) -> list[tuple[int, int]]:
        recs = self.cmd.read(100)
        return [(int(r["kind"]), int(r["flags"])) for r in recs]

    def close(self):
        self.gw.pump.wait.close()
        for r in (self.cmd, self.evt, self.md):
            r.close()


PLACE = {"op": "place", "symbol": "BTC-USD", "side": "buy", "price": "100", "qty": "1"}


async def _settle():
    for _ in range(50):
        await asyncio.sleep(0.002)


def test_a_full_command_ring_answers_overloaded_in_order():
    async def go():
        rig = Rig(cmd_capacity=4)
        try:
            c = rig.conn(account=5)
            rig.feed(c, *({**PLACE, "req_id": k} for k in range(6)))
            assert c.backlog is not None                  # waiting for room
            rig.feed(c, {"op": "ping", "req_id": "after"})  # must wait its turn
            await _settle()
            sent = c.transport.sent()
            assert [(m["type"], m.get("code"), m["req_id"]) for m in sent] == [
                ("error", "overloaded", 4), ("error", "overloaded", 5), ("pong", None, "after")]
            assert rig.kinds() == [(CommandKind.NEW, 0)] * 4
            rig.feed(c, {**PLACE, "req_id": 9})           # room again: straight through
            assert rig.kinds() == [(CommandKind.NEW, 0)] and c.backlog is None
        finally:
            rig.close()
    asyncio.run(go())


def test_frames_after_a_login_wait_for_its_answer():
    async def go():
        rig = Rig(cmd_capacity=16)
        try:
            c = rig.conn()
            rig.feed(c, {"op": "login", "api_key": "good", "req_id": 1},
                     {**PLACE, "req_id": 2}, {"op": "balances", "req_id": 3})
            rig.feed(c, {"op": "ping", "req_id": 4})
            assert c.transport.sent() == [] and rig.kinds() == []
            await _settle()
            assert [m["type"] for m in c.transport.sent()] == ["login", "pong"]
            assert rig.kinds() == [(CommandKind.NEW, 0), (CommandKind.QUERY_BALANCES, 0)]
            c2 = rig.conn()
            rig.feed(c2, {"op": "login", "api_key": "bad", "req_id": 1}, {**PLACE, "req_id": 2})
            await _settle()
            assert [m.get("code") for m in c2.transport.sent()] == \
                ["auth_failed", "not_authenticated"]
        finally:
            rig.close()
    asyncio.run(go())


def test_the_disconnect_command_follows_commands_still_waiting_for_room():
    async def go():
        rig = Rig(cmd_capacity=4)
        try:
            c = rig.conn(account=5, cod=True)
            rig.feed(c, *({**PLACE, "req_id": k} for k in range(4)))   # fills the ring
            rig.feed(c, {**PLACE, "req_id": 4})                         # waits for room
            gone = asyncio.ensure_future(rig.gw._gone(c))
            await asyncio.sleep(0)
            assert rig.kinds() == [(CommandKind.NEW, 0)] * 4             # make room
            await gone
            assert rig.kinds() == [(CommandKind.NEW, 0), (CommandKind.CANCEL_ALL,
                                                           CMD_DISCONNECT)]
        finally:
            rig.close()
    asyncio.run(go())


def test_binary_and_invalid_utf8_frames_close_the_connection():
    async def go():
        rig = Rig()
        try:
            c = rig.conn()
            rig.gw.on_frames(c, [Frame(Opcode.BINARY, b"\x00")])
            assert c.transport.sent()[0]["code"] == "binary_frame"
            assert c.protocol.state is State.CLOSING
            c2 = rig.conn()
            rig.gw.on_frames(c2, [Frame(Opcode.TEXT, b'{"op": "\xff"}')])
            assert c2.transport.sent() == [] and c2.protocol.state is State.CLOSING
        finally:
            rig.close()
    asyncio.run(go())


class RecordingGateway:
    """Stands in for a Gateway: records what the Connection hands over."""

    def __init__(self):
        self.batches: list[int] = []

    def on_connect(self, conn):
        pass

    def on_frames(self, conn, frames):
        self.batches.append(len(frames))

    def on_lost(self, conn):
        pass


def test_a_large_read_is_handed_over_a_bounded_number_of_frames_per_loop_turn():
    """Fairness: 200 frames in one read reach the gateway 64 at a time, one batch per
    turn of the event loop, and the socket is not read meanwhile."""
    async def go():
        gw = RecordingGateway()
        conn = Connection(gw)
        conn.transport = FakeTransport()
        conn.protocol = ServerProtocol(state=State.OPEN)
        client = Protocol(Side.CLIENT, state=State.OPEN)
        for i in range(200):
            client.send_text(orjson.dumps({"op": "ping", "req_id": i}))
        conn.data_received(b"".join(client.data_to_send()))
        assert gw.batches == [64] and conn.transport.paused
        for _ in range(5):
            await asyncio.sleep(0)
        assert gw.batches == [64, 64, 64, 8] and not conn.transport.paused
    asyncio.run(go())


def test_a_client_that_does_not_answer_pings_is_a_slow_consumer():
    async def go():
        rig = Rig()
        try:
            c = rig.conn(account=5)
            rig.gw.keepalive()                             # first round: a ping
            assert c.ping_sent_ns and b"\x89" in bytes(c.transport.data)
            c.ping_sent_ns -= 30 * 10**9                   # ... left unanswered 30 s
            rig.gw.keepalive()
            assert c.transport.sent()[-1]["code"] == "slow_consumer"
            assert c.protocol.state is State.CLOSING
        finally:
            rig.close()
    asyncio.run(go())
