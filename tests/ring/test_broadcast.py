"""BroadcastRing: every reader sees the stream; a lapped reader reports the gap, resyncs,
and never gets a torn or stale record."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringex.errors import RingError, RingNotFound
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.kernels import bcast_read_into, bcast_write
from ringex.records import COMMAND, EVENT
from ringex.ring.shm import HEAD, segment_name
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import EventfdWait, PeerGone, SpinThenSleepWait
from tests.ring import _workers
from tests.ring._workers import event_records, events_consistent
from tests.ring.conftest import join_ok

pytestmark = pytest.mark.timeout(90)


def numba_read(reader, max_n):
    ring = reader.ring
    out = np.zeros(max(max_n, 1), EVENT)
    n, lost = bcast_read_into(ring.hdr, ring.stamps, ring.slots, reader.cursor_arr, out, max_n)
    return out[:n], lost


def seqs(recs):
    return list(recs["seq"])


# ------------------------------------------------------------------ basics
def test_every_reader_sees_every_record(ring_name):
    with BroadcastRing.create(ring_name, EVENT, 16) as ring:
        a, b = ring.reader(), ring.reader()
        ring.write(event_records(0, 10))
        got_a, lost_a = a.read(100)
        got_b, lost_b = numba_read(b, 100)
        assert seqs(got_a) == seqs(got_b) == list(range(10)) and lost_a == lost_b == 0
        assert events_consistent(got_a) and events_consistent(got_b)


def test_reader_start_latest_or_oldest(ring_name):
    with BroadcastRing.create(ring_name, EVENT, 8) as ring:
        ring.write(event_records(0, 20))
        assert len(ring.reader().read(100)[0]) == 0
        oldest = ring.reader("oldest")
        assert oldest.cursor == 12
        assert seqs(oldest.read(100)[0]) == list(range(12, 20))
        with pytest.raises(ValueError):
            ring.reader("middle")


def test_lapped_reader_reports_the_gap_and_resyncs_to_the_oldest(ring_name):
    with BroadcastRing.create(ring_name, EVENT, 8) as ring:
        py, nb = ring.reader(), ring.reader()
        ring.write(event_records(0, 3))
        assert seqs(py.read(2)[0]) == [0, 1] and seqs(numba_read(nb, 2)[0]) == [0, 1]
        ring.write(event_records(3, 17))                 # head 20: records 12..19 remain
        for read in (py.read, lambda n: numba_read(nb, n)):
            got, lost = read(3)
            assert lost == 10 and seqs(got) == [12, 13, 14]
            got, lost = read(100)
            assert lost == 0 and seqs(got) == list(range(15, 20))


def test_batch_longer_than_the_ring_keeps_the_last_records(ring_name):
    with BroadcastRing.create(ring_name, EVENT, 8) as ring:
        reader = ring.reader()
        assert ring.write(event_records(0, 21)) == 21
        got, lost = reader.read(100)
        assert lost == 13 and seqs(got) == list(range(13, 21)) and events_consistent(got)


@pytest.mark.parametrize("read", ["python", "numba"])
def test_slot_being_rewritten_is_not_returned(ring_name, read):
    # Freeze a producer mid-write: record 7's slot says "record 15 in progress".
    with BroadcastRing.create(ring_name, EVENT, 8) as ring:
        reader = ring.reader()
        ring.write(event_records(0, 8))
        slot = 7 & ring.mask
        ring.stamps[slot] = 2 * 15 + 1
        ring.slots[slot] = event_records(15, 1)[0]       # half-written garbage for record 7
        do = reader.read if read == "python" else (lambda n: numba_read(reader, n))
        got, lost = do(100)
        assert seqs(got) == list(range(7)) and lost == 0
        got, lost = do(100)
        assert len(got) == 0 and lost == 1               # the gap, never the record


@pytest.mark.parametrize("read", ["python", "numba"])
def test_stale_slot_from_an_older_lap_is_not_returned(ring_name, read):
    with BroadcastRing.create(ring_name, EVENT, 8) as ring:
        reader = ring.reader()
        ring.write(event_records(0, 4))
        ring.stamps[3] = 0                               # slot never (re)written
        ring.hdr[HEAD] = 4
        do = reader.read if read == "python" else (lambda n: numba_read(reader, n))
        got, lost = do(100)
        assert 3 not in seqs(got)


# ------------------------------------------------------------------ model check
ops = st.lists(
    st.tuples(st.sampled_from(["write", "nwrite", "read_a", "read_b"]), st.integers(0, 40)),
    min_size=1, max_size=60,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, log_cap=st.integers(1, 4))
def test_reads_match_a_model_across_laps(ops, log_cap):
    cap = 1 << log_cap
    with BroadcastRing.create(segment_name("hyp"), EVENT, cap) as ring:
        head = 0
        readers = {"read_a": (ring.reader(), lambda r, n: r.read(n)),
                   "read_b": (ring.reader(), numba_read)}
        cursors = {"read_a": 0, "read_b": 0}
        for op, k in ops:
            if op == "write":
                ring.write(event_records(head, k))
                head += k
            elif op == "nwrite":
                bcast_write(ring.hdr, ring.stamps, ring.slots, event_records(head, k), k)
                head += k
            else:
                reader, read = readers[op]
                r = cursors[op]
                want_lost = max(0, head - cap - r)
                r += want_lost
                want = list(range(r, min(head, r + k)))
                got, lost = read(reader, k)
                assert (seqs(got), lost) == (want, want_lost)
                assert events_consistent(got)
                cursors[op] = r + len(want)
                assert reader.cursor == cursors[op]


# ------------------------------------------------------------------ validation
def test_validation(ring_name):
    with pytest.raises(ValueError, match="power of two"):
        BroadcastRing.create(ring_name, EVENT, 12)
    with pytest.raises(RingNotFound):
        BroadcastRing.attach(segment_name("missing"), EVENT)
    with BroadcastRing.create(ring_name, EVENT, 8) as ring:
        with pytest.raises(TypeError):
            ring.write(np.zeros(1, COMMAND))
        with pytest.raises(ValueError, match="1-D"):
            ring.write(np.zeros((2, 2), EVENT))
        with pytest.raises(ValueError, match="1-D"):
            ring.reader().read_into(np.zeros((2, 2), EVENT))
        with pytest.raises(RingError):
            BroadcastRing.attach(ring_name, COMMAND)
        with pytest.raises(RingError, match="kind"):
            SpscRing.attach(ring_name, EVENT)
        with pytest.raises(RingError, match="sleeping flag"):
            ring.reader().read_wait(1, EventfdWait(), timeout=0.01)


# ------------------------------------------------------------------ across processes
@pytest.mark.parametrize("producer_mode,reader_mode,seed",
                         [("numba", "python", 3), ("python", "numba", 4)])
def test_concurrent_overruns_never_return_torn_or_stale_records(ring_name, spawn,
                                                                producer_mode, reader_mode, seed):
    total = 200_000
    cap = 16                       # tiny ring: the reader is lapped constantly
    with BroadcastRing.create(ring_name, EVENT, cap) as ring:
        reader = ring.reader()
        producer = spawn(_workers.bcast_producer, ring_name, total, seed, producer_mode)
        wait = SpinThenSleepWait(spin=1000, max_sleep=100e-6, peer_check_s=0.01)
        rng = np.random.default_rng(seed)
        received = lost_total = 0
        expect = 0
        while True:
            try:
                if not wait.wait(reader.__len__, ring.data_gate, timeout=30):
                    pytest.fail("producer neither published nor went away")
            except PeerGone:
                break
            max_n = int(rng.integers(1, 2 * cap))
            got, lost = reader.read(max_n) if reader_mode == "python" else \
                numba_read(reader, max_n)
            assert events_consistent(got), "torn record returned"
            expect += lost
            assert seqs(got) == list(range(expect, expect + len(got))), "stale or out of order"
            expect += len(got)
            received += len(got)
            lost_total += lost
        join_ok(producer)
        got, lost = reader.read(10 * cap)
        assert events_consistent(got)
        received += len(got)
        lost_total += lost
        assert received + lost_total == total
        assert received > 0
