"""Gateway pieces without a live exchange: frame building, fragment assembly, limits from
the environment, API key lookup, and the pump's wait strategies."""
from __future__ import annotations

import asyncio
import time

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from ringex.errors import ConfigError
from ringex.io.auth import KeyLookup
from ringex.io.gateway import limits_from_env
from ringex.io.gateway_conn import Conn, _text_frame
from ringex.io.gateway_wait import (
    BusySpinPumpWait, SleepThreadPumpWait, make_pump_wait,
)
from ringex.io.repository import open_repository


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_text_frames_are_what_websockets_would_send(n):
    proto = Protocol(Side.SERVER, state=State.OPEN)
    payload = b"x" * n
    proto.send_text(payload)
    assert _text_frame(payload) == b"".join(proto.data_to_send())


def test_fragments_are_assembled_into_one_message():
    c = Conn(None, None, 1, b"", 0)
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
    w = SleepThreadPumpWait(min_sleep=20e-6, max_sleep=1e-3)
    ready = [0]

    async def go():
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, lambda: ready.__setitem__(0, 1))
        t = time.perf_counter()
        await w.wait(lambda: ready[0], 5.0)              # the thread sees the data
        took_data = time.perf_counter() - t
        ready[0] = 0
        loop.call_later(0.02, w.kick)
        t = time.perf_counter()
        await w.wait(lambda: 0, 5.0)                     # a kick ends the wait
        took_kick = time.perf_counter() - t
        t = time.perf_counter()
        await w.wait(lambda: 0, 0.05)                    # or the timeout
        return took_data, took_kick, time.perf_counter() - t
    try:
        took_data, took_kick, took_timeout = asyncio.run(go())
    finally:
        w.close()
    assert 0.015 < took_data < 1.0 and 0.015 < took_kick < 1.0 and took_timeout >= 0.045
