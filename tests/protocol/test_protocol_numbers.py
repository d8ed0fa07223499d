"""Exact decimals and client order id packing."""
from __future__ import annotations

from decimal import Decimal

import numpy as np

import pytest
from hypothesis import given, strategies as st

from ringex.protocol.client_ids import (
    bytes_text, pack_client_id, text_words, unpack_client_id, words_text,
)
from ringex.units import Step, parse_decimal
from tests.protocol.test_protocol import BTC, EB, PLACE, commands, logged_in, send


@pytest.mark.parametrize("text,parsed", [
    ("0", (0, 0)), ("7", (7, 0)), ("30000.50", (3000050, 2)), ("0.0001", (1, 4)),
    ("-1.5", (-15, 1)), ("007", (7, 0)), ("1" * 32, (int("1" * 32), 0))])
def test_should_parse_plain_decimals(text, parsed):
    assert parse_decimal(text) == parsed


@pytest.mark.parametrize("value", [
    "", ".", "1.", ".1", "+1", "1e3", "1E3", " 1", "1 ", "1\n", "NaN", "inf", "Infinity",
    "--1", "1.2.3", "0x1", "1_0", "\u0661", "\uff11", "1" * 33, 1, 1.0, None, True, b"1"])
def test_should_refuse_anything_else(value):
    assert parse_decimal(value) is None


@pytest.mark.parametrize("step,n,text", [
    ("0.01", 3_000_050, "30000.50"), ("0.01", 1, "0.01"), ("0.01", 0, "0.00"),
    ("0.0001", 5000, "0.5000"), ("5", 3, "15"), ("1E+2", 4, "400"), ("0.25", 3, "0.75"),
    ("0.01", -5, "-0.05"), ("0.00001", 5321, "0.05321")])
def test_step_should_format_exactly(step, n, text):
    assert Step(Decimal(step)).format(n) == text


@pytest.mark.parametrize("step,text,n", [
    ("0.01", "30000.5", 3_000_050), ("0.25", "0.75", 3), ("0.25", "0.8", None),
    ("5", "15", 3), ("5", "16", None), ("0.0001", "0.00010000", 1), ("0.0001", "0.00015", None)])
def test_step_should_count_whole_steps_only(step, text, n):
    assert Step(Decimal(step)).count(*parse_decimal(text)) == n


@pytest.mark.parametrize("bad", ["0", "-1", "NaN", "Infinity"])
def test_step_should_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        Step(Decimal(bad))


@given(st.integers(BTC.min_tick, BTC.max_tick), st.integers(1, (1 << 63) - 1))
def test_prices_and_quantities_should_round_trip_through_strings(ticks, lots):
    price, qty = Step(BTC.tick).format(ticks), Step(BTC.lot).format(lots)
    rec = commands(send(logged_in(), {**PLACE, "price": price, "qty": qty}))[0]
    assert (rec["price"], rec["qty"]) == (ticks, lots)
    assert Decimal(price) == BTC.ticks_to_price(ticks)


@given(st.integers(EB.min_tick, EB.max_tick))
def test_should_agree_with_config_conversions(ticks):
    text = Step(EB.tick).format(ticks)
    assert EB.price_to_ticks(text) == ticks


CLIENT_IDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)


@given(CLIENT_IDS)
def test_client_ids_should_round_trip(cid):
    n = pack_client_id(cid)
    assert 0 < n < 1 << 63
    assert unpack_client_id(n) == cid


@given(CLIENT_IDS, CLIENT_IDS)
def test_client_ids_should_be_distinct(a, b):
    assert (pack_client_id(a) == pack_client_id(b)) == (a == b)


def test_client_id_should_pack_big_endian():
    assert pack_client_id("A") == 0x41
    assert pack_client_id("AB") == 0x4142
    assert pack_client_id("~~~~~~~~") == 0x7E7E7E7E7E7E7E7E


@pytest.mark.parametrize("bad", ["", "x" * 37, "a b", "\t", "\x7f", "\u00e9", 5, None,
                                 "y" * 30 + " z"])
def test_pack_should_refuse_bad_client_ids(bad):
    with pytest.raises(ValueError):
        pack_client_id(bad)


LONG_IDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=9,
                   max_size=36)


@given(LONG_IDS)
def test_long_client_ids_should_have_negative_keys_and_travel_as_their_text(cid):
    key = pack_client_id(cid)
    assert -(1 << 63) <= key < 0 and unpack_client_id(key) is None
    assert words_text(text_words(cid)) == cid
    assert bytes_text(np.array(text_words(cid), "<i8").tobytes()) == cid


def test_a_uuid_is_a_valid_client_id_and_37_characters_are_not():
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    assert len(uuid) == 36 and pack_client_id(uuid) < 0
    with pytest.raises(ValueError, match="1 to 36"):
        pack_client_id(uuid + "0")


@pytest.mark.parametrize("n", [0, -1, 0x20, 0x7F, 0x4100, 1 << 63, 0x80])
def test_unpack_should_give_none_for_ints_no_client_id_packs_to(n):
    assert unpack_client_id(n) is None
