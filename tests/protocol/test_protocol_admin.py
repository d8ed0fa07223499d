"""Admin deposits/withdrawals, cancel-on-disconnect, refused commands (sans-I/O)."""
from __future__ import annotations

import pytest

from ringex.protocol.actions import Reply, SendCommand
from ringex.protocol.codes import ERROR_NUMBERS, ErrorCode
from ringex import records
from ringex.records import CommandKind as CK, EventKind as EK, RejectCode
from tests.protocol.test_protocol import (
    ACCOUNT, ENGINE_TS, PLACE, SID, T0, admin, anon, commands, err, event, expect, logged_in,
    only_reply, send,
)

DEPOSIT = {"op": "deposit", "account": 5, "asset": "USD", "amount": "100.25"}


# ---------------------------------------------------------------- admin ops
def test_should_turn_a_deposit_into_a_command_for_the_target_account():
    s = admin()
    assert commands(send(s, DEPOSIT)) == [expect(CK.DEPOSIT, account=5, symbol=0,
                                                 qty=100_250_000)]
    w = {**DEPOSIT, "op": "withdraw", "asset": "BTC", "amount": "0.00000001"}
    assert commands(send(s, w)) == [expect(CK.WITHDRAW, ref=2, account=5, symbol=1, qty=1)]


def test_should_answer_a_deposit_with_the_new_balance():
    s = admin()
    (cmd,) = commands(send(s, {**DEPOSIT, "req_id": "d1"}))
    msgs = s.event_to_messages(event(EK.BALANCE, account=5, ref=cmd["ref"], symbol=0,
                                     qty=300_250_000, leaves=7))
    assert msgs == [{"type": "deposit", "account": 5, "asset": "USD", "amount": "100.250000",
                     "available": "300.250000", "locked": "0.000007", "req_id": "d1",
                     "ts": ENGINE_TS}]
    assert s.event_to_messages(event(EK.BALANCE, account=5, ref=cmd["ref"])) == []


def test_should_answer_a_refused_withdrawal_with_a_reject():
    s = admin()
    (cmd,) = commands(send(s, {**DEPOSIT, "op": "withdraw", "req_id": 4}))
    (msg,) = s.event_to_messages(event(EK.REJECT, account=5, ref=cmd["ref"],
                                       info=RejectCode.INSUFFICIENT_FUNDS))
    assert (msg["type"], msg["code"], msg["op"], msg["req_id"]) == (
        "reject", "insufficient_funds", "withdraw", 4)


def test_should_refuse_admin_ops_to_other_sessions():
    assert err(send(logged_in(), DEPOSIT)) == "not_authorized"
    assert err(send(anon(), DEPOSIT)) == "not_authenticated"


def test_should_not_route_other_accounts_events_to_a_normal_session():
    s = logged_in()
    (cmd,) = commands(send(s, {"op": "balances"}))
    assert s.event_to_messages(event(EK.BALANCE, account=ACCOUNT + 1, ref=cmd["ref"])) == []


@pytest.mark.parametrize("change,code", [
    ({"account": 0}, "invalid_account"), ({"account": -1}, "invalid_account"),
    ({"account": 2**32}, "invalid_account"), ({"account": "5"}, "invalid_account"),
    ({"account": None}, "missing_field"), ({"asset": "DOGE"}, "unknown_asset"),
    ({"asset": 1}, "bad_request"), ({"amount": "0"}, "invalid_amount"),
    ({"amount": "-1"}, "invalid_amount"), ({"amount": 5}, "invalid_amount"),
    ({"amount": "1e3"}, "invalid_amount"), ({"amount": "0.0000001"}, "invalid_amount"),
    ({"amount": "99999999999999999999"}, "invalid_amount"), ({"symbol": "X"}, "unknown_field"),
])
def test_should_validate_admin_fields(change, code):
    assert err(send(admin(), {**DEPOSIT, **change})) == code


def test_should_let_only_an_admin_session_use_account_zero():
    with pytest.raises(ValueError):
        anon().authenticated(0)
    s = anon()
    assert s.authenticated(0, admin=True) == [] and s.admin and s.account == 0


# ---------------------------------------------------------------- cancel-on-disconnect
def test_should_cancel_this_sessions_orders_on_disconnect_when_asked_at_login():
    s = anon()
    send(s, {"op": "login", "api_key": "k", "cancel_on_disconnect": True, "req_id": 1})
    assert only_reply(s.authenticated(ACCOUNT))["cancel_on_disconnect"] is True
    assert commands(s.disconnected()) == [expect(
        CK.CANCEL_ALL, ref=0, symbol=records.ALL_SYMBOLS, flags=records.CMD_DISCONNECT)]
    assert s.disconnected() == []          # once
    assert send(s, PLACE) == []            # closed


def test_should_take_the_option_at_connect_time():
    s = anon(cancel_on_disconnect=True)
    s.authenticated(ACCOUNT)
    (cmd,) = commands(s.disconnected())
    assert (cmd["kind"], cmd["session"], cmd["flags"]) == (CK.CANCEL_ALL, SID,
                                                          records.CMD_DISCONNECT)


def test_should_not_cancel_without_the_option_or_a_login():
    assert logged_in().disconnected() == []
    assert anon(cancel_on_disconnect=True).disconnected() == []
    s = anon(cancel_on_disconnect=True)
    send(s, {"op": "login", "api_key": "k"})        # still checking the key
    assert s.disconnected() == []


def test_should_refuse_a_non_boolean_option():
    assert err(send(anon(), {"op": "login", "api_key": "k", "cancel_on_disconnect": 1})) \
        == "bad_request"


# ---------------------------------------------------------------- ring full
def test_should_answer_overloaded_and_forget_refused_commands():
    s = logged_in()
    acts = send(s, {"op": "open_orders", "req_id": 9})
    records = [a.record for a in acts if isinstance(a, SendCommand)]
    (reply,) = s.commands_refused(records)
    assert isinstance(reply, Reply) and reply.message["code"] == "overloaded"
    assert reply.message["req_id"] == 9
    assert len(s._pending) == 0
    (cmd,) = commands(send(s, PLACE))
    assert cmd["ref"] == 3


def test_should_close_on_the_adapters_request():
    s = logged_in()
    acts = s.close(1013, ErrorCode.SLOW_CONSUMER, "too slow")
    assert acts[0].message["code"] == "slow_consumer" and acts[1].code == 1013
    assert s.close(1001, ErrorCode.SLOW_CONSUMER, "x")[0].code == 1001


def test_error_numbers_are_stable_and_fit_a_byte():
    assert ERROR_NUMBERS["bad_json"] == 1 and ERROR_NUMBERS["binary_frame"] == 26
    assert max(ERROR_NUMBERS.values()) < 256 and len(set(ERROR_NUMBERS.values())) == len(ErrorCode)


def test_should_stamp_commands_of_admin_sessions_with_the_admin_session():
    (cmd,) = commands(send(admin(), DEPOSIT))
    assert (cmd["session"], cmd["ts_ns"]) == (SID, T0)
