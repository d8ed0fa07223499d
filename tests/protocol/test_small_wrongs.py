"""Issue 11's small wrongs of the protocol layer, one test each (sans-I/O).

Error messages spell client values as JSON, name the allowed range instead of echoing a
number the JSON parser rounded, use one wording per fault whatever the field, and a
reject's message fits the op it answers.
"""
from __future__ import annotations

import pytest

from ringex.protocol.actions import Reply
from ringex.protocol.codes import ErrorCode
from ringex.records import EventKind as EK, RejectCode
from tests.protocol.test_protocol import PLACE, admin, commands, event, logged_in, send

CANCEL = {"op": "cancel", "symbol": "BTC-USD"}
DEPOSIT = {"op": "deposit", "account": 5, "asset": "USD", "amount": "1"}


def error(actions) -> dict:
    (a,) = actions
    assert isinstance(a, Reply) and a.message["type"] == "error", actions
    return a.message


def frame_error(session, text: str) -> dict:
    return error(session.receive_text(text))


def test_order_id_beyond_64_bits_says_the_range_instead_of_a_rounded_float():
    msg = frame_error(logged_in(), '{"op": "cancel", "symbol": "BTC-USD", "req_id": 1, '
                                   f'"order_id": {2**70}}}')
    assert msg["code"] == "invalid_order_id" and msg["req_id"] == 1
    assert msg["message"] == ("order_id must be an integer from 1 to 9223372036854775807, "
                              "not a number beyond the 64-bit range")
    assert "e+21" not in msg["message"]


def test_order_id_just_past_int64_is_shown_as_written():
    msg = frame_error(logged_in(), '{"op": "cancel", "symbol": "BTC-USD", '
                                   f'"order_id": {2**63}}}')
    assert msg["message"].endswith(f"not {2**63}")


def test_req_id_beyond_64_bits_says_the_allowed_range():
    msg = frame_error(logged_in(), f'{{"op": "ping", "req_id": {2**70}}}')
    assert msg["code"] == "bad_request" and "req_id" not in msg
    assert msg["message"] == (
        "req_id must be an integer from -9223372036854775808 to 18446744073709551615 or a "
        "string of at most 64 characters, not a number beyond the 64-bit range")


@pytest.mark.parametrize("req_id", [-2**63, 2**64 - 1])
def test_req_id_at_the_ends_of_the_documented_range_is_echoed(req_id):
    (reply,) = logged_in().receive_text(f'{{"op": "ping", "req_id": {req_id}}}')
    assert isinstance(reply, Reply) and reply.message == {"type": "pong", "req_id": req_id}


@pytest.mark.parametrize("value,shown", [
    (True, "true"), (False, "false"), ("7", '"7"'), (1.5, "1.5"), ([1, 2], "[1,2]"),
    ({"a": None}, '{"a":null}'), ("it's", '"it\'s"'),
])
def test_error_messages_spell_the_refused_value_as_json(value, shown):
    msg = error(send(logged_in(), {**CANCEL, "order_id": value}))
    assert msg["message"] == f"order_id must be an integer from 1 to 9223372036854775807, " \
                             f"not {shown}"


def test_error_messages_spell_booleans_of_other_fields_as_json():
    msg = error(send(logged_in(), {**PLACE, "side": False}))
    assert msg["message"] == "side must be one of buy, sell, not false"
    msg = error(send(admin(), {**DEPOSIT, "account": True}))
    assert msg["message"] == "account must be an integer from 1 to 4294967295, not true"


def test_missing_field_names_the_field_in_json_quotes():
    assert error(send(logged_in(), {**PLACE, "side": None}))["message"] == \
        'missing field "side"'
    assert frame_error(logged_in(), '{"req_id": 1}')["message"] == 'missing field "op"'
    assert error(send(logged_in(), CANCEL))["message"] == \
        'missing field "order_id" (or "client_order_id")'


def test_a_long_value_is_cut_in_the_message():
    msg = error(send(logged_in(), {**PLACE, "side": "x" * 100}))
    assert msg["message"].endswith('not "' + "x" * 36 + "...")  # 40 chars at most


def test_zero_amount_and_zero_qty_get_the_same_words():
    zero_qty = error(send(logged_in(), {**PLACE, "qty": "0"}))
    zero_price = error(send(logged_in(), {**PLACE, "price": "0"}))
    zero_amount = error(send(admin(), {**DEPOSIT, "op": "withdraw", "amount": "0"}))
    assert (zero_qty["code"], zero_price["code"], zero_amount["code"]) == (
        "invalid_qty", "invalid_price", "invalid_amount")
    assert zero_qty["message"] == 'qty must be positive, not "0"'
    assert zero_price["message"] == 'price must be positive, not "0"'
    assert zero_amount["message"] == 'amount must be positive, not "0"'


def test_a_number_instead_of_a_decimal_string_gets_the_same_words_for_qty_and_amount():
    qty = error(send(logged_in(), {**PLACE, "qty": 1}))["message"]
    amount = error(send(admin(), {**DEPOSIT, "amount": 1}))["message"]
    assert qty == ('qty must be a JSON string holding a plain decimal like "0.5" '
                   '(at most 32 chars), not 1')
    assert amount == ('amount must be a JSON string holding a plain decimal like "100.5" '
                      '(at most 32 chars), not 1')


def test_too_large_qty_and_amount_name_the_maximum():
    qty = error(send(logged_in(), {**PLACE, "qty": "9" * 25}))["message"]
    assert qty == f"qty {'9' * 25} is too large: at most 922337203685477.5807 on BTC-USD"
    amount = error(send(admin(), {**DEPOSIT, "amount": "9" * 20}))["message"]
    assert amount == f"amount {'9' * 20} is too large: at most 9223372036854.775807 USD"


def _reject_message(session, request: dict, code: RejectCode) -> str:
    (cmd,) = commands(send(session, request))
    (msg,) = session.event_to_messages(event(EK.REJECT, account=cmd["account"],
                                             ref=cmd["ref"], info=code))
    assert msg["type"] == "reject"
    return msg["message"]


def test_deposit_overflow_reject_speaks_of_the_balance_not_of_price_and_quantity():
    deposit = _reject_message(admin(), DEPOSIT, RejectCode.OVERFLOW)
    assert deposit == ("the account's balance of this asset (available + locked) would "
                       "exceed 2^62 minor units")
    assert _reject_message(logged_in(), PLACE, RejectCode.OVERFLOW) == \
        "price x quantity is too large"


def test_engine_unknown_account_on_a_transfer_names_the_engines_capacity():
    msg = _reject_message(admin(), DEPOSIT, RejectCode.UNKNOWN_ACCOUNT)
    assert "max_accounts" in msg
    assert _reject_message(logged_in(), PLACE, RejectCode.UNKNOWN_ACCOUNT) == "unknown account"


def test_a_transfer_the_gateway_refuses_gets_the_given_code_and_frees_its_request():
    s = admin()
    records = [a.record for a in send(s, {**DEPOSIT, "account": 17, "req_id": "d"})]
    assert s.pending_count() == 1
    (reply,) = s.commands_refused(records, ErrorCode.UNKNOWN_ACCOUNT, "no account 17")
    assert reply.message == {"type": "error", "code": "unknown_account",
                             "message": "no account 17", "req_id": "d"}
    assert s.pending_count() == 0
    # the default is still `overloaded`
    records = [a.record for a in send(s, {**DEPOSIT, "req_id": 2})]
    assert s.commands_refused(records)[0].message["code"] == "overloaded"
