"""OrderService.submit_into: the zero-copy form of submit (docs/api.md)."""
import numpy as np
import pytest

from ringex import records
from ringex.config import Config
from ringex.core.order_service import OrderService
from ringex.records import EventKind, Side

CFG = Config.default()
BTC = CFG.symbol("BTC-USD").id


def _service_with_book(orders: int) -> OrderService:
    svc = OrderService(CFG, wallets=True)
    svc.deposit(1, "BTC", 10**12)
    svc.deposit(2, "USD", 10**15)
    svc.submit(records.batch(*(records.new_order(BTC, 1, Side.SELL, 5_000_000 + i, 10)
                               for i in range(orders))))
    return svc


def _sweeps(k: int) -> np.ndarray:
    """k buy orders, each filling one resting sell of _service_with_book."""
    return records.batch(*(records.new_order(BTC, 2, Side.BUY, 5_000_000 + i, 10)
                           for i in range(k)))


def test_submit_into_writes_the_same_events_as_submit():
    a, b = _service_with_book(20), _service_with_book(20)
    cmds = _sweeps(20)
    out = records.events(a.worst_case_events() + 100)
    done, n = a.submit_into(cmds, out)
    assert done == len(cmds)
    assert out[:n].tobytes() == b.submit(cmds).tobytes()


def test_submit_into_stops_before_a_command_that_might_not_fit_and_resumes():
    a, b = _service_with_book(20), _service_with_book(20)
    cmds = _sweeps(20)
    out = records.events(a.worst_case_events())          # room for one command at a time
    got, done, calls = [], 0, 0
    while done < len(cmds):
        done, n = a.submit_into(cmds, out, done)
        got.append(out[:n].copy())
        calls += 1
    assert calls > 1
    assert np.concatenate(got).tobytes() == b.submit(cmds).tobytes()


def test_submit_into_refuses_an_out_too_small_for_one_command_and_changes_nothing():
    svc = _service_with_book(20)
    before = svc.levels(BTC, Side.SELL)
    with pytest.raises(ValueError, match="may need"):
        svc.submit_into(_sweeps(1), records.events(svc.worst_case_events() - 1))
    assert svc.levels(BTC, Side.SELL) == before


def test_submit_into_refuses_an_out_of_another_layout():
    svc = _service_with_book(1)
    with pytest.raises(TypeError):
        svc.submit_into(_sweeps(1), np.zeros(100, np.int64))
    with pytest.raises(TypeError):
        svc.submit_into(_sweeps(1), records.events(200)[::2])
    with pytest.raises(TypeError):
        svc.submit(np.zeros(4, np.int64))


def test_submit_takes_a_strided_command_array():
    a, b = _service_with_book(10), _service_with_book(10)
    cmds = _sweeps(10)
    assert a.submit(cmds[::2]).tobytes() == b.submit(cmds[::2].copy()).tobytes()


def test_submit_returns_a_writable_event_array_of_its_own():
    svc = _service_with_book(1)
    ev = svc.submit(_sweeps(1))
    assert ev.dtype == records.EVENT and ev.flags.writeable
    assert [EventKind(int(k)) for k in ev["kind"]] == [EventKind.ACK, EventKind.FILL,
                                                       EventKind.FILL]
    again = svc.submit(_sweeps(1))                         # reuses the internal buffer
    assert ev["kind"][0] == EventKind.ACK and again is not ev
