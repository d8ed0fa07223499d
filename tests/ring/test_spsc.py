"""SpscRing in one process: validation, full/empty behaviour, order and content (hypothesis),
numba-side functions, and lifecycle."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringex.errors import RingError, RingNotFound
from ringex.ring.broadcast import BroadcastRing
from ringex.records import COMMAND, EVENT
from ringex.ring.shm import PID_CLOSED, PRODUCER_PID, segment_name
from ringex.ring.kernels import (ring_available, ring_free, ring_read_into, ring_wait_available,
                                 ring_write)
from ringex.ring.spsc import SpscRing
from ringex.ring.wait import BusySpinWait, PeerGone
from tests.ring._workers import command_records, commands_ok

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair(ring_name):
    """(consumer that owns the ring, producer attached to it), capacity 8."""
    with SpscRing.create(ring_name, COMMAND, 8, role="consumer") as cons:
        with SpscRing.attach(ring_name, COMMAND, role="producer") as prod:
            yield cons, prod


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("capacity", [0, 1, 3, 6, 100])
def test_capacity_must_be_a_power_of_two(ring_name, capacity):
    with pytest.raises(ValueError, match="power of two"):
        SpscRing.create(ring_name, COMMAND, capacity)


@pytest.mark.parametrize("name", ["other-ring", "/ringex-x", "xringex"])
def test_name_must_start_with_ringex(name):
    with pytest.raises(ValueError, match="ringex"):
        SpscRing.create(name, COMMAND, 8)


def test_attach_to_missing_name_raises_ring_not_found():
    name = segment_name("missing")
    with pytest.raises(RingNotFound) as info:
        SpscRing.attach(name, COMMAND)
    assert info.value.name == name and isinstance(info.value, FileNotFoundError)


def test_attach_with_wrong_record_size_raises(ring_name):
    small = np.dtype([("a", "<i8"), ("b", "<i8")])
    with SpscRing.create(ring_name, COMMAND, 8):
        with pytest.raises(RingError, match="record size"):
            SpscRing.attach(ring_name, small)


def test_attach_with_other_layout_of_same_size_raises(ring_name):
    with SpscRing.create(ring_name, COMMAND, 8):
        with pytest.raises(RingError, match="layout"):
            SpscRing.attach(ring_name, EVENT)


def test_attach_with_wrong_capacity_or_kind_raises(ring_name):
    with SpscRing.create(ring_name, COMMAND, 8):
        with pytest.raises(RingError, match="capacity"):
            SpscRing.attach(ring_name, COMMAND, capacity=16)
        with pytest.raises(RingError, match="kind"):
            BroadcastRing.attach(ring_name, COMMAND)
        assert SpscRing.attach(ring_name, COMMAND, capacity=8).capacity == 8


def test_create_existing_name_raises(ring_name):
    with SpscRing.create(ring_name, COMMAND, 8):
        with pytest.raises(RingError, match="exists"):
            SpscRing.create(ring_name, COMMAND, 8)


def test_records_of_another_dtype_are_refused(pair):
    cons, prod = pair
    with pytest.raises(TypeError):
        prod.write(np.zeros(1, EVENT))
    with pytest.raises(TypeError):
        cons.read_into(np.zeros(1, EVENT))


# ------------------------------------------------------------------ full and empty
def test_full_ring_refuses_writes_and_keeps_unread_records(pair):
    cons, prod = pair
    assert prod.write(command_records(0, 5)) == 5
    assert prod.write(command_records(5, 10)) == 3          # only what fits
    assert prod.write(command_records(100, 1)) == 0         # full
    assert ring_write(prod.hdr, prod.slots, command_records(100, 1), 1) == 0
    assert len(cons) == 8 and prod.free() == 0 and ring_free(prod.hdr) == 0
    got = cons.read(100)
    assert commands_ok(got, 0) and len(got) == 8


def test_empty_ring_reads_nothing(pair):
    cons, prod = pair
    assert len(cons.read(10)) == 0
    assert cons.read_into(np.zeros(4, COMMAND)) == 0
    assert ring_read_into(cons.hdr, cons.slots, np.zeros(4, COMMAND), 4) == 0
    assert ring_wait_available(cons.hdr, 100) == 0
    assert len(cons.read_wait(4, BusySpinWait(), timeout=0.01)) == 0


def test_read_copies_so_the_slot_can_be_reused(pair):
    cons, prod = pair
    prod.write(command_records(0, 8))
    first = cons.read(8)
    prod.write(command_records(8, 8))
    assert commands_ok(first, 0)


# ------------------------------------------------------------------ order and content
ops = st.lists(
    st.tuples(st.sampled_from(["write", "nwrite", "read", "read_into", "nread"]),
              st.integers(0, 40)),
    min_size=1, max_size=80,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, log_cap=st.integers(1, 4))
def test_order_and_content_across_wraps(ops, log_cap):
    cap = 1 << log_cap
    with SpscRing.create(segment_name("hyp"), COMMAND, cap) as ring:
        written = read = 0
        out = np.zeros(48, COMMAND)
        for op, k in ops:
            if op in ("write", "nwrite"):
                recs = command_records(written, k)
                n = ring.write(recs) if op == "write" else ring_write(ring.hdr, ring.slots, recs, k)
                assert n == min(k, cap - (written - read))
                written += n
            else:
                if op == "read":
                    got = ring.read(k)
                elif op == "read_into":
                    got = out[:ring.read_into(out[:k])]
                else:
                    got = out[:ring_read_into(ring.hdr, ring.slots, out, k)]
                assert len(got) == min(k, written - read)
                assert commands_ok(got, read)
                read += len(got)
            assert len(ring) == written - read == ring_available(ring.hdr)
            assert ring.free() == cap - (written - read) == ring_free(ring.hdr)


def test_numba_read_respects_max_n_and_out_length(pair):
    cons, prod = pair
    recs = command_records(0, 8)
    assert ring_write(prod.hdr, prod.slots, recs, 6) == 6
    assert ring_wait_available(cons.hdr, 10) == 6
    out = np.zeros(3, COMMAND)
    assert ring_read_into(cons.hdr, cons.slots, out, 100) == 3 and commands_ok(out, 0)
    assert ring_read_into(cons.hdr, cons.slots, out, 2) == 2 and commands_ok(out[:2], 3)
    assert len(cons) == 1


# ------------------------------------------------------------------ lifecycle
def test_creator_unlinks_attacher_does_not(ring_name):
    ring = SpscRing.create(ring_name, COMMAND, 8)
    other = SpscRing.attach(ring_name, COMMAND)
    other.close()
    other.close()                                   # idempotent
    assert os.path.exists(f"/dev/shm/{ring_name}")
    ring.close()
    assert ring.closed and not os.path.exists(f"/dev/shm/{ring_name}")
    with pytest.raises(RingNotFound):
        SpscRing.attach(ring_name, COMMAND)


def test_close_with_a_view_still_held_keeps_the_memory_mapped(ring_name):
    ring = SpscRing.create(ring_name, COMMAND, 8)
    ring.write(command_records(0, 8))
    slots = ring.slots                              # a caller forgot to drop this view
    ring.close()
    assert not os.path.exists(f"/dev/shm/{ring_name}")
    assert commands_ok(slots, 0)                    # still mapped, no crash
    del slots


def test_roles_register_pid_and_mark_closed(ring_name):
    with SpscRing.create(ring_name, COMMAND, 8, role="consumer") as cons:
        prod = SpscRing.attach(ring_name, COMMAND, role="producer")
        assert cons.hdr[PRODUCER_PID] == os.getpid()
        prod.write(command_records(0, 3))
        prod.close()
        assert cons.hdr[PRODUCER_PID] == PID_CLOSED
        # what was written before the close is still delivered, then PeerGone
        assert commands_ok(cons.read_wait(10, BusySpinWait(), timeout=5), 0)
        with pytest.raises(PeerGone, match="closed"):
            cons.read_wait(10, BusySpinWait(peer_check_s=0), timeout=5)


def test_bad_role_is_refused(ring_name):
    with pytest.raises(ValueError, match="role"):
        with SpscRing.create(ring_name, COMMAND, 8, role="reader"):
            pass


def test_strided_and_read_only_arrays_take_the_general_path(pair):
    cons, prod = pair
    recs = command_records(0, 8)
    assert prod.write(recs[::2]) == 4                 # not contiguous
    frozen = command_records(4, 2)
    frozen.flags.writeable = False
    assert prod.write(frozen) == 2
    out = np.zeros(12, COMMAND)
    assert cons.read_into(out[::2]) == 6              # strided destination
    assert commands_ok(out[::2][:4], 0) is False      # 0, 2, 4, 6 from the strided write
    assert list(out[::2]["order_id"]) == [0, 2, 4, 6, 4, 5]
    with pytest.raises(ValueError, match="read-only"):
        cons.read_into(frozen)
    with pytest.raises(ValueError, match="1-D"):
        prod.write(command_records(0, 4).reshape(2, 2))
    with pytest.raises(ValueError, match="1-D"):
        cons.read_into(np.zeros((2, 2), COMMAND))
