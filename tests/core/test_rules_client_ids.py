"""Long client ids in the engine (docs/rules.md, Identity): a CLIENT_ID command is echoed
as one CLIENT_ID event and changes nothing; a long id's key is unique among the account's
live orders like any client id; the reference model agrees; a journal replay gives the
same events byte for byte."""
from __future__ import annotations

import numpy as np

from ringex import records
from ringex.core.journal import Journal, read_journal
from ringex.core.order_service import OrderService
from ringex.protocol.client_ids import pack_client_id, text_words
from ringex.records import EventKind as EK, RejectCode as RC, Side
from tests.util.exchange import Exchange, rule_config
from tests.util.reference import ReferenceExchange

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
KEY = pack_client_id(UUID)


def client_id(account=1, text=UUID, session=5, ref=9):
    return records.client_id_text(account, text_words(text), session=session, ref=ref)


def state(ex):
    return (ex.bid(), ex.ask(), ex.balance(1), ex.svc.live_orders(), ex.svc.open_orders(1))


def test_should_echo_a_client_id_command_as_one_event_and_change_nothing():
    ex = Exchange()
    before = state(ex)
    (ev,) = ex.submit(client_id())
    cmd = client_id()[0]
    assert ev["kind"] == EK.CLIENT_ID and ev["seq"] == 0 and ev["symbol"] == 0
    assert (ev["account"], ev["session"], ev["ref"]) == (1, 5, 9)
    assert ev.tobytes()[8:48] == cmd.tobytes()[:40] == UUID.encode().ljust(40, b"\0")
    assert state(ex) == before


def test_should_accept_a_long_key_and_refuse_it_again_while_the_order_lives():
    ex = Exchange()
    oid = ex.rest(1, Side.BUY, 100, 5, client_order_id=KEY)
    assert ex.svc.open_orders(1)[0]["client_order_id"] == KEY
    before = state(ex)
    assert ex.reject_code(ex.buy(1, 99, 1, client_order_id=KEY)) == RC.DUPLICATE_CLIENT_ORDER_ID
    assert state(ex) == before
    assert ex.kinds(ex.buy(2, 99, 1, client_order_id=KEY)) == ["ACK"]    # another account
    (c,) = ex.cancel(1, client_order_id=KEY)
    assert (c["kind"], c["order_id"], c["other_id"]) == (EK.CANCELLED, oid, KEY)
    assert ex.kinds(ex.buy(1, 99, 1, client_order_id=KEY)) == ["ACK"]    # free again


def test_should_agree_with_the_reference_model_on_client_id_commands():
    config = rule_config()
    cmds = records.batch(client_id(), records.new_order(0, 1, Side.BUY, 100, 5,
                                                         client_order_id=KEY),
                         records.cancel(0, 1, client_order_id=KEY))
    got = OrderService(config, wallets=False).submit(cmds)
    want = ReferenceExchange(config, wallets=False).submit(cmds)
    assert got[0].tobytes() == want[0].tobytes()          # the CLIENT_ID echo, every byte
    # the rest alike but for the engine's own order ids (differential.py maps them)
    assert got[1]["order_id"] == got[2]["order_id"] and want[1]["order_id"] == want[2]["order_id"]
    got["order_id"][1:] = want["order_id"][1:] = 0
    assert got.tobytes() == want.tobytes()


def test_should_emit_the_same_client_id_events_when_the_journal_is_replayed(tmp_path):
    config = rule_config()
    batches = [records.batch(client_id(account=a, text=f"{UUID[:-1]}{a}"),
                             records.new_order(0, a, Side.SELL, 100 + a, 3,
                                               client_order_id=pack_client_id(f"{UUID[:-1]}{a}")))
               for a in (1, 2, 3)]
    live = OrderService(config, wallets=False)
    with Journal.open(tmp_path / "j.rxj") as j:
        first = []
        for b in batches:
            j.append(b)
            first.append(live.submit(b))
    entries, _ = read_journal(tmp_path / "j.rxj")
    replay = OrderService(config, wallets=False)
    again = [replay.submit(cmds) for _, cmds in entries]
    assert [e.tobytes() for e in again] == [e.tobytes() for e in first]
    assert sum(int(np.count_nonzero(e["kind"] == EK.CLIENT_ID)) for e in again) == 3
